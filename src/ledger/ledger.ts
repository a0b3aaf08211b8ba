/**
 * The per-page send ledger: every page send is recorded and classified, and every figure of a
 * replay report derives from it.
 * - first: the page's first copy (non-zero content);
 * - redirtied: content changed since its last send (a necessary re-send);
 * - redundant: content unchanged since its last send (a double-copy), with the cause the dirty
 *   source gave when it set the page's migration-bitmap bit;
 * - zero: the page holds only zeros (never written, not populated).
 * Per page: a `sent` bit; the send count of pages sent twice or more (saturating at 15) and the
 * pending cause, 4 bits each in chunks allocated only where some page needs them (PagedNibbles);
 * the histogram of send counts is kept as sends happen. A 1 TiB guest with a short trace costs
 * ~1 bit per page here.
 * The ledger knows no model type: it reads page contents through PageContent and numbers causes
 * by the run's cause list (the model's CauseTable fits both shapes).
 */
import {Bitmap, lowestBit, popcount32} from '../model/bitmap.js'

const NIBBLE_CHUNK_SHIFT = 16
const NIBBLE_CHUNK_PAGES = 1 << NIBBLE_CHUNK_SHIFT
/** Bitmap words (32 pages) per chunk. */
const NIBBLE_CHUNK_WORDS = NIBBLE_CHUNK_PAGES >>> 5

/**
 * Per byte value b: the nibble mask of its pages (0xf in nibble j where bit j of b is set), so a
 * bitmap word's pages are set in a chunk 8 at a time.
 */
const NIBBLE_MASK = Uint32Array.from({length: 256}, (_, b) => {
  let m = 0
  for (let j = 0; j < 8; j++) if ((b >>> j) & 1) m |= 15 << (4 * j)
  return m >>> 0
})

/** Offset, in its chunk, of the 4 nibble words of bitmap word w (pages w*32..w*32+31, 8 a word). */
export function nibbleOffset(w: number): number {
  return (w & (NIBBLE_CHUNK_WORDS - 1)) << 2
}

/** A run can tell at most this many causes apart: a page's pending cause is kept in 4 bits. */
export const MAX_CAUSES = 16

/** The two bits per page the ledger classifies a send by (the model's GuestMemory has them). */
export interface PageContent {
  /** The page holds data (else it is a zero page). */
  readonly nonzero: {readonly words: Uint32Array}
  /** The destination's copy is stale (written since its last send); only pages with data are. */
  readonly modified: {readonly words: Uint32Array}
  /** Pages whose destination copy is stale now. */
  staleCount(): number
}

export const SendClass = {first: 0, redirtied: 1, redundant: 2, zero: 3} as const
export type SendClassName = keyof typeof SendClass

/** Offsets in a counter array. */
export const C = {
  pages: 0,
  bytes: 1,
  first: 2,
  redirtied: 3,
  redundant: 4,
  zero: 5,
  zeroBytes: 6,
  /** Bytes the double-copies took on the wire (a page record, or a header alone when RAM is remapped). */
  redundantBytes: 7,
  /** Redundant pages by cause code: C.cause + code. */
  cause: 8,
} as const
export const COUNTER_LEN = C.cause + MAX_CAUSES

/** The stream header of a page record (be64 offset | flags), as save_normal_page / save_zero_page. */
export const PAGE_HEADER_BYTES = 8
/** save_zero_page: header plus one byte. */
export const ZERO_PAGE_BYTES = PAGE_HEADER_BYTES + 1

export interface LedgerTotals {
  pagesSent: number
  bytesSent: number
  firstPages: number
  redirtiedPages: number
  redundantPages: number
  /** Bytes of the double-copies on the wire. */
  redundantBytes: number
  zeroPages: number
  normalPages: number
  redundantByCause: Record<string, number>
}

export class SendLedger {
  /** Pages sent at least once. */
  readonly sent: Bitmap
  /** Send counts of the pages sent twice or more (0 there: 0 or 1 sends, from `sent`). */
  private readonly multi: PagedNibbles
  /** Pending causes (0, unattributed, until a source names one). */
  private readonly cause: PagedNibbles
  /** Pages by send count (index 15: 15 or more), kept as sends happen. */
  private readonly hist = new Float64Array(16)
  readonly total = new Float64Array(COUNTER_LEN)
  /** Counters of the current iteration (reset by beginIteration). */
  readonly iter = new Float64Array(COUNTER_LEN)
  readonly normalBytes: number

