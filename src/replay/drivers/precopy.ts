/**
 * The `qemu` driver: QEMU's migration thread decides when to sync, clear and send (the what-if
 * mode). A small state machine with the time of its next action (`due`), run by the session in time
 * order with the guest's events.
 *
 * The thread mirrors migration_thread(): each loop turn runs migration_update_counters (a new
 * 100 ms window: bandwidth, threshold_size, expected_downtime), sleeps to the end of the window if
 * the rate limit is exceeded, else asks the stop policy (migration_iteration_run) and then sends
 * (ram_save_iterate) until the budget is spent, 50 ms have passed (checked every 64 pages) or RAM
 * is clean. Completion (migration_completion_precopy) stops the VM, does the last-stage sync and
 * sends what is left at the unlimited rate, then the device state. A switch to postcopy hands the
 * rest of the run to the postcopy phase (./postcopy.ts).
 */
import type {EventBatch} from '../../trace/events.js'
import {K} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {UserError} from '../../util/errors.js'
import {applyTraceParams} from '../config.js'
import type {ReplaySettings, SettingKey} from '../settings.js'
import type {HostModel} from '../host.js'
import {POLICIES, type PrecopyControl, type StopPolicy, type StopReason} from '../policies.js'
import {APPLY, Taken, type DriverFigures, type ReplayDriver} from '../driver.js'
import {IterationBook, emptyRow} from '../iterations.js'
import {Sender, sustainedRate} from '../sender/index.js'
import type {GuestClock} from '../throttle-clock.js'
import {Throttle} from '../throttle.js'
import type {PostcopyPhase} from './postcopy.js'
import {PostcopyTrigger} from '../postcopy-trigger.js'
import {precopyFigures} from './precopy-figures.js'
import {hasRule} from '../qemu-version.js'
import type {VfioDeviceState} from '../../model/vfio/container.js'
import {Switchover} from './switchover.js'

/** CPU_THROTTLE_DIRTY_SYNC_TIMESLICE_MS (migration/cpu-throttle.c, 9.2+). */
export const DIRTY_SYNC_TIMESLICE_NS = 5e9

const enum Phase {
  Idle,
  Active,
  Done,
}
const enum Step {
  Loop,
  Sending,
  /** The switchover is decided; the VM stops once the deciding sync is done. */
  Stopping,
}

export interface PrecopyOptions {
  /** Keys the user set (config file / --set): trace mig_set/mig_start params do not override them. */
  pinned?: ReadonlySet<SettingKey>
  /** True when the trace is known to hold no mig_start: the migration then starts at 0. */
  noStartEvent?: boolean
  file?: string
}

export class PrecopyDriver implements ReplayDriver, PrecopyControl {
  readonly name = 'qemu' as const
  readonly pageSize: number
  readonly guestPages: number
  readonly layout: TraceLayout
  readonly sender: Sender
  readonly book: IterationBook
  private readonly policy: StopPolicy
  private phase = Phase.Idle
  private step = Step.Loop
  private migNext = Infinity
  startNs = Number.NaN
  sendStartNs = Number.NaN
  private capNs = Infinity
  /** Why capNs forces the switchover: time-cap, or trace-end for the post-trace VFIO cap. */
  private capReason: StopReason = 'time-cap'
  private capNote = ''
  thresholdBytes = 0
  private bandwidthBps = 0
  private lastSyncNs = Number.NaN
  private lastActionNs = 0
  /** Time owed for syncs done since the thread last sent (setting `sync-cost`, per GiB of RAM). */
  private syncDebtNs = 0
  /** Time the thread had nothing to send yet could not switch over (device data pending). */
  idleNs = 0
  /** Why the switchover was decided while the deciding sync still runs (Step.Stopping). */
  private stopping?: StopReason
  /** The end of the migration: switchover, cancel or postcopy, and the downtime's parts. */
  readonly end: Switchover
  readonly notes: string[] = []
  readonly ignoredParams = new Set<string>()
  throttle?: Throttle
  private readonly postcopyTrigger: PostcopyTrigger
  /** Events go through the clock's per-vCPU queues (postcopy, dirty-limit). */
  slow = false
  /** cpu_throttle_dirty_sync_timer (auto-converge, QEMU 9.2+): its next tick, Infinity when off. */
  private syncTimerNs = Infinity
  /** dirty_sync_count at the timer's last tick (throttle_dirty_sync_count_prev). */
  private syncCountAtTick = 0
  /** Syncs the 5 s timer did. */
  timerSyncs = 0
  /** switchover-ack: when the destination's ack reaches the source (NaN: not yet known). */
  ackAtNs = Number.NaN
  /** switchover-ack: the VFIO devices the destination waits for (precopy initial data at setup). */
  private ackDevices: VfioDeviceState[] = []
  /** switchover-ack: time the thread could have switched over but waited for the ack. */
  ackWaitNs = 0
  private ackWaitFrom = Number.NaN

