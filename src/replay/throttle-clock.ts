/**
 * The guest's clock against the host's: trace time is the guest's own (virtual) time, the engine
 * runs in wall time. Two things stretch the guest's timeline:
 * - a global dilation: auto-converge's cpu_throttle_thread makes every vCPU sleep
 *   pct/(1-pct) x 10 ms after each 10 ms of running, so guest time advances at (1 - pct) of wall
 *   time (modelled as a continuous dilation, exact on average over each 10 ms/(1-pct) slice); a
 *   paused guest (the postcopy switchover) is a jump of the mapping;
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

export class GuestClock {
  /** wall = w0 + (t - g0) * k (identity until a throttle or a pause). */
  g0 = 0
  w0 = 0
  k = 1
  /** Extra wall time per vCPU (blocked on faults, dirty-limit sleeps), ns. */
  readonly offset: Float64Array
  private readonly queues: AccessQueue[]
  /** Deferred accesses, all vCPUs. */
  queued = 0
  /** Wall time the guest lost to the global dilation so far (at the last change). */
  private dilationNs = 0
  private pct = 0

  constructor(readonly vcpus: number) {
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

  toWall(t: number): number {
    return this.w0 + (t - this.g0) * this.k
  }

  /** Guest (trace) time reached at wall time w, by the global mapping. */
  toGuest(w: number): number {
    return this.g0 + (w - this.w0) / this.k
  }

  /** cpu_throttle_set(pct) at wall time `now`: guest time runs at (1 - pct) from here. */
  setThrottle(pct: number, now: number): void {
    this.rebase(now)
    this.pct = pct
    this.k = 1 / (1 - pct / 100)
  }

  /** The guest is paused from `from` to `to` (wall): every later event moves by the pause. */
  pause(from: number, to: number): void {
    this.rebase(from)
    this.w0 = to
  }

  /** Wall time lost to the dilation up to `now` (throttle sleeps). */
  slowdownNs(now: number): number {
    return this.dilationNs + (this.k > 1 ? (now - this.w0) * (1 - 1 / this.k) : 0)
  }

  private rebase(now: number): void {
    if (this.k > 1) this.dilationNs += (now - this.w0) * (1 - 1 / this.k)
    this.g0 = this.toGuest(now)
    this.w0 = now
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
