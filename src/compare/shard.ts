/**
 * Shards of a sweep and their merge. A shard file (schema migtrace.shard/1) carries the whole
 * sweep definition and the results of its items; `migtrace merge` checks that the files belong to
 * the same sweep and together hold every item exactly once, then builds the same document the
 * unsharded command would have printed.
 */
import {readJsonFile} from '../util/json-file.js'
import {z} from 'zod'
import {UserError, showValue} from '../util/errors.js'
import {compareDoc, compareRun, type CompareDef, type CompareDoc} from './compare-doc.js'
import {gridDoc, gridRun, type GridDef, type GridDoc} from './grid-doc.js'
import type {ItemResult, Shard, SweepRun} from './sweep.js'

export const SHARD_SCHEMA = 'migtrace.shard/1'

export type SweepDef = CompareDef | GridDef

export interface ShardDoc {
  schema: typeof SHARD_SCHEMA
  command: SweepDef['command']
  shard: Shard
  /** Items in the whole sweep. */
  total: number
  definition: SweepDef
  results: ItemResult[]
}

export function sweepRun(def: SweepDef): SweepRun {
  return def.command === 'compare' ? compareRun(def) : gridRun(def)
}

export function shardDoc(def: SweepDef, shard: Shard, results: ItemResult[]): ShardDoc {
  return {schema: SHARD_SCHEMA, command: def.command, shard, total: sweepRun(def).items.length, definition: def, results}
}

/** The command's document from all results of a sweep (in item order). */
export function sweepDoc(def: SweepDef, results: ItemResult[]): CompareDoc | GridDoc {
  return def.command === 'compare' ? compareDoc(def, results) : gridDoc(def, results)
}

const Result = z.object({index: z.number().int().min(0), name: z.string(), effective: z.record(z.string(), z.unknown()), verdict: z.string(), stopReason: z.string(), metrics: z.record(z.string(), z.number())})
const ShardFile = z.object({
  schema: z.literal(SHARD_SCHEMA),
  command: z.enum(['compare', 'grid']),
  shard: z.object({index: z.number().int().min(1), count: z.number().int().min(1)}),
  total: z.number().int().min(0),
  definition: z.looseObject({command: z.enum(['compare', 'grid'])}),
  results: z.array(Result),
})

export function readShard(path: string): ShardDoc {
  const obj = readJsonFile(path, {what: 'the shard file', expected: `a JSON file written by compare/grid --shard (schema ${SHARD_SCHEMA})`})
  const r = ShardFile.safeParse(obj)
  if (!r.success) {
    const issue = r.error.issues[0]!
    throw new UserError('not a shard file', {file: path, field: issue.path.join('.') || undefined, expected: `the output of compare/grid --shard i/n (schema ${SHARD_SCHEMA})`, found: issue.message})
  }
  return r.data as unknown as ShardDoc
}

/** Stable text of a value (object keys sorted), to tell whether two definitions are the same. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  return JSON.stringify(v)
}

/** Join shard files into the sweep's definition and all its results, in item order. */
export function mergeShards(shards: {path: string; doc: ShardDoc}[]): {definition: SweepDef; results: ItemResult[]} {
  if (shards.length === 0) throw new UserError('nothing to merge', {expected: 'one or more shard JSON files'})
  const first = shards[0]!
  const def = canonical(first.doc.definition)
  const byIndex = new Map<number, {path: string; r: ItemResult}>()
  for (const {path, doc} of shards) {
    if (canonical(doc.definition) !== def || doc.total !== first.doc.total)
      throw new UserError('the shard is from another sweep', {file: path, expected: `the same trace, settings and variants as ${first.path}`, found: 'a different definition'})
    for (const r of doc.results) {
      if (r.index >= doc.total) throw new UserError('result outside the sweep', {file: path, field: 'results.index', expected: `below ${doc.total}`, found: String(r.index)})
      const prev = byIndex.get(r.index)
      if (prev) throw new UserError('the same item in two shards (or a file given twice)', {file: path, field: 'results', expected: 'each item once', found: `item ${r.index} (${showValue(r.name)}) also in ${prev.path}`})
      byIndex.set(r.index, {path, r})
    }
  }
  const missing: number[] = []
  for (let i = 0; i < first.doc.total; i++) if (!byIndex.has(i)) missing.push(i)
  if (missing.length > 0) {
    const count = first.doc.shard.count
    const shardsMissing = [...new Set(missing.map((i) => (i % count) + 1))].map((s) => `${s}/${count}`)
    throw new UserError('shards are missing', {expected: `all ${count} shards`, found: `no result for ${missing.length} of ${first.doc.total} items (shard ${shardsMissing.join(', ')})`})
  }
  const results = [...byIndex.keys()].sort((a, b) => a - b).map((i) => byIndex.get(i)!.r)
  return {definition: first.doc.definition, results}
}
