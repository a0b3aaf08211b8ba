/**
 * The plugin's store address -> guest-physical address.
 *
 * What qemu_plugin_hwaddr_phys_addr() returns for a RAM access depends on the QEMU version:
 *  - QEMU 4.2 to 8.1 (plugins/api.c): `block->offset + offset + block->mr->addr`, the RAM block's
 *    ram_addr, plus the offset in the block, plus the address of the block's memory region in its
 *    container. For pc.ram (an unmapped region reached through aliases, addr 0) that is the
 *    ram_addr, which is the GPA only when pc.ram happens to be the first block and sits below the
 *    PCI hole; with a virtio-mem device QEMU 7.2 allocates the device's block first and pc.ram's
 *    ram_addr starts at the device's size.
 *  - QEMU 8.2 and later ("plugin: Simplify struct qemu_plugin_hwaddr", 2023): the guest-physical
 *    address itself (the TLB entry's phys_addr).
 *
 * So for QEMU <= 8.1 each block covers the address range [ram_addr + mr.addr, + used size), and a
 * block offset becomes a GPA through the memslot that maps it. Stores to ROM (QEMU discards them:
 * TLB_DISCARD_WRITE is not I/O, so the plugin sees them) and to block offsets no memslot maps are
 * not guest writes to migrate; they are counted apart.
 *
 * Lookup is a binary search over disjoint ranges with a one-entry cache (stores cluster).
 */
import type {RecordedLayout} from './qemu-layout.js'

export const AddrClass = {ram: 0, rom: 1, unmapped: 2} as const

export interface Range {
  start: number
  end: number
  /** GPA of `start`, or -1. */
  gpa: number
  cls: number
}

/** Does this QEMU's plugin API return guest-physical addresses (8.2+)? */
export function pluginGivesGpa(v: {major: number; minor: number}): boolean {
  return v.major > 8 || (v.major === 8 && v.minor >= 2)
}

export class AddressMap {
  private readonly start: Float64Array
  private readonly end: Float64Array
  private readonly gpaAt: Float64Array
  private readonly cls: Uint8Array
  private last = 0
  /** Class of the last lookup (AddrClass). */
  lastClass = 0

  constructor(readonly ranges: Range[]) {
    const r = [...ranges].sort((a, b) => a.start - b.start)
    this.start = Float64Array.from(r.map((x) => x.start))
    this.end = Float64Array.from(r.map((x) => x.end))
    this.gpaAt = Float64Array.from(r.map((x) => x.gpa))
    this.cls = Uint8Array.from(r.map((x) => x.cls))
  }

  /** GPA of a plugin address, or -1 (then `lastClass` says why). */
  gpa(a: number): number {
    let i = this.last
    if (!(i < this.start.length && a >= this.start[i]! && a < this.end[i]!)) {
      let lo = 0
      let hi = this.start.length - 1
      i = -1
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1
        if (this.start[mid]! <= a) {
          i = mid
          lo = mid + 1
        } else hi = mid - 1
      }
      if (i < 0 || a >= this.end[i]!) {
        this.lastClass = AddrClass.unmapped
        return -1
      }
      this.last = i
    }
    this.lastClass = this.cls[i]!
    return this.lastClass === AddrClass.ram ? this.gpaAt[i]! + (a - this.start[i]!) : -1
  }
}

/**
 * The ranges for a layout. `gpaAddresses`: the plugin gives GPAs (QEMU 8.2+). Overlapping block
 * ranges (two blocks whose ram_addr + mr.addr windows collide) are reported in `conflicts` and the
 * overlap is left unmapped rather than guessed.
 */
export function addressRanges(l: RecordedLayout, gpaAddresses: boolean): {ranges: Range[]; conflicts: string[]} {
  const ranges: Range[] = []
  const conflicts: string[] = []
  const slotRanges = (bi: number): {off: number; size: number; gpa: number; rom: boolean}[] => {
    const b = l.blocks[bi]!
    if (b.virtioMem >= 0) {
      const d = l.virtioMem[b.virtioMem]!
      return [{off: 0, size: d.maxSize, gpa: d.memaddr, rom: false}]
    }
    return l.slots.filter((s) => s.block === bi).map((s) => ({off: s.offset, size: s.size, gpa: s.base, rom: s.rom || b.rom}))
  }
  if (gpaAddresses) {
    l.blocks.forEach((_, bi) => {
      for (const s of slotRanges(bi)) ranges.push({start: s.gpa, end: s.gpa + s.size, gpa: s.rom ? -1 : s.gpa, cls: s.rom ? AddrClass.rom : AddrClass.ram})
    })
    return {ranges, conflicts}
  }
  l.blocks.forEach((b, bi) => {
    const base = b.info.ramOffset + b.regionAddr
    const size = b.info.used
    const parts = slotRanges(bi)
      .filter((s) => s.off < size)
      .sort((x, y) => x.off - y.off)
    let cur = 0
    const push = (from: number, to: number, gpa: number, cls: number): void => {
      if (to > from) ranges.push({start: base + from, end: base + to, gpa, cls})
    }
    for (const s of parts) {
      if (s.off > cur) push(cur, s.off, -1, b.rom ? AddrClass.rom : AddrClass.unmapped)
      const end = Math.min(size, s.off + s.size)
      const from = Math.max(cur, s.off)
      push(from, end, s.rom ? -1 : s.gpa + (from - s.off), s.rom ? AddrClass.rom : AddrClass.ram)
      cur = Math.max(cur, end)
    }
    if (cur < size) push(cur, size, -1, b.rom ? AddrClass.rom : AddrClass.unmapped)
  })
  ranges.sort((a, b) => a.start - b.start)
  const out: Range[] = []
  for (const r of ranges) {
    const prev = out[out.length - 1]
    if (prev !== undefined && r.start < prev.end) {
      conflicts.push(`plugin addresses 0x${r.start.toString(16)}-0x${(Math.min(r.end, prev.end) - 1).toString(16)} belong to two RAM blocks: stores there are not attributed`)
      const overlapEnd = Math.min(r.end, prev.end)
      const cut = {...prev, end: r.start}
      out[out.length - 1] = cut
      out.push({start: r.start, end: overlapEnd, gpa: -1, cls: AddrClass.unmapped})
      if (prev.end > overlapEnd) out.push({...prev, start: overlapEnd, gpa: prev.gpa < 0 ? -1 : prev.gpa + (overlapEnd - prev.start)})
      if (r.end > overlapEnd) out.push({...r, start: overlapEnd, gpa: r.gpa < 0 ? -1 : r.gpa + (overlapEnd - r.start)})
      out.sort((a, b) => a.start - b.start)
      continue
    }
    out.push(r)
  }
  return {ranges: out.filter((r) => r.end > r.start), conflicts}
}
