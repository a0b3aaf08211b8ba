/**
 * The guest's writes from a recording (`migtrace record`, or a lab run's recording.csv.gz: the
 * source QEMU ran with the recording plugin), placed on a QEMU log's time base: every store the
 * guest made to RAM (the dirtier's, the kernel's, busybox's), first per page and 1 ms epoch,
 * instead of the dirtier's writes re-created from its seed.
 *
 * Alignment is by host wall-clock: a host-clock recording's time t_ns counts from
 * `source.recording.timeOrigin` (the host time when the guest first ran), QEMU's log lines carry
 * the host time they were written (`-msg timestamp=on`), so a write at t_ns is at
 * timeOrigin + t_ns - the log's first line on the imported trace's time base. A guest-clock
 * recording has no such mapping (its time runs at --ips, not the host's) and is refused.
 *
 * A kept recording may hold only the writes outside the dirtier's working set
 * (`source.recording.dirtierWritesRemoved`: src/lab/keep-recording.ts); the importer then adds the
 * dirtier's writes re-created from its seed, as without a recording.
 */
import {K} from '../../trace/events.js'
import type {TraceHeader} from '../../trace/header.js'
import {openTrace} from '../../trace/read/open.js'
import {UserError} from '../../util/errors.js'

/** `SECONDS.MICROS` of header.source.recording.timeOrigin -> µs since the epoch. */
export function parseTimeOrigin(text: unknown): number | undefined {
  const m = typeof text === 'string' ? /^(\d+)\.(\d{6})$/.exec(text) : null
  return m ? Number(m[1]) * 1e6 + Number(m[2]) : undefined
}

export interface RecordingInfo {
  header: TraceHeader
  /** Host wall-clock µs of the recording's t_ns 0. */
  originUs: number
  /** The dirtier's working-set writes were taken out when the run was kept: re-create them. */
  dirtierRemoved: boolean
  epochNs: number
}

export async function readRecordingInfo(file: string): Promise<RecordingInfo> {
  const tr = await openTrace(file)
  const src = (tr.header.source ?? {}) as Record<string, unknown>
  const rec = (src.recording ?? {}) as Record<string, unknown>
  if (src.recorder !== 'migtrace record') throw new UserError('not a recording made by migtrace record', {file, field: 'source.recorder', expected: "'migtrace record'", found: String(src.recorder ?? 'nothing')})
  if (src.clock !== 'host') throw new UserError('the recording is not on the host clock, so its writes cannot be aligned with QEMU\'s trace log', {file, field: 'source.clock', expected: "'host' (migtrace record --clock host; the lab records so)", found: String(src.clock)})
  const originUs = parseTimeOrigin(rec.timeOrigin)
  if (originUs === undefined) throw new UserError('the recording has no host time origin', {file, field: 'source.recording.timeOrigin', expected: 'SECONDS.MICROS', found: String(rec.timeOrigin ?? 'nothing')})
  return {header: tr.header, originUs, dirtierRemoved: rec.dirtierWritesRemoved !== undefined, epochNs: typeof src.epochNs === 'number' ? src.epochNs : 0}
}

/** The recording's write events in time order, on a log's time base (ns since `logOriginUs`). */
export class RecordedWriteCursor {
  t = 0
  gpa = 0
  len = 0
  vcpu = 0
  private it: AsyncIterator<import('../../trace/events.js').EventBatch> | undefined
  private b: import('../../trace/events.js').EventBatch | undefined
  private i = 0
  private readonly shiftNs: number

  constructor(
    private readonly file: string,
    recordingOriginUs: number,
    logOriginUs: number,
  ) {
    this.shiftNs = (recordingOriginUs - logOriginUs) * 1000
  }

  /** The next write; false at the end. */
  async advance(): Promise<boolean> {
    if (this.it === undefined) this.it = (await openTrace(this.file)).events()[Symbol.asyncIterator]()
    for (;;) {
      if (this.b !== undefined && this.i < this.b.length) {
        const b = this.b
        const i = this.i++
        if (b.kind[i] !== K.write) continue
        this.t = b.t[i]! + this.shiftNs
        this.gpa = b.gpa[i]!
        this.len = b.len[i]!
        this.vcpu = b.vcpu[i]!
        return true
      }
      const n = await this.it.next()
      if (n.done === true) return false
      this.b = n.value
      this.i = 0
    }
  }
}
