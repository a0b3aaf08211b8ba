/**
 * The guest memory layout derived from a header: RAM blocks laid out in ram_addr space, memslots
 * mapping guest-physical ranges onto them, and the device table. The model indexes every page by
 * its *global page number* = ram_addr / pageSize (QEMU indexes its dirty bitmaps by ram_addr the
 * same way: `ram_list.dirty_memory[]`, `rb->bmap`).
 */
import type {TraceHeader} from './header.js'
import {HOST_PAGE_SIZE} from './host-page.js'

export interface BlockLayout {
  index: number
  name: string
  size: number
  pages: number
  /** Global page number of the block's first page (its ram_addr / pageSize). */
  firstPage: number
  /** Host page size: what postcopy places whole, and what a huge-page fault waits for. */
  hostPageSize: number
  backing: TraceHeader['ramBlocks'][number]['backing']
}

export interface SlotLayout {
  id: number
  gpaStart: number
  gpaEnd: number
  block: number
  /** Global page number of the slot's first page. */
  firstPage: number
  pages: number
}

export type DeviceKind = 'virtio-mem' | 'vfio-container' | 'vfio-device'

export interface DeviceEntry {
  id: string
  kind: DeviceKind
  /** Index in header.virtioMem or header.vfio (container); for a device, its container. */
  index: number
  /** For vfio-device: index in its container's devices. */
  subIndex: number
}

/** TraceLayout.pageSpanEnd with the page size given: the form hot loops call with a local. */
export function pageSpanEnd(gpa: number, len: number, p0: number, pageSize: number): number {
  return len > 0 ? p0 + Math.floor(((gpa % pageSize) + len - 1) / pageSize) + 1 : p0 + 1
}

/** Largest page-lookup table TraceLayout builds (8 bytes an entry). */
export const GRANULE_TABLE_MAX = 4096

/** A granulePage entry: the granule holds a memslot edge (part slot, part another or none): ask gpaToPage. */
export const GRANULE_MIXED = -2

/** TraceLayout.granule and granulePage for sorted, non-overlapping, page-aligned memslots. */
function granuleTable(slots: readonly SlotLayout[], pageSize: number): [number, Float64Array] {
  // The largest power of two (at most 2^52) dividing every non-zero bound: each granule then lies
  // in one memslot or in none.
  let granule = 2 ** 52
  for (const s of slots)
    for (const x of [s.gpaStart, s.gpaEnd]) while (x !== 0 && granule > pageSize && x % granule !== 0) granule /= 2
  const end = slots.length > 0 ? slots[slots.length - 1]!.gpaEnd : 0
  // Bounds on small alignments (every QEMU capture: pc.ram's memslot is 1 GiB + 8 KiB, the ROM
  // slots 4 KiB): the smallest larger granule that keeps the table within GRANULE_TABLE_MAX; the
  // few granules that then hold a slot edge are GRANULE_MIXED.
  while (Math.ceil(end / granule) > GRANULE_TABLE_MAX) granule *= 2
  const table = new Float64Array(Math.ceil(end / granule)).fill(-1)
  for (const s of slots) {
    const j1 = Math.ceil(s.gpaEnd / granule)
    for (let j = Math.floor(s.gpaStart / granule); j < j1; j++) {
      const a = j * granule
      table[j] = a >= s.gpaStart && a + granule <= s.gpaEnd ? s.firstPage + (a - s.gpaStart) / pageSize : GRANULE_MIXED
    }
  }
  return [granule, table]
}

export class TraceLayout {
  readonly pageSize: number
  readonly pageShift: number
  readonly blocks: BlockLayout[]
  /** Memslots sorted by guest-physical base. */
  readonly slots: SlotLayout[]
  readonly slotById: Map<number, SlotLayout>
  readonly totalPages: number
  readonly guestMemoryBytes: number
  /** Guest RAM in pages (the sum over blocks; totalPages also counts the 64-page alignment gaps). */
  readonly guestPages: number
  readonly devices: DeviceEntry[]
  readonly deviceIndex: Map<string, number>
  /** Sorted slot bounds for the address lookup (parallel arrays: no object walk in hot paths). */
  private readonly slotStart: Float64Array
  private readonly slotEnd: Float64Array
  private readonly slotFirstPage: Float64Array
  private lastSlot = 0
  /**
   * gpaToPage as a table (hot loops): guest-physical space cut in granules of `granule` bytes, the
   * largest power of two that divides every memslot's base and end when that gives at most
   * GRANULE_TABLE_MAX granules, else the smallest power of two above it that does;
   * `granulePage[j]` is the global page of granule j's first byte when the granule lies in one
   * memslot, -1 in a hole, GRANULE_MIXED when it holds a memslot edge (only with the larger
   * granule). gpaToPage(gpa) = granulePage[j] + floor((gpa - j * granule) / pageSize) with
   * j = floor(gpa / granule), when 0 <= j < granulePage.length (else -1) and the entry is not
   * GRANULE_MIXED: no comparison with a memslot's bounds, so no mispredicted branch when writes hop
   * between memslots (a guest above 4 GiB has two RAM slots, and random writes alternate between
   * them). Empty only without memslots.
   */
  readonly granule: number
  readonly granulePage: Float64Array

