/**
 * Workloads of devices and of the guest's device drivers: a VFIO device doing DMA, a vhost-net
 * backend filling rx buffers, a virtio-mem driver plugging and unplugging blocks, and a malicious
 * guest writing where it must not.
 */
import {K, type EventBatch} from '../../trace/events.js'
import type {VirtioMemSpec} from '../../trace/header.js'
import {RateClock} from '../clock.js'
import {Permutation} from '../permutation.js'
import {fieldBits, type Track} from '../track.js'
import {REGION_PARAMS, paramError} from './common.js'
import type {WorkloadContext, WorkloadDef} from './types.js'

/** A handful of one-off events a track emits at fixed times (setup, teardown): not a hot path. */
interface FixedEvent {
  t: number
  kind: number
  dev: number
  iova?: number
  gpa?: number
  len?: number
  count?: number
}

function putFixed(out: EventBatch, n: number, e: FixedEvent): void {
  out.t[n] = e.t
  out.kind[n] = e.kind
  out.dev[n] = e.dev
  if (e.iova !== undefined) out.iova[n] = e.iova
  if (e.gpa !== undefined) out.gpa[n] = e.gpa
  if (e.len !== undefined) out.len[n] = e.len
  if (e.count !== undefined) out.count[n] = e.count
}

/**
 * Maps guest RAM into a VFIO container at iova = gpa (no vIOMMU: QEMU's vfio_listener_region_add
 * maps each RAM section at its GPA), pins a range (a mediated device's vfio_pin_pages), writes
 * pages by DMA at a rate (into the pinned range, or anywhere mapped when nothing is pinned, as an
 * IOMMU-backed passthrough device does), and unpins at unpinAt, after which it stops writing.
 */
class DmaTrack implements Track {
  readonly fields = fieldBits('dev', 'iova', 'gpa', 'len', 'count')
  private readonly setup: FixedEvent[] = []
  private readonly teardown: FixedEvent[] = []
  private setupDone = 0
  private teardownDone = 0
  private readonly clock: RateClock
  private readonly writeEnd: number

  constructor(
    private readonly ctx: WorkloadContext,
    rate: number,
    private readonly dev: number,
    private readonly targetFirst: number,
    private readonly targetPages: number,
    mapFirst: number,
    mapPages: number,
    pinFirst: number,
    pinPages: number,
    pinChunk: number,
    iommuPageSize: number,
    unpinAt: number,
    container: number,
  ) {
    const {space, start, end} = ctx
    for (const r of space.runs(mapFirst, mapPages))
      this.setup.push({t: start, kind: K.vfio_map, dev: container, iova: r.gpa, gpa: r.gpa, len: r.pages * space.pageSize})
    const perIommuPage = space.pageSize / iommuPageSize
    const unpinT = Math.min(unpinAt, end)
    for (const r of space.runs(pinFirst, pinPages)) {
      for (let done = 0; done < r.pages; done += pinChunk) {
        const pages = Math.min(pinChunk, r.pages - done)
        const iova = r.gpa + done * space.pageSize
        // Pins are container operations on the IOMMU (vfio_iommu_type1_pin_pages()).
        this.setup.push({t: start, kind: K.vfio_pin, dev: container, iova, count: pages * perIommuPage})
        if (unpinT < end) this.teardown.push({t: unpinT, kind: K.vfio_unpin, dev: container, iova, count: pages * perIommuPage})
      }
    }
    this.clock = new RateClock(start, rate)
    this.writeEnd = pinPages > 0 ? unpinT : end
  }

