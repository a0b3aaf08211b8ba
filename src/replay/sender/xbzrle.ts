/**
 * XBZRLE (xbzrle capability; migration/ram.c save_xbzrle_page, page_cache.c, xbzrle.c): a page
 * sent again whose previous copy is in the cache goes as the delta against that copy.
 * - The cache (page_cache.c) is direct-mapped: xbzrle-cache-size / page size slots (a power of
 *   two, cache_init refuses others), slot = page & (slots - 1). cache_is_cached hits when the
 *   slot holds this page, and refreshes the slot's age; cache_insert refuses to evict another
 *   page whose age + CACHED_PAGE_LIFETIME (2) > the current dirty_sync_count.
 * - save_xbzrle_page, for a normal page once the first full round is done (rs->xbzrle_enabled)
 *   and never in postcopy: a miss counts cache_miss, inserts the page (not in the last stage) and
 *   sends it normally; a hit encodes the page against the cached copy (xbzrle_encode_buffer into
 *   a buffer of one page): nothing changed -> the page is skipped (0 bytes, counted in pages);
 *   the delta does not fit -> overflow, the page goes normally; else the record: the 8-byte page
 *   header, ENCODING_FLAG_XBZRLE (1 byte), the length (be16) and the delta. A hit refreshes the
 *   cached copy (not in the last stage).
 * - A zero page found by save_zero_page is put in the cache as the zero page (xbzrle_cache_zero_page).
 * - The delta (xbzrle_encode_buffer): alternating runs of unchanged and changed bytes, each run
 *   length a ULEB128 (1 byte below 128, else 2 for a page), then the changed bytes; the last
 *   unchanged run is not written; the encoder gives up (-1) when fewer than 2 bytes are left
 *   before a run length, or a changed run does not fit.
 * The bytes the guest changed: a trace write carries gpa and len, and every byte it covers is
 * taken as changed (a write that stores the same value would encode smaller in QEMU; a trace
 * cannot say). A write of length 0 (length unknown) changes the whole page.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {UserError} from '../../util/errors.js'

/** page_cache.c: a page younger than this many syncs is not evicted by another page. */
export const CACHED_PAGE_LIFETIME = 2
/** save_xbzrle_page's record around the delta: page header 8, ENCODING_FLAG_XBZRLE 1, be16 length 2. */
export const XBZRLE_RECORD_BYTES = 11

/** query-migrate's xbzrle-cache, and what the cache saved. */
export interface XbzrleFigures {
  cacheSize: number
  /** Encoded pages (records sent and pages skipped as unchanged). */
  pages: number
  /** xbzrle-cache bytes: the encoded records less their 8-byte page header, plus a page per overflow. */
  bytes: number
  cacheHits: number
  cacheMiss: number
  overflow: number
  /** Hits whose page had not changed: skipped, nothing sent. */
  skipped: number
  cacheMissRate: number
  /** Bytes of normal page records the encoded ones replaced, less what those took. */
  savedBytes: number
}

const enum Outcome {
  Off = 0,
  Miss = 1,
  Sent = 2,
  Skipped = 3,
  Overflow = 4,
}

export class XbzrleCache {
  readonly slots: number
  private readonly mask: number
  private readonly pageSize: number
  private readonly addr: Float64Array
  private readonly age: Float64Array
  /** Per slot, one bit per byte of the page: changed since the cached copy (allocated on first use). */
  private readonly changed: (Uint32Array | undefined)[]
  /** Set once the first full round is done (rs->xbzrle_enabled). */
  enabled = false
  /** Encoded length of the last send() (Sent). */
  encodedLen = 0
  pages = 0
  bytes = 0
  cacheHits = 0
  cacheMiss = 0
  overflow = 0
  skipped = 0
  savedBytes = 0

  constructor(
    private readonly layout: TraceLayout,
    readonly cacheSize: number,
  ) {
    this.pageSize = layout.pageSize
    this.slots = Math.floor(cacheSize / layout.pageSize)
    // cache_init: at least a page, and a power-of-two number of them.
    if (this.slots < 1 || (this.slots & (this.slots - 1)) !== 0 || this.slots * layout.pageSize !== cacheSize)
      throw new UserError('bad XBZRLE cache size', {field: 'xbzrle-cache-size', expected: `a power-of-two number of ${layout.pageSize}-byte pages (cache_init refuses others), e.g. 64MiB`, found: String(cacheSize)})
    this.mask = this.slots - 1
    this.addr = new Float64Array(this.slots).fill(-1)
    this.age = new Float64Array(this.slots)
    this.changed = new Array(this.slots)
  }

