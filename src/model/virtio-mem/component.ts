/**
 * virtio-mem in the replay model: the devices, the guest's requests and the device's answers, the
 * discard of unplugged memory, and what migration does with it.
 * - Unplug discards (ram_block_discard_range): the pages read zero again; VFIO unmaps them
 *   (vfio_ram_discard_notify_discard). Plug notifies VFIO to map them (..._notify_populate).
 * - While a migration runs every PLUG / UNPLUG / UNPLUG_ALL (with size > 0) answers BUSY
 *   (virtio_mem_is_busy()), so the plugged bitmap is frozen.
 * - Discard-aware migration (`virtio-mem-discard-aware`, QEMU since 5.2): right after sync #1 the
 *   unplugged ranges are cleared from the migration bitmap, after a lazy CLEAR of every chunk they
 *   overlap (ramblock_dirty_bitmap_clear_discarded_pages); the older behaviour migrates them.
 * - A guest write into an unplugged block is misbehaviour (the spec leaves it undefined): it is
 *   counted, and per `virtio-mem-unplugged-write` it populates the page (KVM logs it) or is refused.
 * - A sync that newly sets migration-bitmap bits of unplugged pages is an anomaly, reported with
 *   the pages involved; sends of unplugged pages are waste (ledger cause `unplugged`).
 * - A system reset (`vmem_reset`: virtio_mem_system_reset_hold) runs virtio_mem_unplug_all: every
 *   block unplugged and discarded, the usable region shrunk to fit requested-size, unless a
 *   migration runs with memory plugged (-EBUSY: nothing changes, the guest must UNPLUG_ALL itself,
 *   which is BUSY too until the migration ends). A wake-up reset (9.2+) keeps everything.
 * Every request and answer is kept for the report.
 */
import type {EventBatch} from '../../trace/events.js'
import {K} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap, popcount32, lowestBit} from '../bitmap.js'
import type {DiscardManager, ModelComponent, PageCauseSink} from '../component.js'
import type {CauseCodes, CauseSpec} from '../causes.js'
import type {GuestMemory} from '../memory.js'
import type {MigrationBitmap} from '../qemu/migration-bitmap.js'
import {VirtioMemDevice, type UnpluggedWrite, VMEM_REQ, VMEM_REQ_NAMES, VMEM_RESP, VMEM_RESP_NAMES, VMEM_STATE_NAMES, type BlockListener} from './device.js'

export const UNPLUGGED_CAUSE: CauseSpec = {
  id: 'unplugged',
  label: 'virtio-mem memory that is not plugged: sending it is waste (the older, not discard-aware migration, or a sync that re-marked a discarded block)',
}

export {UNPLUGGED_WRITE, type UnpluggedWrite} from './device.js'

export interface VirtioMemDeps {
  layout: TraceLayout
  memory: GuestMemory
  /** Told the cause of unplugged pages' bits (the send ledger). */
  pageCauses: PageCauseSink
  causes: CauseCodes
  /** Bytes on the wire of a page with data and of a zero page: what sending an unplugged page wastes. */
  wire: {normalBytes: number; zeroBytes: number}
  mb: MigrationBitmap
  /** memory_region_clear_dirty_bitmap over global pages [a, b) (KVM CLEAR). */
  logClear(a: number, b: number): void
  lazyClear: boolean
  clearBitmapShift: number
  discardAware: boolean
  unpluggedWrite: UnpluggedWrite
}

/** Other listeners of the RamDiscardManager (VFIO): global page ranges. */
export interface PageRangeListener {
  populate(p0: number, p1: number): boolean
  discard(p0: number, p1: number): void
}

export interface VmemRequestRecord {
  tNs: number
  device: string
  request: (typeof VMEM_REQ_NAMES)[number]
  gpa: number | null
  blocks: number | null
  response: (typeof VMEM_RESP_NAMES)[number]
  state: (typeof VMEM_STATE_NAMES)[number] | null
  /** A migration was running (the device answers BUSY to state changes then). */
  duringMigration: boolean
}

export interface VmemAnomaly {
  /** dirty_sync_count of the sync. */
  sync: number
  tNs: number
  device: string
  pages: number
  /** The pages involved, as guest-physical ranges (at most 64 listed). */
  ranges: {gpa: number; pages: number}[]
}

