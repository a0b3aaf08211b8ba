/**
 * Prediction against observation: a replay's figures beside QEMU's own `query-migrate` figures of
 * the real run (header.observed of an imported trace, or a --expect file such as qemu-lab's
 * final-src.json), with the error of each and the issue's targets:
 *  - precopy runs: transferred bytes and dirty-sync-count within 5 %, downtime within 25 % or 20 ms;
 *  - postcopy runs: transferred bytes within 10 %, postcopy requests within a factor of 2.
 * Metrics without a target are shown for information (target and pass null); metrics the replay
 * does not model (postcopy) have predicted null.
 *
 * What QEMU counts (QEMU 7.2 migration/ram.c, migration.c), so the predictions compare like with like:
 *  - ram.transferred: migration_transferred_bytes(), every byte put on the wire (qemu-semantics.md
 *    §8): page records (8-byte header + page), zero-page records (8 + 1 bytes), VFIO device data
 *    (precopy and stop-copy), the device state, the postcopy package. Predicted: the replay's
 *    transferredBytes.
 *  - ram.normal / ram.duplicate: pages sent with content / as zero-page records (save_zero_page).
 *  - ram.dirty-sync-count: migration_bitmap_sync() calls, the last-stage one included.
 *  - precopy-bytes / downtime-bytes / postcopy-bytes: ram_transferred_add() files each RAM byte by
 *    the run state: guest running -> precopy, in postcopy -> postcopy, else (stopped) -> downtime.
 *    RAM records only, at their wire size (an XBZRLE record's encoded bytes): device state and VFIO
 *    data are not in any of the three (§8), nor are 7.2's multifd packets (multifd_send_pages adds
 *    them to ram_counters.transferred directly). Predicted: the replay's ramRecordBytes.
 *  - downtime (ms): migration_calculate_complete(): end - downtime_start (vm stop); total-time:
 *    end - start of the migration.
 */
import type {ReplayResult} from '../replay/result.js'
import {readQueryMigrate} from '../import/qemu/stats.js'

export type ExpectMode = 'precopy' | 'postcopy'

export interface ExpectTarget {
  /** Allowed |relError| (0.05 = 5 %). */
  rel?: number
  /** Allowed |error| in the metric's unit (passes when either rel or abs holds). */
  abs?: number
  /** Allowed ratio predicted/observed (and its inverse): 2 = within a factor of 2. */
  factor?: number
  /** How the target reads in a table. */
  text: string
}

export interface ExpectRow {
  metric: string
  unit: 'bytes' | 'pages' | 'count' | 'ms'
  observed: number | null
  predicted: number | null
  /** predicted - observed. */
  error: number | null
  /** (predicted - observed) / observed; null when observed is 0 or either side is missing. */
  relError: number | null
  target: string | null
  /** null: no target for this metric, or one side missing. */
  pass: boolean | null
  note?: string
}

/** The parts of a ReplayResult the comparison reads (tests can build one by hand). */
export type ReplayFigures = Pick<ReplayResult, 'dirtySyncCount' | 'downtimeMs' | 'totalTimeMs' | 'transferredBytes' | 'ramRecordBytes'> & {
  totals: Pick<ReplayResult['totals'], 'bytesSent' | 'normalPages' | 'zeroPages'>
  downtime: Pick<ReplayResult['downtime'], 'ramBytes'>
  /** Postcopy figures, when a replay models postcopy. */
  postcopy?: {bytes: number; requests: number; bytesBeforeSwitchover: number; blocktimeMs?: number}
  driver?: ReplayResult['driver']
}

export interface CompareOptions {
  /** Default: postcopy when the observed run went through postcopy, else precopy. */
  mode?: ExpectMode
}

/** The targets. */
export const TARGETS: Record<ExpectMode, Record<string, ExpectTarget>> = {
  precopy: {
    transferred: {rel: 0.05, text: '±5 %'},
    'dirty-sync-count': {rel: 0.05, text: '±5 %'},
    downtime: {rel: 0.25, abs: 20, text: '±25 % or ±20 ms'},
  },
  postcopy: {
    transferred: {rel: 0.1, text: '±10 %'},
    'postcopy-requests': {factor: 2, text: 'within 2x'},
  },
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null)

/** The run went through postcopy (status, or postcopy bytes/requests in its RAM stats). */
export function observedMode(observed: Record<string, unknown>): ExpectMode {
  const ram = (observed.ram ?? {}) as Record<string, unknown>
  if (typeof observed.status === 'string' && observed.status.startsWith('postcopy')) return 'postcopy'
  return (num(ram['postcopy-bytes']) ?? 0) > 0 || (num(ram['postcopy-requests']) ?? 0) > 0 ? 'postcopy' : 'precopy'
}

/** Does `predicted` meet `target` against `observed`? Exact arithmetic, no rounding. */
export function meetsTarget(observed: number, predicted: number, target: ExpectTarget): boolean {
  const err = Math.abs(predicted - observed)
  if (target.abs !== undefined && err <= target.abs) return true
  if (target.rel !== undefined) {
    if (observed === 0) return predicted === 0
    if (err / Math.abs(observed) <= target.rel) return true
  }
  if (target.factor !== undefined) {
    if (observed === 0 || predicted === 0) return observed === predicted
    const r = predicted / observed
    return r <= target.factor && r >= 1 / target.factor
  }
  return false
}

