/**
 * The checks an event must pass against the machine its header describes: vCPU in range, device
 * of the right type, memslot known, address inside guest memory and ranges not crossing a slot
 * end, time never going backwards. Both readers call `check` on each decoded row of a batch, so
 * `validate`, `inspect`, `convert` and the replay engine all see the same rules.
 *
 * Where a rule mirrors what QEMU or the kernel refuses, the function is cited.
 */
import {K, KINDS, Op, type FieldName} from '../events.js'
import type {EventBatch} from '../events.js'
import type {TraceHeader} from '../header.js'
import type {DeviceKind, TraceLayout} from '../layout.js'
import {UserError, showValue} from '../../util/errors.js'

const hex = (v: number): string => `0x${v.toString(16)}`

/** Which device type a kind's `dev` must name; 'any' lets any device from the header. */
const DEV_TYPE: (DeviceKind | 'any' | undefined)[] = KINDS.map((k) => {
  if (!('dev' in k.fields)) return undefined
  if (k.group === 'virtio-mem') return 'virtio-mem'
  if (k.name === 'vfio_dma_write' || k.name === 'vfio_state') return 'vfio-device'
  if (k.group === 'vfio') return 'vfio-container'
  return 'any'
})

export class EventChecker {
  private prevT = 0
  private prevLine = 0
  private readonly vcpus: number
  private readonly pageSize: number
  /** Per device index: virtio-mem block size / region, VFIO IOMMU page size (of the container). */
  private readonly devBlock: Float64Array
  private readonly devBase: Float64Array
  private readonly devEnd: Float64Array
  private readonly devIommuPage: Float64Array
  private readonly ringMode: boolean

  constructor(
    private readonly header: TraceHeader,
    private readonly layout: TraceLayout,
    private readonly file: string,
  ) {
    this.vcpus = header.vcpus
    this.pageSize = header.pageSize
    this.ringMode = header.dirtyTracking.mode === 'ring'
    const n = layout.devices.length
    this.devBlock = new Float64Array(n)
    this.devBase = new Float64Array(n)
    this.devEnd = new Float64Array(n)
    this.devIommuPage = new Float64Array(n)
    layout.devices.forEach((d, i) => {
      if (d.kind === 'virtio-mem') {
        const v = header.virtioMem[d.index]!
        this.devBlock[i] = v.blockSize
        this.devBase[i] = v.base
        this.devEnd[i] = v.base + v.regionSize
      } else {
        this.devIommuPage[i] = header.vfio[d.index]!.iommuPageSize
      }
    })
  }

  /** The state carried from event to event (to go back when a batch is decoded again). */
  state(): [number, number] {
    return [this.prevT, this.prevLine]
  }

  restore(s: [number, number]): void {
    this.prevT = s[0]
    this.prevLine = s[1]
  }

  /** The time of the previous event (0 before the first). */
  prevTime(): number {
    return this.prevT
  }

  /** The line of the previous event. */
  prevLineNumber(): number {
    return this.prevLine
  }

  /** Take (t, line) as the previous event's, for a reader that checked time order itself. */
  setPrevious(t: number, line: number): void {
    this.prevT = t
    this.prevLine = line
  }

  /** Forget the previous time (a new pass over the trace). */
  reset(): void {
    this.prevT = 0
    this.prevLine = 0
  }

  /**
   * The rules of a vCPU access (write, read) as a yes/no, for the readers' fast paths: true when
   * the event passes (its time becomes the previous time), false when `check` must run to name
   * the problem. Same rules as the write/read case of `check`.
   */
  accessOk(t: number, vcpu: number, gpa: number, len: number, line: number): boolean {
    if (t < this.prevT || vcpu >= this.vcpus || len < 1) return false
    const end = this.layout.slotEndOf(gpa)
    if (end < 0 || gpa + len > end) return false
    this.prevT = t
    this.prevLine = line
    return true
  }

  private fail(line: number, field: FieldName, reason: string, expected?: string, found?: string): never {
    throw new UserError(reason, {file: this.file, line, field, expected, found})
  }

