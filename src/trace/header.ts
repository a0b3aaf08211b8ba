/**
 * The trace header: the machine a trace was recorded on (or generated for). Validated with zod;
 * sizes and addresses accept numbers or strings with units ("4G", "0x100000000"). `normalizeHeader`
 * fills in what a real QEMU x86 guest would have where the header is silent, so everything after
 * it sees one complete shape.
 */
import {z} from 'zod'
import {UserError, showValue} from '../util/errors.js'
import {nearest} from '../util/nearest.js'
import {parseSize} from '../util/units.js'
import {HOST_PAGE_SIZE as HOST_PAGE_SIZES} from './host-page.js'

export const HEADER_FORMAT = 'migtrace'
export const HEADER_VERSION = 1

const GiB = 2 ** 30

/** A byte size: a number or a string with a unit. */
const Size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseSize(v)
  } catch (e) {
    ctx.addIssue({code: 'custom', message: e instanceof UserError ? e.reason + (e.expected ? ` (expected ${e.expected}, found ${e.found})` : '') : String(e)})
    return z.NEVER
  }
})

const Id = z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'an id of letters, digits, _ . : -')

/** How a RAM block is backed on the host; decides the host page size (what postcopy moves whole). */
export const Backing = z.enum(['anon', 'thp', 'hugetlb-2M', 'hugetlb-1G'])
export type Backing = z.infer<typeof Backing>
export const HOST_PAGE_SIZE: Record<Backing, number> = HOST_PAGE_SIZES

const RamBlock = z.strictObject({
  name: Id,
  size: Size,
  backing: Backing.default('anon'),
})

const Memslot = z.strictObject({
  id: z.number().int().nonnegative(),
  base: Size,
  size: Size,
  ramBlock: Id,
  offset: Size.default(0),
})

const PlugRange = z.strictObject({gpa: Size, blocks: z.number().int().positive()})

const VirtioMem = z.strictObject({
  id: Id,
  base: Size,
  regionSize: Size,
  blockSize: Size.default(2 * 2 ** 20),
  node: z.number().int().nonnegative().default(0),
  /** Requested size set by the host; defaults to the plugged size. */
  requestedSize: Size.optional(),
  /** Blocks plugged when the trace starts: ranges, or a byte size plugged from the region start. */
  plugged: z.union([z.array(PlugRange), Size]).default(0),
  /** VIRTIO_MEM_F_UNPLUGGED_INACCESSIBLE (on for current machine types). */
  unpluggedInaccessible: z.boolean().default(true),
})

export const DirtyTrackingCapability = z.enum(['none', 'type1', 'device'])

const VfioDevice = z.strictObject({
  id: Id,
  /** Device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING): the device reports what it wrote. */
  dmaLogging: z.boolean().default(false),
  /** Migration data the device holds: precopy initial bytes and stop-copy bytes. */
  precopyBytes: Size.default(0),
  stopCopyBytes: Size.default(0),
})

const VfioContainer = z.strictObject({
  id: Id,
  iommuPageSize: Size.default(4096),
  /** What dirty tracking the container offers: none, type1 IOMMU (pinned pages), or device logging. */
  dirtyTracking: DirtyTrackingCapability.default('type1'),
  devices: z.array(VfioDevice).default([]),
})

const DirtyTracking = z.strictObject({
  mode: z.enum(['bitmap', 'ring']).default('bitmap'),
  /** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (QEMU enables it by default since 4.0). */
  manualProtect: z.boolean().default(true),
  /** KVM_DIRTY_LOG_INITIALLY_SET (enabled with manual protect by QEMU). */
  initiallySet: z.boolean().default(true),
  /** Dirty ring entries per vCPU (a power of two), when mode is ring. */
  ringSize: z.number().int().positive().default(4096),
})

const PopulatedRange = z.strictObject({gpa: Size, len: Size})

