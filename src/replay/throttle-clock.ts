/**
 * The guest's clock against the host's: trace time is the guest's own (virtual) time, the engine
 * runs in wall time. Two things move the guest's events in wall time:
 * - the global mapping, a list of segments: a pause (the postcopy switchover, a snapshot's
 *   write-protect) starts a new segment later in wall time; auto-converge starts a throttled one.
 *   A throttled segment applies QEMU's cpu_throttle_timer_tick / cpu_throttle_thread
 *   (migration/cpu-throttle.c; softmmu/ before 9.2): a tick every 10 ms / (1 - pct) of wall time
 *   makes every vCPU sleep pct / (1 - pct) x 10 ms at once, so it runs 10 ms between sleeps. The
 *   first cpu_throttle_set ticks at once; a later level takes effect at the next tick (the thread
 *   reads the new level there, and the timer re-arms with it). How the workload answers
 *   (`workload-pacing`):
 *     cpu  - a CPU-bound writer: guest time advances only while its vCPU runs, so every event
 *            moves later by the sleeps before it;
 *     wall - a writer paced by wall-clock time (the lab's dirtier): an event due during a sleep
 *            happens when the vCPU wakes (it catches up at once), an event due while it runs
 *            happens on time, so the throttle only shifts writes within a slice;
 * - a per-vCPU offset: a vCPU blocked on a postcopy or write-protect fault, or slept by the dirty
 *   limit, runs its later events that much later while the other vCPUs go on.
 * With per-vCPU offsets the events of a delayed vCPU wait in a per-vCPU FIFO (typed arrays, no
 * object per event) and are merged back by effective time; the sink sees accesses in wall-time
 * order. An access the sink cannot do yet (a fault) returns the time it may retry; the vCPU's
 * offset grows by the wait and the access goes back to the head of its queue.
 */
import type {EventBatch} from '../trace/events.js'
import {K} from '../trace/events.js'

export interface GuestSink {
  /** Run every host action due at or before `now`; true once the run is over. */
  advanceTo(now: number): boolean
  /** A vCPU access (K.write or K.read) at `now`: 0 when done, else the time (> now) to retry. */
  access(kind: number, vcpu: number, gpa: number, len: number, now: number): number
  /** Any other event, at `now`. */
  other(b: EventBatch, i: number, now: number): void
}

/** One vCPU's deferred accesses: trace time, kind, gpa, len (a ring buffer that grows). */
class AccessQueue {
  t = new Float64Array(64)
  gpa = new Float64Array(64)
  len = new Float64Array(64)
  kind = new Uint8Array(64)
  head = 0
  size = 0

  private grow(): void {
    const n = this.t.length
    const m = n * 2
    const t = new Float64Array(m)
    const gpa = new Float64Array(m)
    const len = new Float64Array(m)
    const kind = new Uint8Array(m)
    for (let j = 0; j < this.size; j++) {
      const k = (this.head + j) % n
      t[j] = this.t[k]!
      gpa[j] = this.gpa[k]!
      len[j] = this.len[k]!
      kind[j] = this.kind[k]!
    }
    this.t = t
    this.gpa = gpa
    this.len = len
    this.kind = kind
    this.head = 0
  }

  push(t: number, kind: number, gpa: number, len: number): void {
    if (this.size === this.t.length) this.grow()
    const k = (this.head + this.size) % this.t.length
    this.t[k] = t
    this.kind[k] = kind
    this.gpa[k] = gpa
    this.len[k] = len
    this.size++
  }

  unshift(t: number, kind: number, gpa: number, len: number): void {
    if (this.size === this.t.length) this.grow()
    this.head = (this.head - 1 + this.t.length) % this.t.length
    this.t[this.head] = t
    this.kind[this.head] = kind
    this.gpa[this.head] = gpa
    this.len[this.head] = len
    this.size++
  }

