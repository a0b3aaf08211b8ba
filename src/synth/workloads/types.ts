/**
 * What a workload is: a name, a parameter table, where it runs (on each vCPU, on one vCPU, or as a
 * device), what it adds to the header (a VFIO container, a virtio-mem device), and a factory for
 * its track.
 */
import type {TraceHeader} from '../../trace/header.js'
import type {TraceLayout} from '../../trace/layout.js'
import type {PageSpace} from '../page-space.js'
import type {ParamTable, Params} from '../params.js'
import type {Rng} from '../prng.js'
import type {Track} from '../track.js'

/**
 * - per-vcpu: one instance on each of the entry's vCPUs; `rate` is split evenly between them and
 *   partitioned workloads (sequential, once) split the region into one slice each;
 * - single-vcpu: one instance on one vCPU (the guest side of a device driver);
 * - device: one instance with no vCPU (DMA and vhost writes).
 */
export type Placement = 'per-vcpu' | 'single-vcpu' | 'device'

export interface Region {
  /** First page (in the PageSpace) and number of pages. */
  first: number
  pages: number
}

export interface WorkloadContext {
  header: TraceHeader
  layout: TraceLayout
  space: PageSpace
  rng: Rng
  /** vCPU index, or -1 for a device workload. */
  vcpu: number
  /** Active window of this instance, ns: events fall in [start, end). */
  start: number
  end: number
  /** When migration starts (the mig_start time), if the trace has one. */
  migrateAt: number | undefined
  /** This instance's region of the page space (its slice, for partitioned workloads). */
  region: Region
  /** Field path of the workload's params, for error messages ("workloads.0.params"). */
  field: string
  /** Device index (into layout.devices) of a device id. */
  devIndex(id: string): number
}

/** Adds devices a workload needs to the header before the layout is fixed. */
export interface HeaderBuilder {
  /** RAM size of the guest (bytes), and the first GPA above all its memslots. */
  readonly ramBytes: number
  readonly ramEndGpa: number
  readonly pageSize: number
  /**
   * The VFIO container and device to use: `container` if given (created when missing), else the
   * first container of the header, else a new one 'vfio0' with device 'dev0'.
   */
  vfio(opts: {container?: string; device?: string; tracking: 'none' | 'type1' | 'device'; stopCopyBytes: number; precopyBytes: number}): {container: string; device: string}
  /** The virtio-mem device to use, the same way (new default id 'vmem0'). */
  virtioMem(opts: {device?: string; regionSize: number; plugged: number; blockSize: number}): string
}

export interface WorkloadDef {
  name: string
  summary: string
  placement: Placement
  params: ParamTable
  /** Instances of a per-vcpu entry each take one slice of the region. */
  partition?: boolean
  /** Called in spec order before the layout exists; returns values the track needs later. */
  prepare?(hb: HeaderBuilder, p: Params, field: string): Record<string, string>
  create(ctx: WorkloadContext, p: Params, prepared: Record<string, string>): Track
}
