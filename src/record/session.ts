/**
 * The stream side of a recording: the plugin's records are decoded, merged into time order
 * (VcpuMerger), mapped to guest-physical addresses (AddressMap), interleaved with QEMU's
 * trace-log events (QemuLogFolder, placed in trace time through ClockMap) and written in batches
 * through TraceWriter. Reading waits for the writer (backpressure on the pipe: the guest pauses,
 * nothing is dropped); memory is the merger's bound plus a few batches.
 */
import {K, createBatch, resetBatch, type EventBatch} from '../trace/events.js'
import type {TraceWriter} from '../trace/write/writer.js'
import {describeExit, hostNowUs} from '../qemu/index.js'
import {UserError} from '../util/errors.js'
import {RecordDecoder, ClockReason, type RecordSink} from './records.js'
import {VcpuMerger} from './merge.js'
import type {RecordedLayout} from './qemu-layout.js'
import {AddrClass, type AddressMap} from './address-map.js'
import {ClockMap} from './clock-map.js'
import type {FoldedEvent, QemuLogFolder} from './qemu-events.js'

const usString = (ns: number): string => `${Math.floor(ns / 1e9)}.${String(Math.floor((ns % 1e9) / 1e3)).padStart(6, '0')}`

/** What the stream side needs of the options. */
export interface SessionOptions {
  clock: 'guest' | 'host'
  durationNs?: number
}

/** Per-run counters that end up in header.source.recording. */
export interface Tally {
  storesSeen: number
  ioStores: number
  records: number
  instructions: number
  romStores: number
  unmappedStores: number
  writes: number
  lateLogEvents: number
  afterDuration: number
}

/** The running recording: decoding, merging, mapping and writing. */
export class Session implements RecordSink {
  readonly decoder: RecordDecoder
  writer: TraceWriter | undefined
  maxVcpus = 1
  helloSeen: Promise<void>
  private helloResolve!: () => void
  private helloReject!: (e: Error) => void
  private merger: VcpuMerger | undefined
  private readonly clockMap: ClockMap
  private startRealNs = 0
  /** Plugin time of trace time 0 (vCPU 0's first resume), and the host time then. */
  private origin = 0
  private originSet = false
  private originHostNs = 0
  private batch: EventBatch = createBatch()
  private readonly full: EventBatch[] = []
  private readonly spare: EventBatch[] = []
  private pendingLog: FoldedEvent[] = []
  private lastT = 0
  events = 0
  readonly tally: Tally = {storesSeen: 0, ioStores: 0, records: 0, instructions: 0, romStores: 0, unmappedStores: 0, writes: 0, lateLogEvents: 0, afterDuration: 0}
  private readonly devIndex: Map<string, number>
  private stopped = false
  onDuration: (() => void) | undefined
  /** What ended the recording, when it was not QEMU itself (header.source.recording.stoppedBy). */
  stoppedBy: string | undefined
  private endRecords = -1

  constructor(
    private readonly opts: SessionOptions,
    private readonly layout: RecordedLayout,
    private readonly amap: AddressMap,
    readonly folder: QemuLogFolder,
  ) {
    this.decoder = new RecordDecoder(this)
    this.clockMap = new ClockMap(opts.clock === 'host')
    this.helloSeen = new Promise((resolve, reject) => {
      this.helloResolve = resolve
      this.helloReject = reject
    })
    // The trace's device table: virtio-mem devices, then the VFIO container (baseHeader's order).
    this.devIndex = new Map([...layout.virtioMem.map((d, i): [string, number] => [d.id, i]), ['vfio0', layout.virtioMem.length]])
  }