/** Page content profiles (what pages hold: how well multifd compression does; docs/stream.md). */
export const CONTENT_PROFILES = ['random', 'text-like', 'mostly-zero'] as const
export type ContentProfile = (typeof CONTENT_PROFILES)[number]
const ContentRegion = z.strictObject({gpa: Size, len: Size, profile: z.enum(CONTENT_PROFILES)})

export const HeaderSchema = z.strictObject({
  format: z.literal(HEADER_FORMAT),
  version: z.literal(HEADER_VERSION),
  description: z.string().optional(),
  /** Guest (target) page size, TARGET_PAGE_SIZE: 4 KiB on x86. */
  pageSize: Size.default(4096),
  /** Shorthand for one RAM block `pc.ram` of this size, laid out as QEMU x86 q35 does. */
  memory: Size.optional(),
  ramBlocks: z.array(RamBlock).optional(),
  memslots: z.array(Memslot).optional(),
  vcpus: z.number().int().positive().max(4096).default(1),
  virtioMem: z.array(VirtioMem).default([]),
  vfio: z.array(VfioContainer).default([]),
  dirtyTracking: DirtyTracking.default({mode: 'bitmap', manualProtect: true, initiallySet: true, ringSize: 4096}),
  /** Guest pages that hold non-zero data at the start: all, none, or ranges. */
  populated: z.union([z.enum(['all', 'none']), z.array(PopulatedRange)]).default('all'),
  /** What the pages hold: one content profile for the whole guest, or per range (unlisted ranges: random). */
  content: z.union([z.enum(CONTENT_PROFILES), z.array(ContentRegion)]).optional(),
  /** How the guest's writers answer auto-converge's sleeps: cpu (CPU-bound) or wall (paced by wall-clock time). */
  workloadPacing: z.enum(['cpu', 'wall']).optional(),
  /** Generator provenance: the seed and spec that made the trace. */
  seed: z.number().int().optional(),
  generator: z.record(z.string(), z.unknown()).optional(),
  /** Where a real trace came from (importer name, QEMU version, command). */
  source: z.record(z.string(), z.unknown()).optional(),
  /** QEMU's observed outcome of the run (query-migrate), kept with an imported trace. */
  observed: z.record(z.string(), z.unknown()).optional(),
})

export type HeaderInput = z.input<typeof HeaderSchema>
type ParsedHeader = z.output<typeof HeaderSchema>

export interface RamBlockSpec {
  name: string
  size: number
  backing: Backing
}
export interface MemslotSpec {
  id: number
  base: number
  size: number
  ramBlock: string
  offset: number
}
export interface VirtioMemSpec {
  id: string
  base: number
  regionSize: number
  blockSize: number
  node: number
  requestedSize: number
  /** Plugged ranges at the start, as [gpa, blocks]. */
  plugged: {gpa: number; blocks: number}[]
  unpluggedInaccessible: boolean
  ramBlock: string
}
export type VfioContainerSpec = ParsedHeader['vfio'][number]
export type DirtyTrackingSpec = ParsedHeader['dirtyTracking']

/** The header after validation and defaults: every layout element explicit. */
export interface TraceHeader {
  format: typeof HEADER_FORMAT
  version: typeof HEADER_VERSION
  description?: string
  pageSize: number
  ramBlocks: RamBlockSpec[]
  memslots: MemslotSpec[]
  vcpus: number
  virtioMem: VirtioMemSpec[]
  vfio: VfioContainerSpec[]
  dirtyTracking: DirtyTrackingSpec
  populated: 'all' | 'none' | {gpa: number; len: number}[]
  content?: ContentProfile | {gpa: number; len: number; profile: ContentProfile}[]
  workloadPacing?: 'cpu' | 'wall'
  seed?: number
  generator?: Record<string, unknown>
  source?: Record<string, unknown>
  observed?: Record<string, unknown>
}

