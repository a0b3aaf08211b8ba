/**
 * QEMU's per-RAMBlock migration state (migration/ram.c): `bmap` (1 = must be sent), the count of
 * its set bits (migration_dirty_pages), `clear_bmap` (1 = KVM bits of this chunk collected but not
 * yet cleared) and the scan cursor (last_seen_block / last_page), which survives syncs.
 * Blocks are laid out back to back in global page numbers, so one bitmap over global pages holds
 * every block's bmap in ram_addr order: scanning it is QEMU's block-by-block round robin.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap, popcount32} from '../bitmap.js'
import type {DirtySink, PageCauseSink} from '../component.js'

export class MigrationBitmap implements DirtySink {
  readonly bmap: Bitmap
  readonly clearBmap: Bitmap
  dirtyPages = 0
  /** Bits newly set since the last takeNewPages() (physical_memory_sync_dirty_bitmap's `new`). */
  newPages = 0
  cursor = 0
  /** Set when the last findNext wrapped around (complete_round). */
  wrapped = false
  private readonly blockFirst: Float64Array
  private readonly blockPages: Float64Array
  private readonly chunkBase: Float64Array
  private lastBlock = 0
  /**
   * Pages of blocks that cpu_physical_memory_sync_dirty_bitmap (include/exec/ram_addr.h, QEMU
   * <= 8.2) walks page by page: a block whose used_length is not a multiple of 64 pages (its offset
   * always is: find_ram_offset rounds it up to a bitmap word). Each dirty page there costs a
   * cpu_physical_memory_test_and_clear_dirty with a TLB reset (the sync's per-page cost); the
   * other blocks take the word-at-a-time fast path.
   */
  readonly perPagePath: Bitmap
  /**
   * The number of pages in perPagePath. When 0 (every block a multiple of 64 pages, the usual
   * case) perPagePath and syncSeen are empty maps and a sync does not look at them: a large
   * guest then pays no per-sync pass and no memory for them.
   */
  readonly perPagePathPages: number
  /** Pages a source reported dirty in this sync (ram_list's DIRTY_MEMORY_MIGRATION bits), each once. */
  private readonly syncSeen: Bitmap
  /** Of those, pages on the per-page path (see perPagePath), counted since beginSync(). */
  perPageDirty = 0

  constructor(
    readonly layout: TraceLayout,
    /** Told the cause of every bit this bitmap newly sets (the send ledger, wired by the replay). */
    readonly causes: PageCauseSink,
    readonly shift: number,
  ) {
    this.bmap = new Bitmap(layout.totalPages)
    this.chunkPages = 2 ** shift
    this.blockFirst = Float64Array.from(layout.blocks, (b) => b.firstPage)
    this.blockPages = Float64Array.from(layout.blocks, (b) => b.pages)
    this.chunkBase = new Float64Array(layout.blocks.length)
    let chunks = 0
    layout.blocks.forEach((b, i) => {
      this.chunkBase[i] = chunks
      chunks += Math.ceil(b.pages / 2 ** shift)
    })
    this.clearBmap = new Bitmap(chunks)
    let slow = 0
    for (const b of layout.blocks) if (b.pages % 64 !== 0) slow += b.pages
    this.perPagePathPages = slow
    this.perPagePath = new Bitmap(slow > 0 ? layout.totalPages : 0)
    this.syncSeen = new Bitmap(slow > 0 ? layout.totalPages : 0)
    for (const b of layout.blocks) if (b.pages % 64 !== 0) this.perPagePath.setRange(b.firstPage, b.firstPage + b.pages)
  }

  /** A sync starts: the per-page count restarts (sources merge their bits next). */
  beginSync(): void {
    if (this.perPagePathPages > 0) this.syncSeen.fill(false)
    this.perPageDirty = 0
  }

  /** `fresh`: just built, the bitmaps are still zero. */
  reset(fresh = false): void {
    this.bmap.clearAll(fresh)
    this.clearBmap.clearAll(fresh)
    this.dirtyPages = 0
    this.newPages = 0
    this.cursor = 0
    this.wrapped = false
    this.seenLo = this.seenHi = 0
    this.syncSeen.clearAll(fresh)
    this.perPageDirty = 0
  }

  /** ram_list_init_bitmaps: every page of every block must be sent. */
  setAll(): void {
    for (let i = 0; i < this.blockFirst.length; i++) this.bmap.setRange(this.blockFirst[i]!, this.blockFirst[i]! + this.blockPages[i]!)
    this.dirtyPages = this.bmap.count()
  }

  mergeWord(w: number, bits: number, cause: number): void {
    // Every reported page is tested and cleared in ram_list, already set in bmap or not.
    if (this.perPagePathPages > 0) {
      const seen = this.syncSeen.words
      const fresh = (bits & ~seen[w]! & this.perPagePath.words[w]!) >>> 0
      if (fresh !== 0) {
        this.perPageDirty += popcount32(fresh)
        seen[w] = seen[w]! | fresh
      }
    }
    const words = this.bmap.words
    const old = words[w]!
    const nw = (bits & ~old) >>> 0
    if (nw === 0) return
    words[w] = old | bits
    const n = popcount32(nw)
    this.dirtyPages += n
    this.newPages += n
    this.causes.setCauseWord(w, nw, cause)
  }

  /** Mark one page dirty (sources that work page by page). */
  markPage(p: number, cause: number): void {
    this.mergeWord(p >>> 5, 1 << (p & 31), cause)
  }

  takeNewPages(): number {
    const n = this.newPages
    this.newPages = 0
    return n
  }

  /** Lazy clear bookkeeping at a sync: every chunk of every block needs its CLEAR again. */
  markAllChunks(): void {
    this.clearBmap.fill(true)
    this.seenLo = this.seenHi = 0
  }

  blockIndexOf(p: number): number {
    let b = this.lastBlock
    if (p >= this.blockFirst[b]! && p < this.blockFirst[b]! + this.blockPages[b]!) return b
    for (b = 0; b < this.blockFirst.length; b++) {
      if (p >= this.blockFirst[b]! && p < this.blockFirst[b]! + this.blockPages[b]!) {
        this.lastBlock = b
        return b
      }
    }
    return -1
  }

  /**
   * migration_clear_memory_region_dirty_bitmap: if page p's chunk still needs its CLEAR, take the
   * bit and return the chunk's global page range start (end in pendingChunkEnd); else -1.
   * The chunk last looked at is remembered: its bit stays clear until the next sync.
   */
  takeChunk(p: number): number {
    if (p >= this.seenLo && p < this.seenHi) return -1
    const b = this.blockIndexOf(p)
    if (b < 0) return -1
    const first = this.blockFirst[b]!
    const c = Math.floor((p - first) / this.chunkPages)
    const lo = first + c * this.chunkPages
    const hi = Math.min(lo + this.chunkPages, first + this.blockPages[b]!)
    this.seenLo = lo
    this.seenHi = hi
    if (!this.clearBmap.testAndClear(this.chunkBase[b]! + c)) return -1
    this.pendingChunkEnd = hi
    return lo
  }
  /** End (exclusive) of the chunk the last successful takeChunk returned. */
  pendingChunkEnd = 0
  private seenLo = 0
  private seenHi = 0
  private readonly chunkPages: number

  /** find_dirty_block: next set bit from the cursor, wrapping once; -1 when clean. */
  findNext(): number {
    let p = this.bmap.nextSet(this.cursor)
    this.wrapped = false
    if (p < 0) {
      p = this.bmap.nextSet(0, this.cursor)
      if (p < 0) return -1
      this.wrapped = true
    }
    this.cursor = p
    return p
  }

  /** Page p lies in the chunk takeChunk looked at last (its CLEAR is done or not needed). */
  inSeenChunk(p: number): boolean {
    return p >= this.seenLo && p < this.seenHi
  }

  /**
   * The pages of word w from bit `from` up that are set, all taken at once (test_and_clear_bit on
   * each, in page order): the cursor ends on the last of them. Returns the bits taken.
   */
  takeWordFrom(w: number, from: number): number {
    const words = this.bmap.words
    const v = (words[w]! & (0xffffffff << from)) >>> 0
    if (v === 0) return 0
    this.takeBits(w, v)
    return v
  }

  /** Clear bits `v` (all set) of word w as sent; the cursor moves to the highest of them. */
  takeBits(w: number, v: number): void {
    const words = this.bmap.words
    words[w] = words[w]! & ~v
    this.dirtyPages -= popcount32(v)
    const last = w * 32 + 31 - Math.clz32(v)
    // findNext called again inside one word never wraps.
    if (last !== this.cursor) this.wrapped = false
    this.cursor = last
  }

  /** The page is being sent: test_and_clear_bit(page, rb->bmap). */
  takePage(p: number): boolean {
    if (!this.bmap.testAndClear(p)) return false
    this.dirtyPages--
    return true
  }

  blockRanges(): [number, number][] {
    return Array.from(this.blockFirst, (f, i) => [f, f + this.blockPages[i]!] as [number, number])
  }
}
