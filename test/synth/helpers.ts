/** Helpers for the generator's tests: build a spec, run it in memory, count what came out. */
import {K, KINDS, type EventBatch} from '../../src/trace/events.js'
import {parseSpec, synthesize, type Synthesis} from '../../src/synth/index.js'

export function synth(spec: Record<string, unknown>): Synthesis {
  return synthesize(parseSpec(spec))
}

/** Walk every event of a synthesis with a per-batch callback. */
export function forEachBatch(s: Synthesis, fn: (b: EventBatch) => void): void {
  for (const b of s.batches()) fn(b)
}

/** Count events per kind name. */
export function countKinds(s: Synthesis): Record<string, number> {
  const counts = new Float64Array(KINDS.length)
  forEachBatch(s, (b) => {
    for (let i = 0; i < b.length; i++) counts[b.kind[i]!]!++
  })
  const out: Record<string, number> = {}
  KINDS.forEach((k, i) => {
    if (counts[i]! > 0) out[k.name] = counts[i]!
  })
  return out
}

export {K}
