/** What a replay produces: plain data, from which analysis tables and reports are built. */
import type {StreamFigures} from './sender/costs.js'
import type {LedgerTotals} from '../ledger/ledger.js'
import type {CauseSpec} from '../model/causes.js'
import {KINDS} from '../trace/events.js'
import type {ComponentData} from './host.js'
import type {ReplaySettings} from './settings.js'
import type {StopReason} from './policies.js'
import type {PostcopyRecoveryResult} from './drivers/postcopy-recovery.js'

export type Driver = 'qemu' | 'recorded'

/** Event counts keyed by kind code, as a record keyed by kind name in kind order (for results). */
export function countsByKindName(counts: ReadonlyMap<number, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, n] of [...counts].sort((a, b) => a[0] - b[0])) out[KINDS[k]!.name] = n
  return out
}
/** `postcopy`: the migration switched to postcopy and completed there (it always does). */
export type Verdict = 'converged' | 'not-converged' | 'inconclusive' | 'cancelled' | 'postcopy'

export interface IterationRow {
  iteration: number
  /** `postcopy`: opened by the switchover sync; holds every send after the switchover. */
  phase: 'live' | 'stop-copy' | 'postcopy'
  startNs: number
  endNs: number
  /** migration_dirty_pages right after the sync that opened the iteration. */
  dirtyPagesAtSync: number
  /** Pages the opening sync newly set (QEMU's `new`: re-dirtied unsent pages are not counted). */
  newDirtyPages: number
  /** Syncs inside this iteration (1 + extra syncs QEMU did without a new pass: 0 for rounds). */
  syncs: number
  thresholdBytes: number
  bandwidthBps: number
  expectedDowntimeMs: number
  /** Pages the next sync found newly dirty, per second of this iteration. */
  dirtyRatePps: number
  pagesSent: number
  bytesSent: number
  first: number
  redirtied: number
  redundant: number
  zero: number
  redundantByCause: Record<string, number>
  /** Auto-converge throttle (%) in effect during this iteration (0 = none). */
  throttlePct?: number
}

export interface StallInfo {
  stalled: boolean
  /** Dirty set at the last sync. */
  dirtyBytes: number
  /** Downtime a switchover now would need at the send rate. */
  needsDowntimeMs: number
  /** Bandwidth that would fit the dirty set into downtime-limit. */
  needsBandwidthBps: number
}

export interface ReplayResult {
  driver: Driver
  settings: ReplaySettings
  verdict: Verdict
  stopReason: StopReason
  /** Migration start (trace time, ns). */
  startNs: number
  setupEndNs: number
  stopNs: number
  endNs: number
  /** Time of the last trace event that was replayed. */
  traceEndNs: number
  /** The trace ended before the migration did (the guest was then assumed idle, or forced). */
  traceEndedFirst: boolean
  totalTimeMs: number
  setupTimeMs: number
  downtimeMs: number
  downtime: {
    ramMs: number
    deviceStateMs: number
    ramPages: number
    ramBytes: number
    deviceStateBytes: number
    /** VFIO device state sent during the downtime (vfio_save_complete_precopy), before the rest. */
    vfioStateMs?: number
    vfioStateBytes?: number
  }
  /** Live (VM running) iterations. */
  iterations: number
  dirtySyncCount: number
  totals: LedgerTotals
  /**
   * Every byte that went on the wire (query-migrate `transferred`, migration_transferred_bytes()):
   * RAM records, VFIO device data, the device state, the postcopy package.
   */
  transferredBytes: number
  /**
   * The main stream's RAM records as they went on the wire, by run state (QEMU's precopy-bytes and
   * downtime-bytes, ram_transferred_add()): an XBZRLE record at its encoded size, a skipped page at
   * 0, no multifd packet (the ledger's bytesSent counts every page sent at its nominal record size).
   * The qemu driver's precopy part only.
   */
  ramRecordBytes?: {precopy: number; downtime: number}
  /**
   * Bytes transferred against time (ms since the migration start), at every 100 ms rate window
   * boundary, the stop or postcopy switch, and the end: the transfer timeline chart's line. Only
   * the qemu driver's precopy runs have it (a recorded run or a snapshot has no rate windows).
   */
  transferTimeline?: TransferTimeline
  /** The run's double-copy causes, by code (ids key totals.redundantByCause). */
  causes: readonly CauseSpec[]
  lostWrites: number
  /** pages sent k times, k = 0..15 (15 = 15 or more). */
  sendHistogram: number[]
  guest: {pages: number; pageSize: number; bytes: number}
  rows: IterationRow[]
  components: ComponentData & {recorded?: {ringPagesRecorded: number; clearsRecorded: number}}
  events: {replayed: number; writes: number; notReplayed: number; ignored: Record<string, number>; unmapped: number}
  lazyClears: number
  stall?: StallInfo
  notes: string[]
  /** Set when the run switched to postcopy (docs/postcopy-snapshot.md). */
  postcopy?: PostcopyResult
  /** Set with mode=background-snapshot. */
  snapshot?: SnapshotResult
  /** Set with auto-converge or dirty-limit. */
  throttle?: ThrottleResult
  /** How pages travelled, and what the guest and the host paid for it. */
  transport?: TransportResult
  /** The migration stream (docs/stream.md): sender CPU, multifd, compression, XBZRLE; set when one is on. */
  stream?: StreamFigures
}