  constructor(
    readonly memory: PageContent,
    readonly pages: number,
    readonly pageSize: number,
    /** The run's causes by code (a live list: parts may add causes while the model is built). */
    readonly causes: readonly {readonly id: string}[],
    public zeroPageDetection = true,
  ) {
    this.sent = new Bitmap(pages)
    this.multi = new PagedNibbles(pages)
    this.cause = new PagedNibbles(pages)
    this.normalBytes = PAGE_HEADER_BYTES + pageSize
    this.hist[0] = pages
  }

  /** `fresh`: just built, the sent bitmap is still zero. */
  reset(fresh = false): void {
    this.sent.clearAll(fresh)
    this.multi.clear()
    this.cause.clear()
    this.hist.fill(0)
    this.hist[0] = this.pages
    this.total.fill(0)
    this.iter.fill(0)
  }

  get pagesSent(): number {
    return this.total[C.pages]!
  }

  /** Bytes of RAM records on the wire so far. */
  get bytesSent(): number {
    return this.total[C.bytes]!
  }

  /** The dirty source that set page p's migration-bitmap bit. */
  setCause(p: number, code: number): void {
    this.cause.set(p, code)
  }

  /** setCause of every page of bitmap word w in `bits` (a sync's merge of a whole word). */
  setCauseWord(w: number, bits: number, code: number): void {
    this.cause.setWord(w, bits, code)
  }

  causeOf(p: number): number {
    return this.cause.get(p)
  }

  /** Times page p was sent (15: 15 or more). */
  sendCount(p: number): number {
    if (!this.sent.get(p)) return 0
    return this.multi.get(p) || 1
  }

  /** Count one more send of page p, which was sent before; returns the count before. */
  private countResend(p: number): number {
    const n = this.multi.get(p) || 1
    if (n < 15) {
      this.multi.set(p, n + 1)
      this.hist[n]!--
      this.hist[n + 1]!++
    }
    return n
  }

  /**
   * countResend of every page of word w in `bits` (all sent before): the word's four nibble words
   * read and written once, not a chunk lookup per page.
   */
  private countResendsOfWord(w: number, bits: number): void {
    const c = this.multi.chunkOfWord(w, true)!
    const o = nibbleOffset(w)
    const hist = this.hist
    for (let k = 0; k < 4; k++) {
      let b8 = (bits >>> (k * 8)) & 0xff
      if (b8 === 0) continue
      let x = c[o + k]!
      for (; b8 !== 0; b8 &= b8 - 1) {
        const s = lowestBit(b8) << 2
        const n = (x >>> s) & 15 || 1
        if (n < 15) {
          x = (x & ~(15 << s)) | ((n + 1) << s)
          hist[n]!--
          hist[n + 1]!++
        }
      }
      c[o + k] = x
    }
  }

  /** The redundant pages of word w in `bits`, counted by the cause each has pending. */
  private countCausesOfWord(w: number, bits: number): void {
    const total = this.total
    const iter = this.iter
    const c = this.cause.chunkOfWord(w, false)
    if (c === undefined) {
      // No cause set anywhere near: every page's is 0 (unattributed).
      const r = popcount32(bits)
      total[C.cause]! += r
      iter[C.cause]! += r
      return
    }
    const o = nibbleOffset(w)
    for (let v = bits; v !== 0; v = (v & (v - 1)) >>> 0) {
      const j = lowestBit(v)
      const k = C.cause + ((c[o + (j >>> 3)]! >>> ((j & 7) << 2)) & 15)
      total[k]!++
      iter[k]!++
    }
  }

  /**
   * Record the send of page p now (its content read at this moment); returns bytes on the wire
   * (`wireBytes` when the caller knows them, e.g. from a recorded page_sent).
   */
  recordSend(p: number, wireBytes = -1): number {
    const mem = this.memory
    const w = p >>> 5
    const m = 1 << (p & 31)
    const nonzero = (mem.nonzero.words[w]! & m) !== 0
    const mod = mem.modified.words[w]!
    const modified = (mod & m) !== 0
    if (modified) mem.modified.words[w] = mod & ~m
    const sw = this.sent.words
    const s = sw[w]!
    const before = (s & m) !== 0
    if (before) this.countResend(p)
    else {
      sw[w] = s | m
      this.hist[0]!--
      this.hist[1]!++
    }
    let cls: number
    if (!nonzero) cls = C.zero
    else if (!before) cls = C.first
    else if (modified) cls = C.redirtied
    else {
      cls = C.redundant
      const k = C.cause + this.causeOf(p)
      this.total[k]!++
      this.iter[k]!++
    }
    const bytes = wireBytes >= 0 ? wireBytes : !nonzero && this.zeroPageDetection ? ZERO_PAGE_BYTES : this.normalBytes
    this.total[cls]!++
    this.iter[cls]!++
    this.total[C.pages]!++
    this.iter[C.pages]!++
    this.total[C.bytes]! += bytes
    this.iter[C.bytes]! += bytes
    if (cls === C.zero) {
      this.total[C.zeroBytes]! += bytes
      this.iter[C.zeroBytes]! += bytes
    } else if (cls === C.redundant) this.total[C.redundantBytes]! += bytes
    return bytes
  }

