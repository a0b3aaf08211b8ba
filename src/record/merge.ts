/**
 * Puts the plugin's per-vCPU write streams into one time order with bounded memory.
 *
 * Each vCPU's records arrive in its own time order (its clock never goes back), but vCPUs hand
 * their buffers over independently, so the streams interleave in chunks. A record is released once
 * every running vCPU has reported a time at or past it (its *watermark*: the time of its latest
 * WRITE or CLOCK record). An idle vCPU (CLOCK idle, sent when it halts) holds nothing back: the
 * plugin flushes its buffer as it goes idle.
 *
 * Memory is bounded: when more than `capacity` records wait (vCPUs whose guest clocks drift apart
 * by more than the buffer covers), the oldest are released anyway. A record that then arrives
 * with a time earlier than one already released is written at the last released time, and
 * counted (`reordered`, `maxReorderNs`): the trace format needs non-decreasing times.
 *
 * One vCPU: nothing waits, every record passes straight through.
 */
export type WriteOut = (vcpu: number, t: number, addr: number, len: number) => void

class Ring {
  t: Float64Array
  addr: Float64Array
  len: Uint32Array
  head = 0
  size = 0

  constructor(cap: number) {
    this.t = new Float64Array(cap)
    this.addr = new Float64Array(cap)
    this.len = new Uint32Array(cap)
  }

  get cap(): number {
    return this.t.length
  }

  push(t: number, addr: number, len: number): void {
    if (this.size === this.cap) this.grow()
    const i = (this.head + this.size) % this.cap
    this.t[i] = t
    this.addr[i] = addr
    this.len[i] = len
    this.size++
  }

  private grow(): void {
    const n = this.cap * 2
    const t = new Float64Array(n)
    const a = new Float64Array(n)
    const l = new Uint32Array(n)
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) % this.cap
      t[k] = this.t[i]!
      a[k] = this.addr[i]!
      l[k] = this.len[i]!
    }
    this.t = t
    this.addr = a
    this.len = l
    this.head = 0
  }

  headT(): number {
    return this.t[this.head]!
  }
}

export class VcpuMerger {
  private readonly rings: Ring[] = []
  private readonly watermark: Float64Array
  private readonly running: Uint8Array
  private waiting = 0
  private lastOut = 0
  reordered = 0
  maxReorderNs = 0
  released = 0

  constructor(
    readonly vcpus: number,
    private readonly out: WriteOut,
    private readonly capacity = 1 << 20,
  ) {
    this.watermark = new Float64Array(vcpus).fill(-1)
    this.running = new Uint8Array(vcpus)
    if (vcpus > 1) for (let v = 0; v < vcpus; v++) this.rings.push(new Ring(1024))
  }

  write(vcpu: number, t: number, addr: number, len: number): void {
    if (this.vcpus === 1) {
      this.emit(vcpu, t, addr, len)
      return
    }
    this.rings[vcpu]!.push(t, addr, len)
    this.waiting++
    if (t > this.watermark[vcpu]!) this.watermark[vcpu] = t
    this.running[vcpu] = 1
  }

  /** A CLOCK record: the vCPU's time moved on; `idle` when it halted. */
  clock(vcpu: number, t: number, idle: boolean): void {
    if (t > this.watermark[vcpu]!) this.watermark[vcpu] = t
    this.running[vcpu] = idle ? 0 : 1
  }

  /** Release what every running vCPU has passed (call after each chunk of records). */
  release(): void {
    if (this.vcpus === 1) return
    let limit = Infinity
    for (let v = 0; v < this.vcpus; v++) if (this.running[v] && this.watermark[v]! < limit) limit = this.watermark[v]!
    this.pop(limit, 0)
    if (this.waiting > this.capacity) this.pop(Infinity, this.capacity >>> 1)
  }

  /** The stream ended: everything, in order. */
  drain(): void {
    if (this.vcpus > 1) this.pop(Infinity, 0)
  }

  get pending(): number {
    return this.waiting
  }

  /** Release records with t <= limit, in time order, until at most `keep` wait. */
  private pop(limit: number, keep: number): void {
    const rings = this.rings
    while (this.waiting > keep) {
      let best = -1
      let bestT = Infinity
      for (let v = 0; v < rings.length; v++) {
        const r = rings[v]!
        if (r.size > 0 && r.headT() < bestT) {
          bestT = r.headT()
          best = v
        }
      }
      if (best < 0 || bestT > limit) return
      const r = rings[best]!
      const i = r.head
      this.emit(best, r.t[i]!, r.addr[i]!, r.len[i]!)
      r.head = (r.head + 1) % r.cap
      r.size--
      this.waiting--
    }
  }

  private emit(vcpu: number, t: number, addr: number, len: number): void {
    if (t < this.lastOut) {
      this.reordered++
      if (this.lastOut - t > this.maxReorderNs) this.maxReorderNs = this.lastOut - t
      t = this.lastOut
    }
    this.lastOut = t
    this.released++
    this.out(vcpu, t, addr, len)
  }
}