/** Parse and complete a header; errors name the field path. */
export function parseHeader(input: unknown, file?: string, line?: number): TraceHeader {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new UserError('the trace header must be a JSON object', {file, line, found: Array.isArray(input) ? 'an array' : typeof input})
  const obj = input as Record<string, unknown>
  if (obj.format !== HEADER_FORMAT)
    throw new UserError('not a migtrace header', {file, line, field: 'format', expected: `"${HEADER_FORMAT}"`, found: JSON.stringify(obj.format)})
  if (obj.version !== HEADER_VERSION)
    throw new UserError('unknown header version', {file, line, field: 'version', expected: String(HEADER_VERSION), found: JSON.stringify(obj.version)})
  const r = HeaderSchema.safeParse(input)
  if (!r.success) {
    const issue = r.error.issues[0]!
    if (issue.code === 'unrecognized_keys') {
      // A misspelt field: name it and, at the top level, the field it probably meant.
      const key = issue.keys[0]!
      const near = issue.path.length === 0 ? nearest(key, Object.keys(HeaderSchema.shape)) : undefined
      throw new UserError('unknown header field', {file, line, field: [...issue.path, key].join('.'), expected: near !== undefined ? `a header field (did you mean '${near}'?)` : 'a field of the trace format (README: the trace format)', found: showValue(key)})
    }
    const path = issue.path.join('.')
    throw new UserError(issue.message, {file, line, field: path || undefined})
  }
  try {
    return normalizeHeader(r.data)
  } catch (e) {
    if (e instanceof UserError) throw e.withLocation(file ?? '', line)
    throw e
  }
}

function fail(field: string, reason: string, expected?: string, found?: string): never {
  throw new UserError(reason, {field, expected, found})
}

const isPow2 = (v: number): boolean => v > 0 && Number.isInteger(Math.log2(v))

/**
 * Default x86 layout for a `memory` shorthand, as QEMU's q35 machine does it (pc_q35_init): when
 * RAM is at least 2.75 GiB, the first 2 GiB sit below the PCI hole at GPA 0 and the rest starts at
 * 4 GiB; otherwise all RAM is low. Each part is one KVM memslot.
 */
export function defaultX86Layout(memory: number): {ramBlocks: RamBlockSpec[]; memslots: MemslotSpec[]} {
  const ramBlocks: RamBlockSpec[] = [{name: 'pc.ram', size: memory, backing: 'anon'}]
  if (memory < 0xb0000000) return {ramBlocks, memslots: [{id: 0, base: 0, size: memory, ramBlock: 'pc.ram', offset: 0}]}
  const low = 2 * GiB
  return {
    ramBlocks,
    memslots: [
      {id: 0, base: 0, size: low, ramBlock: 'pc.ram', offset: 0},
      {id: 1, base: 4 * GiB, size: memory - low, ramBlock: 'pc.ram', offset: low},
    ],
  }
}

