/**
 * The guest layout of an imported QEMU trace: which RAM blocks exist, where each block's offsets
 * sit in guest-physical space (memslots), and the virtio-mem devices. QEMU's trace events name RAM
 * blocks by their idstr (`pc.ram`, `/rom@etc/acpi/tables`, `0000:00:02.0/vmem0`) and give offsets
 * in them, so every address goes block+offset -> memslot -> GPA.
 *
 * Sources, in order of preference: a migtrace header (--layout), the trace's own
 * kvm_set_user_memory events (memslots with their host addresses, matched to blocks through the
 * host address ram_save_page prints), the lab's config.json (machine pc, -m, virtio-mem), and last
 * the offsets seen in the trace.
 */
import type {HeaderInput, TraceHeader} from '../../trace/header.js'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

/** A header id for a QEMU RAM block idstr (ids allow letters, digits and `_ . : -`). */
export function blockId(idstr: string): string {
  const s = idstr.replace(/^\/+/, '').replace(/[^A-Za-z0-9_.:-]/g, '_')
  return s === '' ? 'block' : s
}

/** What the first pass learned about each RAM block from the trace. */
export interface BlockSeen {
  name: string
  /** End of the highest page offset seen (bytes). */
  extent: number
  /** Host address of offset 0 (ram_save_page host - offset), or -1. */
  hostBase: number
}

/** A memslot as kvm_set_user_memory last set it (size 0 = deleted). */
export interface SlotSeen {
  slot: number
  gpa: number
  size: number
  ua: number
  flags: number
}

export interface LabConfig {
  name?: string
  args: {
    machine?: string
    mem?: number
    vmem_size?: number
    vmem_requested?: number
    vmem_resize?: number | null
    ws?: number
    rate?: number
    pattern?: string
    hot?: number
    hotp?: number
    fill?: string
    seed?: number
    pfnmap?: boolean
    mode?: string
    postcopy_after?: number
    [k: string]: unknown
  }
  qemu_version?: string
  cmd_src?: string
}

export interface ResolvedLayout {
  header: TraceHeader
  /** How the layout was obtained. */
  from: 'header' | 'kvm_set_user_memory' | 'lab-config' | 'trace-offsets'
  /** Trace block idstr -> header block name (blocks not listed are unknown to the layout). */
  blockNames: Map<string, string>
  notes: string[]
}

/**
 * The ROM blocks QEMU's `pc` machine migrates besides pc.ram (-nodefaults, SeaBIOS 256 KiB):
 * pc.bios, pc.rom and the fw_cfg ACPI blobs. Their sizes add up to QEMU 7.2's ram.total
 * minus -m for the lab's runs (0x82000 bytes). Only pc.bios is mapped into guest-physical space
 * without overlapping RAM (at 4 GiB - 256 KiB); pc.rom shadows RAM at 0xc0000 and the blobs are
 * not guest-visible, so those blocks have no memslot.
 */
const PC_ROM_BLOCKS: {idstr: string; size: number; gpa?: number}[] = [
  {idstr: 'pc.bios', size: 256 * KiB, gpa: 4 * GiB - 256 * KiB},
  {idstr: 'pc.rom', size: 128 * KiB},
  {idstr: '/rom@etc/acpi/tables', size: 128 * KiB},
  {idstr: '/rom@etc/table-loader', size: 4 * KiB},
  {idstr: '/rom@etc/acpi/rsdp', size: 4 * KiB},
]

/** Low-memory split of the x86 machines (pc_init1 / pc_q35_init, gigabyte-aligned). */
function lowMem(machine: string, ram: number): number {
  if (machine.startsWith('q35')) return ram >= 0xb0000000 ? 0x80000000 : ram
  return ram >= 0xe0000000 ? 0xc0000000 : ram
}