  /** A guest write of `len` bytes at `gpa` (page p0 = its first page, span [p0, p1)): mark the bytes of cached pages. */
  write(gpa: number, len: number, p0: number, p1: number): void {
    const ps = this.pageSize
    let off = gpa % ps
    let left = len > 0 ? len : Infinity
    for (let p = p0; p < p1; p++) {
      const slot = p & this.mask
      const n = Math.min(ps - off, left)
      if (this.addr[slot] === p) {
        const bits = this.changed[slot] ?? (this.changed[slot] = new Uint32Array(ps >>> 5))
        if (len <= 0) bits.fill(0xffffffff)
        else markBits(bits, off, off + n)
      }
      left -= n
      off = 0
    }
  }

  /** xbzrle_cache_zero_page: a zero page sent by save_zero_page goes in the cache. */
  zeroPage(p: number, syncCount: number): void {
    if (this.enabled) this.insert(p, syncCount)
  }

  /** cache_insert: false when the slot holds another page still fresh. */
  private insert(p: number, syncCount: number): boolean {
    const slot = p & this.mask
    const a = this.addr[slot]!
    if (a >= 0 && a !== p && this.age[slot]! + CACHED_PAGE_LIFETIME > syncCount) return false
    this.addr[slot] = p
    this.age[slot] = syncCount
    this.changed[slot]?.fill(0)
    return true
  }

  /**
   * save_xbzrle_page for normal page p at dirty_sync_count `syncCount`: the outcome (Off when
   * XBZRLE is not active yet); Sent leaves the delta's length in encodedLen.
   */
  send(p: number, syncCount: number, lastStage: boolean): Outcome {
    if (!this.enabled) return Outcome.Off
    const slot = p & this.mask
    if (this.addr[slot] !== p) {
      this.cacheMiss++
      if (!lastStage) this.insert(p, syncCount)
      return Outcome.Miss
    }
    this.cacheHits++
    this.age[slot] = syncCount
    const bits = this.changed[slot]
    const len = bits === undefined ? 0 : encodedLength(bits, this.pageSize)
    if (len !== 0 && !lastStage) bits!.fill(0)
    if (len === 0) {
      this.pages++
      this.skipped++
      return Outcome.Skipped
    }
    if (len < 0) {
      this.overflow++
      this.bytes += this.pageSize
      return Outcome.Overflow
    }
    this.pages++
    this.encodedLen = len
    this.bytes += XBZRLE_RECORD_BYTES - 8 + len
    return Outcome.Sent
  }

  figures(): XbzrleFigures {
    const lookups = this.cacheHits + this.cacheMiss
    return {
      cacheSize: this.cacheSize,
      pages: this.pages,
      bytes: this.bytes,
      cacheHits: this.cacheHits,
      cacheMiss: this.cacheMiss,
      overflow: this.overflow,
      skipped: this.skipped,
      cacheMissRate: lookups > 0 ? this.cacheMiss / lookups : 0,
      savedBytes: this.savedBytes,
    }
  }
}

export {Outcome as XbzrleOutcome}

function markBits(bits: Uint32Array, a: number, b: number): void {
  for (let i = a; i < b; i++) bits[i >>> 5]! |= 1 << (i & 31)
}

const uleb = (v: number): number => (v < 128 ? 1 : v < 16384 ? 2 : 3)

/**
 * The length xbzrle_encode_buffer gives for a page whose changed bytes are the set bits (every
 * changed byte differs from the cached copy), into a buffer of `slen` bytes: 0 when nothing
 * changed, -1 on overflow.
 */
export function encodedLength(bits: Uint32Array, slen: number): number {
  const bit = (i: number): boolean => (bits[i >>> 5]! & (1 << (i & 31))) !== 0
  let d = 0
  let i = 0
  while (i < slen) {
    if (d + 2 > slen) return -1
    const z0 = i
    while (i < slen && !bit(i)) i++
    const zrun = i - z0
    if (zrun === slen) return 0
    if (i === slen) return d
    d += uleb(zrun)
    if (d + 2 > slen) return -1
    const n0 = i
    while (i < slen && bit(i)) i++
    const nzrun = i - n0
    d += uleb(nzrun)
    if (d + nzrun > slen) return -1
    d += nzrun
  }
  return d
}
