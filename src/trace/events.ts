/**
 * The event vocabulary of a migtrace trace: every kind of event, the fields each kind uses, and
 * the columnar batch that carries decoded events through the whole tool (readers, generator,
 * replay). Hot paths never see one object per event: they walk typed-array columns.
 *
 * The CSV encoding has one fixed column set for all kinds (FIELDS, in this order); JSON Lines
 * carries the same fields by name. A field that a kind does not use must be empty (CSV) or absent
 * (JSONL).
 */

/** Every event field, in CSV column order. `t_ns` and `kind` are present on every event. */
export const FIELDS = [
  't_ns',
  'kind',
  'vcpu',
  'dev',
  'slot',
  'gpa',
  'iova',
  'len',
  'page',
  'count',
  'value',
  'op',
  'params',
] as const
export type FieldName = (typeof FIELDS)[number]
/** Fields that may be set or not depending on the kind (everything but t_ns and kind). */
export type OptionalField = Exclude<FieldName, 't_ns' | 'kind'>

/** What each field means and its unit; used by the README and by error messages. */
export const FIELD_DOC: Record<FieldName, {unit: string; meaning: string}> = {
  t_ns: {unit: 'ns', meaning: 'time since the start of the trace; never decreases'},
  kind: {unit: '-', meaning: 'the event kind (table below)'},
  vcpu: {unit: 'index', meaning: 'vCPU that did it, 0 .. vcpus-1'},
  dev: {unit: 'id', meaning: 'device id from the header: a virtio-mem device, a VFIO container or a VFIO device'},
  slot: {unit: 'id', meaning: 'KVM memslot id from the header'},
  gpa: {unit: 'bytes', meaning: 'guest-physical address (decimal or 0x hex)'},
  iova: {unit: 'bytes', meaning: 'IO virtual address in a VFIO container (decimal or 0x hex)'},
  len: {unit: 'bytes', meaning: 'length of the access or range'},
  page: {unit: 'page', meaning: 'page index inside the memslot (KVM ioctls, dirty-ring entries)'},
  count: {unit: 'varies', meaning: 'number of pages (VFIO pins, KVM CLEAR, page_sent), blocks (virtio-mem) or ring entries'},
  value: {unit: 'varies', meaning: 'a number whose meaning the kind gives: flags, bytes, dirty-page count'},
  op: {unit: 'word', meaning: 'sub-operation: start/stop/get (vfio_dirty_pages), normal/zero/xbzrle (page_sent)'},
  params: {unit: 'k=v;k=v', meaning: "migration parameters in QEMU's migrate-set-parameters names"},
}

/** Sub-operations carried in the `op` column, stored as small integers in batches. */
export const OPS = ['', 'start', 'stop', 'get', 'normal', 'zero', 'xbzrle'] as const
export type OpName = (typeof OPS)[number]
export const Op = {none: 0, start: 1, stop: 2, get: 3, normal: 4, zero: 5, xbzrle: 6} as const

export type FieldRule = 'required' | 'optional'

export interface KindSpec {
  /** The name as written in traces. */
  name: string
  group: 'guest' | 'dirtier' | 'virtio-mem' | 'vfio' | 'kvm' | 'migration'
  /** Fields this kind uses: required ones must be set, others may be; any other field is an error. */
  fields: Partial<Record<OptionalField, FieldRule>>
  /** Allowed `op` words when the kind uses `op`. */
  ops?: readonly OpName[]
  doc: string
}

/**
 * The kinds, in a fixed order: the index of a kind here is its code in `EventBatch.kind`, so new
 * kinds are only ever appended.
 */