  shift(): void {
    this.head = (this.head + 1) % this.t.length
    this.size--
  }
}

/** CPU_THROTTLE_TIMESLICE_NS: a throttled vCPU runs this long between two sleeps. */
export const THROTTLE_SLICE_NS = 10e6

export const WORKLOAD_PACING = ['cpu', 'wall'] as const
export type WorkloadPacing = (typeof WORKLOAD_PACING)[number]

/**
 * One piece of the global mapping, from wall time `ws` (guest time `gs`) to the next segment's
 * start (or `we`, where a pause cut it). Throttled (pct > 0): ticks at ws + j x period, each
 * followed by a sleep of `sleep` ns.
 */
interface Segment {
  ws: number
  gs: number
  we: number
  pct: number
  sleep: number
  period: number
}

/** cpu_throttle_thread's sleep at a level: (int64)(pct / (1 - pct) x 10 ms + 1) ns. */
export function throttleSleepNs(pct: number): number {
  const p = pct / 100
  return Math.trunc((p / (1 - p)) * THROTTLE_SLICE_NS + 1)
}

export class GuestClock {
  /**
   * The last segment as a line, for the fast path: wall = w0 + (t - g0) while `linear` (no
   * throttle in force and none pending).
   */
  g0 = 0
  w0 = 0
  linear = true
  /** Extra wall time per vCPU (blocked on faults, dirty-limit sleeps), ns. */
  readonly offset: Float64Array
  private readonly queues: AccessQueue[]
  /** Deferred accesses, all vCPUs. */
  queued = 0
  private segs: Segment[] = [{ws: 0, gs: 0, we: Infinity, pct: 0, sleep: 0, period: 0}]
  private pct = 0
  /**
   * Holds (wall [from, to), in order): the guest stood still but, paced by wall-clock time, did
   * not fall behind: an event due inside a hold happens at its end, later events on time.
   */
  private readonly holdFrom: number[] = []
  private readonly holdTo: number[] = []
  /** Guest time at which the last hold ends; events before it may still be held (no fast path). */
  private holdEndGuest = -Infinity

  constructor(
    readonly vcpus: number,
    readonly pacing: WorkloadPacing = 'cpu',
  ) {
    const n = Math.max(1, vcpus)
    this.offset = new Float64Array(n)
    this.queues = Array.from({length: n}, () => new AccessQueue())
  }

  /** True when accesses must go through the per-vCPU queues (some vCPU runs late). */
  get perVcpu(): boolean {
    if (this.queued > 0) return true
    const o = this.offset
    for (let v = 0; v < o.length; v++) if (o[v]! > 0) return true
    return false
  }

  /** The segment guest time t falls in (the last one starting at or before it). */
  private segOfGuest(t: number): Segment {
    const segs = this.segs
    for (let i = segs.length - 1; i > 0; i--) if (segs[i]!.gs <= t) return segs[i]!
    return segs[0]!
  }

  private segOfWall(w: number): Segment {
    const segs = this.segs
    for (let i = segs.length - 1; i > 0; i--) if (segs[i]!.ws <= w) return segs[i]!
    return segs[0]!
  }

  toWall(t: number): number {
    const w = this.mapWall(t)
    if (this.holdTo.length === 0) return w
    if (t >= this.holdEndGuest && !this.linear && this.segs.at(-1)!.pct === 0) this.linear = true
    return this.held(w)
  }

  /** Wall time w after the holds: inside one, its end, and if the guest is paused there, the resume. */
  private held(w: number): number {
    const from = this.holdFrom
    let i = from.length - 1
    while (i >= 0 && from[i]! > w) i--
    if (i < 0 || w >= this.holdTo[i]!) return w
    const end = this.holdTo[i]!
    // A pause that starts where the hold ends (the postcopy switchover right after the deciding
    // sync) moves the held events on to the resume.
    const segs = this.segs
    let k = segs.length - 1
    while (k > 0 && segs[k]!.ws > end) k--
    return end >= segs[k]!.we && k + 1 < segs.length ? segs[k + 1]!.ws : end
  }