/** Layout of a lab run from its config.json (qemu-lab/migrate.py). */
export function layoutFromLabConfig(cfg: LabConfig, seen: ReadonlyMap<string, BlockSeen>): {input: HeaderInput; blockNames: Map<string, string>; notes: string[]} {
  const a = cfg.args
  const machine = a.machine ?? 'pc'
  const ram = (a.mem ?? 1024) * MiB
  const low = lowMem(machine, ram)
  const ramBlocks: {name: string; size: number}[] = [{name: 'pc.ram', size: ram}]
  const memslots: {id: number; base: number; size: number; ramBlock: string; offset: number}[] = [{id: 0, base: 0, size: low, ramBlock: 'pc.ram', offset: 0}]
  if (ram > low) memslots.push({id: memslots.length, base: 4 * GiB, size: ram - low, ramBlock: 'pc.ram', offset: low})
  const blockNames = new Map<string, string>([['pc.ram', 'pc.ram']])
  for (const r of PC_ROM_BLOCKS) {
    const id = blockId(r.idstr)
    ramBlocks.push({name: id, size: Math.max(r.size, roundUp(seen.get(r.idstr)?.extent ?? 0, 4 * KiB))})
    blockNames.set(r.idstr, id)
    if (r.gpa !== undefined) memslots.push({id: memslots.length, base: r.gpa, size: r.size, ramBlock: id, offset: 0})
  }
  const notes: string[] = []
  const virtioMem: NonNullable<HeaderInput['virtioMem']> = []
  if ((a.vmem_size ?? 0) > 0) {
    // pc_memory_init(): device memory starts at 4 GiB + above-4G RAM, rounded up to 1 GiB.
    const above4g = ram - low
    const base = roundUp(4 * GiB + above4g, GiB)
    const memdev = memdevId(cfg.cmd_src) ?? 'vmem0'
    virtioMem.push({id: memdev, base, regionSize: (a.vmem_size ?? 0) * MiB, blockSize: 2 * MiB, requestedSize: (a.vmem_requested ?? 0) * MiB, plugged: 0})
    // virtio-mem-pci registers its memdev's RAM under the device path (vmstate_register_ram).
    for (const name of seen.keys()) if (name.endsWith(`/${memdev}`)) blockNames.set(name, `mem-${memdev}`)
    notes.push(`virtio-mem region assumed at 0x${base.toString(16)} (pc device memory after RAM), plugged 0 at trace start`)
  }
  return {input: {format: 'migtrace', version: 1, ramBlocks, memslots, virtioMem}, blockNames, notes}
}

