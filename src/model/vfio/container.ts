/**
 * One VFIO container (an IOMMU domain) and its devices: DMA mappings iova -> gpa
 * (VFIO_IOMMU_MAP_DMA), per-page pin counts (vfio_pin_pages of a mediated device), the dirty
 * bitmap the chosen tracking keeps, and each device's migration data sizes. Every per-page flag is
 * a Bitmap over global page numbers; pin counts are a Uint16Array allocated at the first pin.
 */
import type {TraceLayout} from '../../trace/layout.js'
import type {VfioContainerSpec} from '../../trace/header.js'
import {Bitmap, popcount32, wordRangeMask} from '../bitmap.js'
import type {VfioTracking} from './tracking.js'

export interface DmaMapping {
  iova: number
  len: number
  gpa: number
}

export interface VfioDeviceState {
  id: string
  dmaLogging: boolean
  /** Precopy initial bytes not yet sent (VFIO_MIG_GET_PRECOPY_INFO precopy_init_size). */
  precopyRemaining: number
  /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (stop_copy_size). */
  stopCopyBytes: number
  precopySent: number
  stopCopySent: number
  dmaWrites: number
  dmaPages: number
  /** DMA to an iova no mapping covers (an IOMMU fault on real hardware): not applied. */
  dmaFaults: number
  stateReports: number
}

export class VfioContainer {
  readonly maps: DmaMapping[] = []
  /** Mapped and populated pages (virtio-mem blocks only while plugged). */
  readonly mapped: Bitmap
  readonly pinned: Bitmap
  /** The dirty bitmap tracking keeps (type1 per-dma bitmaps, or the devices' DMA logs). */
  readonly dirty: Bitmap
  /** Bits fetched at an unmap during tracking (VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP). */
  readonly fetched: Bitmap
  pinCount?: Uint16Array
  pinnedPages = 0
  /** The group pinned at least once (vfio_iommu_type1_pin_pages -> pinned_page_dirty_scope). */
  pinnedScope = false
  tracking = false
  devices: VfioDeviceState[]
  private lastMap = 0
  // counters
  mapsDone = 0
  unmapsDone = 0
  pinEvents = 0
  unpinEvents = 0
  unpinUnderflow = 0
  pinFaults = 0
  dirtyPagesIoctls = 0

  constructor(
    readonly spec: VfioContainerSpec,
    readonly layout: TraceLayout,
    readonly mode: VfioTracking,
  ) {
    const n = layout.totalPages
    this.mapped = new Bitmap(n)
    this.pinned = new Bitmap(n)
    this.dirty = new Bitmap(n)
    this.fetched = new Bitmap(n)
    this.devices = []
    this.reset()
  }

  get id(): string {
    return this.spec.id
  }

  reset(): void {
    this.maps.length = 0
    this.mapped.fill(false)
    this.pinned.fill(false)
    this.dirty.fill(false)
    this.fetched.fill(false)
    this.pinCount?.fill(0)
    this.pinnedPages = 0
    this.pinnedScope = false
    this.tracking = false
    this.mapsDone = this.unmapsDone = this.pinEvents = this.unpinEvents = this.unpinUnderflow = this.pinFaults = this.dirtyPagesIoctls = 0
    this.devices = this.spec.devices.map((d) => ({
      id: d.id,
      dmaLogging: d.dmaLogging,
      precopyRemaining: d.precopyBytes,
      stopCopyBytes: d.stopCopyBytes,
      precopySent: 0,
      stopCopySent: 0,
      dmaWrites: 0,
      dmaPages: 0,
      dmaFaults: 0,
      stateReports: 0,
    }))
  }

  /** iova -> gpa through the DMA mappings, or -1. */
  translate(iova: number): number {
    const maps = this.maps
    const m = maps[this.lastMap]
    if (m && iova >= m.iova && iova < m.iova + m.len) return m.gpa + (iova - m.iova)
    for (let i = 0; i < maps.length; i++) {
      const x = maps[i]!
      if (iova >= x.iova && iova < x.iova + x.len) {
        this.lastMap = i
        return x.gpa + (iova - x.iova)
      }
    }
    return -1
  }

  /** Global pages [p0, p1) of a gpa range, per memslot piece, into `out` (pairs). */
  private pageRanges(gpa: number, len: number, out: number[]): void {
    const ps = this.layout.pageSize
    let g = gpa
    const end = gpa + len
    while (g < end) {
      const slotEnd = this.layout.slotEndOf(g)
      if (slotEnd < 0) {
        g = (Math.floor(g / ps) + 1) * ps
        continue
      }
      const stop = Math.min(end, slotEnd)
      const p0 = this.layout.gpaToPage(g)
      out.push(p0, this.layout.gpaToPage(stop - 1) + 1)
      g = stop
    }
  }

  /** VFIO_IOMMU_MAP_DMA: pages become mapped unless `hidden` says they are not populated. */
  map(iova: number, len: number, gpa: number, hidden?: Bitmap): void {
    this.maps.push({iova, len, gpa})
    this.mapsDone++
    const r: number[] = []
    this.pageRanges(gpa, len, r)
    for (let i = 0; i < r.length; i += 2) {
      const p0 = r[i]!
      const p1 = r[i + 1]!
      this.mapped.setRange(p0, p1)
      if (hidden) for (let w = p0 >>> 5; w <= (p1 - 1) >>> 5; w++) this.mapped.words[w]! &= ~hidden.words[w]!
    }
  }

