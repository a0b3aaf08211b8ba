/**
 * The guest's memory layout as QEMU reports it over QMP, for the header of a recorded trace and
 * for turning the plugin's addresses into guest-physical ones.
 *
 * Inputs (HMP through QMP `human-monitor-command`, and QMP `query-memory-devices`):
 *  - `info ramblock`: every RAM block, its idstr, host page size, ram_addr offset and used size
 *    (hmp_info_ramblock -> ram_block_format in softmmu/physmem.c);
 *  - `info mtree`: the memory-region tree; for address space "memory" each line is
 *    `START-END (prio P, TYPE): NAME` or `... alias NAME @TARGET TSTART-TEND`, addresses absolute,
 *    two spaces of indentation per level (mtree_print_mr in softmmu/memory.c). It gives where each
 *    RAM region is mapped (directly or through a RAM alias such as pc's ram-below-4g) and each
 *    region's own address in its container (MemoryRegion.addr = its start minus its parent's);
 *  - `query-memory-devices`: virtio-mem devices (memaddr, block size, region size, plugged size).
 *
 * Memslots: one per RAM mapping of address space "memory", largest first; a mapping overlapping
 * one already taken (e.g. pc.rom at 0xc0000 over ram-below-4g) is left out, as is a ROM mapping
 * overlapping RAM. ROM blocks are kept: QEMU migrates them (they count in ram.total).
 */
import type {HeaderInput} from '../trace/header.js'
import {blockId} from '../import/qemu/layout.js'
import {UserError} from '../util/errors.js'

export interface RamBlockInfo {
  /** QEMU's idstr (`pc.ram`, `0000:00:02.0/vmem0`, `/rom@etc/acpi/tables`). */
  idstr: string
  pageSize: number
  /** ram_addr of the block's first byte. */
  ramOffset: number
  used: number
}

export interface MtreeMapping {
  /** Guest-physical start and size. */
  gpa: number
  size: number
  /** The memory region mapped (a RAM region's name) and the offset in it at `gpa`. */
  region: string
  regionOffset: number
  rom: boolean
  alias: boolean
}

export interface Mtree {
  /** Mappings of RAM and ROM regions in address space "memory" (enabled ones only). */
  mappings: MtreeMapping[]
  /** MemoryRegion.addr of each RAM/ROM region (its start relative to its container). */
  regionAddr: Map<string, number>
  /** Regions of type rom (read-only for the guest). */
  romRegions: Set<string>
}

export interface VirtioMemInfo {
  id: string
  memdev: string
  memaddr: number
  blockSize: number
  maxSize: number
  size: number
  requestedSize: number
  node: number
}

const SIZE_UNITS: Record<string, number> = {B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4}
const RAMBLOCK_LINE = /^\s*(\S+)\s+(\d+(?:\.\d+)?)\s+(B|KiB|MiB|GiB|TiB)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s*$/

/** `info ramblock` (QEMU 4.0+: Block Name, PSize, Offset, Used, Total). */
export function parseInfoRamblock(text: string): RamBlockInfo[] {
  const out: RamBlockInfo[] = []
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '' || /^\s*Block Name\s/.test(line)) continue
    const m = RAMBLOCK_LINE.exec(line)
    if (m === null) throw new UserError("QEMU's `info ramblock` printed a line migtrace does not understand", {expected: 'NAME  4 KiB  0xOFFSET 0xUSED 0xTOTAL', found: JSON.stringify(line)})
    out.push({idstr: m[1]!, pageSize: Math.round(Number(m[2]) * SIZE_UNITS[m[3]!]!), ramOffset: Number.parseInt(m[4]!, 16), used: Number.parseInt(m[5]!, 16)})
  }
  if (out.length === 0) throw new UserError("QEMU's `info ramblock` listed no RAM block")
  return out
}

const MTREE_LINE = /^( *)([0-9a-fA-F]+)-([0-9a-fA-F]+) \(prio (-?\d+), ([a-z/]+)\): (.*)$/
const ALIAS = /^alias (\S+) @(\S+) ([0-9a-fA-F]+)-([0-9a-fA-F]+)/