  constructor(
    readonly host: HostModel,
    readonly clock: GuestClock,
    public settings: ReplaySettings,
    readonly opts: PrecopyOptions = {},
  ) {
    this.layout = host.layout
    this.pageSize = host.layout.pageSize
    this.guestPages = host.layout.guestPages
    this.policy = POLICIES[settings['stop-policy']]
    this.sender = new Sender(host, settings)
    this.book = new IterationBook(host.ledger)
    this.postcopyTrigger = new PostcopyTrigger(settings)
    this.end = new Switchover({
      host,
      sender: this.sender,
      book: this.book,
      clock,
      layout: this.layout,
      sync: (lastStage, now, postcopy) => this.doSync(lastStage, now, postcopy),
      takeSyncDebt: () => this.takeSyncDebt(),
    })
    const startAt = settings['start-at']
    if (startAt !== undefined) this.scheduleStart(startAt * 1e6)
    else if (opts.noStartEvent) this.scheduleStart(0)
  }

  // --- PrecopyControl -------------------------------------------------------------------------
  get dirtyPages(): number {
    return this.host.mb.dirtyPages
  }
  get syncCount(): number {
    return this.host.syncCount
  }
  get pagesSent(): number {
    return this.host.ledger.pagesSent
  }
  get roundsThresholdBytes(): number {
    const bw = this.settings['avail-switchover-bandwidth'] || sustainedRate(this.settings)
    return (bw * this.settings['downtime-limit']) / 1000
  }
  sync(): void {
    this.doSync(false, this.lastActionNs)
  }
  /** RAM dirty bytes plus device data (VFIO estimate, or exact with stop_copy_size). */
  pendingBytes(exact: boolean): number {
    return this.host.mb.dirtyPages * this.pageSize + this.host.pendingDeviceBytes(exact)
  }
  complete(reason: StopReason): void {
    this.doComplete(reason, this.lastActionNs)
  }

  // --- ReplayDriver ---------------------------------------------------------------------------
  /** The postcopy phase after the switch (the thread's due, accesses and events are its own). */
  post: PostcopyPhase | undefined
  /** The host's timers run until postcopy starts. */
  hostTimers = true
  done = false

  get endNs(): number {
    return this.end.endNs
  }

  get due(): number {
    if (this.post) return this.post.due
    return Math.min(this.migNext, this.syncTimerNs)
  }

  get wantsEventsAfter(): boolean {
    return this.host.virtioMem !== undefined
  }

  /** dirty-limit in service: each page KVM logs may make the writing vCPU sleep. */
  get limitingWrites(): boolean {
    return this.throttle?.limiting === true
  }

  loggedWrite(vcpu: number, now: number): number {
    return this.throttle!.onDirtyPage(vcpu, now)
  }

  act(until: number): void {
    if (this.post) {
      this.post.act(until)
      if (this.post.done) this.finishPostcopy()
      return
    }
    if (this.syncTimerNs < this.migNext) return this.syncTimerTick(this.syncTimerNs)
    const now = this.migNext
    this.lastActionNs = now
    this.migStep(now, until)
  }

