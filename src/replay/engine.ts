/**
 * The precopy engine, `qemu` driver: a discrete-event loop in which guest events are applied in
 * time order, interleaved with QEMU's migration thread sending pages at the link's rate. The model
 * decides when to sync, clear and send (the what-if mode).
 *
 * Time is trace time in ns. The migration thread is a small state machine with the time of its next
 * action (`migNext`); before each event at time t every migration action due at or before t runs
 * first (a send at the same instant as a write reads the old content). Writes between two actions
 * are applied in a tight loop with no allocation.
 *
 * The thread mirrors migration_thread(): each loop turn runs migration_update_counters (a new
 * 100 ms window: bandwidth, threshold_size, expected_downtime), sleeps to the end of the window if
 * the rate limit is exceeded, else asks the stop policy (migration_iteration_run) and then sends
 * (ram_save_iterate) until the budget is spent, 50 ms have passed (checked every 64 pages) or RAM
 * is clean. Completion (migration_completion_precopy) stops the VM, does the last-stage sync and
 * sends what is left at the unlimited rate, then the device state.
 */
import type {EventBatch} from '../trace/events.js'
import {K} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {UserError} from '../util/errors.js'
import {addIterationCounts, C} from '../ledger/ledger.js'
import {parseTraceParams, sendRate, switchoverRate, type ReplaySettings, type SettingKey} from './config.js'
import {ReplayModel} from './model.js'
import {POLICIES, type PrecopyControl, type StopPolicy, type StopReason} from './policies.js'
import type {IterationRow, ReplayResult, StallInfo, Verdict} from './result.js'
import {countsByKindName} from './result.js'
import {GuestClock, type GuestSink} from './throttle-clock.js'
import {Throttle} from './throttle.js'
import {PostcopyPhase} from './postcopy.js'
import {PostcopyTrigger} from './postcopy-trigger.js'
import {transportResult} from './transport/result.js'

/** BUFFER_DELAY: the rate-limit and counters window. */
export const WINDOW_NS = 100e6
/** MAX_WAIT in ram_save_iterate. */
export const MAX_WAIT_NS = 50e6

const enum Phase {
  Idle,
  Active,
  Done,
}
const enum Step {
  Loop,
  Sending,
}

export interface EngineOptions {
  /** Keys the user set (config file / --set): trace mig_set/mig_start params do not override them. */
  pinned?: ReadonlySet<SettingKey>
  /** True when the trace is known to hold no mig_start: the migration then starts at 0. */
  noStartEvent?: boolean
  file?: string
}

export class PrecopyEngine implements PrecopyControl, GuestSink {
  readonly model: ReplayModel
  readonly pageSize: number
  readonly guestPages: number
  private readonly policy: StopPolicy
  private phase = Phase.Idle
  private step = Step.Loop
  private migNext = Infinity
  private nextDue = Infinity
  private startNs = Number.NaN
  private sendStartNs = Number.NaN
  private capNs = Infinity
  /** Why capNs forces the switchover: time-cap, or trace-end for the post-trace VFIO cap. */
  private capReason: StopReason = 'time-cap'
  private capNote = ''
  // sender clock: segT0 + segBytes / rate, recomputed to avoid drift
  private rate: number
  private segT0 = 0
  private segBytes = 0
  // 100 ms window
  private winStart = 0
  private winBytes = 0
  private iterateStart = 0
  private iterateCalls = 0
  thresholdBytes = 0
  private bandwidthBps = 0
  private lastSyncNs = Number.NaN
  private lastActionNs = 0
  // completion
  private stopReason: StopReason | undefined
  private stopNs = Number.NaN
  private endNs = Number.NaN
  private ramEndNs = Number.NaN
  private vfioEndNs = Number.NaN
  private vfioStateBytes = 0
  private finalPages = 0
  private finalBytes = 0
  // rows
  private readonly rows: IterationRow[] = []
  private current?: IterationRow
  // events
  private lastEventNs = 0
  private replayed = 0
  private writes = 0
  private unmapped = 0
  private notReplayed = 0
  private readonly ignored = new Map<number, number>()
  private readonly notes: string[] = []
  private readonly ignoredParams = new Set<string>()
  // postcopy, throttling (docs/postcopy-snapshot.md)
  /** Guest time -> wall time: throttle dilation, per-vCPU fault delays. */
  readonly clock: GuestClock
  private throttle?: Throttle
  private readonly postcopyTrigger: PostcopyTrigger
  private post?: PostcopyPhase
  /** Events go through the clock's per-vCPU queues (postcopy, dirty-limit). */
  private slow = false

