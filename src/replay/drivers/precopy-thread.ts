/**
 * The migration thread of the `qemu` driver (./precopy.ts): its state, the setup, the loop turn
 * (migration_thread -> migration_iteration_run), the sends, the syncs with their rows, the 5 s
 * dirty-sync timer and the switchover-ack gate. PrecopyDriver adds the session's ReplayDriver
 * interface, the completion, the postcopy switch and the end of the trace.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {applyTraceParams} from '../config.js'
import type {ReplaySettings, SettingKey} from '../settings.js'
import type {HostModel} from '../host.js'
import {POLICIES, type PrecopyControl, type StopPolicy, type StopReason} from '../policies.js'
import {type ReplayDriver} from '../driver.js'
import {IterationBook, emptyRow} from '../iterations.js'
import {Sender, sustainedRate} from '../sender/index.js'
import type {GuestClock} from '../throttle-clock.js'
import {Throttle} from '../throttle.js'
import type {PostcopyPhase} from './postcopy.js'
import {PostcopyTrigger} from '../postcopy-trigger.js'
import {hasRule} from '../qemu-version.js'
import type {VfioDeviceState} from '../../model/vfio/container.js'
import {Switchover} from './switchover.js'

/** CPU_THROTTLE_DIRTY_SYNC_TIMESLICE_MS (migration/cpu-throttle.c, 9.2+). */
export const DIRTY_SYNC_TIMESLICE_NS = 5e9