  /**
   * cpu_throttle_dirty_sync_timer_tick: every 5 s, a sync (migration_bitmap_sync_precopy, which
   * runs the throttle trigger) when none happened since the last tick, never during the first pass
   * (dirty_sync_count <= 1). It runs in the main loop while the migration thread sends.
   */
  private syncTimerTick(now: number): void {
    const count = this.host.syncCount
    if (count > 1 && count === this.syncCountAtTick && this.step !== Step.Stopping) {
      this.timerSyncs++
      this.doSync(false, now)
    }
    this.syncCountAtTick = this.host.syncCount
    this.syncTimerNs = now + DIRTY_SYNC_TIMESLICE_NS
  }

  access(kind: number, vcpu: number, p0: number, p1: number, now: number): number {
    return this.post ? this.post.access(kind, vcpu, p0, p1, now) : APPLY
  }

  control(b: EventBatch, i: number, now: number): Taken {
    if (this.post) return this.post.control(b, i, now)
    switch (b.kind[i]!) {
      case K.mig_start: {
        if (this.settings['start-at'] !== undefined || this.phase !== Phase.Idle || !Number.isNaN(this.startNs)) return Taken.Ignored
        const params = b.params.get(i)
        if (params) this.applyParams(params, b.line[i]!)
        this.scheduleStart(now)
        return Taken.Yes
      }
      case K.mig_set: {
        const params = b.params.get(i)
        if (params) this.applyParams(params, b.line[i]!)
        return Taken.Yes
      }
      case K.mig_postcopy:
        // migrate-start-postcopy: the switch happens at the migration thread's next turn.
        if (this.phase === Phase.Done) return Taken.Ignored
        this.postcopyTrigger.requested = true
        return Taken.Yes
      case K.mig_cancel:
        if (this.phase !== Phase.Active) return Taken.Ignored
        this.cancel(now)
        return Taken.Yes
      case K.mig_net_fail:
        // Only postcopy pauses and recovers: before it the stream error fails the migration
        // (migration_detect_error -> MIGRATION_STATUS_FAILED) and the guest runs on at the source.
        if (this.phase !== Phase.Active) return Taken.Ignored
        this.notes.push(`the network failed at ${((now - this.startNs) / 1e6).toFixed(3)} ms, before postcopy: the migration failed (only postcopy can pause and recover); the guest runs on at the source`)
        this.cancel(now)
        return Taken.Yes
      default:
        return Taken.No
    }
  }

  /** A trace's mig_set / mig_start params: QEMU's live parameters change from here on. */
  private applyParams(text: string, line: number): void {
    const next = applyTraceParams(this.settings, text, {file: this.opts.file, line: line || undefined, pinned: this.opts.pinned, notes: this.notes, ignoredParams: this.ignoredParams})
    this.settings = next
    this.throttle?.updateSettings(next)
    this.postcopyTrigger.updateSettings(next)
    // A new rate takes effect from the next page.
    this.sender.updateSettings(next, this.migNext)
  }

  private scheduleStart(t: number): void {
    this.startNs = t
    this.migNext = t
  }