function normalizeHeader(h: ParsedHeader): TraceHeader {
  const pageSize = h.pageSize
  if (!isPow2(pageSize) || pageSize < 1024) fail('pageSize', 'page size must be a power of two of at least 1 KiB', undefined, String(pageSize))
  if (h.memory !== undefined && h.ramBlocks !== undefined) fail('memory', "give either 'memory' or 'ramBlocks', not both")
  let ramBlocks: RamBlockSpec[]
  let memslots: MemslotSpec[]
  if (h.ramBlocks !== undefined) {
    ramBlocks = h.ramBlocks.map((b) => ({...b}))
    memslots = h.memslots?.map((s) => ({...s})) ?? []
    if (h.memslots === undefined) {
      // One slot per block, stacked from GPA 0 upwards at 1 GiB alignment.
      let base = 0
      ramBlocks.forEach((b, i) => {
        memslots.push({id: i, base, size: b.size, ramBlock: b.name, offset: 0})
        base = Math.ceil((base + b.size) / GiB) * GiB
      })
    }
  } else {
    const def = defaultX86Layout(h.memory ?? GiB)
    ramBlocks = def.ramBlocks
    memslots = h.memslots?.map((s) => ({...s})) ?? def.memslots
  }
  if (ramBlocks.length === 0) fail('ramBlocks', 'a guest needs at least one RAM block')

  const blockNames = new Set<string>()
  ramBlocks.forEach((b, i) => {
    if (blockNames.has(b.name)) fail(`ramBlocks.${i}.name`, 'duplicate RAM block name', undefined, b.name)
    blockNames.add(b.name)
    const hps = Math.max(HOST_PAGE_SIZE[b.backing], pageSize)
    if (b.size === 0 || b.size % hps !== 0) fail(`ramBlocks.${i}.size`, 'RAM block size must be a non-zero multiple of its host page size', `a multiple of ${hps}`, String(b.size))
  })

  // virtio-mem: each device gets its own RAM block (its memory backend) and memslot unless given.
  const virtioMem: VirtioMemSpec[] = h.virtioMem.map((d, i) => {
    const f = `virtioMem.${i}`
    if (!isPow2(d.blockSize) || d.blockSize < pageSize) fail(`${f}.blockSize`, 'block size must be a power of two of at least the page size', undefined, String(d.blockSize))
    if (d.base % d.blockSize !== 0) fail(`${f}.base`, 'region base must be a multiple of the block size', `a multiple of ${d.blockSize}`, String(d.base))
    if (d.regionSize === 0 || d.regionSize % d.blockSize !== 0) fail(`${f}.regionSize`, 'region size must be a non-zero multiple of the block size', `a multiple of ${d.blockSize}`, String(d.regionSize))
    const blockName = `mem-${d.id}`
    if (!blockNames.has(blockName)) {
      ramBlocks.push({name: blockName, size: d.regionSize, backing: 'anon'})
      blockNames.add(blockName)
      if (!memslots.some((s) => s.ramBlock === blockName)) {
        const id = Math.max(-1, ...memslots.map((s) => s.id)) + 1
        memslots.push({id, base: d.base, size: d.regionSize, ramBlock: blockName, offset: 0})
      }
    }
    let plugged: {gpa: number; blocks: number}[]
    if (typeof d.plugged === 'number') {
      if (d.plugged % d.blockSize !== 0 || d.plugged > d.regionSize) fail(`${f}.plugged`, 'plugged size must be a multiple of the block size within the region', `a multiple of ${d.blockSize} up to ${d.regionSize}`, String(d.plugged))
      plugged = d.plugged > 0 ? [{gpa: d.base, blocks: d.plugged / d.blockSize}] : []
    } else {
      plugged = d.plugged.map((r, j) => {
        if (r.gpa % d.blockSize !== 0 || r.gpa < d.base || r.gpa + r.blocks * d.blockSize > d.base + d.regionSize)
          fail(`${f}.plugged.${j}`, 'plugged range must be block-aligned and inside the region')
        return {gpa: r.gpa, blocks: r.blocks}
      })
    }
    const pluggedBytes = plugged.reduce((s, r) => s + r.blocks * d.blockSize, 0)
    const requestedSize = d.requestedSize ?? pluggedBytes
    if (requestedSize % d.blockSize !== 0 || requestedSize > d.regionSize) fail(`${f}.requestedSize`, 'requested size must be a multiple of the block size within the region')
    return {id: d.id, base: d.base, regionSize: d.regionSize, blockSize: d.blockSize, node: d.node, requestedSize, plugged, unpluggedInaccessible: d.unpluggedInaccessible, ramBlock: blockName}
  })

  // Memslots: inside their block, page-aligned, not overlapping in GPA, unique ids.
  const byName = new Map(ramBlocks.map((b) => [b.name, b]))
  const ids = new Set<number>()
  memslots.forEach((s, i) => {
    const f = `memslots.${i}`
    if (ids.has(s.id)) fail(`${f}.id`, 'duplicate memslot id', undefined, String(s.id))
    ids.add(s.id)
    const b = byName.get(s.ramBlock)
    if (!b) fail(`${f}.ramBlock`, 'no RAM block of that name', [...byName.keys()].join(' or '), s.ramBlock)
    if (s.base % pageSize !== 0 || s.size % pageSize !== 0 || s.offset % pageSize !== 0) fail(f, 'memslot base, size and offset must be page-aligned')
    if (s.size === 0) fail(`${f}.size`, 'memslot size must be non-zero')
    if (s.offset + s.size > b.size) fail(f, 'memslot reaches past the end of its RAM block', `offset+size <= ${b.size}`, String(s.offset + s.size))
  })
  const sorted = [...memslots].sort((a, b) => a.base - b.base)
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!
    const cur = sorted[i]!
    if (cur.base < prev.base + prev.size) fail('memslots', `memslots ${prev.id} and ${cur.id} overlap in guest-physical space`)
  }

  const deviceIds = new Set<string>()
  const claim = (id: string, field: string) => {
    if (deviceIds.has(id)) fail(field, 'duplicate device id', undefined, id)
    deviceIds.add(id)
  }
  virtioMem.forEach((d, i) => claim(d.id, `virtioMem.${i}.id`))
  h.vfio.forEach((c, i) => {
    claim(c.id, `vfio.${i}.id`)
    if (!isPow2(c.iommuPageSize)) fail(`vfio.${i}.iommuPageSize`, 'IOMMU page size must be a power of two')
    c.devices.forEach((d, j) => claim(d.id, `vfio.${i}.devices.${j}.id`))
  })

  const dt = h.dirtyTracking
  if (dt.mode === 'ring' && !isPow2(dt.ringSize)) fail('dirtyTracking.ringSize', 'ring size must be a power of two', undefined, String(dt.ringSize))

  return {
    format: HEADER_FORMAT,
    version: HEADER_VERSION,
    ...(h.description !== undefined ? {description: h.description} : {}),
    pageSize,
    ramBlocks,
    memslots,
    vcpus: h.vcpus,
    virtioMem,
    vfio: h.vfio,
    dirtyTracking: dt,
    populated: h.populated,
    ...(h.content !== undefined ? {content: h.content} : {}),
    ...(h.workloadPacing !== undefined ? {workloadPacing: h.workloadPacing} : {}),
    ...(h.seed !== undefined ? {seed: h.seed} : {}),
    ...(h.generator !== undefined ? {generator: h.generator} : {}),
    ...(h.source !== undefined ? {source: h.source} : {}),
    ...(h.observed !== undefined ? {observed: h.observed} : {}),
  }
}