  fill(out: EventBatch, limit: number): boolean {
    let n = out.length
    while (n < limit && this.setupDone < this.setup.length) putFixed(out, n++, this.setup[this.setupDone++]!)
    const c = this.clock
    const {rng, space} = this.ctx
    const ps = space.pageSize
    const end = this.writeEnd
    while (n < limit && c.t < end) {
      out.t[n] = c.t
      out.kind[n] = K.vfio_dma_write
      out.dev[n] = this.dev
      out.iova[n] = space.gpaOf(this.targetFirst + rng.below(this.targetPages))
      out.len[n] = ps
      n++
      c.advance()
    }
    if (c.t >= end) while (n < limit && this.teardownDone < this.teardown.length) putFixed(out, n++, this.teardown[this.teardownDone++]!)
    out.length = n
    return this.setupDone < this.setup.length || c.t < end || this.teardownDone < this.teardown.length
  }
}

export const dmaDevice: WorkloadDef = {
  name: 'dma-device',
  summary: 'a VFIO device: maps guest RAM into its container, pins a range, writes pages by DMA at a rate, unpins',
  placement: 'device',
  params: {
    rate: {type: 'rate', default: 5000, doc: 'DMA page writes per second'},
    container: {type: 'id', doc: 'VFIO container id (default: the first in the header, else a new one, vfio0)'},
    device: {type: 'id', doc: "VFIO device id (default: the container's first device, else dev0)"},
    tracking: {type: 'enum', values: ['type1', 'device', 'none'], default: 'type1', doc: 'dirty tracking of a container this workload creates: type1 IOMMU (pinned pages), device DMA logging, or none'},
    precopyBytes: {type: 'size', default: 0, doc: 'device migration data available in precopy (new device only)'},
    stopCopyBytes: {type: 'size', default: 0, doc: 'device migration data sent at stop-copy (new device only)'},
    mapOffset: {type: 'extent', default: 0, doc: 'start of the mapped part of guest RAM'},
    mapSize: {type: 'extent', default: '100%', doc: 'size of the mapped part'},
    pinOffset: {type: 'extent', default: 0, doc: 'start of the pinned range, inside the mapped part'},
    pinSize: {type: 'extent', default: '64M', doc: 'size of the pinned range; 0 = no pins (DMA anywhere mapped)'},
    pinChunk: {type: 'int', min: 1, default: 512, doc: 'pages per vfio_pin event'},
    unpinAt: {type: 'duration', doc: 'when the device unpins and stops writing, from the workload start (default: never)'},
  },
  prepare: (hb, p) =>
    hb.vfio({
      container: p.optStr('container'),
      device: p.optStr('device'),
      tracking: p.str('tracking') as 'none' | 'type1' | 'device',
      precopyBytes: p.num('precopyBytes'),
      stopCopyBytes: p.num('stopCopyBytes'),
    }),
  create: (ctx, p, prep) => {
    const {space} = ctx
    const ps = space.pageSize
    const mapFirst = p.pages('mapOffset', space.pages, ps)
    const mapPages = Math.min(p.pages('mapSize', space.pages, ps), space.pages - mapFirst)
    if (mapPages < 1) throw paramError(ctx, 'mapSize', 'the mapped part must hold at least one page of RAM', `mapOffset < ${space.pages} pages and mapSize > 0`)
    const pinFirst = mapFirst + p.pages('pinOffset', mapPages, ps)
    const pinPages = p.pages('pinSize', mapPages, ps)
    if (pinFirst + pinPages > mapFirst + mapPages)
      throw paramError(ctx, 'pinSize', 'the pinned range must lie inside the mapped part', `pinOffset+pinSize <= ${mapPages} pages`, `${pinFirst - mapFirst + pinPages} pages`)
    const container = ctx.header.vfio.find((c) => c.id === prep.container)!
    if (container.iommuPageSize > ps) throw paramError(ctx, 'container', 'the generator needs an IOMMU page size no larger than the guest page size', `<= ${ps}`, String(container.iommuPageSize))
    const unpinAt = p.has('unpinAt') ? ctx.start + p.num('unpinAt') : Infinity
    return new DmaTrack(
      ctx,
      p.num('rate'),
      ctx.devIndex(prep.device!),
      pinPages > 0 ? pinFirst : mapFirst,
      pinPages > 0 ? pinPages : mapPages,
      mapFirst,
      mapPages,
      pinFirst,
      pinPages,
      p.num('pinChunk'),
      container.iommuPageSize,
      unpinAt,
      ctx.devIndex(prep.container!),
    )
  },
}

