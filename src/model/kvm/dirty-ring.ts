/**
 * KVM's dirty ring (virt/kvm/dirty_ring.c): one ring of dirty-GFN entries per vCPU. A write to a
 * write-protected page pushes one entry and un-protects the page (kvm_dirty_ring_push); later
 * writes to it are not logged until KVM_RESET_DIRTY_RINGS re-protects it (kvm_dirty_ring_reset).
 * When a ring holds `soft_limit = size - 64 - PML size` entries the vCPU exits with
 * KVM_EXIT_DIRTY_RING_FULL (kvm_dirty_ring_check_request) and QEMU reaps every ring
 * (kvm_dirty_ring_reap). The model reaps at once on that exit: the vCPU re-enters the guest only
 * after the reap. QEMU harvests and resets together (kvm_dirty_ring_reap_locked), so `reap` does both.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap} from '../bitmap.js'
import {emptyKvmStats} from './bitmap-log.js'
import type {KvmRingDirtyLog, KvmStats} from './types.js'
import {dirtyLogMode} from './modes.js'

/** KVM_DIRTY_RING_RSVD_ENTRIES. */
export const RING_RESERVED_ENTRIES = 64
/** kvm_cpu_dirty_log_size() on VMX with PML. */
export const PML_ENTRIES = 512

export class KvmDirtyRing implements KvmRingDirtyLog {
  readonly mode = dirtyLogMode('ring')
  readonly family = 'ring' as const
  readonly stats: KvmStats = emptyKvmStats()
  readonly softLimit: number
  /** 1 = write-protected: the next write is logged. */
  readonly prot: Bitmap
  private readonly rings: Uint32Array[]
  private readonly fill: Float64Array
  private readonly logging: Uint8Array
  private readonly slotFirst: Float64Array
  private readonly slotPages: Float64Array
  /** Set when a push reached the soft limit: the engine reaps (ring-full exit). */
  fullPending = false
  /** The vCPU whose push reached the soft limit (KVM_EXIT_DIRTY_RING_FULL exits that vCPU). */
  fullVcpu = 0

  constructor(
    readonly layout: TraceLayout,
    readonly vcpus: number,
    readonly ringSize: number,
    pml = true,
  ) {
    this.softLimit = ringSize - (RING_RESERVED_ENTRIES + (pml ? PML_ENTRIES : 0))
    if (this.softLimit < 1) throw new Error(`bug: ring size ${ringSize} leaves no room below the reserved entries`)
    this.prot = new Bitmap(layout.totalPages)
    this.rings = Array.from({length: vcpus}, () => new Uint32Array(ringSize))
    this.fill = new Float64Array(vcpus)
    this.logging = new Uint8Array(layout.slots.length)
    this.slotFirst = Float64Array.from(layout.slots, (s) => s.firstPage)
    this.slotPages = Float64Array.from(layout.slots, (s) => s.pages)
  }

  reset(fresh = false): void {
    this.prot.clearAll(fresh)
    this.fill.fill(0)
    this.logging.fill(0)
    this.fullPending = false
    Object.assign(this.stats, emptyKvmStats())
  }

  startLogging(s: number): void {
    if (this.logging[s]) return
    this.logging[s] = 1
    // No INITIALLY_SET with the ring (kvm_setup_dirty_ring): the whole slot is protected at once.
    this.prot.setRange(this.slotFirst[s]!, this.slotFirst[s]! + this.slotPages[s]!)
  }

  stopLogging(s: number): void {
    if (!this.logging[s]) return
    this.logging[s] = 0
    this.prot.clearRange(this.slotFirst[s]!, this.slotFirst[s]! + this.slotPages[s]!)
  }

  isLogging(s: number): boolean {
    return this.logging[s] === 1
  }

  isInitialBit(_p: number): boolean {
    return false
  }

  used(v: number): number {
    return this.fill[v]!
  }

  write(p: number, vcpu: number): void {
    // Only protected pages (in logging slots) are logged; protection is the per-page state.
    if (!this.prot.testAndClear(p)) return
    const v = vcpu >= 0 && vcpu < this.vcpus ? vcpu : 0
    const n = this.fill[v]!
    if (n >= this.ringSize) throw new Error(`bug: vCPU ${v} dirty ring overflow: a ring-full exit was not served`)
    this.rings[v]![n] = p
    this.fill[v] = n + 1
    this.stats.loggedWrites++
    this.stats.ringPushes++
    if (n + 1 >= this.softLimit) {
      this.fullPending = true
      this.fullVcpu = v
      this.stats.ringFullExits++
    }
  }

  reap(into: Bitmap): number {
    this.stats.reaps++
    let total = 0
    for (let v = 0; v < this.vcpus; v++) total += this.harvest(v, into)
    this.fullPending = false
    this.stats.harvested += total
    return total
  }

  /**
   * Harvest vCPU v's ring only (kvm_dirty_ring_reap with a cpu: the ring-full exit while
   * dirty-limit is in service), then KVM_RESET_DIRTY_RINGS.
   */
  reapVcpu(v: number, into: Bitmap): number {
    this.stats.reaps++
    const n = this.harvest(v, into)
    this.fullPending = false
    this.stats.harvested += n
    return n
  }

  private harvest(v: number, into: Bitmap): number {
    const n = this.fill[v]!
    const ring = this.rings[v]!
    for (let i = 0; i < n; i++) {
      const p = ring[i]!
      // kvm_dirty_ring_reap_one: set the bit in the slot's dirty_bmap; the reset re-protects.
      into.set(p)
      this.prot.set(p)
    }
    this.fill[v] = 0
    return n
  }
}