/** Per-device counters. */
interface DevStats {
  requests: number[][]
  resizes: number
  resizesRefused: number
  resets: number
  resetsRefused: number
  resetsWakeup: number
  pluggedOverTime: {tNs: number; pluggedBytes: number}[]
  unpluggedWriteEvents: number
  /** Pages the guest wrote while unplugged (distinct). */
  unpluggedWritePages: number
  refusedWrites: number
  skippedAtSetup: number
  wastePages: number
  wasteBytes: number
  anomalyPages: number
}

const MAX_RANGES = 64

export interface VirtioMemDeviceData {
  id: string
  base: number
  regionSize: number
  blockSize: number
  blocks: number
  pluggedBytes: number
  pluggedBlocks: number
  requestedSize: number
  usableRegionSize: number
  unpluggedInaccessible: boolean
  pluggedOverTime: {tNs: number; pluggedBytes: number}[]
  /** Responses by request: requests[request][response] = count. */
  requests: Record<string, Record<string, number>>
  resizes: number
  resizesRefused: number
  /** System resets that reached the device (vmem_reset). */
  resets: number
  /** Resets during a migration with memory plugged: virtio_mem_unplug_all was -EBUSY, nothing changed. */
  resetsRefused: number
  /** Wake-ups from suspend (RESET_TYPE_WAKEUP): the memory stays plugged. */
  resetsWakeup: number
  pagesSkippedUnplugged: number
  bytesSkippedUnplugged: number
  wastePages: number
  wasteBytes: number
  unpluggedWriteEvents: number
  unpluggedWritePages: number
  refusedWrites: number
  anomalyPages: number
  /** Pages written while unplugged and not migrated: the destination discards them (not lost writes). */
  unpluggedNotMigratedPages: number
}

/** What the virtio-mem model reports (docs/vfio-virtio-mem.md). */
export interface VirtioMemData {
  discardAware: boolean
  unpluggedWrite: UnpluggedWrite
  unknownDeviceEvents: number
  devices: VirtioMemDeviceData[]
  requestLog: VmemRequestRecord[]
  anomalies: VmemAnomaly[]
}

export class VirtioMemModel implements ModelComponent<VirtioMemData>, DiscardManager {
  readonly id = 'virtio-mem'
  readonly kinds = [K.vmem_plug, K.vmem_unplug, K.vmem_unplug_all, K.vmem_state, K.vmem_resize, K.vmem_reset]
  readonly devices: VirtioMemDevice[]
  /** 1 = global page is in a virtio-mem region and its block is unplugged. */
  readonly unplugged: Bitmap
  /** Pages written while unplugged (distinct). */
  readonly writtenUnplugged: Bitmap
  listeners: PageRangeListener[] = []
  running = false
  private readonly byDevIndex = new Map<number, number>()
  private stats: DevStats[] = []
  private log: VmemRequestRecord[] = []
  private anomalies: VmemAnomaly[] = []
  /** bmap & unplugged after the last sync, over each device's words (waste and anomaly diffs). */
  private snap: Uint32Array[] = []
  private syncs = 0
  private setupDone = false
  private unknownDevice = 0
  private nowNs = 0

  private readonly unpluggedCause: number

  constructor(private readonly deps: VirtioMemDeps) {
    const {layout} = deps
    this.unpluggedCause = deps.causes.code(UNPLUGGED_CAUSE)
    this.devices = layout.header.virtioMem.map((spec) => {
      const first = layout.gpaToPage(spec.base)
      if (first < 0) throw new Error(`bug: virtio-mem ${spec.id} region is in no memslot`)
      return new VirtioMemDevice(spec, first, layout.pageSize)
    })
    layout.devices.forEach((d, i) => {
      if (d.kind === 'virtio-mem') this.byDevIndex.set(i, d.index)
    })
    this.unplugged = new Bitmap(layout.totalPages)
    this.writtenUnplugged = new Bitmap(layout.totalPages)
    const listener: BlockListener = {
      populate: (dev, b0, b1) => this.populate(dev, b0, b1),
      discard: (dev, b0, b1) => this.discard(dev, b0, b1),
    }
    for (const d of this.devices) d.listener = listener
  }

