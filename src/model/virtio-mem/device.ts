/**
 * One virtio-mem device as hw/virtio/virtio-mem.c runs it: a region of `regionSize` bytes at
 * `base`, split into blocks of `blockSize`, one plugged bit per block, the plugged `size`, the
 * host's `requestedSize` and the usable region the guest may plug in. Guest requests are answered
 * exactly as virtio_mem_handle_request does (ACK / NACK / BUSY / ERROR, checks in QEMU's order);
 * the memory side effects (discard, VFIO map/unmap) are left to a RamDiscardListener.
 */
import type {VirtioMemSpec} from '../../trace/header.js'

/** virtio_mem.h request types. */
export const VMEM_REQ = {plug: 0, unplug: 1, unplugAll: 2, state: 3} as const
export const VMEM_REQ_NAMES = ['plug', 'unplug', 'unplug_all', 'state'] as const
/** virtio_mem.h response types. */
export const VMEM_RESP = {ack: 0, nack: 1, busy: 2, error: 3} as const
export const VMEM_RESP_NAMES = ['ACK', 'NACK', 'BUSY', 'ERROR'] as const
/** virtio_mem.h STATE response states. */
export const VMEM_STATE = {plugged: 0, unplugged: 1, mixed: 2} as const
export const VMEM_STATE_NAMES = ['PLUGGED', 'UNPLUGGED', 'MIXED'] as const

/** What a guest write into an unplugged block does (setting virtio-mem-unplugged-write). */
export const UNPLUGGED_WRITE = ['populate', 'refuse'] as const
export type UnpluggedWrite = (typeof UNPLUGGED_WRITE)[number]

/** VIRTIO_MEM_USABLE_EXTENT on x86 / s390x: 2 * 128 MiB beyond the requested size. */
export const VIRTIO_MEM_USABLE_EXTENT = 256 * 2 ** 20

/** The RamDiscardManager's listeners (VFIO, the migration code): block ranges [b0, b1). */
export interface BlockListener {
  /** vfio_ram_discard_notify_populate; false = the listener failed (the plug answers BUSY). */
  populate(dev: VirtioMemDevice, b0: number, b1: number): boolean
  /** ram_block_discard_range + vfio_ram_discard_notify_discard. */
  discard(dev: VirtioMemDevice, b0: number, b1: number): void
}

export interface VmemAnswer {
  resp: number
  /** STATE only: PLUGGED, UNPLUGGED or MIXED; else -1. */
  state: number
}

const ALIGN_UP = (v: number, a: number): number => Math.ceil(v / a) * a

export class VirtioMemDevice {
  readonly blocks: number
  readonly pagesPerBlock: number
  /** One byte per block: 1 = plugged (virtio-mem's `bitmap`). */
  readonly plugged: Uint8Array
  /** Plugged bytes (`size`). */
  size = 0
  requestedSize = 0
  usableRegionSize = 0
  listener?: BlockListener

  constructor(
    readonly spec: VirtioMemSpec,
    /** Global page number of the region's first page. */
    readonly firstPage: number,
    readonly pageSize: number,
  ) {
    this.blocks = spec.regionSize / spec.blockSize
    this.pagesPerBlock = spec.blockSize / pageSize
    this.plugged = new Uint8Array(this.blocks)
  }

  get id(): string {
    return this.spec.id
  }
  get base(): number {
    return this.spec.base
  }
  get blockSize(): number {
    return this.spec.blockSize
  }

  /** The state when the trace starts (the header's plugged ranges and requested size). */
  reset(): void {
    this.plugged.fill(0)
    this.size = 0
    for (const r of this.spec.plugged) {
      const b0 = (r.gpa - this.base) / this.blockSize
      this.plugged.fill(1, b0, b0 + r.blocks)
      this.size += r.blocks * this.blockSize
    }
    this.requestedSize = this.spec.requestedSize
    this.usableRegionSize = 0
    this.resizeUsableRegion(this.requestedSize, true)
  }