function memdevId(cmd: string | undefined): string | undefined {
  const m = cmd === undefined ? null : /virtio-mem-pci,[^ ']*memdev=([A-Za-z0-9_.:-]+)/.exec(cmd)
  return m?.[1]
}

const roundUp = (v: number, a: number): number => Math.ceil(v / a) * a

/**
 * Layout from kvm_set_user_memory: every slot alive when the migration starts (KVM address space
 * 0; SMM's address space 1 aliases the same RAM). A slot belongs to the RAM block whose host range
 * holds its userspace address (block host bases come from ram_save_page's `host`).
 */
export function layoutFromSlots(slots: readonly SlotSeen[], seen: ReadonlyMap<string, BlockSeen>): {input: HeaderInput; blockNames: Map<string, string>; notes: string[]} {
  const blocks = [...seen.values()].filter((b) => b.hostBase >= 0).sort((x, y) => x.hostBase - y.hostBase)
  const blockNames = new Map<string, string>()
  const sizes = new Map<string, number>()
  const memslots: {id: number; base: number; size: number; ramBlock: string; offset: number}[] = []
  const notes: string[] = []
  for (const s of slots) {
    if (s.size === 0) continue
    let owner: BlockSeen | undefined
    for (const b of blocks) if (b.hostBase <= s.ua) owner = b
    let name: string
    let offset: number
    if (owner) {
      name = blockId(owner.name)
      offset = s.ua - owner.hostBase
      blockNames.set(owner.name, name)
    } else {
      // No ram_save_page told where this block lives: one block per slot.
      name = `slot${s.slot}`
      offset = 0
    }
    sizes.set(name, Math.max(sizes.get(name) ?? 0, offset + s.size))
    memslots.push({id: s.slot, base: s.gpa, size: s.size, ramBlock: name, offset})
  }
  for (const b of seen.values()) {
    const name = blockNames.get(b.name) ?? blockId(b.name)
    if (!blockNames.has(b.name)) {
      blockNames.set(b.name, name)
      notes.push(`RAM block ${b.name} is in no memslot: its pages have no guest-physical address`)
    }
    sizes.set(name, Math.max(sizes.get(name) ?? 0, roundUp(b.extent, 4 * KiB)))
  }
  const ramBlocks = [...sizes].map(([name, size]) => ({name, size: roundUp(size, 4 * KiB)}))
  return {input: {format: 'migtrace', version: 1, ramBlocks, memslots}, blockNames, notes}
}

/** Last resort: the blocks the trace names, sized by the highest offset seen, pc.ram at GPA 0. */
export function layoutFromOffsets(seen: ReadonlyMap<string, BlockSeen>): {input: HeaderInput; blockNames: Map<string, string>; notes: string[]} {
  const blockNames = new Map<string, string>()
  const ramBlocks: {name: string; size: number}[] = []
  for (const b of seen.values()) {
    const name = blockId(b.name)
    blockNames.set(b.name, name)
    ramBlocks.push({name, size: Math.max(roundUp(b.extent, 2 * MiB), 2 * MiB)})
  }
  if (ramBlocks.length === 0) ramBlocks.push({name: 'pc.ram', size: GiB})
  // pc.ram first so it sits at GPA 0 (normalizeHeader stacks blocks from 0 at 1 GiB alignment).
  ramBlocks.sort((x, y) => (x.name === 'pc.ram' ? -1 : y.name === 'pc.ram' ? 1 : 0))
  return {
    input: {format: 'migtrace', version: 1, ramBlocks},
    blockNames,
    notes: ['layout inferred from the offsets in the trace: block sizes are the highest offset seen rounded up to 2 MiB; only pc.ram has its real guest-physical addresses'],
  }
}

/**
 * Map the trace's block names onto a given header's blocks: exact name, then the sanitized id,
 * then a virtio-mem device whose id is the last path component (`0000:00:02.0/vmem0` -> `vmem0`).
 */
export function blockNamesForHeader(header: TraceHeader, seen: ReadonlyMap<string, BlockSeen>): Map<string, string> {
  const names = new Set(header.ramBlocks.map((b) => b.name))
  const explicit = (header.source?.qemuBlockNames ?? {}) as Record<string, string>
  const out = new Map<string, string>()
  for (const idstr of seen.keys()) {
    const tail = idstr.slice(idstr.lastIndexOf('/') + 1)
    const vm = header.virtioMem.find((d) => d.id === tail)
    const cand = [explicit[idstr], idstr, blockId(idstr), vm?.ramBlock].find((c) => c !== undefined && names.has(c))
    if (cand !== undefined) out.set(idstr, cand)
  }
  return out
}

/**
 * block+offset -> GPA through a header's memslots. Per block, its slots sorted by offset, scanned
 * linearly (a block has one to three slots in practice).
 */
export class OffsetMapper {
  private readonly slotsByBlock = new Map<string, {offset: number; end: number; base: number}[]>()

  constructor(header: TraceHeader) {
    for (const s of header.memslots) {
      let l = this.slotsByBlock.get(s.ramBlock)
      if (!l) this.slotsByBlock.set(s.ramBlock, (l = []))
      l.push({offset: s.offset, end: s.offset + s.size, base: s.base})
    }
    for (const l of this.slotsByBlock.values()) l.sort((x, y) => x.offset - y.offset)
  }

  /** Guest-physical address of an offset in a block, or -1 when no memslot maps it. */
  gpa(block: string, offset: number): number {
    const l = this.slotsByBlock.get(block)
    if (l === undefined) return -1
    for (let i = 0; i < l.length; i++) {
      const s = l[i]!
      if (offset >= s.offset && offset < s.end) return s.base + (offset - s.offset)
    }
    return -1
  }
}