  reset(): void {
    this.unplugged.fill(false)
    this.writtenUnplugged.fill(false)
    this.running = false
    this.syncs = 0
    this.setupDone = false
    this.unknownDevice = 0
    this.log = []
    this.anomalies = []
    this.stats = this.devices.map(() => ({
      requests: VMEM_REQ_NAMES.map(() => [0, 0, 0, 0]),
      resizes: 0,
      resizesRefused: 0,
      resets: 0,
      resetsRefused: 0,
      resetsWakeup: 0,
      pluggedOverTime: [],
      unpluggedWriteEvents: 0,
      unpluggedWritePages: 0,
      refusedWrites: 0,
      skippedAtSetup: 0,
      wastePages: 0,
      wasteBytes: 0,
      anomalyPages: 0,
    }))
    const {memory} = this.deps
    this.devices.forEach((d, i) => {
      d.reset()
      // At realize the whole backend is discarded; then the trace's plugged blocks hold data.
      for (let b = 0; b < d.blocks; b++) {
        if (d.plugged[b]) continue
        const [p0, p1] = d.pagesOf(b, b + 1)
        this.unplugged.setRange(p0, p1)
        memory.nonzero.clearRange(p0, p1)
        memory.modified.clearRange(p0, p1)
      }
      this.stats[i]!.pluggedOverTime.push({tNs: 0, pluggedBytes: d.size})
    })
    this.snap = this.devices.map((d) => new Uint32Array(this.wordSpan(d)[1] - this.wordSpan(d)[0]))
  }

  private wordSpan(d: VirtioMemDevice): [number, number] {
    const [p0, p1] = d.pagesOf(0, d.blocks)
    return [p0 >>> 5, ((p1 - 1) >>> 5) + 1]
  }

  // --- RamDiscardManager side effects --------------------------------------------------------
  private populate(dev: VirtioMemDevice, b0: number, b1: number): boolean {
    const [p0, p1] = dev.pagesOf(b0, b1)
    // Pages the guest wrote while unplugged keep that content: plug does not discard again.
    for (const l of this.listeners) if (!l.populate(p0, p1)) return false
    this.unplugged.clearRange(p0, p1)
    return true
  }

  private discard(dev: VirtioMemDevice, b0: number, b1: number): void {
    const [p0, p1] = dev.pagesOf(b0, b1)
    const {memory} = this.deps
    // ram_block_discard_range: the host frees the memory, it reads zero; nothing is left for the
    // destination to miss (virtio_mem_post_load discards unplugged ranges there too).
    memory.nonzero.clearRange(p0, p1)
    memory.modified.clearRange(p0, p1)
    for (const l of this.listeners) l.discard(p0, p1)
    this.unplugged.setRange(p0, p1)
  }

  // --- events ----------------------------------------------------------------------------------
  handleEvent(b: EventBatch, i: number, now: number): void {
    this.nowNs = now
    const di = this.byDevIndex.get(b.dev[i]!)
    if (di === undefined) {
      this.unknownDevice++
      return
    }
    const d = this.devices[di]!
    const st = this.stats[di]!
    const k = b.kind[i]!
    if (k === K.vmem_resize) {
      st.resizes++
      if (!d.setRequestedSize(b.value[i]!)) st.resizesRefused++
      return
    }
    const busy = this.running
    const before = d.size
    if (k === K.vmem_reset) {
      this.systemReset(d, st, b.value[i] === 1, busy)
      if (d.size !== before) st.pluggedOverTime.push({tNs: now, pluggedBytes: d.size})
      return
    }
    let req: number
    let resp: number
    let state = -1
    const gpa = b.gpa[i]!
    const count = b.count[i]!
    if (k === K.vmem_plug || k === K.vmem_unplug) {
      req = k === K.vmem_plug ? VMEM_REQ.plug : VMEM_REQ.unplug
      resp = d.stateChange(gpa, count, req === VMEM_REQ.plug, busy)
    } else if (k === K.vmem_unplug_all) {
      req = VMEM_REQ.unplugAll
      resp = this.unplugAll(d, busy)
    } else {
      req = VMEM_REQ.state
      const a = d.stateOf(gpa, count)
      resp = a.resp
      state = a.state
    }
    st.requests[req]![resp]!++
    const hasRange = req !== VMEM_REQ.unplugAll
    this.log.push({
      tNs: now,
      device: d.id,
      request: VMEM_REQ_NAMES[req]!,
      gpa: hasRange ? gpa : null,
      blocks: hasRange ? count : null,
      response: VMEM_RESP_NAMES[resp]!,
      state: state >= 0 ? VMEM_STATE_NAMES[state]! : null,
      duringMigration: busy,
    })
    if (d.size !== before) st.pluggedOverTime.push({tNs: now, pluggedBytes: d.size})
  }

