/**
 * The generator's random numbers: xoshiro128** (Blackman & Vigna), seeded through splitmix32.
 * Written with 32-bit integer operations only (Math.imul, >>>), so a seed gives the same stream on
 * every platform and Node version; no Math.random anywhere in the generator.
 */

/** splitmix32 step: a well-mixed 32-bit value from a counter (used to expand seeds). */
function splitmix32(state: number): number {
  let z = (state + 0x9e3779b9) | 0
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad)
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97)
  return (z ^ (z >>> 15)) >>> 0
}

const TWO_32 = 4294967296
const TWO_21 = 2097152

export class Rng {
  private s0: number
  private s1: number
  private s2: number
  private s3: number

  /**
   * A stream for (seed, stream): the trace seed (any safe non-negative integer) and a stream
   * number, so every track draws from its own independent sequence.
   */
  constructor(seed: number, stream = 0) {
    const lo = seed >>> 0
    const hi = Math.floor(seed / TWO_32) >>> 0
    let x = splitmix32(lo ^ splitmix32(hi ^ Math.imul(stream + 1, 0x632be5ab)))
    x = splitmix32(x ^ stream)
    const a = splitmix32(x)
    const b = splitmix32(a)
    const c = splitmix32(b)
    const d = splitmix32(c)
    // xoshiro's state must not be all zero.
    this.s0 = a
    this.s1 = b
    this.s2 = c
    this.s3 = d | (a | b | c | d ? 0 : 1)
  }

  /** Next 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const s0 = this.s0
    const s1 = this.s1
    const s2 = this.s2
    const s3 = this.s3
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9)
    const t = s1 << 9
    const n2 = s2 ^ s0
    const n3 = s3 ^ s1
    this.s1 = s1 ^ n2
    this.s0 = s0 ^ n3
    this.s2 = n2 ^ t
    this.s3 = rotl(n3, 11)
    return r >>> 0
  }

  /** Uniform in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const a = this.nextU32() >>> 5
    const b = this.nextU32() >>> 6
    return (a * 67108864 + b) / 9007199254740992
  }

  /** Uniform in [0, 1) with 32 random bits (cheaper; enough for coin flips). */
  nextFloat(): number {
    return this.nextU32() / TWO_32
  }

  /**
   * Uniform integer in [0, n). For n up to 2^21 this is the exact multiply-shift of a 32-bit draw
   * (bias below n / 2^32); larger n use 53 bits.
   */
  below(n: number): number {
    if (n <= TWO_21) return Math.floor((this.nextU32() * n) / TWO_32)
    return Math.floor(this.nextDouble() * n)
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}