  /** Bytes of one page record for a page with data / a zero page, as recordSend counts them by default. */
  get zeroBytes(): number {
    return this.zeroPageDetection ? ZERO_PAGE_BYTES : this.normalBytes
  }

  /**
   * recordSend of every page of word w in `bits` at once (same figures as page by page, in any
   * order: the sends of one word read content no write changes in between). `nzBytes` and
   * `zBytes` are the wire bytes of a page with data and of a zero page. Returns the bytes.
   */
  recordWord(w: number, bits: number, nzBytes: number, zBytes: number): number {
    const mem = this.memory
    // One page (a rate-limited stream sends one between two guest events): the page-by-page path.
    if ((bits & (bits - 1)) === 0) return this.recordSend(w * 32 + lowestBit(bits), (mem.nonzero.words[w]! & bits) !== 0 ? nzBytes : zBytes)
    const nz = (mem.nonzero.words[w]! & bits) >>> 0
    const mw = mem.modified.words
    // Only a page with data can be stale (PageContent): a word of zero pages is not read, which
    // keeps the modified map of a large, mostly unwritten guest uncommitted.
    const mod = nz === 0 ? 0 : (mw[w]! & bits) >>> 0
    if (mod !== 0) mw[w] = mw[w]! & ~mod
    const sw = this.sent.words
    const before = (sw[w]! & bits) >>> 0
    const fresh = (bits & ~before) >>> 0
    const total = this.total
    const iter = this.iter
    if (fresh !== 0) {
      sw[w] = sw[w]! | fresh
      const n = popcount32(fresh)
      this.hist[0]! -= n
      this.hist[1]! += n
    }
    if (before !== 0) {
      this.countResendsOfWord(w, before)
      // Unchanged since their last send: double copies, by the cause that set their bit.
      const red = (before & nz & ~mod) >>> 0
      if (red !== 0) {
        const r = popcount32(red)
        total[C.redundant]! += r
        iter[C.redundant]! += r
        total[C.redundantBytes]! += r * nzBytes
        this.countCausesOfWord(w, red)
      }
      const re = popcount32((before & nz & mod) >>> 0)
      total[C.redirtied]! += re
      iter[C.redirtied]! += re
    }
    const first = popcount32((fresh & nz) >>> 0)
    total[C.first]! += first
    iter[C.first]! += first
    const nn = popcount32(nz)
    const nzero = popcount32(bits) - nn
    total[C.zero]! += nzero
    iter[C.zero]! += nzero
    const zb = nzero * zBytes
    total[C.zeroBytes]! += zb
    iter[C.zeroBytes]! += zb
    const bytes = nn * nzBytes + zb
    total[C.pages]! += nn + nzero
    iter[C.pages]! += nn + nzero
    total[C.bytes]! += bytes
    iter[C.bytes]! += bytes
    return bytes
  }

  /** The current iteration's counts; the counters start again from zero. */
  takeIteration(): IterationCounts {
    const c = this.iter
    const out: IterationCounts = {
      pagesSent: c[C.pages]!,
      bytesSent: c[C.bytes]!,
      first: c[C.first]!,
      redirtied: c[C.redirtied]!,
      redundant: c[C.redundant]!,
      zero: c[C.zero]!,
      redundantByCause: this.causeCounts(c),
    }
    c.fill(0)
    return out
  }

  /** Redundant pages by cause id, from a counter array (every cause of the run listed). */
  causeCounts(counters: Float64Array): Record<string, number> {
    const out: Record<string, number> = {}
    this.causes.forEach((c, i) => (out[c.id] = counters[C.cause + i]!))
    return out
  }

