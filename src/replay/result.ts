/** What a replay produces: plain data, from which analysis tables and reports are built. */
import type {LedgerTotals} from '../ledger/ledger.js'
import type {ReplaySettings} from './config.js'
import type {StopReason} from './policies.js'

export type Driver = 'qemu' | 'recorded'
export type Verdict = 'converged' | 'not-converged' | 'inconclusive' | 'cancelled'

export interface IterationRow {
  iteration: number
  phase: 'live' | 'stop-copy'
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
  downtime: {ramMs: number; deviceStateMs: number; ramPages: number; ramBytes: number; deviceStateBytes: number}
  /** Live (VM running) iterations. */
  iterations: number
  dirtySyncCount: number
  totals: LedgerTotals
  lostWrites: number
  /** pages sent k times, k = 0..15 (15 = 15 or more). */
  sendHistogram: number[]
  guest: {pages: number; pageSize: number; bytes: number}
  rows: IterationRow[]
  components: Record<string, Record<string, unknown>>
  events: {replayed: number; writes: number; notReplayed: number; ignored: Record<string, number>; unmapped: number}
  lazyClears: number
  stall?: StallInfo
  notes: string[]
}
