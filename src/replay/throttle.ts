/**
 * Slowing the guest down so precopy converges: auto-converge (cpu throttling) and dirty-limit.
 * Both start from QEMU's trigger, evaluated in migration_bitmap_sync once a period of more than
 * 1 s has passed since the last evaluation (migration_trigger_throttle):
 *   bytes_dirty_period = num_dirty_pages_period x TARGET_PAGE_SIZE   (newly set bmap bits only)
 *   bytes_xfer_period  = bytes transferred since the period began
 *   if bytes_dirty_period > bytes_xfer_period x throttle-trigger-threshold / 100
 *      and ++dirty_rate_high_cnt >= 2: dirty_rate_high_cnt = 0, then throttle
 * (the counter is never reset by a quiet period: "twice" means two qualifying periods).
 * - auto-converge (mig_throttle_guest_down): the first time cpu-throttle-initial, then
 *   + cpu-throttle-increment (tailslow: min(increment, cpu_now - cpu_ideal)), capped at
 *   max-cpu-throttle and clamped to [1, 99]. The vCPUs then sleep in 10 ms slices
 *   (cpu_throttle_thread): the GuestClock moves the guest's events as its workload-pacing says.
 * - dirty-limit (migration_dirty_limit_guest, system/dirtylimit.c): every vCPU gets the quota
 *   vcpu-dirty-limit MiB/s. QEMU's controller adjusts the sleep at each dirty-ring-full exit once
 *   per period until the measured rate meets the quota; the model applies the converged state: a
 *   token bucket per vCPU whose burst is one ring's soft limit (the vCPU only sleeps when its ring
 *   fills), so each vCPU dirties at most the quota on average and runs late by what it slept.
 * Both stop at the switchover (migration_iteration_finish / postcopy: the destination is not
 * throttled).
 */
import type {ReplaySettings} from './settings.js'
import type {GuestClock} from './throttle-clock.js'
import type {ThrottleResult, ThrottleStep} from './result.js'

/** CPU_THROTTLE_PCT_MIN / _MAX (system/cpu-throttle.c). */
const PCT_MIN = 1
const PCT_MAX = 99
/** The ">= 1 s" period of migration_bitmap_sync (end_time > time_last_bitmap_sync + 1000 ms). */
export const THROTTLE_PERIOD_NS = 1e9

export class Throttle {
  readonly mode: 'auto-converge' | 'dirty-limit'
  private lastPeriodNs = Number.NaN
  private dirtyPagesPeriod = 0
  private bytesXferPrev = 0
  private highCount = 0
  pct = 0
  readonly steps: ThrottleStep[] = []
  periods = 0
  triggerPeriods = 0
  /** dirty-limit in service. */
  limiting = false
  private readonly finish: Float64Array
  readonly sleptNs: Float64Array
  private perPageNs = 0
  private burstNs = 0
  stopped = false
  private slowdownAtStopNs = 0

  constructor(
    private settings: ReplaySettings,
    readonly clock: GuestClock,
    readonly pageSize: number,
    private readonly startNs: number,
  ) {
    this.mode = settings['dirty-limit'] ? 'dirty-limit' : 'auto-converge'
    this.finish = new Float64Array(clock.offset.length)
    this.sleptNs = new Float64Array(clock.offset.length)
  }

  static wanted(s: ReplaySettings): boolean {
    return s['auto-converge'] || s['dirty-limit']
  }

  /** Live parameters (mig_set) may change the throttle knobs. */
  updateSettings(s: ReplaySettings): void {
    this.settings = s
  }

  /** ram_init_bitmaps: the first period starts with the migration (time_last_bitmap_sync). */
  start(now: number, transferred: number): void {
    this.lastPeriodNs = now
    this.bytesXferPrev = transferred
  }