  constructor(readonly header: TraceHeader) {
    this.pageSize = header.pageSize
    this.pageShift = Math.log2(header.pageSize)
    let next = 0
    this.blocks = header.ramBlocks.map((b, index) => {
      const pages = b.size / header.pageSize
      const block: BlockLayout = {
        index,
        name: b.name,
        size: b.size,
        pages,
        firstPage: next,
        hostPageSize: Math.max(HOST_PAGE_SIZE[b.backing], header.pageSize),
        backing: b.backing,
      }
      // Blocks start on 64-page boundaries, so each block's bitmap words are its own
      // (QEMU's fast path in physical_memory_sync_dirty_bitmap needs the same alignment).
      next += Math.ceil(pages / 64) * 64
      return block
    })
    this.totalPages = next
    this.guestMemoryBytes = header.ramBlocks.reduce((s, b) => s + b.size, 0)
    this.guestPages = this.blocks.reduce((s, b) => s + b.pages, 0)
    const blockByName = new Map(this.blocks.map((b) => [b.name, b]))
    this.slots = header.memslots
      .map((s) => {
        const block = blockByName.get(s.ramBlock)!
        return {
          id: s.id,
          gpaStart: s.base,
          gpaEnd: s.base + s.size,
          block: block.index,
          firstPage: block.firstPage + s.offset / header.pageSize,
          pages: s.size / header.pageSize,
        }
      })
      .sort((a, b) => a.gpaStart - b.gpaStart)
    this.slotById = new Map(this.slots.map((s) => [s.id, s]))
    this.slotStart = Float64Array.from(this.slots, (s) => s.gpaStart)
    this.slotEnd = Float64Array.from(this.slots, (s) => s.gpaEnd)
    this.slotFirstPage = Float64Array.from(this.slots, (s) => s.firstPage)
    ;[this.granule, this.granulePage] = granuleTable(this.slots, header.pageSize)

    this.devices = []
    header.virtioMem.forEach((d, i) => this.devices.push({id: d.id, kind: 'virtio-mem', index: i, subIndex: -1}))
    header.vfio.forEach((c, i) => {
      this.devices.push({id: c.id, kind: 'vfio-container', index: i, subIndex: -1})
      c.devices.forEach((d, j) => this.devices.push({id: d.id, kind: 'vfio-device', index: i, subIndex: j}))
    })
    this.deviceIndex = new Map(this.devices.map((d, i) => [d.id, i]))
  }

  /** Index into `slots` of the memslot holding gpa, or -1. */
  slotIndexOf(gpa: number): number {
    const n = this.slotStart.length
    let i = this.lastSlot
    if (i < n && gpa >= this.slotStart[i]! && gpa < this.slotEnd[i]!) return i
    // Few slots in practice: a binary search keeps pathological layouts fast too.
    let lo = 0
    let hi = n - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (gpa < this.slotStart[mid]!) hi = mid - 1
      else if (gpa >= this.slotEnd[mid]!) lo = mid + 1
      else {
        this.lastSlot = mid
        return mid
      }
    }
    i = -1
    return i
  }

  /** Guest-physical start of memslot index i (slotIndexOf's order). */
  slotStartAt(i: number): number {
    return this.slotStart[i]!
  }

  /** Guest-physical end (exclusive) of memslot index i. */
  slotEndAt(i: number): number {
    return this.slotEnd[i]!
  }

  /** Global page number of the first page of memslot index i. */
  slotFirstPageAt(i: number): number {
    return this.slotFirstPage[i]!
  }

  /** Global page number of the page holding gpa, or -1 when gpa is in no memslot. */
  gpaToPage(gpa: number): number {
    const i = this.slotIndexOf(gpa)
    if (i < 0) return -1
    return this.slotFirstPage[i]! + Math.floor((gpa - this.slotStart[i]!) / this.pageSize)
  }

  /**
   * End (exclusive) of the global pages an access of `len` bytes at `gpa` touches, from its first
   * page p0 = gpaToPage(gpa): [p0, end). A zero length touches one page. The one place the
   * address-and-length to page-span rule lives.
   */
  pageSpanEnd(gpa: number, len: number, p0: number): number {
    return pageSpanEnd(gpa, len, p0, this.pageSize)
  }

  /** End (exclusive) of the memslot holding gpa, or -1. */
  slotEndOf(gpa: number): number {
    const i = this.slotIndexOf(gpa)
    return i < 0 ? -1 : this.slotEnd[i]!
  }

  /** Block holding a global page number (blocks are few; a linear walk is fine off hot paths). */
  blockOfPage(page: number): BlockLayout | undefined {
    for (const b of this.blocks) if (page >= b.firstPage && page < b.firstPage + b.pages) return b
    return undefined
  }

  /** Guest-physical address of a global page, through the first memslot that maps it, or -1. */
  pageToGpa(page: number): number {
    for (const s of this.slots) if (page >= s.firstPage && page < s.firstPage + s.pages) return s.gpaStart + (page - s.firstPage) * this.pageSize
    return -1
  }

  device(id: string): DeviceEntry | undefined {
    const i = this.deviceIndex.get(id)
    return i === undefined ? undefined : this.devices[i]
  }
}
