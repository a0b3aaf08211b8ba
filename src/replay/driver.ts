/**
 * What a replay driver is to the session: the part that decides what the migration does (QEMU's
 * precopy engine, a recorded run's own decisions, a background snapshot). The session owns the
 * event loop, the guest's clock, guest writes and the counters; a driver only
 * - says when it next wants to act (`due`) and acts (`act`), in time order with the host's timers;
 * - takes the trace's control events it understands (`control`);
 * - may take guest accesses over while they fault (postcopy, snapshot: `access`);
 * - tells the result builder its figures once the run is over (`figures`).
 */
import type {StreamFigures} from './sender/costs.js'
import type {EventBatch} from '../trace/events.js'
import type {Driver as DriverName, IterationRow, PostcopyResult, ReplayResult, SnapshotResult, StallInfo, ThrottleResult, TransferTimeline, Verdict} from './result.js'
import type {StopReason} from './policies.js'
import type {ReplaySettings} from './settings.js'

/** How the session should count a control event the driver saw. */
export const enum Taken {
  /** Not the driver's: the session hands it to a model part, or counts it ignored. */
  No,
  /** Done: a replayed event. */
  Yes,
  /** Replayed, but it had no effect (e.g. a second mig_start): counted in `ignored` too. */
  Ignored,
  /** The driver drops it (a phase in which it means nothing): counted as not replayed. */
  Dropped,
}

/** A guest access the session should apply itself (the default write path). */
export const APPLY = -1

export interface ReplayDriver {
  readonly name: DriverName
  /** The settings in effect at the end (a trace's mig_set may have changed live parameters). */
  readonly settings: ReplaySettings
  /** The migration is over: the rest of the trace is not needed (but see wantsEventsAfter). */
  readonly done: boolean
  /** Wall time (ns) of the driver's next action, Infinity when it only reacts to events. */
  readonly due: number
  /** When the migration ended (wall ns; NaN before): later guest requests are made from then on. */
  readonly endNs: number
  /**
   * Run the action due now; the driver may go on with later actions while they fall before
   * `until` (the next guest event or host timer), e.g. page sends back to back.
   */
  act(until: number): void
  /** The host's timers (the KVM dirty-ring reaper) run while this is true. */
  readonly hostTimers: boolean
  /**
   * Events must go through the guest clock's per-vCPU queues: some vCPU may run late (postcopy and
   * snapshot faults, dirty-limit sleeps).
   */
  readonly slow: boolean
  /** A non-access event at wall time `now`. */
  control(b: EventBatch, i: number, now: number): Taken
  /**
   * control() returns Taken.No for dma_write and vhost_write now (the model's QEMU-side sources
   * take them), so the session's fast path may hand them over without asking. Only driver actions
   * and control events may change it.
   */
  readonly deviceWritesToModel?: boolean
  /**
   * A guest access (K.write or K.read) at `now` over pages [p0, p1) (p0 < 0: unmapped): APPLY to
   * let the session apply it, 0 when the driver did it, or the time (> now) the vCPU may retry.
   */
  access(kind: number, vcpu: number, p0: number, p1: number, now: number): number
  /** The driver limits guest writes (dirty-limit in service): the session tells it of each logged page. */
  readonly limitingWrites?: boolean
  /** vCPU `vcpu` dirtied a page KVM logged at `now`: how long it sleeps for it (ns). */
  loggedWrite?(vcpu: number, now: number): number
  /** The trace is over: let the migration finish (or force it). */
  endOfTrace(lastEventNs: number): void
  /** The guest's events after the migration still matter (virtio-mem requests keep being answered). */
  readonly wantsEventsAfter: boolean
  /** The driver's part of the result. */
  figures(ctx: {lastEventNs: number; notReplayed: number}): DriverFigures
}

/** A driver's part of ReplayResult; the builder adds what the host model and the session know. */
export interface DriverFigures {
  verdict: Verdict
  stopReason: StopReason
  startNs: number
  setupEndNs: number
  stopNs: number
  endNs: number
  traceEndedFirst: boolean
  downtimeMs: number
  downtime: ReplayResult['downtime']
  rows: IterationRow[]
  notes: string[]
  stall?: StallInfo
  postcopy?: PostcopyResult
  snapshot?: SnapshotResult
  throttle?: ThrottleResult
  /** The stream's figures (sender CPU, multifd, compression, XBZRLE), when any is on. */
  stream?: StreamFigures
  /** Every byte that went on the wire (migration_transferred_bytes). */
  transferredBytes: number
  /** ReplayResult.ramRecordBytes. */
  ramRecordBytes?: ReplayResult['ramRecordBytes']
  /** Cumulative bytes on the wire against time (ReplayResult.transferTimeline). */
  transferTimeline?: TransferTimeline
  /** Events the driver found outside guest memory (recorded page_sent). */
  unmapped?: number
  /** Extra parts of `components` (the recorded driver's counts). */
  components?: Record<string, Record<string, number>>
  /** The model parts' data and the transport figures apply (not to a snapshot or a recorded run). */
  showComponents: boolean
  showTransport: boolean
}