  // --- the migration thread -------------------------------------------------------------------
  private migStep(now: number, until: number): void {
    if (this.phase === Phase.Idle) return this.setup(now)
    if (this.step === Step.Stopping) return this.stopAndCopy(this.stopping!, now)
    if (now >= this.capNs) {
      if (this.capNote) this.notes.push(this.capNote)
      return this.doComplete(this.capReason, now)
    }
    if (this.step === Step.Sending) return this.sendStep(now, until)
    const sender = this.sender
    // migration_rate_limit -> migration_update_counters
    this.updateCounters(now)
    if (sender.rateExceeded) {
      this.migNext = sender.windowEnd
      return
    }
    // postcopy_start is tested before complete_ready (migration_iteration_run).
    const postcopyWhy = this.post ? undefined : this.postcopyTrigger.check(this.host.syncCount, this.host.mb.dirtyPages, now, this.startNs, this.book.rows)
    if (postcopyWhy !== undefined && this.mustPrecopyFits()) return this.startPostcopy(now, postcopyWhy)
    this.policy.decide(this)
    // The policy may have decided the switchover (the VM stops once its sync is done).
    if (this.phase !== Phase.Active || this.stopDecided()) return
    // qemu_savevm_state_iterate: each VFIO device hands over a chunk of precopy data.
    const devBytes = this.host.iterateDevices()
    if (devBytes === 0 && this.host.mb.dirtyPages === 0) {
      // Nothing to send, yet device data keeps the pending size up (VFIO stop-copy size), or the
      // switchover waits for the destination's ack: QEMU spins on exact queries; the model lets
      // the rest of the 100 ms window pass per empty turn (or wakes when the ack arrives).
      const ack = this.ackAtNs > now ? this.ackAtNs : Infinity
      this.migNext = Math.max(now + 1, Math.min(sender.windowEnd, ack))
      this.idleNs += this.migNext - now
      return
    }
    this.step = Step.Sending
    // A sync the policy just did takes the migration thread `sync-cost` before it sends again;
    // guest writes land meanwhile, after the GET: the window the 2019 CLEAR race is about.
    const start = now + this.takeSyncDebt()
    if (devBytes > 0) this.noteInitDataSent(start, devBytes)
    sender.beginIterate(start, devBytes)
    this.migNext = sender.clock
  }

  /**
   * switchover-ack: a device whose initial data is all handed over sends DEV_INIT_DATA_SENT
   * (vfio_save_iterate); the destination loads it and acks once every such device did
   * (qemu_loadvm_approve_switchover). The ack reaches the source one rtt after the last byte left
   * (the destination's load time is not modelled).
   */
  private noteInitDataSent(start: number, devBytes: number): void {
    if (!Number.isNaN(this.ackAtNs) || this.ackDevices.length === 0) return
    if (this.ackDevices.some((d) => d.precopyRemaining > 0)) return
    this.ackAtNs = start + (devBytes / this.sender.linkRate) * 1e9 + this.settings.rtt * 1e6
  }

  /** migration_can_switchover: no switchover-ack, or the destination acked by `now`. */
  canSwitchover(): boolean {
    if (!this.settings['switchover-ack']) return true
    const now = this.lastActionNs
    if (this.ackAtNs <= now) {
      if (!Number.isNaN(this.ackWaitFrom)) {
        this.ackWaitNs += this.ackAtNs - this.ackWaitFrom
        this.ackWaitFrom = Number.NaN
      }
      return true
    }
    if (Number.isNaN(this.ackWaitFrom)) this.ackWaitFrom = now
    return false
  }

  private takeSyncDebt(): number {
    const d = this.syncDebtNs
    this.syncDebtNs = 0
    return d
  }

  private setup(now: number): void {
    this.phase = Phase.Active
    this.startNs = now
    const cap = this.settings['time-cap']
    this.capNs = cap > 0 ? now + cap * 1e6 : Infinity
    // ram_save_setup: bitmaps all ones, dirty log start, sync #1.
    // migration_thread starts the 5 s dirty-sync timer before the setup (auto-converge, 9.2+).
    // Only with QEMU's stop rule: rounds and xen are textbook passes that sync at a pass's end.
    if (this.settings['auto-converge'] && this.settings['stop-policy'] === 'qemu' && hasRule(this.settings['qemu-version'], 'periodic-dirty-sync')) {
      this.syncTimerNs = now + DIRTY_SYNC_TIMESLICE_NS
      this.syncCountAtTick = 0
    }
    this.host.setup(now)
    if (this.settings['switchover-ack']) {
      // vfio_switchover_ack_needed: the devices with precopy initial data; with none the
      // destination acks as soon as the return path opens (loadvm_process_command
      // MIG_CMD_OPEN_RETURN_PATH): one round trip after the start.
      this.ackDevices = this.host.vfio ? this.host.vfio.containers.flatMap((c) => c.devices.filter((d) => d.precopyRemaining > 0)) : []
      if (this.ackDevices.length === 0) this.ackAtNs = now + this.settings.rtt * 1e6
    }
    if (Throttle.wanted(this.settings)) {
      this.throttle = new Throttle(this.settings, this.clock, this.pageSize, now)
      this.throttle.start(now, 0)
    }
    this.doSync(false, now)
    // Sending starts once sync #1 is done (its per-page cost) and after setup-time.
    this.sendStartNs = now + this.takeSyncDebt() + this.settings['setup-time'] * 1e6
    this.sender.resetWindow(this.sendStartNs)
    this.step = Step.Loop
    this.migNext = this.sendStartNs
  }