export const KINDS = [
  {name: 'write', group: 'guest', fields: {vcpu: 'required', gpa: 'required', len: 'required'}, doc: 'a guest vCPU writes len bytes at gpa'},
  {name: 'read', group: 'guest', fields: {vcpu: 'required', gpa: 'required', len: 'required'}, doc: 'a guest vCPU reads len bytes at gpa (faults in postcopy)'},
  {name: 'dma_write', group: 'dirtier', fields: {gpa: 'required', len: 'required', dev: 'optional'}, doc: "an emulated device writes guest memory through QEMU's address_space_map path: KVM does not see it, QEMU's own bitmap does"},
  {name: 'vhost_write', group: 'dirtier', fields: {gpa: 'required', len: 'required', dev: 'optional'}, doc: 'a vhost backend writes guest memory and logs it in the vhost log (read and cleared at sync)'},
  {name: 'vmem_plug', group: 'virtio-mem', fields: {dev: 'required', gpa: 'required', count: 'required'}, doc: 'the guest asks a virtio-mem device to plug count blocks at gpa'},
  {name: 'vmem_unplug', group: 'virtio-mem', fields: {dev: 'required', gpa: 'required', count: 'required'}, doc: 'the guest asks to unplug count blocks at gpa'},
  {name: 'vmem_unplug_all', group: 'virtio-mem', fields: {dev: 'required'}, doc: 'the guest asks to unplug every block'},
  {name: 'vmem_state', group: 'virtio-mem', fields: {dev: 'required', gpa: 'required', count: 'required'}, doc: 'the guest asks the state of count blocks at gpa'},
  {name: 'vmem_resize', group: 'virtio-mem', fields: {dev: 'required', value: 'required'}, doc: "the host sets the device's requested-size to value bytes"},
  {name: 'vfio_map', group: 'vfio', fields: {dev: 'required', iova: 'required', len: 'required', gpa: 'required'}, doc: 'VFIO_IOMMU_MAP_DMA: map len bytes of guest memory at gpa to iova in a container'},
  {name: 'vfio_unmap', group: 'vfio', fields: {dev: 'required', iova: 'required', len: 'required'}, doc: 'VFIO_IOMMU_UNMAP_DMA of len bytes at iova'},
  {name: 'vfio_pin', group: 'vfio', fields: {dev: 'required', iova: 'required', count: 'required'}, doc: 'a mediated device pins count IOMMU pages at iova (vfio_pin_pages)'},
  {name: 'vfio_unpin', group: 'vfio', fields: {dev: 'required', iova: 'required', count: 'required'}, doc: 'unpins count IOMMU pages at iova'},
  {name: 'vfio_dma_write', group: 'vfio', fields: {dev: 'required', iova: 'required', len: 'required'}, doc: 'a VFIO device writes len bytes by DMA at iova (what device DMA logging reports)'},
  {name: 'vfio_state', group: 'vfio', fields: {dev: 'required', len: 'optional', value: 'required'}, doc: 'a VFIO device reports its migration data sizes: len = precopy initial bytes, value = stop-copy bytes'},
  {name: 'vfio_dirty_pages', group: 'vfio', fields: {dev: 'required', op: 'required', iova: 'optional', len: 'optional'}, ops: ['start', 'stop', 'get'], doc: 'VFIO_IOMMU_DIRTY_PAGES on a container: op start, stop, or get (the bitmap of iova..iova+len)'},
  {name: 'kvm_get_dirty_log', group: 'kvm', fields: {slot: 'required'}, doc: 'KVM_GET_DIRTY_LOG on a memslot'},
  {name: 'kvm_clear_dirty_log', group: 'kvm', fields: {slot: 'required', page: 'required', count: 'required'}, doc: 'KVM_CLEAR_DIRTY_LOG: count pages from page (64-aligned) of a memslot'},
  {name: 'kvm_reset_dirty_rings', group: 'kvm', fields: {count: 'optional'}, doc: 'KVM_RESET_DIRTY_RINGS; count = entries reset, when known'},
  {name: 'kvm_set_user_memory_region', group: 'kvm', fields: {slot: 'required', value: 'required'}, doc: 'KVM_SET_USER_MEMORY_REGION on a memslot; value = flags (bit 0 = KVM_MEM_LOG_DIRTY_PAGES)'},
  {name: 'kvm_dirty_ring_page', group: 'kvm', fields: {vcpu: 'required', slot: 'required', page: 'required'}, doc: "a dirty-ring entry harvested from a vCPU's ring (page is the offset in the slot)"},
  {name: 'mig_start', group: 'migration', fields: {params: 'optional'}, doc: 'migration starts (setup), with its parameters'},
  {name: 'mig_set', group: 'migration', fields: {params: 'required'}, doc: 'migrate-set-parameters during the run'},
  {name: 'mig_postcopy', group: 'migration', fields: {}, doc: 'migrate-start-postcopy'},
  {name: 'mig_cancel', group: 'migration', fields: {}, doc: 'migrate_cancel'},
  {name: 'mig_complete', group: 'migration', fields: {}, doc: 'migration completed (recorded)'},
  {name: 'mig_sync', group: 'migration', fields: {value: 'optional'}, doc: 'QEMU synchronised the dirty bitmap (recorded); value = dirty pages it reported'},
  {name: 'vm_stop', group: 'migration', fields: {}, doc: 'the guest stops (downtime starts)'},
  {name: 'vm_start', group: 'migration', fields: {}, doc: 'the guest runs again'},
  {name: 'page_sent', group: 'migration', fields: {gpa: 'required', count: 'optional', op: 'optional'}, ops: ['normal', 'zero', 'xbzrle'], doc: 'QEMU sent count pages (default 1) from gpa (recorded); op normal (default), zero or xbzrle'},
  {name: 'mig_net_fail', group: 'migration', fields: {value: 'optional'}, doc: 'the migration network fails: in postcopy both sides pause until the user recovers (migrate-recover, migrate resume=true) value ms later (default: the postcopy-recover-after setting); in precopy the migration fails'},
  {name: 'vmem_reset', group: 'virtio-mem', fields: {dev: 'required', value: 'optional'}, doc: 'a system reset of the VM reaches a virtio-mem device (virtio_mem_system_reset_hold): it unplugs every block and shrinks the usable region, unless a migration runs; value 1 = a wake-up from suspend, which keeps the memory plugged'},
] as const satisfies readonly KindSpec[]