  constructor(
    readonly header: TraceHeader,
    readonly layout: TraceLayout,
    public settings: ReplaySettings,
    readonly opts: EngineOptions = {},
  ) {
    this.model = new ReplayModel(header, layout, settings)
    this.pageSize = layout.pageSize
    this.guestPages = layout.guestPages
    this.policy = POLICIES[settings['stop-policy']]
    this.rate = sendRate(settings)
    this.clock = new GuestClock(header.vcpus)
    this.postcopyTrigger = new PostcopyTrigger(settings)
    const startAt = settings['start-at']
    if (startAt !== undefined) this.scheduleStart(startAt * 1e6)
    else if (opts.noStartEvent) this.scheduleStart(0)
  }

  // --- PrecopyControl -------------------------------------------------------------------------
  get dirtyPages(): number {
    return this.model.mb.dirtyPages
  }
  get syncCount(): number {
    return this.model.syncCount
  }
  get pagesSent(): number {
    return this.model.ledger.total[C.pages]!
  }
  get roundsThresholdBytes(): number {
    const bw = this.settings['avail-switchover-bandwidth'] || sendRate(this.settings)
    return (bw * this.settings['downtime-limit']) / 1000
  }
  sync(): void {
    this.doSync(false, this.lastActionNs)
  }
  /** RAM dirty bytes plus device data (VFIO estimate, or exact with stop_copy_size). */
  pendingBytes(exact: boolean): number {
    return this.model.mb.dirtyPages * this.pageSize + this.model.devices.pendingBytes(exact)
  }
  complete(reason: StopReason): void {
    this.doComplete(reason, this.lastActionNs)
  }

  get finished(): boolean {
    return this.phase === Phase.Done
  }

  // --- event loop -----------------------------------------------------------------------------
  /** Apply one batch; returns true once the migration is over (the rest of the trace is not needed). */
  feed(b: EventBatch): boolean {
    const n = b.length
    const t = b.t
    const kind = b.kind
    const gpa = b.gpa
    const len = b.len
    const vcpu = b.vcpu
    const layout = this.layout
    const ps = this.pageSize
    const memory = this.model.memory
    const kvm = this.model.kvm
    // Unplugged virtio-mem pages: a guest write there is counted and may be refused.
    const guard = this.model.devices.writeGuard
    const KW = K.write
    if (this.slow) return this.feedSlow(b, 0)
    const clock = this.clock
    for (let i = 0; i < n; i++) {
      // Guest time -> wall time (auto-converge dilates the timeline; identity otherwise).
      let ti = clock.w0 + (t[i]! - clock.g0) * clock.k
      while (ti >= this.nextDue) {
        this.advance(ti)
        if (this.phase === Phase.Done) {
          this.notReplayed += n - i
          this.stoppedAt = i
          return true
        }
        if (this.slow) return this.feedSlow(b, i)
        const t2 = clock.w0 + (t[i]! - clock.g0) * clock.k
        if (t2 <= ti) break
        ti = t2
      }
      this.lastEventNs = ti
      this.replayed++
      if (kind[i] === KW) {
        const g = gpa[i]!
        const p0 = layout.gpaToPage(g)
        if (p0 < 0) {
          this.unmapped++
          continue
        }
        this.writes++
        const l = len[i]!
        const p1 = l > 0 ? p0 + Math.floor(((g % ps) + l - 1) / ps) + 1 : p0 + 1
        const v = vcpu[i]!
        for (let p = p0; p < p1; p++) {
          if (guard !== undefined && (guard[p >>> 5]! & (1 << (p & 31))) !== 0 && !this.model.devices.guestWrite(p)) continue
          memory.write(p)
          kvm.write(p, v)
        }
      } else this.otherEvent(b, i, ti)
    }
    return false
  }

  private otherEvent(b: EventBatch, i: number, ti: number): void {
    const k = b.kind[i]!
    switch (k) {
      case K.read:
        return
      case K.mig_start: {
        if (this.settings['start-at'] !== undefined || this.phase !== Phase.Idle || !Number.isNaN(this.startNs)) {
          this.countIgnored(k)
          return
        }
        const params = b.params.get(i)
        if (params) this.applyParams(params, b.line[i]!)
        this.scheduleStart(ti)
        return
      }
      case K.mig_set: {
        const params = b.params.get(i)
        if (params) this.applyParams(params, b.line[i]!)
        return
      }
      case K.mig_postcopy:
        // migrate-start-postcopy: the switch happens at the migration thread's next turn.
        if (this.phase === Phase.Done) this.countIgnored(k)
        else this.postcopyTrigger.requested = true
        return
      case K.mig_cancel:
        if (this.phase === Phase.Active) this.cancel(ti)
        else this.countIgnored(k)
        return
      default: {
        const c = this.model.byKind[k]
        if (c?.handleEvent) c.handleEvent(b, i, ti)
        else this.countIgnored(k)
      }
    }
  }

