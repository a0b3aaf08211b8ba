/**
 * QEMU's KVM memory listener (accel/kvm/kvm-all.c): the per-slot cache of the last
 * KVM_GET_DIRTY_LOG (KVMSlot.dirty_bmap), log_sync (GET per slot, or ring reap + flush),
 * log_clear (kvm_log_clear_one_slot with its 64-page alignment) and the ring reaper thread.
 * The clear policy is a switch: `known-dirty` sends the cache bits of the range as the CLEAR mask
 * (QEMU >= 4.0, closing the 2019 race), `all-ones` clears the whole range and loses any write
 * logged after the last GET.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap, wordRangeMask} from '../bitmap.js'
import type {DirtySink, ModelComponent} from '../component.js'
import {MODEL_CAUSES, type CauseCodes} from '../causes.js'
import {createKvmDirtyLog, type ClearPolicy, type DirtyLogMode, type KvmBitmapDirtyLog, type KvmDirtyLog, type KvmRingDirtyLog, type KvmStats} from '../kvm/index.js'

export const REAPER_PERIOD_NS = 1e9

export interface KvmListenerOptions {
  mode: DirtyLogMode
  clearPolicy: ClearPolicy
  vcpus: number
  ringSize: number
  pml: boolean
  /** The migration bitmap clears lazily (x-clear-bitmap-shift chunks at their first send). */
  lazyClear: boolean
  causes: CauseCodes
}

export interface KvmData extends KvmStats {
  mode: DirtyLogMode['name']
  clearPolicy: ClearPolicy
  clearCalls: number
}

export class KvmListener implements ModelComponent<KvmData> {
  readonly id = 'kvm'
  readonly kinds: readonly number[] = []
  readonly kvm: KvmDirtyLog
  /** KVMSlot.dirty_bmap of every slot, by global page. */
  readonly cache: Bitmap
  private readonly ring?: KvmRingDirtyLog
  private readonly bitmapLog?: KvmBitmapDirtyLog
  /** Cause of a KVM-logged bit: the window in which a write after the sync's re-protect lands. */
  private readonly windowCause: number
  private readonly initialCause: number
  private nextReap = Infinity
  logging = false
  /** KVM_CLEAR_DIRTY_LOG calls issued by QEMU's log_clear. */
  clearCalls = 0

  constructor(
    readonly layout: TraceLayout,
    readonly opts: KvmListenerOptions,
  ) {
    this.kvm = createKvmDirtyLog(layout, opts.mode, opts)
    this.cache = new Bitmap(layout.totalPages)
    if (this.kvm.family === 'ring') this.ring = this.kvm as KvmRingDirtyLog
    else this.bitmapLog = this.kvm as KvmBitmapDirtyLog
    this.windowCause = opts.causes.code(opts.mode.lazyClear && opts.lazyClear ? MODEL_CAUSES.lazyClearWindow : MODEL_CAUSES.syncWindow)
    this.initialCause = opts.mode.initiallySet ? opts.causes.code(MODEL_CAUSES.initiallySet) : 0
  }

  reset(fresh = false): void {
    this.kvm.reset(fresh)
    this.cache.clearAll(fresh)
    this.nextReap = Infinity
    this.logging = false
    this.clearCalls = 0
    this.dirtyLimited = false
  }

  /** kvm_log_start on every slot (the slot flags gain KVM_MEM_LOG_DIRTY_PAGES). */
  logStart(now: number): void {
    for (let s = 0; s < this.layout.slots.length; s++) this.kvm.startLogging(s)
    this.logging = true
    // kvm_dirty_ring_reaper_thread: sleep(1) between reaps.
    if (this.ring) this.nextReap = now + REAPER_PERIOD_NS
  }

  logStop(_now: number): void {
    for (let s = 0; s < this.layout.slots.length; s++) this.kvm.stopLogging(s)
    this.logging = false
    this.nextReap = Infinity
  }

  /**
   * Dirty-limit is in service (set by the replay's throttle): a ring-full exit reaps the exiting
   * vCPU only and the reaper thread skips its rounds (kvm_dirty_ring_reaper_thread,
   * kvm_cpu_exec's KVM_EXIT_DIRTY_RING_FULL; qemu-semantics.md §1.3).
   */
  dirtyLimited = false

  /** A guest write (hot path); a ring-full exit reaps every ring (or, dirty-limited, its own). */
  write(p: number, vcpu: number): void {
    this.kvm.write(p, vcpu)
    const ring = this.ring
    if (ring?.fullPending) {
      if (this.dirtyLimited) ring.reapVcpu(ring.fullVcpu, this.cache)
      else ring.reap(this.cache)
    }
  }

  /**
   * The dirty bitmap's words when a guest write is one bit there and nothing more (a bitmap mode,
   * every slot logging): the session's write loop sets them itself (ReplaySession.feedFast),
   * adding the bits it set to the log's loggedWrites. undefined otherwise (the ring, whose pushes
   * can fill it; a slot not logging).
   */
  get writeWords(): Uint32Array | undefined {
    return this.bitmapLog?.allLoggingWords
  }

