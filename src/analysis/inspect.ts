/**
 * What is in a trace, in one streaming pass: counts by kind, time span, memory layout, distinct
 * guest pages written (a bitmap over the global page numbers), the write rate over time, and the
 * virtio-mem, VFIO, KVM and migration activity. Per-event work is typed-array arithmetic; nothing
 * is kept per event.
 *
 * "Written" means the gpa-addressed writers: `write` (vCPUs), `dma_write` (emulated devices) and
 * `vhost_write` (vhost backends). VFIO device DMA is addressed by iova and resolving it needs the
 * mapping state the replay model keeps, so it is counted apart (per VFIO device).
 */
import {K, KINDS, Op, type KindName} from '../trace/events.js'
import type {OpenTrace} from '../trace/read/open.js'
import type {TraceFormat} from '../trace/write/writer.js'
import {UserError} from '../util/errors.js'

export interface InspectOptions {
  /** Width of a write-rate bucket; by default chosen so the table has at most `maxBuckets` rows. */
  bucketNs?: number
  maxBuckets?: number
}

export interface RateBucket {
  startNs: number
  writes: number
  bytes: number
  /** Pages written for the first time in the trace during this bucket. */
  newPages: number
  bytesPerSecond: number
}

export interface InspectResult {
  file: string
  format: TraceFormat
  gzip: boolean
  headerFile: string
  events: number
  eventsByKind: Partial<Record<KindName, number>>
  firstNs: number
  lastNs: number
  /** lastNs - firstNs (0 for a trace with fewer than two events). */
  durationNs: number
  vcpus: number
  pageSize: number
  guestMemoryBytes: number
  totalPages: number
  memory: {
    ramBlocks: {name: string; size: number; backing: string; pages: number}[]
    memslots: {id: number; gpa: number; size: number; ramBlock: string; offset: number; pages: number; pagesWritten: number}[]
    populated: 'all' | 'none' | {gpa: number; len: number}[]
    dirtyTracking: {mode: string; ringSize?: number}
  }
  distinctPagesWritten: number
  distinctBytesWritten: number
  writes: {
    events: number
    bytes: number
    byKind: {write: {events: number; bytes: number}; dma_write: {events: number; bytes: number}; vhost_write: {events: number; bytes: number}}
    /** `write` events per vCPU index. */
    byVcpu: number[]
    /** `read` events per vCPU index. */
    readsByVcpu: number[]
  }
  writeRate: {bucketNs: number; buckets: RateBucket[]}
  virtioMem: {
    id: string
    base: number
    regionSize: number
    blockSize: number
    pluggedAtStart: number
    requestedSizeAtStart: number
    plugRequests: number
    blocksPlugRequested: number
    unplugRequests: number
    blocksUnplugRequested: number
    unplugAllRequests: number
    stateRequests: number
    resizes: number
    /** System resets that reached the device (vmem_reset), wake-ups included. */
    resets: number
    /** Requested size after the last resize (bytes), or the starting one. */
    requestedSizeAtEnd: number
  }[]
  vfio: {
    id: string
    iommuPageSize: number
    dirtyTracking: string
    maps: number
    bytesMapped: number
    unmaps: number
    bytesUnmapped: number
    pins: number
    pagesPinned: number
    unpins: number
    pagesUnpinned: number
    dirtyPages: {start: number; stop: number; get: number}
    devices: {id: string; dmaLogging: boolean; dmaWrites: number; dmaBytes: number; stateReports: number; lastPrecopyBytes: number | null; lastStopCopyBytes: number | null}[]
  }[]
  kvm: {
    getDirtyLog: number
    clearDirtyLog: number
    pagesCleared: number
    resetDirtyRings: number
    ringEntriesReset: number
    setUserMemoryRegion: number
    dirtyRingPages: number
  }
  migration: {
    /** Migration control events (everything but page_sent and mig_sync), in order; at most 1000. */
    events: {t_ns: number; kind: KindName; params?: string}[]
    syncs: number
    pagesSent: {normal: number; zero: number; xbzrle: number}
  }
}

const NICE_STEPS = [1, 2, 5]
const MAX_FINE_BUCKETS = 1 << 16
const MAX_CONTROL_EVENTS = 1000
const MAX_FIXED_BUCKETS = 10_000_000

/** Rate accumulators at a fine width, made 10x coarser whenever they would grow too long. */
class RateAccumulator {
  width: number
  writes = new Float64Array(1024)
  bytes = new Float64Array(1024)
  newPages = new Float64Array(1024)
  used = 0
  /** Time of the first event: buckets start there, so absolute (epoch) times work too. */
  origin = -1
  constructor(
    width: number,
    private readonly fixed: boolean,
  ) {
    this.width = width
  }

