/**
 * Builds the generated trace's header: the spec's machine fields, plus the VFIO containers and
 * virtio-mem devices that workloads ask for, plus the seed, the spec and the populated ranges.
 */
import {parseHeader, serializeHeader, type TraceHeader} from '../trace/header.js'
import {UserError} from '../util/errors.js'
import type {HeaderBuilder} from './workloads/types.js'

const GiB = 2 ** 30

type Obj = Record<string, unknown>

export class SynthHeaderBuilder implements HeaderBuilder {
  readonly ramBytes: number
  readonly ramEndGpa: number
  readonly pageSize: number
  private readonly draft: Obj
  private readonly vmemBlocks: Set<string>

  constructor(
    fields: Obj,
    private readonly origin: string | undefined,
  ) {
    const base = this.parse({...fields})
    this.draft = serializeHeader(base)
    this.pageSize = base.pageSize
    this.vmemBlocks = new Set(base.virtioMem.map((d) => d.ramBlock))
    this.ramBytes = base.ramBlocks.filter((b) => !this.vmemBlocks.has(b.name)).reduce((s, b) => s + b.size, 0)
    this.ramEndGpa = Math.max(0, ...base.memslots.map((s) => s.base + s.size))
  }

  private parse(fields: Obj): TraceHeader {
    try {
      return parseHeader({format: 'migtrace', version: 1, ...fields})
    } catch (e) {
      if (e instanceof UserError && this.origin !== undefined) throw e.withLocation(this.origin)
      throw e
    }
  }

  private list(key: 'vfio' | 'virtioMem'): Obj[] {
    return this.draft[key] as Obj[]
  }

  vfio(opts: {container?: string; device?: string; tracking: 'none' | 'type1' | 'device'; stopCopyBytes: number; precopyBytes: number}): {container: string; device: string} {
    const containers = this.list('vfio')
    let c = opts.container !== undefined ? containers.find((x) => x.id === opts.container) : containers[0]
    if (!c) {
      c = {id: opts.container ?? 'vfio0', iommuPageSize: this.pageSize, dirtyTracking: opts.tracking, devices: []}
      containers.push(c)
    }
    const devices = c.devices as Obj[]
    let d = opts.device !== undefined ? devices.find((x) => x.id === opts.device) : devices[0]
    if (!d) {
      d = {id: opts.device ?? (devices.length === 0 ? 'dev0' : `dev${devices.length}`), dmaLogging: c.dirtyTracking === 'device', precopyBytes: opts.precopyBytes, stopCopyBytes: opts.stopCopyBytes}
      devices.push(d)
    }
    return {container: c.id as string, device: d.id as string}
  }

  virtioMem(opts: {device?: string; regionSize: number; plugged: number; blockSize: number}): string {
    const devs = this.list('virtioMem')
    const found = opts.device !== undefined ? devs.find((x) => x.id === opts.device) : devs[0]
    if (found) return found.id as string
    // Memory devices go in the device-memory region above RAM (and above 4 GiB on x86), like
    // QEMU's pc_memory_init places its hotplug area; each new one starts on the next GiB.
    const taken = [...(this.draft.memslots as Obj[]).map((s) => (s.base as number) + (s.size as number)), ...devs.map((d) => (d.base as number) + (d.regionSize as number))]
    const base = Math.ceil(Math.max(4 * GiB, ...taken) / GiB) * GiB
    devs.push({id: opts.device ?? 'vmem0', base, regionSize: opts.regionSize, blockSize: opts.blockSize, plugged: opts.plugged})
    return (devs[devs.length - 1]!.id as string)
  }

  /** The final header, with the spec's populated share and provenance. */
  finish(extra: {populated: number | 'all' | 'none' | unknown[]; seed: number; generator: Obj; description?: string}): TraceHeader {
    const draft: Obj = {...this.draft}
    delete draft.format
    delete draft.version
    // The draft's populated came from the first parse (default 'all'); set the spec's now.
    if (typeof extra.populated !== 'number') draft.populated = extra.populated
    draft.seed = extra.seed
    draft.generator = extra.generator
    if (extra.description !== undefined) draft.description = extra.description
    const h = this.parse(draft)
    if (typeof extra.populated === 'number') h.populated = populatedRanges(h, extra.populated)
    return h
  }
}

/**
 * Ranges holding data at the start for a share f of guest RAM: the first f of every RAM memslot
 * (virtio-mem regions are left to their plugged state). 1 is 'all', 0 is 'none'.
 */
function populatedRanges(h: TraceHeader, f: number): TraceHeader['populated'] {
  if (f >= 1) return 'all'
  if (f <= 0) return 'none'
  const vmem = new Set(h.virtioMem.map((d) => d.ramBlock))
  const ranges: {gpa: number; len: number}[] = []
  for (const s of h.memslots) {
    if (vmem.has(s.ramBlock)) continue
    const len = Math.floor((s.size * f) / h.pageSize) * h.pageSize
    if (len > 0) ranges.push({gpa: s.base, len})
  }
  return ranges.length > 0 ? ranges : 'none'
}
