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
import {UserError} from '../../util/errors.js'
import {type StopReason} from '../policies.js'
import {APPLY, Taken, type DriverFigures, type ReplayDriver} from '../driver.js'
import {sustainedRate} from '../sender/index.js'
import type {PostcopyPhase} from './postcopy.js'
import {precopyFigures} from './precopy-figures.js'
import {PrecopyThread, Phase, Step} from './precopy-thread.js'
export {DIRTY_SYNC_TIMESLICE_NS, type PrecopyOptions} from './precopy-thread.js'

export class PrecopyDriver extends PrecopyThread implements ReplayDriver {
  readonly name = 'qemu' as const
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


  access(kind: number, vcpu: number, p0: number, p1: number, now: number): number {
    return this.post ? this.post.access(kind, vcpu, p0, p1, now) : APPLY
  }

  /** control's default case takes dma_write and vhost_write until postcopy (whose control faults them). */
  get deviceWritesToModel(): boolean {
    return this.post === undefined
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

  // --- completion (./switchover.ts) ----------------------------------------------------------
  /**
   * The switchover is decided at `now`. The sync that decided it (migration_iteration_run's exact
   * pending) ran while the guest still ran; the VM stops when it is done, and only the last-stage
   * sync after vm_stop is downtime (qemu-semantics.md §3.8).
   */
  protected doComplete(reason: StopReason, now: number): void {
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
  protected stopThrottle(now: number): void {
    // cpu_throttle_stop also stops the 5 s dirty-sync timer.
    this.syncTimerNs = Infinity
    this.throttle?.stop(now)
    this.host.kvm.dirtyLimited = false
  }


  /** migration_completion_precopy at `now`: vm_stop, the last-stage sync, everything left. */
  protected stopAndCopy(reason: StopReason, now: number): void {
    this.stopThrottle(now)
    this.end.complete(reason, now, this.settings)
    this.finish()
  }

  /**
   * postcopy_start needs must_precopy <= threshold_size: the data of devices that cannot be
   * postcopied (VFIO's precopy data) must fit in the downtime first (migration_iteration_run).
   */
  protected mustPrecopyFits(): boolean {
    return this.host.mustPrecopyBytes() <= this.thresholdBytes && this.canSwitchover()
  }

  protected cancel(now: number): void {
    this.end.cancel(now)
    this.finish()
  }

  protected finish(): void {
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
  protected runUntil(until: number): void {
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
  protected capAfterTraceForDevices(lastEventNs: number): void {
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
  protected startPostcopy(now: number, trigger: string): void {
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

  protected endPostcopy(): void {
    if (this.phase === Phase.Done) return
    this.end.finishPostcopy(true)
    this.finish()
  }

  protected finishPostcopy(): void {
    if (this.phase === Phase.Done) return
    this.end.finishPostcopy(false)
    this.finish()
  }

  figures(ctx: {lastEventNs: number; notReplayed: number}): DriverFigures {
    if (this.phase !== Phase.Done) throw new Error('bug: figures() before the migration ended')
    return precopyFigures(this, ctx)
  }
}