/** `info mtree` (the tree, not -f). */
export function parseInfoMtree(text: string): Mtree {
  const mappings: MtreeMapping[] = []
  const regionAddr = new Map<string, number>()
  const romRegions = new Set<string>()
  let section = ''
  // Absolute start of the region at each depth, and whether that level is disabled.
  const starts: number[] = []
  const disabled: boolean[] = []
  for (const line of text.split(/\r?\n/)) {
    if (/^(address-space|memory-region): /.test(line)) {
      section = line
      starts.length = 0
      disabled.length = 0
      continue
    }
    const m = MTREE_LINE.exec(line)
    if (m === null) continue
    const depth = Math.max(0, (m[1]!.length - 2) >> 1)
    const start = Number.parseInt(m[2]!, 16)
    const end = Number.parseInt(m[3]!, 16)
    const type = m[5]!
    let rest = m[6]!
    const off = rest.includes('[disabled]')
    rest = rest.replace(/\s*\[disabled\]/, '').trim()
    starts[depth] = start
    disabled[depth] = off || (depth > 0 && disabled[depth - 1] === true)
    starts.length = depth + 1
    disabled.length = depth + 1
    if (type !== 'ram' && type !== 'rom' && type !== 'romd') continue
    const rom = type !== 'ram'
    const a = ALIAS.exec(rest)
    if (a === null) {
      // A region's address in its container: its absolute start minus its parent's.
      const name = rest.split(/\s+/)[0]!
      if (!regionAddr.has(name)) regionAddr.set(name, depth > 0 ? start - starts[depth - 1]! : start)
      if (rom) romRegions.add(name)
    }
    if (section !== 'address-space: memory' || disabled[depth]) continue
    const size = end - start + 1
    if (a !== null) mappings.push({gpa: start, size, region: a[2]!, regionOffset: Number.parseInt(a[3]!, 16), rom, alias: true})
    else mappings.push({gpa: start, size, region: rest.split(/\s+/)[0]!, regionOffset: 0, rom, alias: false})
  }
  return {mappings, regionAddr, romRegions}
}

/** QMP query-memory-devices: the virtio-mem devices. */
export function virtioMemDevices(reply: unknown): VirtioMemInfo[] {
  if (!Array.isArray(reply)) return []
  const out: VirtioMemInfo[] = []
  for (const d of reply as {type?: string; data?: Record<string, unknown>}[]) {
    if (d.type !== 'virtio-mem' || d.data === undefined) continue
    const x = d.data
    const memdev = String(x.memdev ?? '')
    const tail = memdev.slice(memdev.lastIndexOf('/') + 1)
    out.push({
      id: typeof x.id === 'string' && x.id !== '' ? x.id : tail,
      memdev: tail,
      memaddr: Number(x.memaddr),
      blockSize: Number(x['block-size']),
      maxSize: Number(x['max-size']),
      size: Number(x.size),
      requestedSize: Number(x['requested-size']),
      node: Number(x.node ?? 0),
    })
  }
  return out
}

/** A RAM block's memory region name: its idstr, or its last path component (`dev/vmem0` -> `vmem0`). */
function regionOf(b: RamBlockInfo, mt: Mtree): string {
  if (mt.regionAddr.has(b.idstr) || mt.mappings.some((m) => m.region === b.idstr)) return b.idstr
  const tail = b.idstr.slice(b.idstr.lastIndexOf('/') + 1)
  return tail
}

export interface LayoutBlock {
  info: RamBlockInfo
  /** Header block name ('' for a virtio-mem device's block: the header names it mem-<id>). */
  name: string
  region: string
  /** MemoryRegion.addr of the block's region (QEMU <= 8.1 adds it to the address the plugin sees). */
  regionAddr: number
  rom: boolean
  /** Index into `virtioMem` when the block backs a virtio-mem device. */
  virtioMem: number
}

export interface Slot {
  id: number
  base: number
  size: number
  block: number
  offset: number
  rom: boolean
}

export interface RecordedLayout {
  blocks: LayoutBlock[]
  slots: Slot[]
  virtioMem: VirtioMemInfo[]
  notes: string[]
}

const PAGE = 4096
const GiB = 2 ** 30
const roundUp = (v: number, a: number): number => Math.ceil(v / a) * a