  slot(t: number): number {
    if (this.origin < 0) this.origin = t
    let k = Math.floor((t - this.origin) / this.width)
    while (!this.fixed && k >= MAX_FINE_BUCKETS) {
      this.coarsen(10)
      k = Math.floor((t - this.origin) / this.width)
    }
    if (k >= MAX_FIXED_BUCKETS) throw new UserError('too many write-rate buckets for this trace', {field: 'bucket', expected: `a bucket width giving at most ${MAX_FIXED_BUCKETS} buckets`, found: `${this.width} ns`})
    if (k >= this.writes.length) this.grow(k + 1)
    if (k >= this.used) this.used = k + 1
    return k
  }

  private grow(min: number): void {
    let n = this.writes.length
    while (n < min) n *= 2
    for (const key of ['writes', 'bytes', 'newPages'] as const) {
      const a = new Float64Array(n)
      a.set(this[key])
      this[key] = a
    }
  }

  coarsen(f: number): void {
    for (const key of ['writes', 'bytes', 'newPages'] as const) {
      const a = this[key]
      const out = new Float64Array(a.length)
      for (let k = 0; k < this.used; k++) {
        const j = Math.floor(k / f)
        out[j] = out[j]! + a[k]!
      }
      this[key] = out
    }
    this.used = Math.ceil(this.used / f)
    this.width *= f
  }
}

/** Smallest width of the form {1,2,5}·10^k times `base` giving at most `max` buckets over `span`. */
function niceFactor(span: number, base: number, max: number): number {
  for (let mag = 1; ; mag *= 10) {
    for (const s of NICE_STEPS) {
      const f = s * mag
      if (Math.ceil(span / (base * f)) <= max) return f
    }
  }
}