  nextTimer(): number {
    return this.nextReap
  }

  onTimer(now: number): void {
    if (this.ring && this.logging) {
      if (!this.dirtyLimited) this.ring.reap(this.cache)
      this.nextReap = now + REAPER_PERIOD_NS
    } else this.nextReap = Infinity
  }

  /** kvm_slot_get_dirty_log on slot index s (bitmap modes); the recorded driver calls it per ioctl. */
  getSlot(s: number): number {
    if (!this.bitmapLog) return 0
    return this.bitmapLog.getDirtyLog(s, this.cache)
  }

  logSync(sink: DirtySink, _lastStage: boolean): void {
    if (this.ring) {
      // kvm_log_sync_global: kick + reap, OR dirty_bmap into ram_list, then zero dirty_bmap.
      this.ring.reap(this.cache)
      for (const slot of this.layout.slots) this.mergeRange(sink, slot.firstPage, slot.firstPage + slot.pages, true)
      return
    }
    // kvm_physical_sync_dirty_bitmap: GET overwrites the cache, which is OR-ed into ram_list.
    for (let s = 0; s < this.layout.slots.length; s++) {
      if (!this.kvm.isLogging(s)) continue
      this.getSlot(s)
    }
    this.mergeCache(sink)
  }

  /** OR the whole cache into the sink (after GETs done elsewhere, e.g. by the recorded driver). */
  mergeCache(sink: DirtySink): void {
    for (const slot of this.layout.slots) this.mergeRange(sink, slot.firstPage, slot.firstPage + slot.pages, false)
  }

  private mergeRange(sink: DirtySink, a: number, b: number, zero: boolean): void {
    const cw = this.cache.words
    const log = this.bitmapLog as {initial?: Bitmap; initiallySet?: boolean} | undefined
    const init = log?.initiallySet ? log.initial!.words : undefined
    for (let w = a >>> 5, last = (b - 1) >>> 5; w <= last; w++) {
      const m = w === a >>> 5 || w === last ? wordRangeMask(w, a, b) : 0xffffffff
      const bits = (cw[w]! & m) >>> 0
      if (bits === 0) continue
      if (init) {
        const ib = (bits & init[w]!) >>> 0
        if (ib !== 0) sink.mergeWord(w, ib, this.initialCause)
        const rest = (bits & ~ib) >>> 0
        if (rest !== 0) sink.mergeWord(w, rest, this.windowCause)
      } else sink.mergeWord(w, bits, this.windowCause)
      if (zero) cw[w] = cw[w]! & ~m
    }
  }

  /** kvm_log_clear (kvm_physical_log_clear): a no-op unless manual protect. */
  logClear(a: number, b: number): void {
    if (!this.bitmapLog || !this.opts.mode.manualProtect) return
    const slots = this.layout.slots
    for (let s = 0; s < slots.length; s++) {
      const slot = slots[s]!
      const lo = Math.max(a, slot.firstPage)
      const hi = Math.min(b, slot.firstPage + slot.pages)
      if (hi <= lo) continue
      this.clearOneSlot(s, lo, hi)
    }
  }

  /** kvm_log_clear_one_slot: widen to 64-page alignment inside the slot, mask per clear policy. */
  clearOneSlot(s: number, lo: number, hi: number): number {
    const slot = this.layout.slots[s]!
    const off = lo - slot.firstPage
    const bmapStart = Math.floor(off / 64) * 64
    const startDelta = off - bmapStart
    const npages = Math.min(Math.ceil((hi - lo + startDelta) / 64) * 64, slot.pages - bmapStart)
    this.clearCalls++
    const mask = this.opts.clearPolicy === 'known-dirty' ? this.cache : null
    const n = this.bitmapLog!.clearDirtyLog(s, bmapStart, npages, mask, lo, hi)
    // Forget what was cleared, so a second log_clear of the range sends an empty mask.
    this.cache.clearRange(lo, hi)
    return n
  }

  /** The recorded driver's KVM_CLEAR_DIRTY_LOG(slot, first_page, num_pages) with QEMU's mask. */
  clearRecorded(s: number, first: number, num: number): number {
    const slot = this.layout.slots[s]!
    this.clearCalls++
    const lo = slot.firstPage + first
    const hi = Math.min(lo + num, slot.firstPage + slot.pages)
    const mask = this.opts.clearPolicy === 'known-dirty' ? this.cache : null
    const n = this.bitmapLog ? this.bitmapLog.clearDirtyLog(s, first, hi - lo, mask, lo, hi) : 0
    this.cache.clearRange(lo, hi)
    return n
  }

  /** The recorded driver's KVM_RESET_DIRTY_RINGS (QEMU harvests right before it). */
  reapRecorded(): number {
    return this.ring ? this.ring.reap(this.cache) : 0
  }

  data(): KvmData {
    return {mode: this.kvm.mode.name, clearPolicy: this.opts.clearPolicy, ...this.kvm.stats, clearCalls: this.clearCalls}
  }
}
