/**
 * Host wall-clock time -> trace time, for things stamped by the host (QEMU's trace log with
 * `-msg timestamp=on`, QMP events) that go into a recording whose writes are stamped by the plugin.
 *
 * Trace time 0 is the plugin's start (HELLO). With the host clock, trace time is host time since
 * then. With the guest clock, vCPU 0's CLOCK records give (host time, guest time) points about
 * every 10 ms and at each idle/resume; a host time between two points is interpolated, one after
 * the last point runs on at the last segment's rate (at 1:1 while the vCPU is idle: idle time is
 * host time in the guest clock).
 */
export class ClockMap {
  private host: number[] = []
  private guest: number[] = []
  private idle = false
  private startRealNs = 0

  constructor(readonly hostClock: boolean) {}

  start(startRealNs: number): void {
    this.startRealNs = startRealNs
  }

  /** The reference vCPU was idle at its last CLOCK record. */
  get idleNow(): boolean {
    return this.idle
  }

  /** A CLOCK record of the reference vCPU. */
  point(hostRealNs: number, t: number, idle: boolean): void {
    const n = this.host.length
    if (n > 0 && (hostRealNs < this.host[n - 1]! || t < this.guest[n - 1]!)) return
    this.host.push(hostRealNs)
    this.guest.push(t)
    this.idle = idle
  }

  /** Trace time (ns) of a host wall-clock time (ns since the epoch). */
  at(hostRealNs: number): number {
    const since = hostRealNs - this.startRealNs
    if (this.hostClock || this.host.length === 0) return Math.max(0, since)
    const h = this.host
    const g = this.guest
    const last = h.length - 1
    if (hostRealNs <= h[0]!) return Math.max(0, g[0]! - (h[0]! - hostRealNs))
    if (hostRealNs >= h[last]!) {
      const rate = this.idle || last === 0 ? 1 : (g[last]! - g[last - 1]!) / Math.max(1, h[last]! - h[last - 1]!)
      return g[last]! + (hostRealNs - h[last]!) * rate
    }
    let lo = 0
    let hi = last - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (h[mid]! <= hostRealNs) lo = mid
      else hi = mid - 1
    }
    const i = lo
    const f = (hostRealNs - h[i]!) / Math.max(1, h[i + 1]! - h[i]!)
    return g[i]! + f * (g[i + 1]! - g[i]!)
  }
}