/** vhost-net receive path: packets written round-robin into rx buffers, logged in the vhost log. */
class VhostTrack implements Track {
  readonly fields = fieldBits('gpa', 'len')
  private readonly clock: RateClock
  private next = 0
  constructor(
    private readonly ctx: WorkloadContext,
    rate: number,
    private readonly bufferGpa: Float64Array,
    private readonly packetSize: number,
  ) {
    this.clock = new RateClock(ctx.start, rate)
  }
  fill(out: EventBatch, limit: number): boolean {
    const c = this.clock
    const end = this.ctx.end
    const bufs = this.bufferGpa
    let n = out.length
    while (n < limit && c.t < end) {
      out.t[n] = c.t
      out.kind[n] = K.vhost_write
      out.gpa[n] = bufs[this.next]!
      out.len[n] = this.packetSize
      this.next = this.next + 1 === bufs.length ? 0 : this.next + 1
      n++
      c.advance()
    }
    out.length = n
    return c.t < end
  }
}

export const vhostNet: WorkloadDef = {
  name: 'vhost-net',
  summary: 'a vhost-net backend receiving packets: vhost_write of each packet into the next rx buffer (one page each, at seeded random places in the region), round robin',
  placement: 'device',
  params: {
    rate: {type: 'rate', default: 20000, doc: 'packets per second'},
    ...REGION_PARAMS,
    buffers: {type: 'int', min: 1, default: 256, doc: 'rx buffers (pages) in the ring'},
    packetSize: {type: 'int', min: 1, default: 1500, doc: 'bytes written per packet (len of each vhost_write, at most a page)'},
  },
  create: (ctx, p) => {
    const {space, region} = ctx
    const buffers = p.num('buffers')
    if (buffers > region.pages) throw paramError(ctx, 'buffers', 'more buffers than pages in the region', `<= ${region.pages}`, String(buffers))
    if (p.num('packetSize') > space.pageSize) throw paramError(ctx, 'packetSize', 'a packet must fit in one buffer page', `<= ${space.pageSize}`, String(p.num('packetSize')))
    const perm = new Permutation(region.pages, ctx.rng)
    const gpas = new Float64Array(buffers)
    for (let i = 0; i < buffers; i++) gpas[i] = space.gpaOf(region.first + perm.at(i))
    return new VhostTrack(ctx, p.num('rate'), gpas, p.num('packetSize'))
  },
}

const VMEM_PARAMS = {
  device: {type: 'id', doc: 'virtio-mem device id (default: the first in the header, else a new one, vmem0)'},
  regionSize: {type: 'size', default: '4G', doc: 'region size of a device this workload creates'},
  plugged: {type: 'size', default: '1G', doc: 'plugged size at the start, from the region start (new device only)'},
  blockSize: {type: 'size', default: '2M', doc: 'block size (new device only)'},
} as const

function vmemOf(ctx: WorkloadContext, id: string): VirtioMemSpec {
  return ctx.header.virtioMem.find((d) => d.id === id)!
}

/**
 * The guest's virtio-mem driver and its use of the memory. The driver plugs from the lowest
 * unplugged block up and unplugs from the highest plugged block down (as Linux's driver does in
 * its sub-block mode), one request of up to `chunk` blocks per tick while its plugged size differs
 * from the host's requested size. From mig_start on every plug/unplug is answered BUSY
 * (virtio_mem_is_busy(): migration_is_running()), so the plugged size freezes and the driver keeps
 * retrying: the requests are still emitted. The host changes requested-size at resizeAt (and back
 * and forth every resizePeriod). A vCPU writes into the plugged blocks at writeRate.
 */