export async function inspectTrace(trace: OpenTrace, opts: InspectOptions = {}): Promise<InspectResult> {
  const {header, layout} = trace
  const nk = KINDS.length
  const byKind = new Float64Array(nk)
  const writesByVcpu = new Float64Array(header.vcpus)
  const readsByVcpu = new Float64Array(header.vcpus)
  const bitmap = new Uint32Array(Math.ceil(layout.totalPages / 32))
  const writerEvents = new Float64Array(nk)
  const writerBytes = new Float64Array(nk)
  const rate = new RateAccumulator(opts.bucketNs ?? 1000, opts.bucketNs !== undefined)
  const ps = layout.pageSize
  const ndev = layout.devices.length
  // Per device index, columns of counters (few devices; plain arrays are fine off the page loop).
  const dev = {
    a: new Float64Array(ndev), // vmem plug requests / vfio maps / device dma writes
    aSum: new Float64Array(ndev), // blocks plugged / bytes mapped / dma bytes
    b: new Float64Array(ndev), // unplug / unmaps / state reports
    bSum: new Float64Array(ndev), // blocks unplugged / bytes unmapped
    c: new Float64Array(ndev), // unplug-all / pins
    cSum: new Float64Array(ndev), // - / pages pinned
    d: new Float64Array(ndev), // state / unpins
    dSum: new Float64Array(ndev), // - / pages unpinned
    e: new Float64Array(ndev), // resizes / dirty start
    f: new Float64Array(ndev), // resets / dirty stop
    g: new Float64Array(ndev), // - / dirty get
    last1: new Float64Array(ndev).fill(-1), // requested size / precopy bytes
    last2: new Float64Array(ndev).fill(-1), // stop-copy bytes
  }
  let pagesCleared = 0
  let ringEntriesReset = 0
  const sent = {normal: 0, zero: 0, xbzrle: 0}
  const control: InspectResult['migration']['events'] = []
  let events = 0
  let distinct = 0
  let firstNs = -1
  let lastNs = 0

  for await (const b of trace.events()) {
    const n = b.length
    if (n === 0) continue
    if (firstNs < 0) {
      firstNs = b.t[0]!
      rate.origin = firstNs
    }
    lastNs = b.t[n - 1]!
    events += n
    for (let i = 0; i < n; i++) {
      const k = b.kind[i]!
      byKind[k]!++
      switch (k) {
        case K.write:
        case K.dma_write:
        case K.vhost_write: {
          const gpa = b.gpa[i]!
          const len = b.len[i]!
          writerEvents[k]!++
          writerBytes[k]! += len
          if (k === K.write) writesByVcpu[b.vcpu[i]!]!++
          const bucket = rate.slot(b.t[i]!)
          rate.writes[bucket]!++
          rate.bytes[bucket]! += len
          // The range lies inside one memslot (checked on read), so its pages are consecutive.
          const first = layout.gpaToPage(gpa)
          const pages = Math.floor(((gpa % ps) + len - 1) / ps) + 1
          let fresh = 0
          for (let p = first; p < first + pages; p++) {
            const w = p >>> 5
            const bit = 1 << (p & 31)
            if ((bitmap[w]! & bit) === 0) {
              bitmap[w] = bitmap[w]! | bit
              fresh++
            }
          }
          distinct += fresh
          rate.newPages[bucket]! += fresh
          break
        }
        case K.read:
          readsByVcpu[b.vcpu[i]!]!++
          break
        case K.vmem_plug:
          dev.a[b.dev[i]!]!++
          dev.aSum[b.dev[i]!]! += b.count[i]!
          break
        case K.vmem_unplug:
          dev.b[b.dev[i]!]!++
          dev.bSum[b.dev[i]!]! += b.count[i]!
          break
        case K.vmem_unplug_all:
          dev.c[b.dev[i]!]!++
          break
        case K.vmem_state:
          dev.d[b.dev[i]!]!++
          break
        case K.vmem_resize:
          dev.e[b.dev[i]!]!++
          dev.last1[b.dev[i]!] = b.value[i]!
          break
        case K.vmem_reset:
          dev.f[b.dev[i]!]!++
          break
        case K.vfio_map:
          dev.a[b.dev[i]!]!++
          dev.aSum[b.dev[i]!]! += b.len[i]!
          break
        case K.vfio_unmap:
          dev.b[b.dev[i]!]!++
          dev.bSum[b.dev[i]!]! += b.len[i]!
          break
        case K.vfio_pin:
          dev.c[b.dev[i]!]!++
          dev.cSum[b.dev[i]!]! += b.count[i]!
          break
        case K.vfio_unpin:
          dev.d[b.dev[i]!]!++
          dev.dSum[b.dev[i]!]! += b.count[i]!
          break
        case K.vfio_dirty_pages: {
          const op = b.op[i]!
          const d = b.dev[i]!
          if (op === Op.start) dev.e[d]!++
          else if (op === Op.stop) dev.f[d]!++
          else dev.g[d]!++
          break
        }
        case K.vfio_dma_write:
          dev.a[b.dev[i]!]!++
          dev.aSum[b.dev[i]!]! += b.len[i]!
          break
        case K.vfio_state:
          dev.b[b.dev[i]!]!++
          dev.last1[b.dev[i]!] = b.len[i]!
          dev.last2[b.dev[i]!] = b.value[i]!
          break
        case K.kvm_clear_dirty_log:
          pagesCleared += b.count[i]!
          break
        case K.kvm_reset_dirty_rings:
          if (b.count[i]! > 0) ringEntriesReset += b.count[i]!
          break
        case K.page_sent: {
          const c = b.count[i]! < 0 ? 1 : b.count[i]!
          const op = b.op[i]!
          if (op === Op.zero) sent.zero += c
          else if (op === Op.xbzrle) sent.xbzrle += c
          else sent.normal += c
          break
        }
        case K.mig_start:
        case K.mig_set:
        case K.mig_postcopy:
        case K.mig_cancel:
        case K.mig_complete:
        case K.vm_stop:
        case K.vm_start:
          if (control.length < MAX_CONTROL_EVENTS) {
            const p = b.params.get(i)
            control.push({t_ns: b.t[i]!, kind: KINDS[k]!.name, ...(p !== undefined ? {params: p} : {})})
          }
          break
        default:
          break
      }
    }
  }

  if (firstNs < 0) firstNs = 0
  if (opts.bucketNs === undefined) {
    const f = niceFactor(Math.max(lastNs - firstNs + 1, 1), rate.width, opts.maxBuckets ?? 50)
    if (f > 1) rate.coarsen(f)
  }
  // Buckets cover the whole span, writes or not, so the table is a time axis.
  const nBuckets = events > 0 ? Math.floor((lastNs - firstNs) / rate.width) + 1 : 0
  if (nBuckets > MAX_FIXED_BUCKETS) throw new UserError('too many write-rate buckets for this trace', {field: 'bucket', expected: `a bucket width giving at most ${MAX_FIXED_BUCKETS} buckets`, found: `${rate.width} ns`})
  const buckets: RateBucket[] = []
  for (let k = 0; k < nBuckets; k++) {
    buckets.push({
      startNs: firstNs + k * rate.width,
      writes: rate.writes[k] ?? 0,
      bytes: rate.bytes[k] ?? 0,
      newPages: rate.newPages[k] ?? 0,
      bytesPerSecond: ((rate.bytes[k] ?? 0) * 1e9) / rate.width,
    })
  }

  const eventsByKind: Partial<Record<KindName, number>> = {}
  KINDS.forEach((kd, code) => {
    if (byKind[code]! > 0) eventsByKind[kd.name] = byKind[code]!
  })
  const countBits = (from: number, count: number): number => {
    let c = 0
    for (let p = from; p < from + count; p++) if ((bitmap[p >>> 5]! & (1 << (p & 31))) !== 0) c++
    return c
  }
  const devIdx = (id: string): number => layout.deviceIndex.get(id)!
  const nz = (v: number): number | null => (v < 0 ? null : v)

  return {
    file: trace.path,
    format: trace.format,
    gzip: trace.gzip,
    headerFile: trace.headerFile,
    events,
    eventsByKind,
    firstNs,
    lastNs,
    durationNs: events > 0 ? lastNs - firstNs : 0,
    vcpus: header.vcpus,
    pageSize: header.pageSize,
    guestMemoryBytes: layout.guestMemoryBytes,
    totalPages: layout.totalPages,
    memory: {
      ramBlocks: layout.blocks.map((bl) => ({name: bl.name, size: bl.size, backing: bl.backing, pages: bl.pages})),
      memslots: header.memslots.map((s) => {
        const sl = layout.slotById.get(s.id)!
        return {id: s.id, gpa: s.base, size: s.size, ramBlock: s.ramBlock, offset: s.offset, pages: sl.pages, pagesWritten: countBits(sl.firstPage, sl.pages)}
      }),
      populated: header.populated,
      dirtyTracking: header.dirtyTracking.mode === 'ring' ? {mode: 'ring', ringSize: header.dirtyTracking.ringSize} : {mode: 'bitmap'},
    },
    distinctPagesWritten: distinct,
    distinctBytesWritten: distinct * ps,
    writes: {
      events: writerEvents[K.write]! + writerEvents[K.dma_write]! + writerEvents[K.vhost_write]!,
      bytes: writerBytes[K.write]! + writerBytes[K.dma_write]! + writerBytes[K.vhost_write]!,
      byKind: {
        write: {events: writerEvents[K.write]!, bytes: writerBytes[K.write]!},
        dma_write: {events: writerEvents[K.dma_write]!, bytes: writerBytes[K.dma_write]!},
        vhost_write: {events: writerEvents[K.vhost_write]!, bytes: writerBytes[K.vhost_write]!},
      },
      byVcpu: Array.from(writesByVcpu),
      readsByVcpu: Array.from(readsByVcpu),
    },
    writeRate: {bucketNs: rate.width, buckets},
    virtioMem: header.virtioMem.map((v) => {
      const d = devIdx(v.id)
      return {
        id: v.id,
        base: v.base,
        regionSize: v.regionSize,
        blockSize: v.blockSize,
        pluggedAtStart: v.plugged.reduce((s, r) => s + r.blocks * v.blockSize, 0),
        requestedSizeAtStart: v.requestedSize,
        plugRequests: dev.a[d]!,
        blocksPlugRequested: dev.aSum[d]!,
        unplugRequests: dev.b[d]!,
        blocksUnplugRequested: dev.bSum[d]!,
        unplugAllRequests: dev.c[d]!,
        stateRequests: dev.d[d]!,
        resizes: dev.e[d]!,
        resets: dev.f[d]!,
        requestedSizeAtEnd: dev.last1[d]! < 0 ? v.requestedSize : dev.last1[d]!,
      }
    }),
    vfio: header.vfio.map((c) => {
      const d = devIdx(c.id)
      return {
        id: c.id,
        iommuPageSize: c.iommuPageSize,
        dirtyTracking: c.dirtyTracking,
        maps: dev.a[d]!,
        bytesMapped: dev.aSum[d]!,
        unmaps: dev.b[d]!,
        bytesUnmapped: dev.bSum[d]!,
        pins: dev.c[d]!,
        pagesPinned: dev.cSum[d]!,
        unpins: dev.d[d]!,
        pagesUnpinned: dev.dSum[d]!,
        dirtyPages: {start: dev.e[d]!, stop: dev.f[d]!, get: dev.g[d]!},
        devices: c.devices.map((v) => {
          const x = devIdx(v.id)
          return {id: v.id, dmaLogging: v.dmaLogging, dmaWrites: dev.a[x]!, dmaBytes: dev.aSum[x]!, stateReports: dev.b[x]!, lastPrecopyBytes: nz(dev.last1[x]!), lastStopCopyBytes: nz(dev.last2[x]!)}
        }),
      }
    }),
    kvm: {
      getDirtyLog: byKind[K.kvm_get_dirty_log]!,
      clearDirtyLog: byKind[K.kvm_clear_dirty_log]!,
      pagesCleared,
      resetDirtyRings: byKind[K.kvm_reset_dirty_rings]!,
      ringEntriesReset,
      setUserMemoryRegion: byKind[K.kvm_set_user_memory_region]!,
      dirtyRingPages: byKind[K.kvm_dirty_ring_page]!,
    },
    migration: {events: control, syncs: byKind[K.mig_sync]!, pagesSent: sent},
  }
}
