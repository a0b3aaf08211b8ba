import test from 'ava'
import {Permutation, RateClock, Rng, ZipfSampler} from '../../src/synth/index.js'

test('the stream of a seed is fixed (golden values: a change would alter every generated trace)', (t) => {
  const r = new Rng(1, 0)
  t.deepEqual([r.nextU32(), r.nextU32(), r.nextU32(), r.nextU32()], [2514436607, 2965208945, 2715307410, 2081622447])
})

test('different seeds and streams give different sequences', (t) => {
  const a = new Rng(1, 0).nextU32()
  t.not(new Rng(2, 0).nextU32(), a)
  t.not(new Rng(1, 1).nextU32(), a)
  t.not(new Rng(2 ** 40 + 1, 0).nextU32(), a)
})

/** The reference xoshiro128** (Blackman & Vigna, xoshiro128starstar.c) in BigInt arithmetic. */
function referenceXoshiro(state: bigint[], n: number): number[] {
  const M = 0xffffffffn
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & M
  const s = [...state]
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    out.push(Number((rotl((s[1]! * 5n) & M, 7n) * 9n) & M))
    const t = (s[1]! << 9n) & M
    s[2]! ^= s[0]!
    s[3]! ^= s[1]!
    s[1]! ^= s[2]!
    s[0]! ^= s[3]!
    s[2]! ^= t
    s[3] = rotl(s[3]!, 11n)
  }
  return out
}

test('xoshiro128** matches the reference algorithm from a set state', (t) => {
  const r = new Rng(0)
  Object.assign(r, {s0: 1, s1: 2, s2: 3, s3: 0x80000004 | 0})
  const ours = Array.from({length: 1000}, () => r.nextU32())
  t.deepEqual(ours, referenceXoshiro([1n, 2n, 3n, 0x80000004n], 1000))
})

test('below(n) stays in range and is roughly uniform', (t) => {
  const r = new Rng(9)
  const n = 10
  const counts = new Array<number>(n).fill(0)
  const draws = 100000
  for (let i = 0; i < draws; i++) {
    const v = r.below(n)
    t.true(v >= 0 && v < n) || t.fail()
    counts[v]!++
  }
  // Binomial sd per cell = sqrt(draws * 0.1 * 0.9) ~ 95; 5 sd bound.
  for (const c of counts) t.true(Math.abs(c - draws / n) < 5 * 95)
  const big = 2 ** 30
  for (let i = 0; i < 1000; i++) {
    const v = r.below(big)
    if (!(v >= 0 && v < big && Number.isInteger(v))) t.fail(`below(2^30) gave ${v}`)
  }
})

test('Permutation is a bijection of [0, n) for many sizes', (t) => {
  for (const n of [1, 2, 3, 7, 64, 100, 1000, 4097]) {
    const p = new Permutation(n, new Rng(n))
    const seen = new Uint8Array(n)
    for (let i = 0; i < n; i++) seen[p.at(i)]!++
    t.true(seen.every((c) => c === 1), `n=${n}`)
  }
  const p = new Permutation(1000, new Rng(3))
  t.notDeepEqual(Array.from({length: 10}, (_, i) => p.at(i)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})

test('Zipf sampler: rank frequencies follow 1/k^s', (t) => {
  const n = 1000
  const s = 1.2
  const z = new ZipfSampler(n, s)
  const r = new Rng(5)
  const draws = 200000
  const counts = new Float64Array(n + 1)
  for (let i = 0; i < draws; i++) counts[z.sample(r)]!++
  let h = 0
  for (let k = 1; k <= n; k++) h += 1 / k ** s
  for (const k of [1, 2, 3, 10, 100]) {
    const p = 1 / k ** s / h
    const sd = Math.sqrt(draws * p * (1 - p))
    t.true(Math.abs(counts[k]! - draws * p) < 5 * sd, `rank ${k}: ${counts[k]} vs ${draws * p}`)
  }
  t.is(counts[0], 0)
})

test('RateClock: event i at start + floor(i * 1e9 / rate), exactly', (t) => {
  for (const rate of [1, 3, 7, 1000, 33333, 1e6, 2.5]) {
    const c = new RateClock(100, rate)
    for (let i = 0; i < 5000; i++) {
      const want = 100 + Math.floor((i * 1e12) / Math.round(rate * 1000))
      if (c.t !== want) return t.fail(`rate ${rate}, event ${i}: ${c.t} != ${want}`)
      c.advance()
    }
  }
  t.is(new RateClock(0, 0).t, Infinity)
  t.pass()
})