  /** Check event i of a batch (already decoded); throws a UserError naming the field at fault. */
  check(b: EventBatch, i: number, line: number): void {
    const kind = b.kind[i]!
    const t = b.t[i]!
    if (t < this.prevT) this.fail(line, 't_ns', 'time goes backwards', `>= ${this.prevT} (the time on line ${this.prevLine})`, String(t))

    const vcpu = b.vcpu[i]!
    if (vcpu >= this.vcpus) this.fail(line, 'vcpu', 'no such vCPU', `0..${this.vcpus - 1} (the header has vcpus: ${this.vcpus})`, String(vcpu))

    const dev = b.dev[i]!
    if (dev >= 0) {
      const want = DEV_TYPE[kind]
      const entry = this.layout.devices[dev]!
      if (want !== 'any' && want !== undefined && entry.kind !== want)
        this.fail(line, 'dev', `a ${KINDS[kind]!.name} event needs a ${want} device`, `the id of a ${want} in the header`, `'${entry.id}', a ${entry.kind}`)
    }

    switch (kind) {
      case K.write:
      case K.read:
      case K.dma_write:
      case K.vhost_write:
        this.positive(b.len[i]!, 'len', line)
        this.gpaRange(b.gpa[i]!, b.len[i]!, line, 'len')
        break
      case K.vmem_plug:
      case K.vmem_unplug:
      case K.vmem_state:
        this.positive(b.count[i]!, 'count', line)
        this.vmemRange(dev, b.gpa[i]!, b.count[i]!, line)
        break
      case K.vmem_resize: {
        // mirrors virtio_mem_set_requested_size(): a multiple of the block size, within the region
        const block = this.devBlock[dev]!
        const size = this.devEnd[dev]! - this.devBase[dev]!
        const v = b.value[i]!
        if (v % block !== 0 || v > size) this.fail(line, 'value', 'requested size must be a multiple of the block size within the region', `a multiple of ${block} up to ${size}`, String(v))
        break
      }
      case K.vmem_reset: {
        // the reset type: 0 (or unset) a cold reset, 1 a wake-up from suspend (RESET_TYPE_WAKEUP)
        const v = b.value[i]!
        if (v >= 0 && v !== 0 && v !== 1) this.fail(line, 'value', 'a vmem_reset value is the reset type', '0 (a reset) or 1 (a wake-up from suspend)', String(v))
        break
      }
      case K.vfio_map:
        this.positive(b.len[i]!, 'len', line)
        this.iommuAligned(dev, b.iova[i]!, 'iova', line)
        this.iommuAligned(dev, b.len[i]!, 'len', line)
        this.gpaRange(b.gpa[i]!, b.len[i]!, line, 'len')
        break
      case K.vfio_unmap:
        this.positive(b.len[i]!, 'len', line)
        this.iommuAligned(dev, b.iova[i]!, 'iova', line)
        this.iommuAligned(dev, b.len[i]!, 'len', line)
        break
      case K.vfio_pin:
      case K.vfio_unpin:
        this.positive(b.count[i]!, 'count', line)
        this.iommuAligned(dev, b.iova[i]!, 'iova', line)
        break
      case K.vfio_dma_write:
        this.positive(b.len[i]!, 'len', line)
        break
      case K.vfio_dirty_pages:
        // VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP carries an iova range; START and STOP carry none
        // (vfio_iommu_type1_dirty_pages() in the kernel).
        if (b.op[i] === Op.get) {
          if (b.iova[i]! < 0) this.fail(line, 'iova', 'missing value: a vfio_dirty_pages get needs iova', 'an IO virtual address', 'an empty value')
          if (b.len[i]! < 0) this.fail(line, 'len', 'missing value: a vfio_dirty_pages get needs len', 'a length in bytes', 'an empty value')
          this.positive(b.len[i]!, 'len', line)
          this.iommuAligned(dev, b.iova[i]!, 'iova', line)
          this.iommuAligned(dev, b.len[i]!, 'len', line)
        } else {
          if (b.iova[i]! >= 0) this.fail(line, 'iova', 'a vfio_dirty_pages start or stop does not use this field', 'an empty value', hex(b.iova[i]!))
          if (b.len[i]! >= 0) this.fail(line, 'len', 'a vfio_dirty_pages start or stop does not use this field', 'an empty value', String(b.len[i]!))
        }
        break
      case K.kvm_get_dirty_log:
      case K.kvm_set_user_memory_region:
        this.slotPages(b.slot[i]!, line)
        break
      case K.kvm_clear_dirty_log: {
        // mirrors kvm_clear_dirty_log_protect(): first_page 64-aligned, the range inside the slot,
        // and num_pages a multiple of 64 unless it reaches the slot's end.
        const pages = this.slotPages(b.slot[i]!, line)
        const first = b.page[i]!
        const n = b.count[i]!
        if (first % 64 !== 0) this.fail(line, 'page', 'KVM_CLEAR_DIRTY_LOG needs first_page aligned to 64', 'a multiple of 64', String(first))
        if (first > pages || n > pages - first) this.fail(line, 'count', `range passes the end of memslot ${b.slot[i]!}`, `page+count <= ${pages}`, String(first + n))
        if (n < pages - first && n % 64 !== 0) this.fail(line, 'count', 'KVM_CLEAR_DIRTY_LOG needs a multiple of 64 pages unless the range reaches the slot end', `a multiple of 64, or ${pages - first}`, String(n))
        break
      }
      case K.kvm_dirty_ring_page: {
        this.needRing(line)
        const pages = this.slotPages(b.slot[i]!, line)
        if (b.page[i]! >= pages) this.fail(line, 'page', `page past the end of memslot ${b.slot[i]!}`, `0..${pages - 1}`, String(b.page[i]!))
        break
      }
      case K.kvm_reset_dirty_rings:
        this.needRing(line)
        break
      case K.page_sent: {
        // QEMU sends whole target pages (ram_save_target_page()).
        const gpa = b.gpa[i]!
        const count = b.count[i]!
        if (count >= 0) this.positive(count, 'count', line)
        if (gpa % this.pageSize !== 0) this.fail(line, 'gpa', 'a sent page must start on a page boundary', `a multiple of the page size ${this.pageSize}`, hex(gpa))
        this.gpaRange(gpa, (count < 0 ? 1 : count) * this.pageSize, line, 'count')
        break
      }
      default:
        break
    }
    this.prevT = t
    this.prevLine = line
  }