  /**
   * virtio_mem_system_reset_hold: a wake-up reset (RESET_TYPE_WAKEUP, with
   * VIRTIO_MEM_F_PERSISTENT_SUSPEND) keeps the memory; any other runs virtio_mem_unplug_all, which
   * fails with -EBUSY while a migration runs and something is plugged (virtio_mem_is_busy()): then
   * nothing changes. Otherwise every plugged block is discarded and the listeners told
   * (virtio_mem_notify_unplug_all), and the usable region shrinks to fit requested-size.
   */
  private systemReset(d: VirtioMemDevice, st: DevStats, wakeup: boolean, busy: boolean): void {
    st.resets++
    if (wakeup) {
      st.resetsWakeup++
      return
    }
    if (this.unplugAll(d, busy) === VMEM_RESP.busy) st.resetsRefused++
  }

  /**
   * virtio_mem_unplug_all: with something plugged, ram_block_discard_range over the whole backend
   * (used_length), so pages the guest wrote while unplugged are freed too, not only the plugged
   * blocks the listeners hear of.
   */
  private unplugAll(d: VirtioMemDevice, busy: boolean): number {
    const had = d.size > 0
    const resp = d.unplugAll(busy)
    if (had && resp === VMEM_RESP.ack) {
      const [p0, p1] = d.pagesOf(0, d.blocks)
      this.deps.memory.nonzero.clearRange(p0, p1)
      this.deps.memory.modified.clearRange(p0, p1)
    }
    return resp
  }

  /**
   * The engine's write guard: a guest write to page p, which lies in an unplugged block. Returns
   * whether the write takes effect (populate) or not (refuse).
   */
  guestWrite(p: number): boolean {
    const di = this.deviceOfPage(p)
    const st = this.stats[di]!
    st.unpluggedWriteEvents++
    if (this.writtenUnplugged.testAndSet(p)) st.unpluggedWritePages++
    if (this.deps.unpluggedWrite === 'refuse') {
      st.refusedWrites++
      return false
    }
    return true
  }

  private deviceOfPage(p: number): number {
    for (let i = 0; i < this.devices.length; i++) {
      const d = this.devices[i]!
      if (p >= d.firstPage && p < d.firstPage + d.blocks * d.pagesPerBlock) return i
    }
    return 0
  }

  // --- migration --------------------------------------------------------------------------------
  logStart(now: number): void {
    this.running = true
    this.setupDone = false
    this.devices.forEach((d, i) => this.stats[i]!.pluggedOverTime.push({tNs: now, pluggedBytes: d.size}))
  }

  /** The migration is over (virtio_mem_is_busy() false again). */
  logStop(now: number): void {
    if (!this.running) return
    this.running = false
    this.accountSends()
    this.devices.forEach((d, i) => this.stats[i]!.pluggedOverTime.push({tNs: now, pluggedBytes: d.size}))
  }

  afterSync(_lastStage: boolean, now: number): void {
    this.syncs++
    this.nowNs = now
    if (!this.setupDone) {
      this.setupDone = true
      if (this.deps.discardAware) this.clearDiscarded()
      else this.devices.forEach((d, i) => this.markUnpluggedCause(i))
      this.takeSnapshot()
      return
    }
    this.accountSends()
    this.findAnomalies()
    this.takeSnapshot()
  }

  /**
   * Discarded ranges leave the migration bitmap again (ramblock_dirty_bitmap_clear_discarded_pages,
   * with no lazy clear): QEMU does it after setup only on postcopy recovery (ram_dirty_bitmap_reload);
   * the model also does it at a postcopy switchover with the final-sync hole closed. Returns the
   * pages cleared.
   */
  clearDiscardedAgain(): number {
    if (!this.deps.discardAware) return 0
    this.accountSends()
    const n = this.clearDiscarded(false)
    this.takeSnapshot()
    return n
  }