  /** migration_update_counters: a window's end gives the bandwidth and the switchover threshold. */
  private updateCounters(now: number): void {
    const bw = this.sender.updateCounters(now)
    if (Number.isNaN(bw)) return
    this.bandwidthBps = bw
    const expected = this.settings['avail-switchover-bandwidth'] || bw
    // threshold_size = expected_bw_per_ms * downtime_limit (uint64)
    this.thresholdBytes = Math.floor((expected / 1000) * this.settings['downtime-limit'])
  }

  /** ram_save_iterate (the sender's loop), up to the next event, timer or cap. */
  private sendStep(now: number, untilEvent: number): void {
    const sender = this.sender
    this.migNext = sender.sendPages(now, Math.min(untilEvent, this.capNs, this.syncTimerNs))
    if (!Number.isNaN(sender.lastPageAt)) this.lastActionNs = sender.lastPageAt
    if (sender.turnOver) this.step = Step.Loop
  }

  // --- syncs and rows -------------------------------------------------------------------------
  private doSync(lastStage: boolean, now: number, postcopy = false): void {
    const host = this.host
    // At the postcopy switchover VFIO completes (qemu_savevm_state_complete_precopy for the
    // non-postcopiable iterables in postcopy_start): what it held back for stop-copy goes now.
    const newPages = host.sync(lastStage, now, lastStage || postcopy)
    // migration_bitmap_sync's own time: KVM_GET_DIRTY_LOG per slot and the bitmap walk, which
    // grow with guest RAM (sync-cost; the setup sync's is in setup-time), and the per-page path's
    // test, clear and TLB reset of each dirty page (sync-page-cost), sync #1 included: that one
    // finds every page dirty (ram_init_bitmaps -> migration_bitmap_sync_precopy). The guest runs
    // meanwhile; its writes land after the GET, in the next pass.
    if (this.book.rows.length > 0) this.syncDebtNs += this.settings['sync-cost'] * 1e6 * (this.layout.guestMemoryBytes / 2 ** 30)
    this.syncDebtNs += this.settings['sync-page-cost'] * 1e6 * host.lastSyncPerPageDirty
    // migration_trigger_throttle (auto-converge, dirty-limit), in the sync, once per >= 1 s period;
    // bytes_xfer_period counts everything transferred (migration_transferred_bytes), device data too.
    if (!lastStage && !postcopy && this.throttle?.onSync(now, newPages, this.sender.transferred, this.book.rows.length) && this.throttle.limiting) {
      this.slow = true
      // dirty-limit in service: a ring-full exit reaps the exiting vCPU only, the reaper pauses.
      host.kvm.dirtyLimited = true
    }
    const mb = host.mb
    // The deciding sync and the last-stage sync make one stop-copy row, also when the deciding
    // sync took time (sync-cost).
    const sameInstant = (this.lastSyncNs === now || this.step === Step.Stopping) && this.book.current !== undefined
    this.lastSyncNs = now
    if ((lastStage || postcopy) && sameInstant) {
      // The policy's decision sync and the last-stage sync are one moment: one stop-copy row.
      const row = this.book.current!
      row.phase = postcopy ? 'postcopy' : 'stop-copy'
      row.newDirtyPages += newPages
      row.dirtyPagesAtSync = mb.dirtyPages
      row.syncs++
      return
    }
    const bw = this.bandwidthBps || sustainedRate(this.settings)
    const row = emptyRow({
      iteration: this.book.rows.length,
      phase: lastStage ? 'stop-copy' : postcopy ? 'postcopy' : 'live',
      startNs: now,
      dirtyPagesAtSync: mb.dirtyPages,
      newDirtyPages: newPages,
      thresholdBytes: this.settings['stop-policy'] === 'qemu' ? this.thresholdBytes : Math.floor(this.roundsThresholdBytes),
      bandwidthBps: bw,
      expectedDowntimeMs: (mb.dirtyPages * this.pageSize * 1000) / bw,
      throttlePct: this.clock.throttlePct,
    })
    this.book.open(row, now, newPages)
  }

