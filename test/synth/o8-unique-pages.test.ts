/**
 * Oracle O8 (anchors.md §8): P pages, w independent uniform writes ->
 * E[distinct] = P(1 - (1 - 1/P)^w); a sequential writer touches exactly min(w, P).
 *
 * Statistical bound. With indicator X_j = [page j written], D = sum X_j,
 *   Var[D] = P q1 + P(P-1) q2 - P^2 q1^2,  q1 = (1-1/P)^w (a page missed), q2 = (1-2/P)^w (two missed).
 * Each seed must land within 5 sd of E[D] (a false alarm has probability < 6e-7 per check under
 * the normal approximation, which is excellent for D, a sum of weakly dependent indicators), and
 * the mean of the k seeds within 5 sd / sqrt(k).
 */
import test from 'ava'
import {synth} from './helpers.js'

const P = 262144 // 1 GiB of 4 KiB pages
const CHECKPOINTS = [P / 4, P / 2, P, 2 * P]
const SEEDS = [1, 2, 3, 4, 5]

function expected(p: number, w: number): {mean: number; sd: number} {
  const q1 = (1 - 1 / p) ** w
  const q2 = (1 - 2 / p) ** w
  const variance = p * q1 + p * (p - 1) * q2 - p * p * q1 * q1
  return {mean: p * (1 - q1), sd: Math.sqrt(variance)}
}

/** Distinct pages after each checkpoint's number of writes. */
function distinctAt(workload: string, seed: number, checkpoints: number[], params: Record<string, unknown> = {}): number[] {
  const last = checkpoints[checkpoints.length - 1]!
  const rate = 1e6
  const s = synth({seed, duration: `${(last / rate) * 1e3 + 1}ms`, memory: '1G', workloads: [{workload, params: {rate, ...params}}]})
  const seen = new Uint8Array(P)
  let distinct = 0
  let writes = 0
  let next = 0
  const out: number[] = []
  for (const b of s.batches()) {
    for (let i = 0; i < b.length && next < checkpoints.length; i++) {
      const page = b.gpa[i]! / 4096
      if (!seen[page]) {
        seen[page] = 1
        distinct++
      }
      writes++
      if (writes === checkpoints[next]) {
        out.push(distinct)
        next++
      }
    }
  }
  return out
}

test('the formula reproduces the anchor values (P = 262,144)', (t) => {
  const anchors: [number, number][] = [
    [P / 4, 57986.1],
    [P / 2, 103145.8],
    [P, 165706.8],
    [2 * P, 226666.8],
    [4 * P, 257342.7],
  ]
  for (const [w, want] of anchors) t.is(Math.round(expected(P, w).mean * 10) / 10, want)
})

test('O8: distinct pages after w uniform writes match P(1-(1-1/P)^w) over several seeds', (t) => {
  const runs = SEEDS.map((seed) => distinctAt('uniform', seed, CHECKPOINTS))
  CHECKPOINTS.forEach((w, c) => {
    const {mean, sd} = expected(P, w)
    let sum = 0
    for (const [k, seed] of SEEDS.entries()) {
      const d = runs[k]![c]!
      sum += d
      t.true(Math.abs(d - mean) <= 5 * sd, `seed ${seed}, w=${w}: ${d} distinct, expected ${mean.toFixed(1)} ± ${(5 * sd).toFixed(1)}`)
    }
    const avg = sum / SEEDS.length
    t.true(Math.abs(avg - mean) <= (5 * sd) / Math.sqrt(SEEDS.length), `w=${w}: mean ${avg} vs ${mean.toFixed(1)}`)
  })
  // The seeds really differ (otherwise the "several seeds" check is one check five times).
  t.true(new Set(runs.map((r) => r[0])).size > 1)
})

test('O8: a sequential writer touches exactly min(w, P) pages, through the wrap', (t) => {
  const ws = [1, 1000, P / 2, P - 1, P, P + 1, P + 5000, 2 * P]
  t.deepEqual(distinctAt('sequential', 1, ws), ws.map((w) => Math.min(w, P)))
})

test('O8: once writes every page exactly once, in order or permuted', (t) => {
  for (const order of ['sequential', 'random']) {
    const s = synth({seed: 3, duration: '1s', memory: '64M', workloads: [{workload: 'once', params: {rate: 1e6, order}}]})
    const pages = 16384
    const seen = new Uint8Array(pages)
    let n = 0
    let inOrder = true
    for (const b of s.batches())
      for (let i = 0; i < b.length; i++) {
        const p = b.gpa[i]! / 4096
        seen[p]!++
        if (p !== n) inOrder = false
        n++
      }
    t.is(n, pages, order)
    t.true(seen.every((c) => c === 1), order)
    t.is(inOrder, order === 'sequential')
  }
})
