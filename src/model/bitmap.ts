/**
 * A fixed-size bit array over Uint32Array words: the storage of every per-page flag in the model
 * (KVM dirty bitmaps, QEMU's migration bitmap, "modified since sent"...). One bit per page keeps a
 * 1 TiB guest (2^28 pages of 4 KiB) at 32 MiB per flag. Page numbers must stay below 2^32.
 */

/** Number of set bits in a 32-bit word (SWAR popcount). */
export function popcount32(x: number): number {
  x = x - ((x >>> 1) & 0x55555555)
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333)
  x = (x + (x >>> 4)) & 0x0f0f0f0f
  return Math.imul(x, 0x01010101) >>> 24
}

/** Index (0..31) of the lowest set bit of a non-zero word. */
export function lowestBit(x: number): number {
  return 31 - Math.clz32(x & -x)
}

/** Mask of the bits of word `w` that fall in the page range [a, b). */
export function wordRangeMask(w: number, a: number, b: number): number {
  const lo = w * 32
  const from = a > lo ? a - lo : 0
  const to = b < lo + 32 ? b - lo : 32
  if (to <= from) return 0
  const upper = to === 32 ? 0xffffffff : ((1 << to) - 1) >>> 0
  const lower = from === 0 ? 0 : ((1 << from) - 1) >>> 0
  return (upper & ~lower) >>> 0
}

export class Bitmap {
  readonly words: Uint32Array

  constructor(readonly size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32))
  }

  get(p: number): boolean {
    return ((this.words[p >>> 5]! >>> (p & 31)) & 1) === 1
  }

  set(p: number): void {
    this.words[p >>> 5]! |= 1 << (p & 31)
  }

  clear(p: number): void {
    this.words[p >>> 5]! &= ~(1 << (p & 31))
  }

  /** Clear bit p and say whether it was set (QEMU's test_and_clear_bit). */
  testAndClear(p: number): boolean {
    const w = p >>> 5
    const m = 1 << (p & 31)
    const v = this.words[w]!
    if ((v & m) === 0) return false
    this.words[w] = v & ~m
    return true
  }

  /** Set bit p and say whether it was clear before. */
  testAndSet(p: number): boolean {
    const w = p >>> 5
    const m = 1 << (p & 31)
    const v = this.words[w]!
    if ((v & m) !== 0) return false
    this.words[w] = v | m
    return true
  }

  /** Set every bit in [a, b). */
  setRange(a: number, b: number): void {
    if (b <= a) return
    const w0 = a >>> 5
    const w1 = (b - 1) >>> 5
    if (w0 === w1) {
      this.words[w0]! |= wordRangeMask(w0, a, b)
      return
    }
    this.words[w0]! |= wordRangeMask(w0, a, b)
    if (w1 > w0 + 1) this.words.fill(0xffffffff, w0 + 1, w1)
    this.words[w1]! |= wordRangeMask(w1, a, b)
  }

  /** Clear every bit in [a, b). */
  clearRange(a: number, b: number): void {
    if (b <= a) return
    const w0 = a >>> 5
    const w1 = (b - 1) >>> 5
    if (w0 === w1) {
      this.words[w0]! &= ~wordRangeMask(w0, a, b)
      return
    }
    this.words[w0]! &= ~wordRangeMask(w0, a, b)
    if (w1 > w0 + 1) this.words.fill(0, w0 + 1, w1)
    this.words[w1]! &= ~wordRangeMask(w1, a, b)
  }

  /** Number of set bits in [a, b) (the whole map by default). */
  count(a = 0, b = this.size): number {
    if (b <= a) return 0
    const w0 = a >>> 5
    const w1 = (b - 1) >>> 5
    let n = 0
    for (let w = w0; w <= w1; w++) {
      let v = this.words[w]!
      if (w === w0 || w === w1) v &= wordRangeMask(w, a, b)
      if (v !== 0) n += popcount32(v)
    }
    return n
  }

  /** First set bit in [from, end), or -1. */
  nextSet(from: number, end = this.size): number {
    if (from >= end) return -1
    const words = this.words
    let w = from >>> 5
    let v = words[w]! & (0xffffffff << (from & 31))
    const last = (end - 1) >>> 5
    while (v === 0) {
      if (++w > last) return -1
      v = words[w]!
    }
    const p = w * 32 + lowestBit(v)
    return p < end ? p : -1
  }

  fill(value: boolean): void {
    this.words.fill(value ? 0xffffffff : 0)
  }

  /**
   * reset's clear: `fresh` says the map was just built (still all zero), and is then left
   * untouched: writing zeros would commit every page of a large guest's bitmaps (RSS and page
   * faults) for nothing.
   */
  clearAll(fresh = false): void {
    if (!fresh) this.words.fill(0)
  }

  /** Copy bits [a, b) from another map of the same size. */
  copyRangeFrom(src: Bitmap, a: number, b: number): void {
    if (b <= a) return
    const w0 = a >>> 5
    const w1 = (b - 1) >>> 5
    for (let w = w0; w <= w1; w++) {
      const m = w === w0 || w === w1 ? wordRangeMask(w, a, b) : 0xffffffff
      this.words[w] = ((this.words[w]! & ~m) | (src.words[w]! & m)) >>> 0
    }
  }
}