  // --- completion (./switchover.ts) ----------------------------------------------------------
  /**
   * The switchover is decided at `now`. The sync that decided it (migration_iteration_run's exact
   * pending) ran while the guest still ran; the VM stops when it is done, and only the last-stage
   * sync after vm_stop is downtime (qemu-semantics.md §3.8).
   */
  private doComplete(reason: StopReason, now: number): void {
    if (this.phase !== Phase.Active || this.post || this.step === Step.Stopping) return
    if (reason !== 'converged' && reason !== 'cancelled') {
      // postcopy-on-stall: postcopy instead of a forced stop-and-copy.
      const why = this.postcopyTrigger.onForcedStop(reason)
      if (why !== undefined && !this.host.transport.ramShared && this.mustPrecopyFits()) return this.startPostcopy(now, why)
    }
    const syncing = this.takeSyncDebt()
    if (syncing > 0) {
      this.step = Step.Stopping
      this.stopping = reason
      this.migNext = now + syncing
      return
    }
    this.stopAndCopy(reason, now)
  }

  /** Throttling ends at the switchover (migration_iteration_finish; the destination is not throttled). */
  private stopThrottle(now: number): void {
    // cpu_throttle_stop also stops the 5 s dirty-sync timer.
    this.syncTimerNs = Infinity
    this.throttle?.stop(now)
    this.host.kvm.dirtyLimited = false
  }

  private stopDecided(): boolean {
    return this.step === Step.Stopping
  }

  /** migration_completion_precopy at `now`: vm_stop, the last-stage sync, everything left. */
  private stopAndCopy(reason: StopReason, now: number): void {
    this.stopThrottle(now)
    this.end.complete(reason, now, this.settings)
    this.finish()
  }

  /**
   * postcopy_start needs must_precopy <= threshold_size: the data of devices that cannot be
   * postcopied (VFIO's precopy data) must fit in the downtime first (migration_iteration_run).
   */
  private mustPrecopyFits(): boolean {
    return this.host.mustPrecopyBytes() <= this.thresholdBytes && this.canSwitchover()
  }

  private cancel(now: number): void {
    this.end.cancel(now)
    this.finish()
  }

  private finish(): void {
    if (this.timerSyncs > 0) this.notes.push(`${this.timerSyncs} sync${this.timerSyncs > 1 ? 's' : ''} by the 5 s dirty-sync timer of auto-converge (cpu_throttle_dirty_sync_timer_tick, QEMU 9.2+: no sync for 5 s during a pass)`)
    if (this.settings['switchover-ack'])
      this.notes.push(
        Number.isNaN(this.ackAtNs)
          ? 'switchover-ack: the destination never acked (a VFIO device still had precopy initial data)'
          : `switchover-ack: the destination acked at ${((this.ackAtNs - this.startNs) / 1e6).toFixed(3)} ms${this.ackWaitNs > 0 ? `; the switchover waited ${(this.ackWaitNs / 1e6).toFixed(3)} ms for it` : ''}`,
      )
    this.phase = Phase.Done
    this.done = true
    this.migNext = Infinity
    this.syncTimerNs = Infinity
  }