  /**
   * ramblock_dirty_bitmap_clear_discarded_pages for every device: first the lazy CLEAR of every
   * chunk an unplugged range overlaps (migration_clear_memory_region_dirty_bitmap_range; this may
   * clear KVM bits of plugged pages too, which is safe: their bmap bits are still set), then clear
   * the range in bmap and subtract it from migration_dirty_pages.
   */
  private clearDiscarded(lazyClear = this.deps.lazyClear): number {
    const {mb} = this.deps
    let total = 0
    this.devices.forEach((d, i) => {
      let cleared = 0
      for (let b = 0; b < d.blocks; ) {
        if (d.plugged[b]) {
          b++
          continue
        }
        let e = b
        while (e < d.blocks && !d.plugged[e]) e++
        const [p0, p1] = d.pagesOf(b, e)
        if (lazyClear) this.clearChunks(p0, p1)
        cleared += mb.bmap.count(p0, p1)
        mb.bmap.clearRange(p0, p1)
        b = e
      }
      mb.dirtyPages -= cleared
      this.stats[i]!.skippedAtSetup += cleared
      total += cleared
    })
    return total
  }

  private clearChunks(p0: number, p1: number): void {
    const {mb, layout} = this.deps
    const chunk = 2 ** this.deps.clearBitmapShift
    const block = layout.blocks[mb.blockIndexOf(p0)]!
    const blockEnd = block.firstPage + block.pages
    for (let p = p0; p < p1; ) {
      const lo = block.firstPage + Math.floor((p - block.firstPage) / chunk) * chunk
      const a = mb.takeChunk(p)
      if (a >= 0) this.deps.logClear(a, mb.pendingChunkEnd)
      p = Math.min(lo + chunk, blockEnd)
    }
  }

  /** The older behaviour: unplugged pages stay in bmap; a re-send of one unchanged is `unplugged`. */
  private markUnpluggedCause(di: number): void {
    const {mb, pageCauses} = this.deps
    const [w0, w1] = this.wordSpan(this.devices[di]!)
    const bm = mb.bmap.words
    const un = this.unplugged.words
    for (let w = w0; w < w1; w++) {
      const v = (bm[w]! & un[w]!) >>> 0
      if (v !== 0) pageCauses.setCauseWord(w, v, this.unpluggedCause)
    }
  }

  private takeSnapshot(): void {
    const bm = this.deps.mb.bmap.words
    const un = this.unplugged.words
    this.devices.forEach((d, i) => {
      const [w0, w1] = this.wordSpan(d)
      const s = this.snap[i]!
      for (let w = w0; w < w1; w++) s[w - w0] = (bm[w]! & un[w]!) >>> 0
    })
  }

  /** Unplugged pages set in bmap at the last sync and clear now were sent: waste. */
  private accountSends(): void {
    const {mb, memory, wire} = this.deps
    const bm = mb.bmap.words
    const nz = memory.nonzero.words
    this.devices.forEach((d, i) => {
      const [w0, w1] = this.wordSpan(d)
      const s = this.snap[i]!
      const st = this.stats[i]!
      for (let w = w0; w < w1; w++) {
        const old = s[w - w0]!
        if (old === 0) continue
        const sent = (old & ~bm[w]!) >>> 0
        if (sent === 0) continue
        const n = popcount32(sent)
        const full = popcount32((sent & nz[w]!) >>> 0)
        st.wastePages += n
        st.wasteBytes += full * wire.normalBytes + (n - full) * wire.zeroBytes
        s[w - w0] = (old & ~sent) >>> 0
      }
    })
  }

