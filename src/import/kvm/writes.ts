/**
 * The output side shared by the KVM importers: dirty-page reports become `write` events, put in
 * time order and written through TraceWriter with the header given at the end.
 *
 * Meaning (docs/import-kvm.md): KVM reports a page once per *first write since its dirty state was
 * last harvested* (the dirty ring entry is pushed when the write faults on a write-protected or
 * clean page; a bitmap bit is set once until it is cleared). So a `write` event here is "this page
 * was written at least once since the previous harvest", and covers the whole page (len = the page
 * size): KVM does not say which bytes. Writes in between are not visible.
 *
 * Input lines of different CPUs may come slightly out of order (bpftrace merges per-CPU buffers,
 * QEMU's log is written by several threads): a reorder window of `windowNs` holds events and
 * releases them in time order; an event older than what is already written is written at the last
 * written time and counted (`reordered`).
 */
import {K, createBatch, resetBatch, type EventBatch} from '../../trace/events.js'
import type {TraceHeader} from '../../trace/header.js'
import {TraceWriter} from '../../trace/write/writer.js'

export const PAGE = 4096

/** A min-heap of (t, vcpu, gpa) in parallel typed arrays. */
class Heap {
  t = new Float64Array(1024)
  v = new Int32Array(1024)
  g = new Float64Array(1024)
  n = 0

  push(t: number, v: number, g: number): void {
    if (this.n === this.t.length) {
      const grow = <A extends Float64Array | Int32Array>(a: A, C: new (n: number) => A): A => {
        const b = new C(a.length * 2)
        b.set(a)
        return b
      }
      this.t = grow(this.t, Float64Array)
      this.v = grow(this.v, Int32Array)
      this.g = grow(this.g, Float64Array)
    }
    let i = this.n++
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.t[p]! <= t) break
      this.t[i] = this.t[p]!
      this.v[i] = this.v[p]!
      this.g[i] = this.g[p]!
      i = p
    }
    this.t[i] = t
    this.v[i] = v
    this.g[i] = g
  }

  /** Remove the smallest into out[0..2]. */
  pop(out: Float64Array): void {
    out[0] = this.t[0]!
    out[1] = this.v[0]!
    out[2] = this.g[0]!
    const n = --this.n
    const t = this.t[n]!
    const v = this.v[n]!
    const g = this.g[n]!
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= n) break
      if (c + 1 < n && this.t[c + 1]! < this.t[c]!) c++
      if (this.t[c]! >= t) break
      this.t[i] = this.t[c]!
      this.v[i] = this.v[c]!
      this.g[i] = this.g[c]!
      i = c
    }
    this.t[i] = t
    this.v[i] = v
    this.g[i] = g
  }
}

export class WriteEmitter {
  private readonly heap = new Heap()
  private readonly tmp = new Float64Array(3)
  private batch: EventBatch = createBatch()
  private readonly full: EventBatch[] = []
  private maxSeen = -Infinity
  private lastOut = 0
  /** The source's time of trace time 0: the earliest event of the first window. */
  origin = NaN
  events = 0
  reordered = 0
  maxVcpu = -1
  /** Highest page written below 4 GiB and from 4 GiB up (-1: none), for an inferred layout. */
  maxLow = -1
  maxHigh = -1

  private constructor(
    private readonly writer: TraceWriter,
    private readonly windowNs: number,
  ) {}

  static async open(out: string, provisional: TraceHeader, opts: {windowNs?: number} = {}): Promise<WriteEmitter> {
    const w = await TraceWriter.open(out, provisional, [], undefined, {headerAtClose: true})
    return new WriteEmitter(w, opts.windowNs ?? 1e9)
  }

  /** One dirty page at time t (ns on the source's clock). */
  add(t: number, vcpu: number, gpa: number): void {
    this.heap.push(t, vcpu, gpa)
    if (t > this.maxSeen) this.maxSeen = t
    if (vcpu > this.maxVcpu) this.maxVcpu = vcpu
    if (gpa < 2 ** 32) {
      if (gpa > this.maxLow) this.maxLow = gpa
    } else if (gpa > this.maxHigh) this.maxHigh = gpa
    while (this.heap.n > 0 && this.heap.t[0]! <= this.maxSeen - this.windowNs) this.release()
  }

  private release(): void {
    this.heap.pop(this.tmp)
    if (Number.isNaN(this.origin)) this.origin = this.tmp[0]!
    let t = this.tmp[0]! - this.origin
    if (t < this.lastOut) {
      this.reordered++
      t = this.lastOut
    }
    this.lastOut = t
    if (this.batch.length === this.batch.t.length) {
      this.full.push(this.batch)
      this.batch = createBatch()
    }
    const b = this.batch
    const i = b.length++
    b.t[i] = t
    b.kind[i] = K.write
    b.vcpu[i] = this.tmp[1]!
    b.gpa[i] = this.tmp[2]!
    b.len[i] = PAGE
  }

  /** Write the batches that filled up (call between chunks of input). */
  async flush(): Promise<void> {
    while (this.full.length > 0) {
      const b = this.full.shift()!
      await this.writer.writeBatch(b)
      this.events += b.length
    }
  }

  /** The input ended: release every event still held (then origin and the counts are final). */
  settle(): void {
    while (this.heap.n > 0) this.release()
  }

  /** Everything left, then the file with its final header. */
  async close(header: TraceHeader): Promise<void> {
    this.settle()
    await this.flush()
    if (this.batch.length > 0) {
      await this.writer.writeBatch(this.batch)
      this.events += this.batch.length
      resetBatch(this.batch)
    }
    await this.writer.close(header)
  }

  async abort(): Promise<void> {
    await this.writer.abort()
  }
}