  private positive(v: number, field: FieldName, line: number): void {
    if (v < 1) this.fail(line, field, 'must be at least 1', 'a number >= 1', String(v))
  }

  private gpaRange(gpa: number, len: number, line: number, lenField: FieldName): void {
    const end = this.layout.slotEndOf(gpa)
    if (end < 0) this.fail(line, 'gpa', 'address in no memslot', `an address inside ${this.slotList()}`, hex(gpa))
    if (gpa + len > end) {
      const slot = this.layout.slots[this.layout.slotIndexOf(gpa)]!
      this.fail(line, lenField, `range crosses the end of memslot ${slot.id}`, `an end at or below ${hex(end)}`, `an end at ${hex(gpa + len)}`)
    }
  }

  private slotList(): string {
    const parts = this.layout.slots.slice(0, 4).map((s) => `${hex(s.gpaStart)}..${hex(s.gpaEnd)} (slot ${s.id})`)
    if (this.layout.slots.length > 4) parts.push('...')
    return parts.join(', ')
  }

  // mirrors virtio_mem_valid_range(): block-aligned, inside the device's region
  private vmemRange(dev: number, gpa: number, count: number, line: number): void {
    const block = this.devBlock[dev]!
    const base = this.devBase[dev]!
    const end = this.devEnd[dev]!
    const id = this.layout.devices[dev]!.id
    if (gpa < base || gpa >= end) this.fail(line, 'gpa', `address outside virtio-mem device ${id}`, `an address in ${hex(base)}..${hex(end)}`, hex(gpa))
    if ((gpa - base) % block !== 0) this.fail(line, 'gpa', 'address not aligned to the device block size', `a multiple of ${block}`, hex(gpa))
    if (gpa + count * block > end) this.fail(line, 'count', `blocks reach past the end of virtio-mem device ${id}`, `at most ${(end - gpa) / block} blocks from ${hex(gpa)}`, String(count))
  }

  // mirrors vfio_dma_do_map()/vfio_dma_do_unmap(): iova and size aligned to the IOMMU page size
  private iommuAligned(dev: number, v: number, field: FieldName, line: number): void {
    const entry = this.layout.devices[dev]!
    const page = entry.kind === 'vfio-container' ? this.devIommuPage[dev]! : this.header.vfio[entry.index]!.iommuPageSize
    if (v % page !== 0) this.fail(line, field, 'not aligned to the IOMMU page size', `a multiple of ${page}`, field === 'iova' ? hex(v) : String(v))
  }

  private slotPages(slot: number, line: number): number {
    const s = this.layout.slotById.get(slot)
    if (!s) this.fail(line, 'slot', 'no memslot with this id', `one of ${[...this.layout.slotById.keys()].join(', ')}`, String(slot))
    return s.pages
  }

  private needRing(line: number): void {
    if (!this.ringMode) this.fail(line, 'kind', 'dirty-ring events need dirty ring tracking', "dirtyTracking.mode 'ring' in the header", "mode 'bitmap'")
  }
}

/** An unknown device id, named with the ids the header does declare. */
export function unknownDeviceError(id: string, layout: TraceLayout, file: string, line: number): UserError {
  const ids = layout.devices.map((d) => d.id)
  return new UserError('no device with this id in the header', {
    file,
    line,
    field: 'dev',
    expected: ids.length > 0 ? `one of ${ids.slice(0, 6).join(', ')}${ids.length > 6 ? ', ...' : ''}` : 'no dev at all (the header declares no devices)',
    found: showValue(id),
  })
}