class VirtioMemTrack implements Track {
  readonly fields = fieldBits('dev', 'value', 'gpa', 'count', 'vcpu', 'len')
  private readonly reqClock: RateClock
  private readonly writeClock: RateClock
  private nextResize: number
  private requested: number
  private size: number
  private toggled = false

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly d: VirtioMemSpec,
    private readonly dev: number,
    requestRate: number,
    writeRate: number,
    private readonly chunk: number,
    resizeAt: number,
    private readonly resizePeriod: number,
    private readonly resizeTo: number,
    private readonly initialRequested: number,
  ) {
    this.reqClock = new RateClock(ctx.start, requestRate)
    this.writeClock = new RateClock(ctx.start, writeRate)
    this.nextResize = resizeAt
    this.requested = d.requestedSize / d.blockSize
    this.size = d.plugged.reduce((s, r) => s + r.blocks, 0)
  }

  private busy(t: number): boolean {
    return this.ctx.migrateAt !== undefined && t >= this.ctx.migrateAt
  }

  fill(out: EventBatch, limit: number): boolean {
    const {end, rng, vcpu} = this.ctx
    const bs = this.d.blockSize
    const ps = this.ctx.space.pageSize
    const pagesPerBlock = bs / ps
    let n = out.length
    while (n < limit) {
      const tr = this.nextResize
      const tq = this.reqClock.t
      const tw = this.writeClock.t
      const t = Math.min(tr, tq, tw)
      if (!(t < end)) break
      if (tr === t) {
        // Host: qom-set requested-size.
        this.toggled = !this.toggled
        const bytes = this.toggled ? this.resizeTo : this.initialRequested
        this.requested = bytes / bs
        out.t[n] = t
        out.kind[n] = K.vmem_resize
        out.dev[n] = this.dev
        out.value[n] = bytes
        n++
        this.nextResize = this.resizePeriod > 0 ? tr + this.resizePeriod : Infinity
      } else if (tq === t) {
        this.reqClock.advance()
        if (this.size === this.requested) continue
        const plug = this.size < this.requested
        const blocks = Math.min(this.chunk, Math.abs(this.requested - this.size))
        const first = plug ? this.size : this.size - blocks
        out.t[n] = t
        out.kind[n] = plug ? K.vmem_plug : K.vmem_unplug
        out.dev[n] = this.dev
        out.gpa[n] = this.d.base + first * bs
        out.count[n] = blocks
        n++
        if (!this.busy(t)) this.size += plug ? blocks : -blocks
      } else {
        this.writeClock.advance()
        if (this.size === 0) continue
        out.t[n] = t
        out.kind[n] = K.write
        out.vcpu[n] = vcpu
        out.gpa[n] = this.d.base + rng.below(this.size * pagesPerBlock) * ps
        out.len[n] = ps
        n++
      }
    }
    out.length = n
    return Math.min(this.nextResize, this.reqClock.t, this.writeClock.t) < end
  }
}

