/**
 * Zipf-distributed ranks 1..n with exponent s > 0 in O(1) expected time and O(1) memory: the
 * rejection-inversion sampler of Hörmann & Derflinger ("Rejection-inversion to generate variates
 * from monotone discrete distributions", 1996), as used by Apache Commons RNG. Math.log/exp/log1p/
 * expm1 are V8's own fdlibm ports, so the samples do not depend on the platform's libm.
 */
import type {Rng} from './prng.js'

export class ZipfSampler {
  private readonly hIntegralX1: number
  private readonly hIntegralN: number
  private readonly s: number

  constructor(
    readonly n: number,
    readonly exponent: number,
  ) {
    if (!(n >= 1) || !(exponent > 0)) throw new Error(`bug: zipf(${n}, ${exponent})`)
    this.hIntegralX1 = this.hIntegral(1.5) - 1
    this.hIntegralN = this.hIntegral(n + 0.5)
    this.s = 2 - this.hIntegralInverse(this.hIntegral(2.5) - this.h(2))
  }

  /** A rank in 1..n; rank 1 is the most popular. */
  sample(rng: Rng): number {
    const n = this.n
    for (;;) {
      const u = this.hIntegralN + rng.nextDouble() * (this.hIntegralX1 - this.hIntegralN)
      const x = this.hIntegralInverse(u)
      let k = Math.floor(x + 0.5)
      if (k < 1) k = 1
      else if (k > n) k = n
      if (k - x <= this.s || u >= this.hIntegral(k + 0.5) - this.h(k)) return k
    }
  }

  private h(x: number): number {
    return Math.exp(-this.exponent * Math.log(x))
  }

  private hIntegral(x: number): number {
    const logX = Math.log(x)
    return helper2((1 - this.exponent) * logX) * logX
  }

  private hIntegralInverse(x: number): number {
    let t = x * (1 - this.exponent)
    if (t < -1) t = -1
    return Math.exp(helper1(t) * x)
  }
}

/** log1p(x)/x, continuous at 0. */
function helper1(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.log1p(x) / x : 1 - x * (0.5 - x * (1 / 3 - 0.25 * x))
}

/** expm1(x)/x, continuous at 0. */
function helper2(x: number): number {
  return Math.abs(x) > 1e-8 ? Math.expm1(x) / x : 1 + x * 0.5 * (1 + (x / 3) * (1 + 0.25 * x))
}