/**
 * The header as written into a trace file: the normalized shape, so a written trace carries its
 * whole layout explicitly and a round trip is byte-identical.
 */
export function serializeHeader(h: TraceHeader): Record<string, unknown> {
  return {
    format: h.format,
    version: h.version,
    ...(h.description !== undefined ? {description: h.description} : {}),
    pageSize: h.pageSize,
    ramBlocks: h.ramBlocks,
    memslots: h.memslots,
    vcpus: h.vcpus,
    virtioMem: h.virtioMem.map((d) => ({
      id: d.id,
      base: d.base,
      regionSize: d.regionSize,
      blockSize: d.blockSize,
      node: d.node,
      requestedSize: d.requestedSize,
      plugged: d.plugged,
      unpluggedInaccessible: d.unpluggedInaccessible,
    })),
    vfio: h.vfio,
    dirtyTracking: h.dirtyTracking,
    populated: h.populated,
    ...(h.content !== undefined ? {content: h.content} : {}),
    ...(h.workloadPacing !== undefined ? {workloadPacing: h.workloadPacing} : {}),
    ...(h.seed !== undefined ? {seed: h.seed} : {}),
    ...(h.generator !== undefined ? {generator: h.generator} : {}),
    ...(h.source !== undefined ? {source: h.source} : {}),
    ...(h.observed !== undefined ? {observed: h.observed} : {}),
  }
}