  private countIgnored(k: number): void {
    this.ignored.set(k, (this.ignored.get(k) ?? 0) + 1)
  }

  private applyParams(text: string, line: number): void {
    const {values, ignored} = parseTraceParams(text, {file: this.opts.file, line: line || undefined})
    for (const key of ignored) this.ignoredParams.add(key)
    const pinned = this.opts.pinned
    const next = {...this.settings}
    for (const [k, v] of Object.entries(values) as [SettingKey, never][]) {
      if (pinned?.has(k)) continue
      // Model-shape settings cannot change once the model exists; only QEMU's live parameters can.
      if (['dirty-log', 'ring-size', 'pml', 'x-clear-bitmap-shift', 'lazy-clear', 'clear-policy', 'zero-page-detection', 'stop-policy', 'mode', 'transport'].includes(k)) {
        if (next[k] !== v) this.notes.push(`trace parameter ${k}=${String(v)} ignored: it fixes the model's shape; use --set to change it`)
        continue
      }
      next[k] = v
    }
    this.settings = next
    this.throttle?.updateSettings(next)
    this.postcopyTrigger.updateSettings(next)
    this.rate = sendRate(next)
    if (this.phase === Phase.Active && this.step === Step.Sending) {
      // A new rate takes effect from the next page.
      this.segT0 = this.migNext
      this.segBytes = 0
    }
  }

  private scheduleStart(t: number): void {
    this.startNs = t
    this.migNext = t
    this.refreshDue()
  }

  private refreshDue(): void {
    this.nextDue = Math.min(this.migNext, this.model.kvm.nextTimer())
  }

  /** Run every migration action and timer due at or before `until`. */
  advance(until: number): void {
    this.untilNs = until
    while (this.nextDue <= until && this.phase !== Phase.Done && this.post === undefined) {
      const timer = this.model.kvm.nextTimer()
      if (timer < this.migNext) {
        this.model.kvm.onTimer(timer)
      } else {
        this.lastActionNs = this.migNext
        this.migStep(this.migNext)
      }
      this.refreshDue()
    }
  }

  private migStep(now: number): void {
    if (this.phase === Phase.Idle) return this.setup(now)
    if (now >= this.capNs) {
      if (this.capNote) this.notes.push(this.capNote)
      return this.doComplete(this.capReason, now)
    }
    if (this.step === Step.Sending) return this.sendStep(now)
    // migration_rate_limit -> migration_update_counters
    this.updateCounters(now)
    if (this.rateExceeded()) {
      this.migNext = this.winStart + WINDOW_NS
      return
    }
    // postcopy_start is tested before complete_ready (migration_iteration_run).
    const postcopyWhy = this.post ? undefined : this.postcopyTrigger.check(this.model.syncCount, this.model.mb.dirtyPages, now, this.startNs, this.rows)
    if (postcopyWhy !== undefined) return this.startPostcopy(now, postcopyWhy)
    this.policy.decide(this)
    if (this.phase !== Phase.Active) return
    // qemu_savevm_state_iterate: each VFIO device hands over a chunk of precopy data.
    const devBytes = this.model.devices.iterate()
    if (devBytes === 0 && this.model.mb.dirtyPages === 0) {
      // Nothing to send, yet device data keeps the pending size up (VFIO stop-copy size): QEMU
      // spins on exact queries; the model lets the rest of the 100 ms window pass per empty turn.
      this.migNext = Math.max(now + 1, this.winStart + WINDOW_NS)
      return
    }
    this.winBytes += devBytes
    this.step = Step.Sending
    // A sync the policy just did takes the migration thread `sync-cost` before it sends again;
    // guest writes land meanwhile, after the GET: the window the 2019 CLEAR race is about.
    const start = now + this.takeSyncDebt()
    this.iterateStart = start
    this.iterateCalls = 0
    this.segT0 = start
    this.segBytes = devBytes
    this.migNext = start + (devBytes * 1e9) / this.rate
  }

