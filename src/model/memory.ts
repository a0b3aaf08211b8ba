/**
 * Guest memory ground truth, per global page (ram_addr / pageSize), as real hardware would hold it:
 * - `nonzero`: the page holds data (populated at the start or written since). A page that is not
 *   nonzero is a zero page, which QEMU's zero-page detection sends as a 9-byte record
 *   (save_zero_page: header + 1 byte).
 * - `modified`: the source content differs from what the destination holds, i.e. the page was
 *   written since its last send (or holds data and was never sent). At the end of a migration a
 *   set bit is a lost write: the destination runs with stale content.
 * Two bits per page; the destination needs no more state than that for the questions we ask.
 * `modified` is a subset of `nonzero` (a zero page's copy is never stale: both bits are set
 * together and cleared together, and a send clears `modified` alone), which readers use to skip
 * the modified words of zero-page words.
 */
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {Bitmap, popcount32} from './bitmap.js'

export class GuestMemory {
  readonly pages: number
  readonly nonzero: Bitmap
  readonly modified: Bitmap
  /** Pages written (by anyone) since the last call to takeNewlyModified(). */
  newlyModified = 0

  constructor(readonly layout: TraceLayout) {
    this.pages = layout.totalPages
    this.nonzero = new Bitmap(this.pages)
    this.modified = new Bitmap(this.pages)
  }

  /**
   * Start state from the header's `populated`: those pages hold data the destination lacks.
   * `fresh`: just built, the bitmaps are still zero.
   */
  reset(populated: TraceHeader['populated'] = this.layout.header.populated, fresh = false): void {
    this.nonzero.clearAll(fresh)
    this.modified.clearAll(fresh)
    this.newlyModified = 0
    if (populated === 'none') return
    if (populated === 'all') {
      for (const b of this.layout.blocks) {
        this.nonzero.setRange(b.firstPage, b.firstPage + b.pages)
        this.modified.setRange(b.firstPage, b.firstPage + b.pages)
      }
      return
    }
    const ps = this.layout.pageSize
    for (const r of populated) {
      let gpa = r.gpa
      const end = r.gpa + r.len
      while (gpa < end) {
        const slotEnd = this.layout.slotEndOf(gpa)
        if (slotEnd < 0) {
          gpa = (Math.floor(gpa / ps) + 1) * ps
          continue
        }
        const stop = Math.min(end, slotEnd)
        const p0 = this.layout.gpaToPage(gpa)
        const p1 = p0 + Math.ceil((stop - gpa) / ps)
        this.nonzero.setRange(p0, p1)
        this.modified.setRange(p0, p1)
        gpa = stop
      }
    }
  }

  /** A write to page p (hot path). */
  write(p: number): void {
    const w = p >>> 5
    const m = 1 << (p & 31)
    const mod = this.modified.words
    const v = mod[w]!
    // modified is a subset of nonzero: a page already modified holds data, so a write to it (the
    // common case: a page written again before its send) reads one word and stores nothing.
    if ((v & m) === 0) {
      mod[w] = v | m
      this.newlyModified++
      this.nonzero.words[w]! |= m
    }
  }

  /** Writes to pages [p0, p1). */
  writeRange(p0: number, p1: number): void {
    for (let p = p0; p < p1; p++) this.write(p)
  }

  /** Pages whose destination copy is stale right now. */
  staleCount(): number {
    // modified is a subset of nonzero: words with no data hold no stale page and are not read.
    const nz = this.nonzero.words
    const mod = this.modified.words
    let n = 0
    for (let w = 0; w < nz.length; w++) if (nz[w] !== 0 && mod[w] !== 0) n += popcount32(mod[w]!)
    return n
  }
}