export function buildLayout(ramblocks: RamBlockInfo[], mt: Mtree, vmem: VirtioMemInfo[]): RecordedLayout {
  const notes: string[] = []
  const used = new Set<string>()
  const blocks: LayoutBlock[] = ramblocks.map((info) => {
    const region = regionOf(info, mt)
    const vi = vmem.findIndex((d) => d.memdev === region)
    let name = vi >= 0 ? '' : blockId(info.idstr)
    while (name !== '' && used.has(name)) name += '_'
    used.add(name)
    return {info, name, region, regionAddr: mt.regionAddr.get(region) ?? 0, rom: mt.romRegions.has(region), virtioMem: vi}
  })
  const byRegion = new Map(blocks.map((b, i) => [b.region, i]))
  // Largest first, so the big RAM mappings win over small ones layered on top of them.
  const cands = mt.mappings
    .map((m) => ({m, block: byRegion.get(m.region)}))
    .filter((c): c is {m: MtreeMapping; block: number} => c.block !== undefined)
    .sort((x, y) => Number(x.m.rom) - Number(y.m.rom) || y.m.size - x.m.size || x.m.gpa - y.m.gpa)
  const slots: Slot[] = []
  for (const {m, block} of cands) {
    const b = blocks[block]!
    if (m.gpa % PAGE !== 0 || m.size % PAGE !== 0 || m.regionOffset % PAGE !== 0) {
      notes.push(`mapping of ${m.region} at 0x${m.gpa.toString(16)} is not page-aligned: left out`)
      continue
    }
    const size = Math.min(m.size, roundUp(b.info.used, PAGE) - m.regionOffset)
    if (size <= 0) continue
    if (slots.some((s) => m.gpa < s.base + s.size && s.base < m.gpa + size)) continue
    if (b.virtioMem >= 0) continue // the header gives the device its own block and slot
    slots.push({id: 0, base: m.gpa, size, block, offset: m.regionOffset, rom: m.rom})
  }
  // A writable block that nothing maps yet (a PCI BAR such as vga.vram: the firmware assigns BARs
  // after the layout was read; fw_cfg blobs) still holds guest-visible data that QEMU migrates:
  // it gets a guest-physical range of its own above everything else, named in the notes.
  let top = Math.max(0, ...slots.map((s) => s.base + s.size), ...vmem.map((d) => d.memaddr + d.maxSize))
  blocks.forEach((b, bi) => {
    if (b.virtioMem >= 0 || b.rom || slots.some((s) => s.block === bi)) return
    const base = roundUp(top, GiB)
    const size = roundUp(b.info.used, PAGE)
    slots.push({id: 0, base, size, block: bi, offset: 0, rom: false})
    top = base + size
    notes.push(`RAM block ${b.info.idstr} was not mapped into guest-physical memory when the recording started: given the made-up range 0x${base.toString(16)}+0x${size.toString(16)}`)
  })
  slots.sort((x, y) => x.base - y.base)
  slots.forEach((s, i) => (s.id = i))
  return {blocks, slots, virtioMem: vmem, notes}
}

const BACKING: Record<number, 'anon' | 'hugetlb-2M' | 'hugetlb-1G'> = {[PAGE]: 'anon', [2 * 1024 * 1024]: 'hugetlb-2M', [1024 * 1024 * 1024]: 'hugetlb-1G'}

/** The header's layout part: RAM blocks (ROMs included), memslots, virtio-mem devices. */
export function headerLayout(l: RecordedLayout): Pick<HeaderInput, 'ramBlocks' | 'memslots' | 'virtioMem'> {
  const ramBlocks = l.blocks
    .filter((b) => b.virtioMem < 0)
    .map((b) => {
      const backing = BACKING[b.info.pageSize] ?? 'anon'
      return {name: b.name, size: roundUp(b.info.used, Math.max(PAGE, b.info.pageSize)), backing}
    })
  const memslots = l.slots.map((s) => ({id: s.id, base: s.base, size: s.size, ramBlock: l.blocks[s.block]!.name, offset: s.offset}))
  const virtioMem = l.virtioMem.map((d) => ({
    id: d.id,
    base: d.memaddr,
    regionSize: d.maxSize,
    blockSize: d.blockSize,
    node: d.node,
    requestedSize: d.requestedSize,
    plugged: d.size > 0 ? [{gpa: d.memaddr, blocks: d.size / d.blockSize}] : 0,
  }))
  return {ramBlocks, memslots, virtioMem}
}