export const virtioMem: WorkloadDef = {
  name: 'virtio-mem',
  summary: 'virtio-mem churn: the host resizes, the guest driver plugs/unplugs toward the requested size (BUSY from mig_start on, still emitted), and writes into plugged memory',
  placement: 'single-vcpu',
  params: {
    ...VMEM_PARAMS,
    requestRate: {type: 'rate', default: 20, doc: 'driver requests per second while its size differs from the requested size'},
    chunk: {type: 'int', min: 1, default: 32, doc: 'blocks per plug/unplug request'},
    resizeAt: {type: 'duration', default: '100ms', doc: 'first host resize, from the workload start'},
    resizePeriod: {type: 'duration', default: 0, doc: 'if set, the host flips requested-size between resizeTo and its initial value this often'},
    resizeTo: {type: 'size', doc: 'requested size the host sets (default: half the initial requested size)'},
    writeRate: {type: 'rate', default: 1000, doc: 'vCPU writes per second into plugged blocks'},
  },
  prepare: (hb, p) => ({device: hb.virtioMem({device: p.optStr('device'), regionSize: p.num('regionSize'), plugged: p.num('plugged'), blockSize: p.num('blockSize')})}),
  create: (ctx, p, prep) => {
    const d = vmemOf(ctx, prep.device!)
    const bs = d.blockSize
    if (!(d.plugged.length === 0 || (d.plugged.length === 1 && d.plugged[0]!.gpa === d.base)))
      throw paramError(ctx, 'device', 'the virtio-mem workload needs the plugged blocks to form one range from the region start', 'plugged as a size', JSON.stringify(d.plugged))
    const resizeTo = p.optNum('resizeTo') ?? Math.floor(d.requestedSize / bs / 2) * bs
    if (resizeTo % bs !== 0 || resizeTo > d.regionSize)
      throw paramError(ctx, 'resizeTo', 'the requested size must be a multiple of the block size within the region', `a multiple of ${bs} up to ${d.regionSize}`, String(resizeTo))
    return new VirtioMemTrack(
      ctx,
      d,
      ctx.devIndex(d.id),
      p.num('requestRate'),
      p.num('writeRate'),
      p.num('chunk'),
      ctx.start + p.num('resizeAt'),
      p.num('resizePeriod'),
      resizeTo,
      d.requestedSize,
    )
  },
}

/** Writes into blocks of a virtio-mem device that are unplugged when the trace starts. */
class MaliciousTrack implements Track {
  readonly fields = fieldBits('vcpu', 'gpa', 'len')
  private readonly clock: RateClock
  constructor(
    private readonly ctx: WorkloadContext,
    rate: number,
    private readonly blockGpa: Float64Array,
    private readonly pagesPerBlock: number,
  ) {
    this.clock = new RateClock(ctx.start, rate)
  }
  fill(out: EventBatch, limit: number): boolean {
    const c = this.clock
    const {end, rng, vcpu, space} = this.ctx
    const ps = space.pageSize
    const blocks = this.blockGpa
    let n = out.length
    while (n < limit && c.t < end) {
      out.t[n] = c.t
      out.kind[n] = K.write
      out.vcpu[n] = vcpu
      out.gpa[n] = blocks[rng.below(blocks.length)]! + rng.below(this.pagesPerBlock) * ps
      out.len[n] = ps
      n++
      c.advance()
    }
    out.length = n
    return c.t < end
  }
}

export const malicious: WorkloadDef = {
  name: 'malicious',
  summary: 'a malicious guest: page writes into virtio-mem blocks that are unplugged at the start (the device spec forbids it)',
  placement: 'single-vcpu',
  params: {...VMEM_PARAMS, rate: {type: 'rate', default: 5000, doc: 'writes per second into unplugged blocks'}},
  prepare: (hb, p) => ({device: hb.virtioMem({device: p.optStr('device'), regionSize: p.num('regionSize'), plugged: p.num('plugged'), blockSize: p.num('blockSize')})}),
  create: (ctx, p, prep) => {
    const d = vmemOf(ctx, prep.device!)
    const nBlocks = d.regionSize / d.blockSize
    const plugged = new Uint8Array(nBlocks)
    for (const r of d.plugged) plugged.fill(1, (r.gpa - d.base) / d.blockSize, (r.gpa - d.base) / d.blockSize + r.blocks)
    const gpas: number[] = []
    for (let b = 0; b < nBlocks; b++) if (!plugged[b]) gpas.push(d.base + b * d.blockSize)
    if (gpas.length === 0) throw paramError(ctx, 'device', 'the virtio-mem device has no unplugged block to write into', 'plugged < regionSize', `all ${nBlocks} blocks plugged`)
    return new MaliciousTrack(ctx, p.num('rate'), Float64Array.from(gpas), d.blockSize / ctx.space.pageSize)
  },
}