  /** Read the plugin's stream to its end (QEMU exits), writing as it goes. */
  async consume(stream: NodeJS.ReadableStream): Promise<void> {
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        this.decoder.push(chunk)
        this.merger?.release()
        if (this.writer !== undefined) {
          for (const e of this.folder.poll()) this.pendingLog.push(e)
          await this.flushFull()
        }
      }
    } catch (e) {
      this.helloReject(e as Error)
      throw e
    }
    this.helloReject(new UserError('QEMU exited before the recording plugin started'))
  }

  hello(startRealNs: number, maxVcpus: number): void {
    this.startRealNs = startRealNs
    this.maxVcpus = Math.max(1, maxVcpus)
    this.clockMap.start(startRealNs)
    this.merger = new VcpuMerger(this.maxVcpus, (v, t, a, l) => this.addWrite(v, t, a, l))
    this.helloResolve()
  }

  write(vcpu: number, t: number, addr: number, len: number): void {
    this.merger!.write(vcpu, t, addr, len)
  }

  clock(vcpu: number, reason: number, t: number, hostRealNs: number): void {
    // Trace time 0 is when the guest first runs: vCPU 0 resuming from the -S pause (the recorder
    // reads the layout meanwhile, which is not the guest's time).
    if (!this.originSet && vcpu === 0 && reason === ClockReason.resume) {
      this.origin = t
      this.originSet = true
      this.originHostNs = hostRealNs
    }
    this.merger!.clock(vcpu, t, reason === ClockReason.idle)
    if (vcpu === 0) this.clockMap.point(hostRealNs, t, reason === ClockReason.idle)
    if (this.opts.durationNs !== undefined && this.originSet && t - this.origin >= this.opts.durationNs && !this.stopped) this.stop()
  }

  stats(_vcpu: number, stores: number, ioStores: number): void {
    this.tally.storesSeen += stores
    this.tally.ioStores += ioStores
  }

  stats2(_vcpu: number, records: number, instructions: number): void {
    this.tally.records += records
    this.tally.instructions += instructions
  }

  end(_hostRealNs: number, records: number): void {
    this.endRecords = records
  }

  /** Stop once the trace clock, extrapolated to now, has reached `limit`. */
  checkClock(limit: number): void {
    // A running vCPU's time is only known from its records (clock()); an idle one's runs with the host.
    // Not before the guest has started: the -S pause while the layout is read is no trace time.
    if (this.stopped || !this.originSet || !(this.opts.clock === 'host' || this.clockMap.idleNow)) return
    if (this.clockMap.at(hostNowUs() * 1000) - this.origin >= limit) this.stop()
  }

  private stop(): void {
    this.stopped = true
    this.stoppedBy ??= `--duration ${this.opts.durationNs} ns`
    this.onDuration?.()
  }

  /** A write in time order: map it, put the log events that come before it first, batch it. */
  private addWrite(vcpu: number, tPlugin: number, addr: number, len: number): void {
    this.originSet = true // a write before any resume: the guest ran from the plugin's start
    const t = Math.max(0, tPlugin - this.origin)
    if (this.opts.durationNs !== undefined && t > this.opts.durationNs) {
      this.tally.afterDuration++
      if (!this.stopped) this.stop()
      return
    }
    const gpa = this.amap.gpa(addr)
    if (gpa < 0) {
      if (this.amap.lastClass === AddrClass.rom) this.tally.romStores++
      else this.tally.unmappedStores++
      return
    }
    if (this.pendingLog.length > 0) this.logBefore(t)
    const b = this.room()
    const i = b.length++
    b.t[i] = t
    b.kind[i] = K.write
    b.vcpu[i] = vcpu
    b.gpa[i] = gpa
    b.len[i] = len
    this.lastT = t
    this.tally.writes++
  }

  /** The batch to append to: a full one waits in `full` for the next flush (writes come synchronously). */
  private room(): EventBatch {
    if (this.batch.length === this.batch.t.length) {
      this.full.push(this.batch)
      this.batch = this.spare.pop() ?? createBatch()
    }
    return this.batch
  }

  /** Log events whose trace time is at or before t. */
  private logBefore(t: number): void {
    while (this.pendingLog.length > 0) {
      const e = this.pendingLog[0]!
      const et = this.logTime(e)
      if (et > t) return
      this.pendingLog.shift()
      this.pushLog(e, et)
    }
  }

  private logTime(e: FoldedEvent): number {
    return e.hostNs < 0 ? this.lastT : Math.max(0, Math.round(this.clockMap.at(e.hostNs) - this.origin))
  }

  private pushLog(e: FoldedEvent, et: number): void {
    if (this.opts.durationNs !== undefined && et > this.opts.durationNs) return
    if (et < this.lastT) {
      this.tally.lateLogEvents++
      et = this.lastT
    }
    const b = this.room()
    const i = b.length++
    b.t[i] = et
    b.kind[i] = e.kind
    b.line[i] = e.line
    if (e.dev !== '') b.dev[i] = this.devIndex.get(e.dev)!
    if (e.gpa >= 0) b.gpa[i] = e.gpa
    if (e.count >= 0) b.count[i] = e.count
    if (e.iova >= 0) b.iova[i] = e.iova
    if (e.len >= 0) b.len[i] = e.len
    if (e.op !== 0) b.op[i] = e.op
    this.lastT = et
  }

  /** Write the batches that filled up (the writer's backpressure slows the reading of the pipe). */
  private async flushFull(): Promise<void> {
    while (this.full.length > 0) {
      const b = this.full.shift()!
      await this.writer!.writeBatch(b)
      this.events += b.length
      resetBatch(b)
      this.spare.push(b)
    }
  }

  /** Write everything batched so far. */
  async flush(): Promise<void> {
    await this.flushFull()
    if (this.batch.length === 0) return
    await this.writer!.writeBatch(this.batch)
    this.events += this.batch.length
    resetBatch(this.batch)
  }

  /** QEMU exited: the last records and log lines, in order (then flush()). */
  finish(): void {
    for (const e of this.folder.finish()) this.pendingLog.push(e)
    this.merger?.drain()
    while (this.pendingLog.length > 0) {
      const e = this.pendingLog.shift()!
      this.pushLog(e, this.logTime(e))
    }
  }

  describe(exit: {code: number | null; signal: NodeJS.Signals | null}, complete: {complete: boolean; partialBytes: number}, hostSeconds: number): Record<string, unknown> {
    const t = this.tally
    const m = this.merger
    return {
      timeOrigin: usString(this.originHostNs > 0 ? this.originHostNs : this.startRealNs),
      timeOriginNote: 'host wall clock (unix seconds.micros) of trace time 0: when the guest first ran (vCPU 0 left the -S pause), else when QEMU loaded the plugin',
      hostSeconds: Math.round(hostSeconds * 1000) / 1000,
      qemuExit: describeExit(exit),
      ...(this.stoppedBy !== undefined ? {stoppedBy: this.stoppedBy} : {}),
      complete: complete.complete,
      ...(complete.complete ? {} : {incompleteNote: `the plugin's stream ended without its END record${complete.partialBytes > 0 ? ` (${complete.partialBytes} bytes of a cut record)` : ''}: QEMU was killed; everything received is in the trace`}),
      storesSeen: t.storesSeen,
      ioStoresSkipped: t.ioStores,
      writeRecords: t.records,
      instructions: t.instructions,
      writesWritten: t.writes,
      romStoresDropped: t.romStores,
      unmappedStoresDropped: t.unmappedStores,
      ...(m !== undefined && m.reordered > 0 ? {reorderedWrites: m.reordered, maxReorderNs: m.maxReorderNs} : {}),
      ...(t.lateLogEvents > 0 ? {lateLogEvents: t.lateLogEvents} : {}),
      ...(this.opts.durationNs !== undefined ? {durationNs: this.opts.durationNs, writesAfterDuration: t.afterDuration} : {}),
      ...(this.endRecords >= 0 ? {pluginRecords: this.endRecords} : {}),
      qemuTraceEvents: {used: Object.fromEntries(this.folder.used), unknown: Object.fromEntries(this.folder.unknown), ...(this.folder.skipped.size > 0 ? {skipped: Object.fromEntries(this.folder.skipped)} : {})},
      ...(this.folder.vfioStates.length > 0 ? {vfioMigrationStates: this.folder.vfioStates.map((s) => ({t_ns: Math.max(0, Math.round(this.clockMap.at(s.hostNs) - this.origin)), device: s.device, state: s.state}))} : {}),
    }
  }
}