  /** Time owed for syncs done since the thread last sent (setting `sync-cost`, per GiB of RAM). */
  private syncDebtNs = 0
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
    this.model.setup(now)
    if (Throttle.wanted(this.settings)) {
      this.throttle = new Throttle(this.settings, this.clock, this.pageSize, now)
      this.throttle.start(now, 0)
    }
    this.doSync(false, now)
    this.sendStartNs = now + this.settings['setup-time'] * 1e6
    this.winStart = this.sendStartNs
    this.winBytes = 0
    this.step = Step.Loop
    this.migNext = this.sendStartNs
  }

  private rateExceeded(): boolean {
    const max = this.settings['max-bandwidth']
    return max > 0 && this.winBytes > (max * WINDOW_NS) / 1e9
  }

  private updateCounters(now: number): void {
    const spent = now - this.winStart
    if (spent < WINDOW_NS) return
    const bw = (this.winBytes * 1e9) / spent
    this.bandwidthBps = bw
    const expected = this.settings['avail-switchover-bandwidth'] || bw
    // threshold_size = expected_bw_per_ms * downtime_limit (uint64)
    this.thresholdBytes = Math.floor((expected / 1000) * this.settings['downtime-limit'])
    this.winStart = now
    this.winBytes = 0
  }

  /** The time advance() runs to: the sender keeps sending in one loop while it stays below. */
  private untilNs = 0

  private sendStep(now: number): void {
    const model = this.model
    const mb = model.mb
    const until = Math.min(this.untilNs, this.model.kvm.nextTimer(), this.capNs)
    const maxBudget = this.settings['max-bandwidth'] > 0 ? (this.settings['max-bandwidth'] * WINDOW_NS) / 1e9 : Infinity
    const perByte = 1e9 / this.rate
    const remapNs = model.transport.remapNs
    const zeroNs = this.settings['zero-page-cost'] * 1e6
    // Send pages back to back while no guest event, timer or cap falls before the next one
    // (ram_save_iterate's loop; the checks are those of each ram_find_and_save_block call).
    for (;;) {
      const p = mb.findNext()
      if (p < 0) {
        // ram_save_iterate: pages == 0, RAM clean.
        this.step = Step.Loop
        this.migNext = now
        return
      }
      const bytes = model.sendPage(p, false)
      this.winBytes += bytes
      this.segBytes += bytes
      // transport=local-remap: the page is remapped, which costs page-table time (as bytes of link time).
      if (remapNs > 0 && bytes > 0 && model.memory.nonzero.get(p)) this.segBytes += model.transport.handoverNs(p, 1) / perByte
      // A zero page costs the sender time beyond its 9 bytes (save_zero_page's buffer_is_zero and
      // the record's way through the stream), counted as link time so MAX_WAIT sees it too.
      else if (zeroNs > 0 && bytes > 0 && !model.memory.nonzero.get(p)) this.segBytes += zeroNs / perByte
      const next = this.segT0 + this.segBytes * perByte
      this.migNext = next
      this.lastActionNs = now
      if (this.winBytes > maxBudget) {
        this.step = Step.Loop
        return
      }
      if ((++this.iterateCalls & 63) === 0 && next - this.iterateStart > MAX_WAIT_NS) {
        this.step = Step.Loop
        return
      }
      if (next > until) return
      now = next
    }
  }

  // --- syncs and rows -------------------------------------------------------------------------
  private doSync(lastStage: boolean, now: number, postcopy = false): void {
    const newPages = this.model.sync(lastStage, now)
    // migration_bitmap_sync's own time: KVM_GET_DIRTY_LOG per slot and the bitmap walk, which
    // grow with guest RAM. The setup sync is covered by setup-time.
    if (this.rows.length > 0) this.syncDebtNs += this.settings['sync-cost'] * 1e6 * (this.layout.guestMemoryBytes / 2 ** 30)
    // migration_trigger_throttle (auto-converge, dirty-limit), in the sync, once per >= 1 s period.
    if (!lastStage && !postcopy && this.throttle?.onSync(now, newPages, this.model.ledger.total[C.bytes]!, this.rows.length) && this.throttle.limiting) this.slow = true
    const mb = this.model.mb
    const sameInstant = this.lastSyncNs === now && this.current !== undefined
    this.lastSyncNs = now
    if ((lastStage || postcopy) && sameInstant) {
      // The policy's decision sync and the last-stage sync are one moment: one stop-copy row.
      const row = this.current!
      row.phase = postcopy ? 'postcopy' : 'stop-copy'
      row.newDirtyPages += newPages
      row.dirtyPagesAtSync = mb.dirtyPages
      row.syncs++
      return
    }
    const prev = this.current
    if (prev) {
      const dur = (now - prev.startNs) / 1e9
      prev.dirtyRatePps = dur > 0 ? newPages / dur : 0
    }
    this.closeRow(now)
    const bw = this.bandwidthBps || sendRate(this.settings)
    const row: IterationRow = {
      iteration: this.rows.length,
      phase: lastStage ? 'stop-copy' : postcopy ? 'postcopy' : 'live',
      startNs: now,
      endNs: now,
      dirtyPagesAtSync: mb.dirtyPages,
      newDirtyPages: newPages,
      syncs: 1,
      thresholdBytes: this.settings['stop-policy'] === 'qemu' ? this.thresholdBytes : Math.floor(this.roundsThresholdBytes),
      bandwidthBps: bw,
      expectedDowntimeMs: (mb.dirtyPages * this.pageSize * 1000) / bw,
      dirtyRatePps: 0,
      pagesSent: 0,
      bytesSent: 0,
      first: 0,
      redirtied: 0,
      redundant: 0,
      zero: 0,
      redundantByCause: {},
      throttlePct: this.clock.throttlePct,
    }
    this.rows.push(row)
    this.current = row
  }

  private closeRow(now: number): void {
    const row = this.current
    if (!row) return
    const c = this.model.ledger.beginIteration()
    row.endNs = now
    addIterationCounts(row, c)
    this.current = undefined
  }

  // --- completion -----------------------------------------------------------------------------
  private doComplete(reason: StopReason, now: number): void {
    if (this.phase !== Phase.Active || this.post) return
    if (reason !== 'converged' && reason !== 'cancelled') {
      // postcopy-on-stall: postcopy instead of a forced stop-and-copy.
      const why = this.postcopyTrigger.onForcedStop(reason)
      if (why !== undefined && !this.model.transport.ramShared) return this.startPostcopy(now, why)
    }
    this.throttle?.stop(now)
    this.stopReason = reason
    // migration_completion_precopy: vm stop starts the downtime clock.
    this.stopNs = now
    this.doSync(true, now)
    // Switchover: rate limit lifted; ram_save_complete sends everything left, no lazy clear.
    const model = this.model
    const rate = switchoverRate(this.settings)
    let bytes = 0
    let pages = 0
    let remapNs = 0
    for (let p = model.mb.findNext(); p >= 0; p = model.mb.findNext()) {
      const b = model.sendPage(p, true)
      bytes += b
      pages++
      if (model.transport.remapNs > 0 && b > 0 && model.memory.nonzero.get(p)) remapNs += model.transport.handoverNs(p, 1)
      else if (b > 0 && !model.memory.nonzero.get(p)) remapNs += this.settings['zero-page-cost'] * 1e6
    }
    this.finalPages = pages
    this.finalBytes = bytes
    // The last-stage sync's time is part of the downtime.
    this.ramEndNs = now + this.takeSyncDebt() + (bytes * 1e9) / rate + remapNs
    // vfio_save_complete_precopy: VFIO device state after RAM, then the non-iterable state.
    this.vfioStateBytes = this.model.devices.stopCopy()
    this.vfioEndNs = this.ramEndNs + (this.vfioStateBytes * 1e9) / rate
    this.endNs = this.vfioEndNs + (this.settings['device-state-bytes'] * 1e9) / rate
    this.model.devices.migrationEnded(this.endNs)
    this.closeRow(this.endNs)
    this.phase = Phase.Done
    this.migNext = Infinity
  }

  private cancel(now: number): void {
    this.stopReason = 'cancelled'
    this.stopNs = now
    this.ramEndNs = now
    this.vfioEndNs = now
    this.model.devices.migrationEnded(now)
    this.endNs = now
    this.closeRow(now)
    this.phase = Phase.Done
    this.migNext = Infinity
  }

  /** The trace is over: let the migration finish with an idle guest, or force the switchover. */
  endOfTrace(): void {
    if (this.phase === Phase.Done) return
    // Accesses still waiting behind a delayed vCPU run now (postcopy faults, dirty-limit sleeps).
    if (this.clock.queued > 0 && this.clock.drain(Infinity, this)) return
    if (this.post) return this.endPostcopy()
    if (this.phase === Phase.Idle && Number.isNaN(this.startNs))
      throw new UserError('the trace has no mig_start event, so the migration never started', {
        file: this.opts.file,
        field: 'start-at',
        expected: 'a mig_start event, or --set start-at=<ms of trace time>',
      })
    if (this.settings['trace-end'] === 'switchover' && this.phase === Phase.Active) {
      this.advance(this.lastEventNs)
      if (this.phase === Phase.Active) {
        const now = Math.max(this.lastEventNs, this.lastActionNs, this.step === Step.Sending ? this.migNext : 0)
        this.lastActionNs = now
        this.doComplete('trace-end', now)
      }
      if (this.post) this.endPostcopy()
      return
    }
    this.capAfterTraceForDevices()
    this.advance(Infinity)
    if (this.post) this.endPostcopy()
  }

  /**
   * An idle guest converges unless a VFIO device keeps pages dirty (pinned or mapped pages read
   * dirty at every sync, a stop-copy size above the threshold): after the trace such a migration
   * would never end, so the switchover is forced after three more passes over guest RAM.
   */
  private capAfterTraceForDevices(): void {
    if (!this.model.devices.vfio || this.phase !== Phase.Active || this.post) return
    const from = Math.max(this.lastEventNs, this.lastActionNs)
    const passNs = ((this.guestPages * (this.pageSize + 8)) / sendRate(this.settings)) * 1e9
    const cap = from + 3 * passNs
    if (cap >= this.capNs) return
    this.capNs = cap
    this.capReason = 'trace-end'
    this.capNote = (
      `the trace ended at ${(this.lastEventNs / 1e6).toFixed(1)} ms with a VFIO device attached; the migration had not converged, so the switchover was forced ${(3 * passNs / 1e6).toFixed(0)} ms later (three passes over guest RAM)`
    )
  }

  result(): ReplayResult {
    if (this.phase !== Phase.Done) throw new Error('bug: result() before the migration ended')
    const ledger = this.model.ledger
    const totals = ledger.totals()
    const s = this.settings
    const rate = switchoverRate(s)
    const reason = this.stopReason!
    const traceEndedFirst = this.stopNs > this.lastEventNs && this.notReplayed === 0
    let verdict: Verdict
    if (reason === 'cancelled') verdict = 'cancelled'
    else if (reason === 'converged') verdict = traceEndedFirst ? 'inconclusive' : 'converged'
    else if (reason === 'postcopy') verdict = 'postcopy'
    else verdict = 'not-converged'
    const liveRows = this.rows.filter((r) => r.phase === 'live')
    const ms = (ns: number): number => ns / 1e6
    const notes = [...this.notes]
    if (traceEndedFirst && reason !== 'cancelled')
      notes.push(
        s['trace-end'] === 'idle'
          ? `the trace ended at ${ms(this.lastEventNs).toFixed(1)} ms, before the migration; the guest was assumed idle afterwards`
          : `the trace ended at ${ms(this.lastEventNs).toFixed(1)} ms, before the migration; the switchover was forced there`,
      )
    if (this.ignoredParams.size > 0) notes.push(`trace parameters not modelled: ${[...this.ignoredParams].join(', ')}`)
    const ignored = countsByKindName(this.ignored)
    const unmodelled = Object.keys(ignored).filter((k) => /^(vmem_|vfio_)/.test(k))
    if (unmodelled.length > 0) notes.push(`events not modelled by this replay: ${unmodelled.join(', ')}`)
    return this.withModes({
      driver: 'qemu',
      settings: s,
      verdict,
      stopReason: reason,
      startNs: this.startNs,
      setupEndNs: Number.isNaN(this.sendStartNs) ? this.startNs : this.sendStartNs,
      stopNs: this.stopNs,
      endNs: this.endNs,
      traceEndNs: this.lastEventNs,
      traceEndedFirst,
      totalTimeMs: ms(this.endNs - this.startNs),
      setupTimeMs: ms((Number.isNaN(this.sendStartNs) ? this.startNs : this.sendStartNs) - this.startNs),
      downtimeMs: reason === 'cancelled' ? 0 : ms(this.endNs - this.stopNs),
      downtime: {
        ramMs: ms(this.ramEndNs - this.stopNs),
        deviceStateMs: ms(this.endNs - this.vfioEndNs),
        vfioStateMs: ms(this.vfioEndNs - this.ramEndNs),
        vfioStateBytes: this.vfioStateBytes,
        ramPages: this.finalPages,
        ramBytes: this.finalBytes,
        deviceStateBytes: reason === 'cancelled' ? 0 : s['device-state-bytes'],
      },
      iterations: liveRows.length,
      dirtySyncCount: this.model.syncCount,
      totals,
      lostWrites: reason === 'cancelled' ? 0 : this.model.lostWrites(),
      sendHistogram: ledger.sendCountHistogram(),
      guest: {pages: this.guestPages, pageSize: this.pageSize, bytes: this.guestPages * this.pageSize},
      rows: this.rows,
      components: this.model.componentData(),
      events: {replayed: this.replayed, writes: this.writes, notReplayed: this.notReplayed, ignored, unmapped: this.unmapped},
      lazyClears: this.model.lazyClears,
      stall: reason === 'converged' || reason === 'cancelled' ? undefined : stallInfo(liveRows, this.pageSize, rate, s['downtime-limit']),
      notes,
    })
  }

  // --- postcopy, throttling, transport (src/replay/postcopy*.ts, throttle*.ts, transport/) -----

  /** postcopy_start at `now`: the plain switchover sync, then the phase on the destination. */
  private startPostcopy(now: number, trigger: string): void {
    if (this.phase !== Phase.Active || this.post) return
    if (this.model.transport.ramShared) {
      this.notes.push('postcopy skipped: with transport=shared RAM is already on both sides')
      return this.doComplete('converged', now)
    }
    this.throttle?.stop(now)
    this.stopReason = 'postcopy'
    this.stopNs = now
    // ram_postcopy_send_discard_bitmap: migration_bitmap_sync(rs, false), not the last stage.
    this.doSync(false, now, true)
    // That sync re-marks pages the guest wrote while unplugged, and nothing clears discarded
    // ranges again before the discard bitmap goes out (they are cleared only at setup and on
    // resume): the "final-sync hole". Closing it clears them as ramblock_dirty_bitmap_clear_discarded_pages.
    if (!this.settings['virtio-mem-postcopy-hole']) this.model.devices.clearDiscardedAtSwitchover()
    const precopyIterations = this.rows.filter((r) => r.phase === 'live').length
    // Non-postcopiable iterables complete first (VFIO stop-copy) and go in the package.
    const vfioBytes = this.model.devices.stopCopy()
    this.vfioStateBytes = vfioBytes
    this.post = new PostcopyPhase(
      {model: this.model, layout: this.layout, settings: this.settings, clock: this.clock, vcpus: this.header.vcpus, startNs: this.startNs, trigger, precopyIterations, extraPackageBytes: vfioBytes},
      now,
    )
    this.slow = true
    this.step = Step.Loop
    this.migNext = Infinity
    this.refreshDue()
  }

  private endPostcopy(): void {
    if (this.phase === Phase.Done) return
    this.post!.endOfTrace()
    this.finishPostcopy()
  }

  private finishPostcopy(): void {
    if (this.phase === Phase.Done) return
    const post = this.post!
    this.endNs = post.endNs
    this.model.devices.migrationEnded(this.endNs)
    this.closeRow(this.endNs)
    this.phase = Phase.Done
    this.migNext = Infinity
  }

  /** The clock's slow path; counts what was left unreplayed when the run ended. */
  private feedSlow(b: EventBatch, from: number): boolean {
    const stop = this.clock.feed(b, from, this)
    if (stop < 0) return false
    this.notReplayed += b.length - stop
    this.stoppedAt = stop
    return true
  }

  /** Index in the last fed batch of the first event not replayed when the migration ended. */
  stoppedAt = 0

  /** Whether events after the migration still matter: virtio-mem requests keep being answered. */
  get wantsEventsAfterMigration(): boolean {
    return this.model.devices.virtioMem !== undefined
  }

  /**
   * The guest after the migration (running on the destination): its virtio-mem requests are no
   * longer BUSY (virtio_mem_is_busy() is false once no migration runs). Only those requests are
   * replayed, so the request log and the plugged size over time cover the whole trace. A request
   * timed inside the downtime is made once the guest runs again, at the migration's end. Call it
   * after result(): it changes device state, not the migration's figures.
   */
  feedAfterMigration(b: EventBatch, from: number): void {
    const vm = this.model.devices.virtioMem
    if (!vm) return
    const clock = this.clock
    for (let i = from; i < b.length; i++) {
      const k = b.kind[i]!
      if (k === K.vmem_plug || k === K.vmem_unplug || k === K.vmem_unplug_all || k === K.vmem_state || k === K.vmem_resize)
        vm.handleEvent(b, i, Math.max(this.endNs, clock.w0 + (b.t[i]! - clock.g0) * clock.k))
    }
  }

  /** The virtio-mem data again, after feedAfterMigration. */
  virtioMemData(): Record<string, unknown> | undefined {
    return this.model.devices.virtioMem?.data() as Record<string, unknown> | undefined
  }

  // GuestSink: the clock's view of the engine
  advanceTo(now: number): boolean {
    if (this.post) {
      if (this.finished) return true
      if (this.post.advanceTo(now)) this.finishPostcopy()
      return this.finished
    }
    if (now >= this.nextDue) this.advance(now)
    return this.finished
  }

  access(kind: number, vcpu: number, gpa: number, len: number, now: number): number {
    if (this.post) {
      const wait = this.post.access(kind, vcpu, gpa, len, now)
      if (wait === 0) {
        this.replayed++
        if (now > this.lastEventNs) this.lastEventNs = now
        if (kind === K.write) this.writes++
      }
      return wait
    }
    this.lastEventNs = now
    this.replayed++
    if (kind !== K.write) return 0
    const p0 = this.layout.gpaToPage(gpa)
    if (p0 < 0) {
      this.unmapped++
      return 0
    }
    this.writes++
    const ps = this.pageSize
    const p1 = len > 0 ? p0 + Math.floor(((gpa % ps) + len - 1) / ps) + 1 : p0 + 1
    const memory = this.model.memory
    const kvm = this.model.kvm
    const guard = this.model.devices.writeGuard
    const limit = this.throttle?.limiting ? this.throttle : undefined
    let sleep = 0
    for (let p = p0; p < p1; p++) {
      if (guard !== undefined && (guard[p >>> 5]! & (1 << (p & 31))) !== 0 && !this.model.devices.guestWrite(p)) continue
      memory.write(p)
      if (limit) {
        const before = kvm.kvm.stats.loggedWrites
        kvm.write(p, vcpu)
        if (kvm.kvm.stats.loggedWrites !== before) sleep += limit.onDirtyPage(vcpu, now)
      } else kvm.write(p, vcpu)
    }
    // dirtylimit_vcpu_execute: the vCPU sleeps at its ring-full exit; its later events move.
    if (sleep > 0) this.clock.offset[vcpu]! += sleep
    return 0
  }

  other(b: EventBatch, i: number, now: number): void {
    if (now > this.lastEventNs) this.lastEventNs = now
    if (this.post) return this.post.other(b, i, now)
    this.replayed++
    if (b.kind[i] === K.read) return
    this.otherEvent(b, i, now)
  }

  /** Adds the postcopy, throttle and transport figures to a result. */
  private withModes(r: ReplayResult): ReplayResult {
    const ms = (ns: number): number => ns / 1e6
    if (this.throttle) r.throttle = this.throttle.result(this.stopNs)
    const post = this.post
    if (post) {
      r.postcopy = post.result(this.startNs, this.clock.offset)
      // The source's downtime ends when the package is sent (migration_downtime_end).
      r.downtimeMs = ms(post.packageEndNs - this.stopNs)
      const d = r.downtime as ReplayResult['downtime'] & Record<string, number>
      d.ramMs = ms(post.discardNs)
      d.ramPages = 0
      d.ramBytes = post.discardBytes
      if ('vfioStateMs' in d) d.vfioStateMs = ms(post.extraNs)
      d.deviceStateMs = ms(post.deviceNs)
      r.events.notReplayed += post.ignored
      // The precopy part's convergence figures matter only when postcopy rescued a stalled precopy.
      if (!/^(stall|cap:)/.test(r.postcopy.trigger)) r.stall = undefined
    } else if (this.settings['postcopy-after'] !== undefined || this.settings['postcopy-at'] !== undefined || this.settings['postcopy-on-stall'])
      if (r.stopReason !== 'cancelled') r.notes.push('postcopy was asked for, but precopy completed before it was triggered')
    r.transport = transportResult(this.model, r)
    return r
  }
}

/** Is the dirty set still shrinking? From the last live iterations' dirty sets at sync. */
export function stallInfo(live: IterationRow[], pageSize: number, rate: number, downtimeLimitMs: number): StallInfo {
  const last = live.at(-1)
  const dirtyBytes = (last?.dirtyPagesAtSync ?? 0) * pageSize
  const tail = live.slice(-4, -1).map((r) => r.dirtyPagesAtSync)
  const stalled = tail.length >= 2 && tail.every((d) => d > 0 && Math.abs((last?.dirtyPagesAtSync ?? 0) - d) / d < 0.05)
  return {
    stalled,
    dirtyBytes,
    needsDowntimeMs: rate > 0 ? (dirtyBytes * 1000) / rate : Infinity,
    needsBandwidthBps: downtimeLimitMs > 0 ? (dirtyBytes * 1000) / downtimeLimitMs : Infinity,
  }
}
