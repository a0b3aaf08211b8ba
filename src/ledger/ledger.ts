/**
 * The per-page send ledger: every page send is recorded and classified, and every figure of a
 * replay report derives from it.
 * - first: the page's first copy (non-zero content);
 * - redirtied: content changed since its last send (a necessary re-send);
 * - redundant: content unchanged since its last send (a double-copy), with the cause the dirty
 *   source gave when it set the page's migration-bitmap bit;
 * - zero: the page holds only zeros (never written, not populated).
 * Per page one byte: send count (low 4 bits, saturating at 15) and pending cause (high 4 bits).
 * The ledger knows no model type: it reads page contents through PageContent and numbers causes
 * by the run's cause list (the model's CauseTable fits both shapes).
 */

/** A run can tell at most this many causes apart: a page's pending cause is kept in 4 bits. */
export const MAX_CAUSES = 16

/** The two bits per page the ledger classifies a send by (the model's GuestMemory has them). */
export interface PageContent {
  /** The page holds data (else it is a zero page). */
  readonly nonzero: {readonly words: Uint32Array}
  /** The destination's copy is stale (written since its last send). */
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
  readonly info: Uint8Array
  readonly total = new Float64Array(COUNTER_LEN)
  /** Counters of the current iteration (reset by beginIteration). */
  readonly iter = new Float64Array(COUNTER_LEN)
  readonly normalBytes: number

  constructor(
    readonly memory: PageContent,
    pages: number,
    readonly pageSize: number,
    /** The run's causes by code (a live list: parts may add causes while the model is built). */
    readonly causes: readonly {readonly id: string}[],
    public zeroPageDetection = true,
  ) {
    this.info = new Uint8Array(pages)
    this.normalBytes = PAGE_HEADER_BYTES + pageSize
  }

  reset(): void {
    this.info.fill(0)
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
    this.info[p] = (this.info[p]! & 0x0f) | (code << 4)
  }

  causeOf(p: number): number {
    return this.info[p]! >>> 4
  }

  sendCount(p: number): number {
    return this.info[p]! & 0x0f
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
    const inf = this.info[p]!
    const count = inf & 0x0f
    let cls: number
    if (!nonzero) cls = C.zero
    else if (count === 0) cls = C.first
    else if (modified) cls = C.redirtied
    else {
      cls = C.redundant
      const k = C.cause + (inf >>> 4)
      this.total[k]!++
      this.iter[k]!++
    }
    const bytes = wireBytes >= 0 ? wireBytes : !nonzero && this.zeroPageDetection ? ZERO_PAGE_BYTES : this.normalBytes
    if (count < 15) this.info[p] = inf + 1
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
    const h = new Array<number>(16).fill(0)
    const info = this.info
    for (let p = 0; p < info.length; p++) h[info[p]! & 0x0f]!++
    return h
  }

  /** Pages whose destination copy differs from the source (meaningful once the source stopped). */
  lostWrites(): number {
    return this.memory.staleCount()
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
