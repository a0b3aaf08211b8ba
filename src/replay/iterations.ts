/**
 * The per-iteration rows of a replay: a sync opens a row, the next sync (or the end) closes it
 * with what the ledger counted in between. Every driver keeps its rows here.
 */
import type {SendLedger} from '../ledger/ledger.js'
import {addIterationCounts} from '../ledger/ledger.js'
import type {IterationRow} from './result.js'

/** A row with its counts still zero. */
export function emptyRow(fields: Pick<IterationRow, 'iteration' | 'phase' | 'startNs'> & Partial<IterationRow>): IterationRow {
  return {
    endNs: fields.startNs,
    dirtyPagesAtSync: 0,
    newDirtyPages: 0,
    syncs: 1,
    thresholdBytes: 0,
    bandwidthBps: 0,
    expectedDowntimeMs: 0,
    dirtyRatePps: 0,
    pagesSent: 0,
    bytesSent: 0,
    first: 0,
    redirtied: 0,
    redundant: 0,
    zero: 0,
    redundantByCause: {},
    ...fields,
  }
}

export class IterationBook {
  readonly rows: IterationRow[] = []
  current?: IterationRow

  /** @param onClose completes a row as it closes (the recorded driver's measured bandwidth). */
  constructor(
    private readonly ledger: SendLedger,
    private readonly onClose?: (row: IterationRow) => void,
  ) {}

  /**
   * A sync at `now` that found `newPages` newly dirty pages opens `row`: the open row gets its
   * dirty rate (new pages per second of it) and is closed.
   */
  open(row: IterationRow, now: number, newPages: number): void {
    const prev = this.current
    if (prev) {
      const dur = (now - prev.startNs) / 1e9
      prev.dirtyRatePps = dur > 0 ? newPages / dur : 0
    }
    this.close(now)
    this.rows.push(row)
    this.current = row
  }

  /** The open row ends at `now` with the ledger's counts since it opened. */
  close(now: number): IterationRow | undefined {
    const row = this.current
    if (!row) return undefined
    row.endNs = now
    addIterationCounts(row, this.ledger.takeIteration())
    this.onClose?.(row)
    this.current = undefined
    return row
  }

  /** Rows of the live (VM running) iterations. */
  get live(): IterationRow[] {
    return this.rows.filter((r) => r.phase === 'live')
  }
}