export type KindName = (typeof KINDS)[number]['name']

/** Kind name -> numeric code, for readers. */
export const KIND_CODE: ReadonlyMap<string, number> = new Map(KINDS.map((k, i) => [k.name, i]))

/** Numeric codes by name, for hot loops (`if (kind[i] === K.write)`). */
export const K = Object.fromEntries(KINDS.map((k, i) => [k.name, i])) as {readonly [N in KindName]: number}

export function kindName(code: number): KindName {
  const spec = KINDS[code]
  if (!spec) throw new Error(`bug: unknown kind code ${code}`)
  return spec.name
}

export function kindSpec(code: number): KindSpec {
  const spec = KINDS[code] as KindSpec | undefined
  if (!spec) throw new Error(`bug: unknown kind code ${code}`)
  return spec
}

/** Bit set per kind of the fields it uses, indexed by FIELDS position (t_ns and kind always). */
export const KIND_FIELD_MASK: readonly number[] = KINDS.map((k) => {
  let m = 0b11
  FIELDS.forEach((f, i) => {
    if (f in k.fields) m |= 1 << i
  })
  return m
})
export const KIND_REQUIRED_MASK: readonly number[] = KINDS.map((k) => {
  let m = 0b11
  FIELDS.forEach((f, i) => {
    if ((k.fields as Record<string, FieldRule>)[f] === 'required') m |= 1 << i
  })
  return m
})

/** Column index of each field. */
export const FIELD_INDEX = Object.fromEntries(FIELDS.map((f, i) => [f, i])) as {readonly [F in FieldName]: number}

/** Fields that hold addresses: written as 0x hex, read as decimal or hex. */
export const ADDRESS_FIELDS: ReadonlySet<FieldName> = new Set(['gpa', 'iova'])

/**
 * A columnar batch of decoded events. Unset numeric fields are -1 (all numeric fields are
 * non-negative when set). `dev` is an index into the trace's device table (`TraceLayout.devices`).
 * `line` is the 1-based source line for error messages (0 for generated events).
 */
export interface EventBatch {
  length: number
  t: Float64Array
  kind: Uint8Array
  vcpu: Int32Array
  dev: Int32Array
  slot: Int32Array
  gpa: Float64Array
  iova: Float64Array
  len: Float64Array
  page: Float64Array
  count: Float64Array
  value: Float64Array
  op: Uint8Array
  /** Sparse: only migration control events carry params; keyed by index in the batch. */
  params: Map<number, string>
  line: Float64Array
  /**
   * Optional, from a producer that knows it: bits by FIELDS position (1 << FIELD_INDEX.gpa ...) of
   * columns no event of [0, length) sets (all -1; op all 0). A consumer may then skip looking at
   * them (the Arrow encoder writes such a column without scanning it). Absent or 0: unknown.
   */
  unset?: number
}

export const DEFAULT_BATCH = 65536

export function createBatch(capacity = DEFAULT_BATCH): EventBatch {
  return {
    length: 0,
    t: new Float64Array(capacity),
    kind: new Uint8Array(capacity),
    vcpu: new Int32Array(capacity).fill(-1),
    dev: new Int32Array(capacity).fill(-1),
    slot: new Int32Array(capacity).fill(-1),
    gpa: new Float64Array(capacity).fill(-1),
    iova: new Float64Array(capacity).fill(-1),
    len: new Float64Array(capacity).fill(-1),
    page: new Float64Array(capacity).fill(-1),
    count: new Float64Array(capacity).fill(-1),
    value: new Float64Array(capacity).fill(-1),
    op: new Uint8Array(capacity),
    params: new Map(),
    line: new Float64Array(capacity),
  }
}

/** Empty a batch for reuse without reallocating (unset fields back to -1). */
export function resetBatch(b: EventBatch): void {
  const n = b.length
  b.vcpu.fill(-1, 0, n)
  b.dev.fill(-1, 0, n)
  b.slot.fill(-1, 0, n)
  b.gpa.fill(-1, 0, n)
  b.iova.fill(-1, 0, n)
  b.len.fill(-1, 0, n)
  b.page.fill(-1, 0, n)
  b.count.fill(-1, 0, n)
  b.value.fill(-1, 0, n)
  b.op.fill(0, 0, n)
  b.line.fill(0, 0, n)
  b.params.clear()
  b.length = 0
}

export function batchCapacity(b: EventBatch): number {
  return b.t.length
}

/** A plain object form of one event, for tests, small tools and error paths (never hot paths). */
export interface EventRecord {
  t_ns: number
  kind: KindName
  vcpu?: number
  dev?: string
  slot?: number
  gpa?: number
  iova?: number
  len?: number
  page?: number
  count?: number
  value?: number
  op?: Exclude<OpName, ''>
  params?: string
}

/** A stream of decoded events, in time order, batch by batch. */
export type EventSource = AsyncIterable<EventBatch>