export const enum Phase {
  Idle,
  Active,
  Done,
}
export const enum Step {
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
export abstract class PrecopyThread implements PrecopyControl {
  readonly pageSize: number
  readonly guestPages: number
  readonly layout: TraceLayout
  readonly sender: Sender
  readonly book: IterationBook
  protected readonly policy: StopPolicy
  protected phase = Phase.Idle
  protected step = Step.Loop
  protected migNext = Infinity
  startNs = Number.NaN
  sendStartNs = Number.NaN
  /** The migration thread's first loop turn after the setup is still to come (no counters update before it). */
  private firstTurn = false
  protected capNs = Infinity
  /** Why capNs forces the switchover: time-cap, or trace-end for the post-trace VFIO cap. */
  protected capReason: StopReason = 'time-cap'
  protected capNote = ''
  thresholdBytes = 0
  protected bandwidthBps = 0
  protected lastSyncNs = Number.NaN
  protected lastActionNs = 0
  /** Time owed for syncs done since the thread last sent (setting `sync-cost`, per GiB of RAM). */
  protected syncDebtNs = 0
  /** Time the thread had nothing to send yet could not switch over (device data pending). */
  idleNs = 0
  /** Why the switchover was decided while the deciding sync still runs (Step.Stopping). */
  protected stopping?: StopReason
  /**
   * postcopy_start waits for the sync that made its trigger true (postcopy-after-syncs): the
   * trigger's reason, started at migNext, once the sync's time is over.
   */
  protected postcopyPending?: string
  /** The end of the migration: switchover, cancel or postcopy, and the downtime's parts. */
  readonly end: Switchover
  readonly notes: string[] = []
  readonly ignoredParams = new Set<string>()
  throttle?: Throttle
  protected readonly postcopyTrigger: PostcopyTrigger
  /** Events go through the clock's per-vCPU queues (postcopy, dirty-limit). */
  slow = false
  /** cpu_throttle_dirty_sync_timer (auto-converge, QEMU 9.2+): its next tick, Infinity when off. */
  protected syncTimerNs = Infinity
  /** dirty_sync_count at the timer's last tick (throttle_dirty_sync_count_prev). */
  protected syncCountAtTick = 0
  /** Syncs the 5 s timer did. */
  timerSyncs = 0
  /** switchover-ack: when the destination's ack reaches the source (NaN: not yet known). */
  ackAtNs = Number.NaN
  /** switchover-ack: the VFIO devices the destination waits for (precopy initial data at setup). */
  protected ackDevices: VfioDeviceState[] = []
  /** switchover-ack: time the thread could have switched over but waited for the ack. */
  ackWaitNs = 0
  protected ackWaitFrom = Number.NaN

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

  /** A trace's mig_set / mig_start params: QEMU's live parameters change from here on. */
  protected applyParams(text: string, line: number): void {
    const next = applyTraceParams(this.settings, text, {file: this.opts.file, line: line || undefined, pinned: this.opts.pinned, notes: this.notes, ignoredParams: this.ignoredParams})
    this.settings = next
    this.throttle?.updateSettings(next)
    this.postcopyTrigger.updateSettings(next)
    // A new rate takes effect from the next page.
    this.sender.updateSettings(next, this.migNext)
  }

  protected scheduleStart(t: number): void {
    this.startNs = t
    this.migNext = t
  }

  // --- the migration thread -------------------------------------------------------------------
  protected migStep(now: number, until: number): void {
    if (this.phase === Phase.Idle) return this.setup(now)
    if (this.step === Step.Stopping) return this.stopAndCopy(this.stopping!, now)
    if (this.postcopyPending !== undefined) {
      const why = this.postcopyPending
      this.postcopyPending = undefined
      return this.startPostcopy(now, why)
    }
    if (now >= this.capNs) {
      if (this.capNote) this.notes.push(this.capNote)
      return this.doComplete(this.capReason, now)
    }
    if (this.step === Step.Sending) return this.sendStep(now, until)
    const sender = this.sender
    // migration_rate_limit -> migration_update_counters, which migration_thread's loop calls after
    // migration_iteration_run: the first turn after the setup sends before any update (setup()).
    if (this.firstTurn) this.firstTurn = false
    else this.updateCounters(now)
    if (sender.rateExceeded) {
      this.migNext = sender.windowEnd
      return
    }
    // postcopy_start is tested before complete_ready (migration_iteration_run).
    const postcopyWhy = this.post ? undefined : this.postcopyTrigger.check(this.host.syncCount, this.host.mb.dirtyPages, now, this.startNs, this.book.rows)
    if (postcopyWhy !== undefined && this.mustPrecopyFits()) return this.startPostcopy(now, postcopyWhy)
    const syncsBefore = this.host.syncCount
    this.policy.decide(this)
    // The policy may have decided the switchover (the VM stops once its sync is done).
    if (this.phase !== Phase.Active || this.stopDecided()) return
    // migration_iteration_run tests start_postcopy after qemu_savevm_state_pending, whose RAM
    // handler (ram_save_pending) syncs when little is left: a sync that makes dirty_sync_count
    // reach postcopy-after-syncs switches in the same turn, with no ram_save_iterate between, once
    // the sync is done. (A tool's query-migrate and migrate-start-postcopy are QMP commands,
    // dispatched under the BQL ram_save_pending holds across the sync, so they wait for its end;
    // the switch then comes in this turn or one ram_save_iterate later, a race between the main
    // loop and this test: the lab's 03:44 postcopy capture switched 0.2 ms after sync 3, its
    // --prealloc capture one 21 ms turn later (docs/lab.md). The model takes the first.)
    if (this.host.syncCount > syncsBefore && !this.post) {
      const why = this.postcopyTrigger.check(this.host.syncCount, this.host.mb.dirtyPages, now, this.startNs, this.book.rows)
      if (why === 'after-syncs' && this.mustPrecopyFits()) {
        const syncing = this.takeSyncDebt()
        if (syncing <= 0) return this.startPostcopy(now, why)
        this.postcopyPending = why
        this.migNext = now + syncing
        return
      }
    }
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
  protected noteInitDataSent(start: number, devBytes: number): void {
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

  protected takeSyncDebt(): number {
    const d = this.syncDebtNs
    this.syncDebtNs = 0
    return d
  }

  protected setup(now: number): void {
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
    // The first rate window opens at the migration's start, not when sending begins: QEMU 7.2's
    // migration_thread calls update_iteration_initial_status (iteration_start_time, the window's
    // start) before qemu_savevm_state_setup, so setup and sync #1 use up the window's time and,
    // once they took 100 ms or more, migration_update_counters closes it as soon as ram_save_iterate
    // has spent the budget (lab/runs/xbzrle-hot: migrate_transferred 6 712 421 bytes, time_spent
    // 545 ms, 28 ms after the setup; postcopy: 27 ms after it).
    this.sender.resetWindow(now)
    this.sender.mark(this.sendStartNs)
    this.firstTurn = true
    this.step = Step.Loop
    this.migNext = this.sendStartNs
  }

  /** migration_update_counters: a window's end gives the bandwidth and the switchover threshold. */
  protected updateCounters(now: number): void {
    const bw = this.sender.updateCounters(now)
    if (Number.isNaN(bw)) return
    this.bandwidthBps = bw
    const expected = this.settings['avail-switchover-bandwidth'] || bw
    // threshold_size = expected_bw_per_ms * downtime_limit (uint64)
    this.thresholdBytes = Math.floor((expected / 1000) * this.settings['downtime-limit'])
  }

  /** ram_save_iterate (the sender's loop), up to the next event, timer or cap. */
  protected sendStep(now: number, untilEvent: number): void {
    const sender = this.sender
    this.migNext = sender.sendPages(now, Math.min(untilEvent, this.capNs, this.syncTimerNs))
    if (!Number.isNaN(sender.lastPageAt)) this.lastActionNs = sender.lastPageAt
    if (sender.turnOver) this.step = Step.Loop
  }

  // --- syncs and rows -------------------------------------------------------------------------
  protected doSync(lastStage: boolean, now: number, postcopy = false): void {
    const host = this.host
    // At the postcopy switchover VFIO completes (qemu_savevm_state_complete_precopy for the
    // non-postcopiable iterables in postcopy_start): what it held back for stop-copy goes now.
    const newPages = host.sync(lastStage, now, lastStage || postcopy)
    // migration_bitmap_sync's own time: KVM_GET_DIRTY_LOG per slot and the bitmap walk, which
    // grow with guest RAM (sync-cost; the setup sync's is in setup-time), and the per-page path's
    // test, clear and TLB reset of each dirty page (sync-page-cost), sync #1 included: that one
    // finds every page dirty (ram_init_bitmaps -> migration_bitmap_sync_precopy). The guest runs
    // meanwhile; its writes land after the GET, in the next pass.
    const debtBefore = this.syncDebtNs
    if (this.book.rows.length > 0) this.syncDebtNs += this.settings['sync-cost'] * 1e6 * (this.layout.guestMemoryBytes / 2 ** 30)
    // Sync #1 (no row yet) pays sync-first-page-cost when it is set: on the lab's TCG host it costs
    // about half as much a page as the later syncs (docs/lab.md).
    const first = this.book.rows.length === 0 ? this.settings['sync-first-page-cost'] : undefined
    this.syncDebtNs += (first ?? this.settings['sync-page-cost']) * 1e6 * host.lastSyncPerPageDirty
    // sync-pauses-guest (TCG): ram_save_pending (and ram_init_bitmaps for sync #1) hold the BQL
    // across migration_bitmap_sync, and a TCG vCPU takes the BQL at its next exit (interrupt,
    // I/O), so the guest stands still for the sync's time and dirties nothing the next sync must
    // handle. With the VM already stopped (last stage, postcopy switchover) there is nothing to pause.
    // A writer paced by wall-clock time (workload-pacing=wall: the lab's dirtier, whose recording
    // carries real times) does not fall behind: its writes due during the sync happen at its end,
    // later ones on time (GuestClock.hold), so a recording's own pauses at QEMU's sync times are not
    // added to. After the deciding sync the VM stops at that end (migration_completion,
    // postcopy_start), so what the guest held goes to the destination, not into the last sync.
    const syncNs = this.syncDebtNs - debtBefore
    if (this.settings['sync-pauses-guest'] && !lastStage && !postcopy && syncNs > 0) {
      if (this.settings['workload-pacing'] === 'wall') this.clock.hold(now, now + syncNs)
      else this.clock.pause(now, now + syncNs)
    }
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

  /**
   * cpu_throttle_dirty_sync_timer_tick: every 5 s, a sync (migration_bitmap_sync_precopy, which
   * runs the throttle trigger) when none happened since the last tick, never during the first pass
   * (dirty_sync_count <= 1). It runs in the main loop while the migration thread sends.
   */
  protected syncTimerTick(now: number): void {
    const count = this.host.syncCount
    if (count > 1 && count === this.syncCountAtTick && this.step !== Step.Stopping) {
      this.timerSyncs++
      this.doSync(false, now)
    }
    this.syncCountAtTick = this.host.syncCount
    this.syncTimerNs = now + DIRTY_SYNC_TIMESLICE_NS
  }

  protected stopDecided(): boolean {
    return this.step === Step.Stopping
  }

  // --- what the driver decides (./precopy.ts) ----------------------------------------------
  protected abstract doComplete(reason: StopReason, now: number): void
  protected abstract stopAndCopy(reason: StopReason, now: number): void
  protected abstract startPostcopy(now: number, trigger: string): void
  protected abstract mustPrecopyFits(): boolean
  /** The postcopy phase after the switch, once there is one. */
  abstract post: PostcopyPhase | undefined
}