/** Fault latency: percentiles (ns) and QEMU 10.1's postcopy-latency-dist (log2 µs buckets). */
export interface LatencyStats {
  count: number
  meanNs: number
  p50: number
  p90: number
  p99: number
  max: number
}

export interface PostcopyResult {
  /** What started the switchover: after-iterations, at-time, trace-event, stall, or cap:<reason>. */
  trigger: string
  /** Switchover (VM stop) and the end of the package, ms from the migration start. */
  switchoverMs: number
  /** The guest runs on the destination from here (package sent + one-way latency, or later: the destination's discards, postcopy-discard-page-cost). */
  guestResumeMs: number
  /** The destination's time applying the switchover's discard ranges before it reads the package (0 without postcopy-discard-page-cost). */
  discardApplyMs: number
  /** Precopy iterations before the switchover. */
  precopyIterations: number
  /** MIG_RP_MSG_REQ_PAGES sent (every fault of a page not received, duplicates included). */
  requests: number
  /** Requests for a page another request was already waiting for. */
  duplicateRequests: number
  /** Requests the source skipped: the page was already on its way (get_queued_page_not_dirty). */
  requestsSkipped: number
  /** vCPU accesses that found their page missing. */
  faults: number
  /** Pages (host pages) sent because they were requested. */
  urgentPages: number
  /** Host pages made wholly dirty by postcopy_chunk_hostpages_pass. */
  hugePagesRedirtied: number
  discardRanges: number
  discardBytes: number
  blocktimeMsPerVcpu: number[]
  blocktimeMs: number
  latencyNs: LatencyStats
  /** latencyHistogram[N] = faults resolved in [2^N, 2^(N+1)) µs; bucket 0 also holds < 1 µs (33 buckets). */
  latencyHistogram: number[]
  bytesBeforeSwitchover: number
  bytesAfterSwitchover: number
  /** QEMU's postcopy-bytes: RAM bytes sent after the switchover (= bytesAfterSwitchover). */
  bytes: number
  pagesAfterSwitchover: number
  /** Invariants, checked at the end: both must be 0. */
  pagesSentTwiceAfterSwitchover: number
  /** RAM pages the destination never received (must be 0: the guest would read stale memory). */
  destinationMissingPages: number
  /** Time from the switchover to the last page received (ms). */
  postcopyMs: number
  /** How much later the guest's last replayed event ran than in the trace, per vCPU (ms). */
  guestDelayMsPerVcpu: number[]
  /** Network failures during postcopy and their recovery; null when there was none. */
  recovery: PostcopyRecoveryResult | null
}

export interface SnapshotResult {
  durationMs: number
  /** VM stopped: device state captured and RAM write-protected. */
  downtimeMs: number
  pagesSaved: number
  pagesByStream: number
  pagesByFault: number
  faults: number
  latencyNs: LatencyStats
  latencyHistogram: number[]
  stallMsPerVcpu: number[]
  stallMs: number
  bytes: number
  /** Pages saved more than once (must be 0) and pages never saved (must be 0). */
  pagesSavedTwice: number
  pagesNotSaved: number
}

export interface ThrottleStep {
  /** ms from the migration start. */
  atMs: number
  pct: number
  /** Iteration (row) the step happened in. */
  iteration: number
}

export interface ThrottleResult {
  mode: 'auto-converge' | 'dirty-limit'
  steps: ThrottleStep[]
  finalPct: number
  /** Extra wall time the guest lost to throttling by the end of precopy (ms). */
  guestSlowdownMs: number
  /** Per vCPU (dirty-limit: each vCPU has its own). */
  slowdownMsPerVcpu: number[]
  /** Qualifying periods of migration_trigger_throttle (dirtied > threshold % of sent). */
  triggerPeriods: number
  /** Periods (>= 1 s) evaluated. */
  periods: number
}

export interface TransportResult {
  kind: 'network' | 'local-remap' | 'shared'
  rttMs: number
  /** What the guest paid. */
  guest: {downtimeMs: number; faultLatencyP50Ms: number; faultLatencyP99Ms: number; blocktimeMs: number}
  /** What the host paid. */
  host: {bytes: number; ramBytes: number; pageTableOps: number; pageTableMs: number; pagesNotSent: number}
}

/** Points (tMs[i], bytes[i]) of cumulative bytes on the wire; tMs non-decreasing. */
export interface TransferTimeline {
  tMs: number[]
  bytes: number[]
}