  private mapWall(t: number): number {
    const g = this.segOfGuest(t)
    const u = t - g.gs
    if (g.pct === 0 || u < 0) return g.ws + u
    if (this.pacing === 'cpu') {
      // Each 10 ms of running follows a sleep: the k-th run slice starts after k + 1 sleeps.
      const k = Math.floor(u / THROTTLE_SLICE_NS)
      return g.ws + u + (k + 1) * g.sleep
    }
    // wall: on time, unless due while the vCPU sleeps; then at the wake-up.
    const j = Math.floor(u / g.period)
    const within = u - j * g.period
    return within < g.sleep ? g.ws + j * g.period + g.sleep : g.ws + u
  }

  /** Guest (trace) time reached at wall time w, by the global mapping. */
  toGuest(w: number): number {
    const g = this.segOfWall(w)
    const d = Math.min(w, g.we) - g.ws
    if (g.pct === 0 || this.pacing === 'wall' || d < 0) return g.gs + d
    const j = Math.floor(d / g.period)
    const within = d - j * g.period
    return g.gs + j * THROTTLE_SLICE_NS + Math.max(0, within - g.sleep)
  }

  /**
   * cpu_throttle_set(pct) at wall time `now` (0: cpu_throttle_stop, at the switchover: the VM
   * stops, so sleeping vCPUs stop sleeping). Not throttled before: the timer ticks at once;
   * throttled: the new level starts at the next tick.
   */
  setThrottle(pct: number, now: number): void {
    this.dropAfter(now)
    const last = this.segs.at(-1)!
    let at = now
    if (pct > 0 && last.pct > 0) at = last.ws + Math.ceil((now - last.ws) / last.period) * last.period
    this.pct = pct
    const sleep = pct > 0 ? throttleSleepNs(pct) : 0
    this.push({ws: at, gs: this.toGuest(at), we: Infinity, pct, sleep, period: pct > 0 ? THROTTLE_SLICE_NS + sleep : 0})
  }

  /** The guest is paused from `from` to `to` (wall): every later event moves by the pause. */
  pause(from: number, to: number): void {
    this.dropAfter(from)
    const last = this.segs.at(-1)!
    const gs = this.toGuest(from)
    last.we = from
    this.push({ws: to, gs, we: Infinity, pct: last.pct, sleep: last.sleep, period: last.period})
  }

  /**
   * The guest stands still from `from` to `to` (wall), but its writer is paced by wall-clock time
   * (workload-pacing=wall, the lab's dirtier, or a recording, whose events carry their real
   * times): an event due in [from, to) happens at `to`, later events keep their times. With the
   * guest paused at `to` (a switchover right then) the held events follow the resume.
   */
  hold(from: number, to: number): void {
    if (!(to > from)) return
    this.holdFrom.push(from)
    this.holdTo.push(to)
    this.holdEndGuest = Math.max(this.holdEndGuest, this.toGuest(to))
    this.linear = false
  }

  /** Segments that start after `now` (a level pending for the next tick) give way to a new one. */
  private dropAfter(now: number): void {
    while (this.segs.length > 1 && this.segs.at(-1)!.ws > now) this.segs.pop()
  }

  private push(g: Segment): void {
    const last = this.segs.at(-1)!
    if (g.ws === last.ws && g.gs === last.gs) this.segs[this.segs.length - 1] = g
    else this.segs.push(g)
    // Not while events before the last hold's end may still come (they are held, not shifted).
    this.linear = g.pct === 0 && !(g.gs <= this.holdEndGuest)
    this.w0 = g.ws
    this.g0 = g.gs
  }