  totals(): LedgerTotals {
    const t = this.total
    return {
      pagesSent: t[C.pages]!,
      bytesSent: t[C.bytes]!,
      firstPages: t[C.first]!,
      redirtiedPages: t[C.redirtied]!,
      redundantPages: t[C.redundant]!,
      redundantBytes: t[C.redundantBytes]!,
      zeroPages: t[C.zero]!,
      normalPages: t[C.pages]! - (this.zeroPageDetection ? t[C.zero]! : 0),
      redundantByCause: this.causeCounts(t),
    }
  }

  /** Pages by number of sends: index k = pages sent k times (15 = 15 or more). */
  sendCountHistogram(): number[] {
    return Array.from(this.hist)
  }

  /** Pages of [a, b) never sent. */
  unsentPages(a: number, b: number): number {
    return b - a - this.sent.count(a, b)
  }

  /** Pages whose destination copy differs from the source (meaningful once the source stopped). */
  lostWrites(): number {
    return this.memory.staleCount()
  }
}


/**
 * A 4-bit value per page, 0 unless set, in chunks of 2^16 pages (32 KiB) allocated at the first
 * non-zero value: a large guest pays only where values are kept (the written part of a short
 * trace), with no hashing and no per-page objects. A chunk is 32-bit words of 8 pages each (page
 * p in bits 4*(p & 7) up), so the 32 pages of a bitmap word are 4 words of a chunk: word-at-a-time
 * users (a sync's merge, a word's sends) take them together.
 */
export class PagedNibbles {
  private readonly chunks: (Uint32Array | undefined)[]

  constructor(pages: number) {
    this.chunks = new Array<Uint32Array | undefined>(Math.ceil(pages / NIBBLE_CHUNK_PAGES)).fill(undefined)
  }

  clear(): void {
    this.chunks.fill(undefined)
  }

  get(p: number): number {
    const c = this.chunks[p >>> NIBBLE_CHUNK_SHIFT]
    if (c === undefined) return 0
    return (c[(p & (NIBBLE_CHUNK_PAGES - 1)) >>> 3]! >>> ((p & 7) << 2)) & 15
  }

  set(p: number, value: number): void {
    const i = p >>> NIBBLE_CHUNK_SHIFT
    let c = this.chunks[i]
    if (c === undefined) {
      if (value === 0) return
      c = this.chunks[i] = new Uint32Array(NIBBLE_CHUNK_PAGES >>> 3)
    }
    const o = (p & (NIBBLE_CHUNK_PAGES - 1)) >>> 3
    const s = (p & 7) << 2
    c[o] = (c[o]! & ~(15 << s)) | (value << s)
  }

  /** set(p, value) for every page of bitmap word w whose bit is set in `bits`. */
  setWord(w: number, bits: number, value: number): void {
    const c = this.chunkOfWord(w, value !== 0)
    if (c === undefined) return
    const o = nibbleOffset(w)
    const fill = Math.imul(value, 0x11111111)
    for (let k = 0; k < 4; k++) {
      const b8 = (bits >>> (k * 8)) & 0xff
      if (b8 === 0) continue
      const m = NIBBLE_MASK[b8]!
      c[o + k] = (c[o + k]! & ~m) | (fill & m)
    }
  }

  /**
   * The chunk holding bitmap word w's pages (its 4 words at nibbleOffset(w)); `alloc`: allocated
   * if it is not yet, else undefined then (every value there is 0).
   */
  chunkOfWord(w: number, alloc: boolean): Uint32Array | undefined {
    const i = w >>> (NIBBLE_CHUNK_SHIFT - 5)
    const c = this.chunks[i]
    if (c !== undefined || !alloc) return c
    return (this.chunks[i] = new Uint32Array(NIBBLE_CHUNK_PAGES >>> 3))
  }

  /** Chunks allocated (each NIBBLE_CHUNK_PAGES / 2 bytes). */
  get allocatedChunks(): number {
    let n = 0
    for (const c of this.chunks) if (c !== undefined) n++
    return n
  }
}

/** The per-iteration figures a report row carries, as the ledger counts them. */
export interface IterationCounts {
  pagesSent: number
  bytesSent: number
  first: number
  redirtied: number
  redundant: number
  zero: number
  redundantByCause: Record<string, number>
}

/** Adds an iteration's counts to a row (a row is closed once: its causes are those counts'). */
export function addIterationCounts(row: IterationCounts, c: IterationCounts): void {
  row.pagesSent += c.pagesSent
  row.bytesSent += c.bytesSent
  row.first += c.first
  row.redirtied += c.redirtied
  row.redundant += c.redundant
  row.zero += c.zero
  row.redundantByCause = c.redundantByCause
}
