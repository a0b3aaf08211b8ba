/**
 * KVM's per-memslot dirty bitmap (virt/kvm/kvm_main.c), in its three flavours:
 * - legacy: KVM_GET_DIRTY_LOG gets-and-clears each word and re-protects the pages it reports
 *   (kvm_get_dirty_log_protect, manual protect off);
 * - manual protect: GET only copies; KVM_CLEAR_DIRTY_LOG clears and re-protects the bits of the
 *   user mask that are still set (kvm_clear_dirty_log_protect);
 * - manual protect + KVM_DIRTY_LOG_INITIALLY_SET: logging starts with every bit set and nothing
 *   protected (kvm_prepare_memory_region does the bitmap_set); protection comes chunk by chunk
 *   with the CLEARs.
 * Protection is implicit: a page is write-protected exactly when its bit is clear (a logged write
 * sets the bit and un-protects; GET/CLEAR clear the bit and re-protect together), so "only the
 * first write to a protected page is logged" is the bit going 0 -> 1. PML (D-bit clearing instead
 * of write protection) has the same effect at this granularity.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap, popcount32, wordRangeMask} from '../bitmap.js'
import {KvmIoctlError, type KvmBitmapDirtyLog, type KvmStats} from './types.js'
import type {DirtyLogMode} from './modes.js'

export function emptyKvmStats(): KvmStats {
  return {loggedWrites: 0, gets: 0, clears: 0, clearedPages: 0, ringPushes: 0, ringFullExits: 0, reaps: 0, harvested: 0}
}

export class KvmBitmapLog implements KvmBitmapDirtyLog {
  readonly family = 'bitmap' as const
  readonly manualProtect: boolean
  readonly initiallySet: boolean
  readonly dirty: Bitmap
  /** Bits set by INITIALLY_SET and not cleared since. */
  readonly initial: Bitmap
  readonly stats: KvmStats = emptyKvmStats()
  private readonly logging: Uint8Array
  private loggingSlots = 0
  /** Fast path: every slot logs, so a write needs no slot lookup. */
  private allLogging = false
  private readonly slotFirst: Float64Array
  private readonly slotPages: Float64Array

  constructor(
    readonly layout: TraceLayout,
    readonly mode: DirtyLogMode,
  ) {
    if (mode.family !== 'bitmap') throw new Error(`bug: ${mode.name} is not a bitmap mode`)
    this.manualProtect = mode.manualProtect
    this.initiallySet = mode.initiallySet
    this.dirty = new Bitmap(layout.totalPages)
    this.initial = new Bitmap(this.initiallySet ? layout.totalPages : 0)
    this.logging = new Uint8Array(layout.slots.length)
    this.slotFirst = Float64Array.from(layout.slots, (s) => s.firstPage)
    this.slotPages = Float64Array.from(layout.slots, (s) => s.pages)
  }

  reset(fresh = false): void {
    this.dirty.clearAll(fresh)
    this.initial.clearAll(fresh)
    this.logging.fill(0)
    this.loggingSlots = 0
    this.allLogging = false
    Object.assign(this.stats, emptyKvmStats())
  }

  startLogging(s: number): void {
    if (this.logging[s]) return
    this.logging[s] = 1
    this.loggingSlots++
    this.allLogging = this.loggingSlots === this.logging.length
    const a = this.slotFirst[s]!
    const b = a + this.slotPages[s]!
    if (this.initiallySet) {
      // kvm_prepare_memory_region: bitmap_set of the whole new bitmap; no write protection.
      this.dirty.setRange(a, b)
      this.initial.setRange(a, b)
    } else {
      // kvm_mmu_slot_apply_flags: the whole slot is write-protected, the bitmap starts empty.
      this.dirty.clearRange(a, b)
    }
  }

  stopLogging(s: number): void {
    if (!this.logging[s]) return
    this.logging[s] = 0
    this.loggingSlots--
    this.allLogging = false
    const a = this.slotFirst[s]!
    const b = a + this.slotPages[s]!
    this.dirty.clearRange(a, b)
    if (this.initiallySet) this.initial.clearRange(a, b)
  }

  isLogging(s: number): boolean {
    return this.logging[s] === 1
  }

  private pageLogged(p: number): boolean {
    if (this.allLogging) return true
    if (this.loggingSlots === 0) return false
    for (let s = 0; s < this.logging.length; s++) {
      const a = this.slotFirst[s]!
      if (p >= a && p < a + this.slotPages[s]! && this.logging[s]) return true
    }
    return false
  }

  write(p: number, _vcpu: number): void {
    if (!this.allLogging && !this.pageLogged(p)) return
    const words = this.dirty.words
    const w = p >>> 5
    const m = 1 << (p & 31)
    const v = words[w]!
    // mark_page_dirty_in_slot: only a protected page faults; a page whose bit is set is writable.
    if ((v & m) === 0) {
      words[w] = v | m
      this.stats.loggedWrites++
    }
  }

  /**
   * The words a guest write sets its bit in when that is all write() does: every slot logs
   * (kvm_mmu_slot_apply_flags ran on each). undefined while some slot does not log.
   */
  get allLoggingWords(): Uint32Array | undefined {
    return this.allLogging ? this.dirty.words : undefined
  }

  isInitialBit(p: number): boolean {
    return this.initiallySet && this.initial.get(p)
  }

  getDirtyLog(s: number, into: Bitmap): number {
    this.stats.gets++
    const a = this.slotFirst[s]!
    const b = a + this.slotPages[s]!
    if (!this.logging[s]) {
      // -ENOENT (no dirty bitmap): QEMU's kvm_slot_get_dirty_log treats it as an empty log.
      into.clearRange(a, b)
      return 0
    }
    into.copyRangeFrom(this.dirty, a, b)
    const n = this.dirty.count(a, b)
    // kvm_get_dirty_log_protect, legacy: xchg(word, 0) and re-protect what was reported.
    if (!this.manualProtect) this.dirty.clearRange(a, b)
    return n
  }

  clearDirtyLog(s: number, first: number, num: number, mask: Bitmap | null, maskFrom: number, maskTo: number): number {
    const slotPages = this.slotPages[s]!
    if (!this.manualProtect) throw new KvmIoctlError('KVM_CLEAR_DIRTY_LOG', 'EINVAL', 'manual dirty-log protection is not enabled')
    // kvm_clear_dirty_log_protect: first_page 64-aligned; num_pages 64-aligned unless it reaches the slot end.
    if (first % 64 !== 0) throw new KvmIoctlError('KVM_CLEAR_DIRTY_LOG', 'EINVAL', `first_page ${first} is not a multiple of 64`)
    if (first + num > slotPages) throw new KvmIoctlError('KVM_CLEAR_DIRTY_LOG', 'EINVAL', `pages ${first}+${num} reach past the slot (${slotPages} pages)`)
    if (num % 64 !== 0 && first + num !== slotPages)
      throw new KvmIoctlError('KVM_CLEAR_DIRTY_LOG', 'EINVAL', `num_pages ${num} is not a multiple of 64 and does not reach the slot end`)
    this.stats.clears++
    if (!this.logging[s] || num === 0) return 0
    const base = this.slotFirst[s]!
    const a = base + first
    const b = a + num
    const lo = Math.max(a, maskFrom)
    const hi = Math.min(b, maskTo)
    if (hi <= lo) return 0
    const dirty = this.dirty.words
    const init = this.initial.words
    const mw = mask?.words
    const initiallySet = this.initiallySet
    let cleared = 0
    const w0 = lo >>> 5
    const last = (hi - 1) >>> 5
    for (let w = w0; w <= last; w++) {
      let user = w === w0 || w === last ? wordRangeMask(w, lo, hi) : 0xffffffff
      if (mw) user &= mw[w]!
      // cleared = user_mask & fetch_andnot(kernel_word, user_mask): only bits still set are re-protected.
      const c = (dirty[w]! & user) >>> 0
      if (c === 0) continue
      dirty[w] = dirty[w]! & ~c
      if (initiallySet) init[w] = init[w]! & ~c
      cleared += popcount32(c)
    }
    this.stats.clearedPages += cleared
    return cleared
  }
}