  /** Wall time the vCPUs slept by `now` (throttle sleeps; a paused guest does not count). */
  slowdownNs(now: number): number {
    let n = 0
    const segs = this.segs
    for (let i = 0; i < segs.length; i++) {
      const g = segs[i]!
      if (g.pct === 0 || g.ws >= now) continue
      const end = Math.min(now, g.we, i + 1 < segs.length ? segs[i + 1]!.ws : Infinity)
      const d = end - g.ws
      const j = Math.floor(d / g.period)
      n += j * g.sleep + Math.min(d - j * g.period, g.sleep)
    }
    return n
  }

  get throttlePct(): number {
    return this.pct
  }

  /**
   * The slow path: events [from, n) of a batch in wall-time order, delayed vCPUs queued. Returns
   * -1 when the batch is consumed, else the index of the first event not applied because the
   * sink is done (the rest of the trace is not needed).
   */
  feed(b: EventBatch, from: number, sink: GuestSink): number {
    const n = b.length
    const t = b.t
    const kind = b.kind
    const vcpu = b.vcpu
    const KW = K.write
    const KR = K.read
    for (let i = from; i < n; i++) {
      const ti = t[i]!
      let w = this.toWall(ti)
      if (this.queued > 0 && this.drain(w, sink)) return i
      if (sink.advanceTo(w)) return i
      // The mapping may have changed in advanceTo (a throttle step): run up to the new time.
      for (let w2 = this.toWall(ti); w2 > w; w2 = this.toWall(ti)) {
        w = w2
        if (this.queued > 0 && this.drain(w, sink)) return i
        if (sink.advanceTo(w)) return i
      }
      const k = kind[i]!
      if (k === KW || k === KR) {
        const v = Math.max(0, Math.min(this.offset.length - 1, vcpu[i]!))
        const q = this.queues[v]!
        if (q.size > 0 || this.offset[v]! > 0) {
          q.push(ti, k, b.gpa[i]!, b.len[i]!)
          this.queued++
          continue
        }
        const wait = sink.access(k, v, b.gpa[i]!, b.len[i]!, w)
        if (wait > w) {
          this.delay(v, ti, wait)
          q.unshift(ti, k, b.gpa[i]!, b.len[i]!)
          this.queued++
        }
      } else sink.other(b, i, w)
    }
    return -1
  }

  /**
   * vCPU v, at its event of trace time t, waits until `until`: its offset grows so that the event
   * (and every later one) runs no earlier than `until`, exactly despite float rounding.
   */
  private delay(v: number, t: number, until: number): void {
    const base = this.toWall(t)
    let off = until - base
    while (base + off < until) off += Math.max(1e-6, Math.abs(off) * Number.EPSILON)
    if (off > this.offset[v]!) this.offset[v] = off
  }

  /** Apply deferred accesses whose wall time is at most `until`, earliest first. */
  drain(until: number, sink: GuestSink): boolean {
    const qs = this.queues
    while (this.queued > 0) {
      let best = -1
      let bestT = Infinity
      for (let v = 0; v < qs.length; v++) {
        const q = qs[v]!
        if (q.size === 0) continue
        const e = this.toWall(q.t[q.head]!) + this.offset[v]!
        if (e < bestT) {
          bestT = e
          best = v
        }
      }
      if (best < 0 || bestT > until) return false
      if (sink.advanceTo(bestT)) return true
      const q = qs[best]!
      // advanceTo may have moved this vCPU's head (a throttle step): pick again if so.
      const e = this.toWall(q.t[q.head]!) + this.offset[best]!
      if (e > bestT) continue
      const h = q.head
      const tq = q.t[h]!
      const kq = q.kind[h]!
      const gq = q.gpa[h]!
      const lq = q.len[h]!
      q.shift()
      this.queued--
      const wait = sink.access(kq, best, gq, lq, bestT)
      if (wait > bestT) {
        this.delay(best, tq, wait)
        q.unshift(tq, kq, gq, lq)
        this.queued++
      }
    }
    return false
  }
}