  /** A sync that newly set bmap bits of unplugged pages: an anomaly, with the pages. */
  private findAnomalies(): void {
    const {mb, pageCauses, layout} = this.deps
    const bm = mb.bmap.words
    const un = this.unplugged.words
    this.devices.forEach((d, i) => {
      const [w0, w1] = this.wordSpan(d)
      const s = this.snap[i]!
      let pages = 0
      const ranges: {gpa: number; pages: number}[] = []
      let runStart = -1
      let runEnd = -1
      const flush = (): void => {
        if (runStart < 0) return
        if (ranges.length < MAX_RANGES) ranges.push({gpa: d.base + (runStart - d.firstPage) * layout.pageSize, pages: runEnd - runStart})
        runStart = -1
      }
      for (let w = w0; w < w1; w++) {
        let v = (bm[w]! & un[w]! & ~s[w - w0]!) >>> 0
        if (v === 0) continue
        pages += popcount32(v)
        while (v !== 0) {
          const p = w * 32 + lowestBit(v)
          pageCauses.setCause(p, this.unpluggedCause)
          if (p === runEnd) runEnd++
          else {
            flush()
            runStart = p
            runEnd = p + 1
          }
          v = (v & (v - 1)) >>> 0
        }
      }
      flush()
      if (pages > 0) {
        this.anomalies.push({sync: this.syncs, tNs: this.nowNs, device: d.id, pages, ranges})
        this.stats[i]!.anomalyPages += pages
      }
    })
  }

  /**
   * Pages of `modified` (written since their last send) inside unplugged blocks, in [a, b) or over
   * all devices: guest data the destination will not have, and need not, since it discards
   * unplugged memory on load (virtio_mem_post_load -> virtio_mem_restore_unplugged).
   */
  discardedStalePages(modified: {readonly words: Uint32Array; readonly size: number}): number {
    return this.unpluggedStalePages(modified, 0, modified.size)
  }

  get discardedWords(): Uint32Array {
    return this.unplugged.words
  }

  private unpluggedStalePages(modified: {readonly words: Uint32Array}, a: number, b: number): number {
    const uw = this.unplugged.words
    const mw = modified.words
    let n = 0
    const w0 = a >>> 5
    const w1 = Math.ceil(b / 32)
    for (let w = w0; w < w1; w++) {
      let x = uw[w]! & mw[w]!
      if (x === 0) continue
      if (w === w0 && (a & 31) !== 0) x &= ~((1 << (a & 31)) - 1)
      if (w === w1 - 1 && (b & 31) !== 0) x &= (1 << (b & 31)) - 1
      n += popcount32(x)
    }
    return n
  }

  data(): VirtioMemData {
    if (this.running) this.accountSends()
    const ps = this.deps.layout.pageSize
    return {
      discardAware: this.deps.discardAware,
      unpluggedWrite: this.deps.unpluggedWrite,
      unknownDeviceEvents: this.unknownDevice,
      devices: this.devices.map((d, i) => {
        const st = this.stats[i]!
        const responses: Record<string, Record<string, number>> = {}
        VMEM_REQ_NAMES.forEach((r, j) => {
          responses[r] = Object.fromEntries(VMEM_RESP_NAMES.map((n, k) => [n, st.requests[j]![k]!]))
        })
        return {
          id: d.id,
          base: d.base,
          regionSize: d.spec.regionSize,
          blockSize: d.blockSize,
          blocks: d.blocks,
          pluggedBytes: d.size,
          pluggedBlocks: d.size / d.blockSize,
          requestedSize: d.requestedSize,
          usableRegionSize: d.usableRegionSize,
          unpluggedInaccessible: d.spec.unpluggedInaccessible,
          pluggedOverTime: st.pluggedOverTime,
          requests: responses,
          resizes: st.resizes,
          resizesRefused: st.resizesRefused,
          resets: st.resets,
          resetsRefused: st.resetsRefused,
          resetsWakeup: st.resetsWakeup,
          pagesSkippedUnplugged: st.skippedAtSetup,
          bytesSkippedUnplugged: st.skippedAtSetup * ps,
          wastePages: st.wastePages,
          wasteBytes: st.wasteBytes,
          unpluggedWriteEvents: st.unpluggedWriteEvents,
          unpluggedWritePages: st.unpluggedWritePages,
          refusedWrites: st.refusedWrites,
          anomalyPages: st.anomalyPages,
          unpluggedNotMigratedPages: this.unpluggedStalePages(this.deps.memory.modified, d.firstPage, d.firstPage + d.blocks * d.pagesPerBlock),
        }
      }),
      requestLog: this.log,
      anomalies: this.anomalies,
    }
  }
}
