/**
 * Dirty sources QEMU tracks itself, which KVM never sees:
 * - `dma`: emulated devices writing guest memory through address_space_map/unmap or
 *   address_space_write; invalidate_and_set_dirty() sets ram_list's MIGRATION bits directly.
 * - `vhost`: vhost backends log their writes in the vhost log; vhost_log_sync reads and clears it
 *   (xchg per 64-bit chunk) at each sync.
 * Either way the bits are merged into the migration bitmap at the next sync; nothing in the
 * kernel is ever cleared for them. Both only record while dirty tracking is on.
 */
import type {EventBatch} from '../../trace/events.js'
import {K} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap} from '../bitmap.js'
import type {DirtySink, ModelComponent} from '../component.js'
import type {GuestMemory} from '../memory.js'
import {MODEL_CAUSES, type CauseCodes} from '../causes.js'

export interface QemuSideData {
  writes: number
  pagesMarked: number
  unmapped: number
}

export class QemuSideDirtySource implements ModelComponent<QemuSideData> {
  readonly kinds: readonly number[]
  private bits?: Bitmap
  private lo = Infinity
  private hi = -1
  logging = false
  writes = 0
  pagesMarked = 0
  unmapped = 0
  private readonly cause: number

  constructor(
    readonly id: 'dma' | 'vhost',
    readonly layout: TraceLayout,
    readonly memory: GuestMemory,
    causes: CauseCodes,
  ) {
    this.kinds = [id === 'dma' ? K.dma_write : K.vhost_write]
    this.cause = causes.code(MODEL_CAUSES.dmaVhost)
  }

  reset(fresh = false): void {
    this.bits?.clearAll(fresh)
    this.lo = Infinity
    this.hi = -1
    this.logging = false
    this.writes = 0
    this.pagesMarked = 0
    this.unmapped = 0
  }

  logStart(): void {
    this.logging = true
  }

  logStop(): void {
    this.logging = false
  }

  handleEvent(b: EventBatch, i: number): void {
    const gpa = b.gpa[i]!
    const p0 = this.layout.gpaToPage(gpa)
    if (p0 < 0) {
      this.unmapped++
      return
    }
    this.write(p0, this.layout.pageSpanEnd(gpa, b.len[i]!, p0))
  }

  /** A write over pages [p0, p1) (handleEvent's, from the replay's write loop with the pages found). */
  write(p0: number, p1: number): void {
    this.writes++
    for (let p = p0; p < p1; p++) {
      this.memory.write(p)
      if (this.logging) {
        this.bits ??= new Bitmap(this.layout.totalPages)
        this.bits.set(p)
        this.pagesMarked++
      }
    }
    if (this.logging) {
      this.lo = Math.min(this.lo, p0 >>> 5)
      this.hi = Math.max(this.hi, (p1 - 1) >>> 5)
    }
  }

  logSync(sink: DirtySink): void {
    if (!this.bits || this.hi < 0) return
    const words = this.bits.words
    for (let w = this.lo; w <= this.hi; w++) {
      const v = words[w]!
      if (v === 0) continue
      sink.mergeWord(w, v, this.cause)
      words[w] = 0
    }
    this.lo = Infinity
    this.hi = -1
  }

  data(): QemuSideData {
    return {writes: this.writes, pagesMarked: this.pagesMarked, unmapped: this.unmapped}
  }
}