  /**
   * VFIO_IOMMU_UNMAP_DMA of [iova, iova+len): mappings are cut, their pages unmapped and unpinned.
   * With `fetch` (tracking on, vfio_dma_unmap_bitmap) the dirty bits of the range are kept for the
   * next sync; virtio-mem's discard path unmaps without (vfio_ram_discard_notify_discard).
   */
  unmap(iova: number, len: number, fetch: boolean): void {
    this.unmapsDone++
    const end = iova + len
    const keep: DmaMapping[] = []
    const gone: number[] = []
    for (const m of this.maps) {
      const a = Math.max(m.iova, iova)
      const b = Math.min(m.iova + m.len, end)
      if (a >= b) {
        keep.push(m)
        continue
      }
      if (m.iova < a) keep.push({iova: m.iova, len: a - m.iova, gpa: m.gpa})
      if (m.iova + m.len > b) keep.push({iova: b, len: m.iova + m.len - b, gpa: m.gpa + (b - m.iova)})
      this.pageRanges(m.gpa + (a - m.iova), b - a, gone)
    }
    this.maps.length = 0
    this.maps.push(...keep)
    this.lastMap = 0
    for (let i = 0; i < gone.length; i += 2) this.dropPages(gone[i]!, gone[i + 1]!, fetch)
  }

  /** Pages [p0, p1) leave the IOMMU: unmapped, unpinned; dirty bits fetched or dropped. */
  dropPages(p0: number, p1: number, fetch: boolean): void {
    this.mapped.clearRange(p0, p1)
    if (this.pinCount) {
      const pc = this.pinCount
      for (let p = p0; p < p1; p++) if (pc[p]! > 0) this.pinnedPages--
      pc.fill(0, p0, p1)
    }
    this.pinned.clearRange(p0, p1)
    if (fetch && this.tracking) {
      for (let w = p0 >>> 5; w <= (p1 - 1) >>> 5; w++) {
        const m = wordRangeMask(w, p0, p1)
        this.fetched.words[w]! |= this.dirty.words[w]! & m
      }
    }
    this.dirty.clearRange(p0, p1)
  }

  /** Pages [p0, p1) become populated again (virtio-mem plug): mapped where a mapping covers them. */
  repopulate(p0: number, p1: number): void {
    for (const m of this.maps) {
      const r: number[] = []
      this.pageRanges(m.gpa, m.len, r)
      for (let i = 0; i < r.length; i += 2) {
        const a = Math.max(r[i]!, p0)
        const b = Math.min(r[i + 1]!, p1)
        if (a < b) this.mapped.setRange(a, b)
      }
    }
  }

  /**
   * vfio_pin_pages / vfio_unpin_pages of `count` IOMMU pages from iova. Pins are counted per guest
   * page; while tracking, a pin marks the page dirty (vfio_iommu_type1_pin_pages). Returns pages
   * whose pinned state changed.
   */
  pin(iova: number, count: number, delta: 1 | -1): number {
    const ips = this.spec.iommuPageSize
    const ps = this.layout.pageSize
    this.pinCount ??= new Uint16Array(this.layout.totalPages)
    const pc = this.pinCount
    if (delta > 0) {
      this.pinEvents++
      this.pinnedScope = true
    } else this.unpinEvents++
    let changed = 0
    for (let j = 0; j < count; j++) {
      const gpa = this.translate(iova + j * ips)
      if (gpa < 0) {
        this.pinFaults++
        continue
      }
      const pFirst = this.layout.gpaToPage(gpa)
      if (pFirst < 0 || !this.mapped.get(pFirst)) {
        this.pinFaults++
        continue
      }
      const span = Math.max(1, Math.ceil(ips / ps))
      for (let p = pFirst; p < pFirst + span; p++) {
        const c = pc[p]!
        if (delta > 0) {
          if (c === 0xffff) continue
          pc[p] = c + 1
          if (c === 0) {
            this.pinned.set(p)
            this.pinnedPages++
            changed++
          }
          // vfio_iommu_type1_pin_pages marks pinned pages dirty while type1 tracking runs.
          if (this.tracking && this.mode !== 'device' && this.mode !== 'none') this.dirty.set(p)
        } else {
          if (c === 0) {
            this.unpinUnderflow++
            continue
          }
          pc[p] = c - 1
          if (c === 1) {
            this.pinned.clear(p)
            this.pinnedPages--
            changed++
          }
        }
      }
    }
    return changed
  }

  mappedPages(): number {
    return this.mapped.count()
  }
}

/** Set bits of a & ~b over a whole bitmap. */
export function countAndNot(a: Bitmap, b: Bitmap): number {
  let n = 0
  const aw = a.words
  const bw = b.words
  for (let w = 0; w < aw.length; w++) {
    const v = (aw[w]! & ~bw[w]!) >>> 0
    if (v !== 0) n += popcount32(v)
  }
  return n
}