  /**
   * migration_bitmap_sync (not the last stage): `newPages` newly set bits, `transferred` bytes
   * sent so far. Returns true when the throttle changed.
   */
  onSync(now: number, newPages: number, transferred: number, iteration: number): boolean {
    if (this.stopped || Number.isNaN(this.lastPeriodNs)) return false
    this.dirtyPagesPeriod += newPages
    if (!(now > this.lastPeriodNs + THROTTLE_PERIOD_NS)) return false
    this.periods++
    let changed = false
    const s = this.settings
    const bytesXfer = transferred - this.bytesXferPrev
    const bytesDirty = this.dirtyPagesPeriod * this.pageSize
    const threshold = Math.floor((bytesXfer * s['throttle-trigger-threshold']) / 100)
    if (bytesDirty > threshold) {
      this.triggerPeriods++
      if (++this.highCount >= 2) {
        this.highCount = 0
        changed = this.mode === 'auto-converge' ? this.throttleDown(bytesDirty, threshold, now) : this.limitDirty(now)
        if (changed) this.steps.push({atMs: (now - this.startNs) / 1e6, pct: this.pct, iteration})
      }
    }
    this.lastPeriodNs = now
    this.dirtyPagesPeriod = 0
    this.bytesXferPrev = transferred
    return changed
  }

  /** mig_throttle_guest_down. */
  private throttleDown(bytesDirty: number, threshold: number, now: number): boolean {
    const s = this.settings
    let next: number
    if (this.pct === 0) next = s['cpu-throttle-initial']
    else {
      let inc = s['cpu-throttle-increment']
      if (s['cpu-throttle-tailslow']) {
        // uint64 arithmetic as in QEMU: cpu_ideal truncated
        const cpuNow = 100 - this.pct
        const cpuIdeal = Math.floor(cpuNow * (threshold / bytesDirty))
        inc = Math.min(cpuNow - cpuIdeal, inc)
      }
      next = Math.min(this.pct + inc, s['max-cpu-throttle'])
    }
    next = Math.max(PCT_MIN, Math.min(PCT_MAX, next))
    if (next === this.pct) return false
    this.pct = next
    this.clock.setThrottle(next, now)
    return true
  }

  /** migration_dirty_limit_guest: the quota goes on every vCPU (once; again if it changed). */
  private limitDirty(_now: number): boolean {
    const quota = this.settings['vcpu-dirty-limit'] * 2 ** 20
    const perPage = (this.pageSize / quota) * 1e9
    if (this.limiting && perPage === this.perPageNs) return false
    this.limiting = true
    this.perPageNs = perPage
    const ring = this.settings['ring-size'] - 64 - (this.settings.pml ? 512 : 0)
    this.burstNs = Math.max(1, ring) * perPage
    this.pct = this.settings['vcpu-dirty-limit']
    return true
  }

  /**
   * dirty-limit: vCPU v dirtied one page (a dirty-ring entry) at `now`: returns how long it
   * sleeps afterwards (dirtylimit_vcpu_execute at the ring-full exit), 0 when under its quota.
   */
  onDirtyPage(v: number, now: number): number {
    const f = Math.max(this.finish[v]!, now) + this.perPageNs
    this.finish[v] = f
    const over = f - now - this.burstNs
    if (over <= 0) return 0
    this.sleptNs[v]! += over
    return over
  }

  /** The switchover: throttling ends (cpu_throttle_stop, dirtylimit cancel). */
  stop(now: number): void {
    if (this.stopped) return
    this.stopped = true
    this.limiting = false
    this.slowdownAtStopNs = this.clock.slowdownNs(now)
    if (this.clock.throttlePct > 0) this.clock.setThrottle(0, now)
  }

  result(now: number): ThrottleResult {
    const global = this.stopped ? this.slowdownAtStopNs : this.clock.slowdownNs(now)
    const perVcpu = Array.from(this.sleptNs, (ns) => (ns + global) / 1e6)
    return {
      mode: this.mode,
      steps: this.steps,
      finalPct: this.pct,
      guestSlowdownMs: this.mode === 'auto-converge' ? global / 1e6 : Math.max(0, ...perVcpu),
      slowdownMsPerVcpu: perVcpu,
      triggerPeriods: this.triggerPeriods,
      periods: this.periods,
    }
  }
}
