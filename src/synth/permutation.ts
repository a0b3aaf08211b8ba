/**
 * A seeded bijection of [0, n) computed on the fly: O(1) memory whatever n is, so a workload can
 * visit every page once in random order (`once`), or scatter popular ranks over memory (`zipf`),
 * without an array of n entries. Rounds of invertible k-bit steps (add a key, multiply by an odd
 * number, xor-shift right) with cycle walking back into [0, n) (fewer than 2 steps on average).
 */
import {Rng} from './prng.js'

export class Permutation {
  private readonly mask: number
  private readonly shift: number
  private readonly keys: Uint32Array
  private readonly mults: Uint32Array

  constructor(
    readonly n: number,
    rng: Rng,
  ) {
    if (!Number.isSafeInteger(n) || n < 1 || n > 2 ** 32) throw new Error(`bug: permutation size ${n}`)
    let bits = 1
    while (2 ** bits < n) bits++
    this.mask = bits >= 32 ? 0xffffffff : 2 ** bits - 1
    this.shift = Math.max(1, bits >> 1)
    this.keys = new Uint32Array(3)
    this.mults = new Uint32Array(3)
    for (let i = 0; i < 3; i++) {
      this.keys[i] = rng.nextU32()
      this.mults[i] = rng.nextU32() | 1
    }
  }

  /** The image of i (0 <= i < n). */
  at(i: number): number {
    const n = this.n
    if (n === 1) return 0
    let x = i
    do x = this.step(x)
    while (x >= n)
    return x
  }

  private step(v: number): number {
    const m = this.mask
    const s = this.shift
    let x = v
    for (let r = 0; r < 3; r++) {
      x = ((x + this.keys[r]!) & m) >>> 0
      x = (Math.imul(x, this.mults[r]!) & m) >>> 0
      x = (x ^ (x >>> s)) >>> 0
    }
    return x
  }
}