  /** virtio_mem_resize_usable_region: grows with requested-size; shrinks only when allowed. */
  resizeUsableRegion(requested: number, canShrink: boolean): void {
    let n = ALIGN_UP(Math.min(this.spec.regionSize, requested + VIRTIO_MEM_USABLE_EXTENT), this.blockSize)
    if (requested === 0) n = 0
    if (n < this.usableRegionSize && !canShrink) return
    this.usableRegionSize = n
  }

  /** qom-set requested-size; false when QEMU's setter would refuse the value. */
  setRequestedSize(bytes: number): boolean {
    if (!(bytes >= 0) || bytes % this.blockSize !== 0 || bytes > this.spec.regionSize) return false
    this.requestedSize = bytes
    this.resizeUsableRegion(bytes, false)
    return true
  }

  /** virtio_mem_valid_range: block-aligned, non-empty, no wrap, inside the usable region. */
  validRange(gpa: number, size: number): boolean {
    if (gpa % this.blockSize !== 0 || !(size > 0)) return false
    const end = this.base + this.usableRegionSize
    return gpa >= this.base && gpa < end && gpa + size <= end
  }

  /** Are blocks [b0, b1) all in `state` (1 plugged, 0 unplugged)? */
  private allAre(b0: number, b1: number, state: number): boolean {
    for (let b = b0; b < b1; b++) if (this.plugged[b] !== state) return false
    return true
  }

  /**
   * virtio_mem_state_change_request: ERROR on a bad range, NACK for a plug beyond the requested
   * size, ERROR unless every block is in the opposite state, BUSY when virtio_mem_set_block_state
   * fails (virtio_mem_is_busy(), or a listener failed to populate), else ACK.
   */
  stateChange(gpa: number, nb: number, plug: boolean, busy: boolean): number {
    const bytes = nb * this.blockSize
    if (!Number.isInteger(nb) || !this.validRange(gpa, bytes)) return VMEM_RESP.error
    if (plug && this.size + bytes > this.requestedSize) return VMEM_RESP.nack
    const b0 = (gpa - this.base) / this.blockSize
    const b1 = b0 + nb
    if (!this.allAre(b0, b1, plug ? 0 : 1)) return VMEM_RESP.error
    if (busy) return VMEM_RESP.busy
    if (plug) {
      if (this.listener && !this.listener.populate(this, b0, b1)) return VMEM_RESP.busy
      this.plugged.fill(1, b0, b1)
      this.size += bytes
    } else {
      this.listener?.discard(this, b0, b1)
      this.plugged.fill(0, b0, b1)
      this.size -= bytes
    }
    return VMEM_RESP.ack
  }

  /** virtio_mem_unplug_all: BUSY only when something is plugged and a migration runs. */
  unplugAll(busy: boolean): number {
    if (this.size > 0) {
      if (busy) return VMEM_RESP.busy
      for (let b = 0; b < this.blocks; ) {
        if (!this.plugged[b]) {
          b++
          continue
        }
        let e = b
        while (e < this.blocks && this.plugged[e]) e++
        this.listener?.discard(this, b, e)
        b = e
      }
      this.plugged.fill(0)
      this.size = 0
    }
    this.resizeUsableRegion(this.requestedSize, true)
    return VMEM_RESP.ack
  }

  /** virtio_mem_state_request: works even while busy. */
  stateOf(gpa: number, nb: number): VmemAnswer {
    const bytes = nb * this.blockSize
    if (!Number.isInteger(nb) || !this.validRange(gpa, bytes)) return {resp: VMEM_RESP.error, state: -1}
    const b0 = (gpa - this.base) / this.blockSize
    const b1 = b0 + nb
    const state = this.allAre(b0, b1, 1) ? VMEM_STATE.plugged : this.allAre(b0, b1, 0) ? VMEM_STATE.unplugged : VMEM_STATE.mixed
    return {resp: VMEM_RESP.ack, state}
  }

  /** Global page range [p0, p1) of blocks [b0, b1). */
  pagesOf(b0: number, b1: number): [number, number] {
    return [this.firstPage + b0 * this.pagesPerBlock, this.firstPage + b1 * this.pagesPerBlock]
  }
}