function row(metric: string, unit: ExpectRow['unit'], observed: number | null, predicted: number | null, target: ExpectTarget | undefined, note?: string): ExpectRow {
  const both = observed !== null && predicted !== null
  const error = both ? predicted - observed : null
  const relError = both && observed !== 0 ? (predicted - observed) / observed : null
  return {
    metric,
    unit,
    observed,
    predicted,
    error,
    relError,
    target: target?.text ?? null,
    pass: both && target !== undefined ? meetsTarget(observed, predicted, target) : null,
    ...(note !== undefined ? {note} : {}),
  }
}

/**
 * One row per metric: transferred, normal, duplicate, dirty-sync-count, downtime, total-time,
 * precopy-bytes, downtime-bytes, postcopy-bytes, postcopy-requests. Observed fields the reply
 * lacks (QEMU drops `ram` on cancel; older QEMUs lack precopy-bytes) give observed null.
 */
export function compareWithObserved(observed: Record<string, unknown>, result: ReplayFigures, opts: CompareOptions = {}): ExpectRow[] {
  const mode = opts.mode ?? observedMode(observed)
  const t = TARGETS[mode]
  const ram = (observed.ram ?? {}) as Record<string, unknown>
  const pc = result.postcopy
  // RAM record bytes by run state; in postcopy the package sent while stopped holds no RAM pages.
  // The sender's own count of the records' wire bytes where the replay has it (the qemu driver):
  // the ledger's bytesSent counts every page at its nominal record size, an XBZRLE delta or a page
  // skipped as unchanged at 4 104 bytes, and the downtime's pass (and its multifd packets) is at
  // wire size, so their difference overstated precopy-bytes (lab/runs/xbzrle-hot: 465.2 MB against
  // 434.8 observed).
  const rec = result.ramRecordBytes
  const downtimeBytes = pc !== undefined ? 0 : rec !== undefined ? rec.downtime : result.downtime.ramBytes
  const precopyBytes = rec !== undefined ? rec.precopy : pc === undefined ? result.totals.bytesSent - downtimeBytes : pc.bytesBeforeSwitchover
  const notModelled = pc === undefined ? 'the replay does not model postcopy' : undefined
  const rows = [
    row('transferred', 'bytes', num(ram.transferred), result.transferredBytes, t.transferred),
    row('normal', 'pages', num(ram.normal), result.totals.normalPages, t.normal),
    row(
      'duplicate',
      'pages',
      num(ram.duplicate),
      result.totals.zeroPages,
      t.duplicate,
      // save_zero_page has no trace point in QEMU 7.2: a recorded run shows only the pages sent with data.
      result.driver === 'recorded' ? 'zero pages leave no QEMU trace event, so the recorded driver cannot see them' : undefined,
    ),
    row('dirty-sync-count', 'count', num(ram['dirty-sync-count']), result.dirtySyncCount, t['dirty-sync-count']),
    row('downtime', 'ms', num(observed.downtime), result.downtimeMs, t.downtime),
    row('total-time', 'ms', num(observed['total-time']), result.totalTimeMs, t['total-time']),
    row('precopy-bytes', 'bytes', num(ram['precopy-bytes']), mode === 'postcopy' && pc === undefined ? null : precopyBytes, t['precopy-bytes'], mode === 'postcopy' ? notModelled : undefined),
    row('downtime-bytes', 'bytes', num(ram['downtime-bytes']), downtimeBytes, t['downtime-bytes']),
    row('postcopy-bytes', 'bytes', num(ram['postcopy-bytes']), pc?.bytes ?? (mode === 'precopy' ? 0 : null), t['postcopy-bytes'], mode === 'postcopy' ? notModelled : undefined),
    row('postcopy-requests', 'count', num(ram['postcopy-requests']), pc?.requests ?? (mode === 'precopy' ? 0 : null), t['postcopy-requests'], mode === 'postcopy' ? notModelled : undefined),
  ]
  // The destination's postcopy-vcpu-blocktime, when the observation has it (import qemu
  // --dst-stats): the time each vCPU waited on page requests, summed over the vCPUs as the replay's
  // blocktimeMs is (QEMU's postcopy-blocktime is the time all of them waited at once: the same for
  // one vCPU). No target in issue 14.
  const perVcpu = observed['postcopy-vcpu-blocktime']
  const blocktime = Array.isArray(perVcpu) && perVcpu.every((x) => typeof x === 'number') ? (perVcpu as number[]).reduce((a, b) => a + b, 0) : null
  if (blocktime !== null) rows.push(row('postcopy-vcpu-blocktime', 'ms', blocktime, pc?.blocktimeMs ?? null, undefined, pc === undefined ? notModelled : undefined))
  return rows
}

/** Rows with a target that were checked and missed it. */
export function failedRows(rows: readonly ExpectRow[]): ExpectRow[] {
  return rows.filter((r) => r.pass === false)
}

/** A `--expect` file: a query-migrate reply (bare, or QMP `{"return": ...}`), checked. */
export function readExpectFile(path: string): Record<string, unknown> {
  return readQueryMigrate(path)
}