  /** The trace is over: let the migration finish with an idle guest, or force the switchover. */
  endOfTrace(lastEventNs: number): void {
    if (this.phase === Phase.Done) return
    if (this.post) return this.endPostcopy()
    if (this.phase === Phase.Idle && Number.isNaN(this.startNs))
      throw new UserError('the trace has no mig_start event, so the migration never started', {
        file: this.opts.file,
        field: 'start-at',
        expected: 'a mig_start event, or --set start-at=<ms of trace time>',
      })
    if (this.settings['trace-end'] === 'switchover' && this.phase === Phase.Active) {
      this.runUntil(lastEventNs)
      if (this.phase === Phase.Active && !this.post) {
        const now = Math.max(lastEventNs, this.lastActionNs, this.step === Step.Sending ? this.migNext : 0)
        this.lastActionNs = now
        this.doComplete('trace-end', now)
        // The deciding sync still runs: the VM stops when it is done.
        if (this.step === Step.Stopping) this.runUntil(this.migNext)
      }
      if (this.post) this.endPostcopy()
      return
    }
    this.capAfterTraceForDevices(lastEventNs)
    this.runUntil(Infinity)
    if (this.post) this.endPostcopy()
  }

  /** Run the thread (and the host's timers) up to `until`, after the trace. */
  private runUntil(until: number): void {
    for (;;) {
      if (this.phase === Phase.Done || this.post) return
      const timer = this.host.nextTimer()
      const due = Math.min(this.migNext, this.syncTimerNs)
      if (Math.min(timer, due) > until) return
      if (timer < due) this.host.onTimer(timer)
      else this.act(Math.min(until, timer))
    }
  }

  /**
   * An idle guest converges unless a VFIO device keeps pages dirty (pinned or mapped pages read
   * dirty at every sync, a stop-copy size above the threshold): after the trace such a migration
   * would never end, so the switchover is forced after three more passes over guest RAM.
   */
  private capAfterTraceForDevices(lastEventNs: number): void {
    if (!this.host.vfio || this.phase !== Phase.Active || this.post) return
    const from = Math.max(lastEventNs, this.lastActionNs)
    const passNs = ((this.guestPages * (this.pageSize + 8)) / sustainedRate(this.settings)) * 1e9
    const cap = from + 3 * passNs
    if (cap >= this.capNs) return
    this.capNs = cap
    this.capReason = 'trace-end'
    this.capNote = `the trace ended at ${(lastEventNs / 1e6).toFixed(1)} ms with a VFIO device attached; the migration had not converged, so the switchover was forced ${((3 * passNs) / 1e6).toFixed(0)} ms later (three passes over guest RAM)`
  }

  // --- postcopy (./postcopy.ts) --------------------------------------------------------------
  /** postcopy_start at `now`, unless RAM is shared (nothing to postcopy). */
  private startPostcopy(now: number, trigger: string): void {
    if (this.phase !== Phase.Active || this.post) return
    if (this.host.transport.ramShared) {
      this.notes.push('postcopy skipped: with transport=shared RAM is already on both sides')
      return this.doComplete('converged', now)
    }
    this.stopThrottle(now)
    this.post = this.end.startPostcopy(now, trigger, this.settings, this.startNs)
    this.hostTimers = false
    this.slow = true
    this.step = Step.Loop
    this.migNext = Infinity
  }

  private endPostcopy(): void {
    if (this.phase === Phase.Done) return
    this.end.finishPostcopy(true)
    this.finish()
  }

  private finishPostcopy(): void {
    if (this.phase === Phase.Done) return
    this.end.finishPostcopy(false)
    this.finish()
  }

  figures(ctx: {lastEventNs: number; notReplayed: number}): DriverFigures {
    if (this.phase !== Phase.Done) throw new Error('bug: figures() before the migration ended')
    return precopyFigures(this, ctx)
  }
}
