/**
 * A sweep: the replays of one trace that a compare or a grid runs, in a fixed order. Items are
 * numbered 0..n-1; `--shard i/n` takes the items whose number is i-1 modulo n (round robin, so the
 * slow and fast cells of a grid spread over the shards), and `migtrace merge` puts them back in
 * order. A sweep's definition is plain JSON, carried in shard files so merge can check that the
 * shards belong together.
 */
import type {Driver} from '../replay/index.js'
import {settingsToJson} from '../replay/config.js'
import type {ReplayResult} from '../replay/result.js'
import {UserError, showValue} from '../util/errors.js'
import {outcomeOf, type Outcome} from './metrics.js'

export type SettingValue = string | number | boolean
export type Overrides = Record<string, SettingValue>

export interface SweepItem {
  name: string
  /** Everything this replay sets: the base (--config, --set) then the item's own settings. */
  overrides: Overrides
}

export interface ItemResult extends Outcome {
  index: number
  name: string
  /** The settings the replay used (all keys, resolved). */
  effective: Record<string, unknown>
  /** Only when asked (compare --html): never in JSON documents or shards. */
  series?: IterationSeries[]
}

/** One iteration of a run, for the overlaid charts of compare --html (times since migration start). */
export interface IterationSeries {
  iteration: number
  phase: string
  start_ms: number
  end_ms: number
  dirty_pages_at_sync: number
  pages_sent: number
  bytes_sent: number
  threshold_pages: number | null
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000

export function iterationSeries(r: ReplayResult): IterationSeries[] {
  return r.rows.map((x) => ({
    iteration: x.iteration,
    phase: x.phase,
    start_ms: r3((x.startNs - r.startNs) / 1e6),
    end_ms: r3((x.endNs - r.startNs) / 1e6),
    dirty_pages_at_sync: x.dirtyPagesAtSync,
    pages_sent: x.pagesSent,
    bytes_sent: x.bytesSent,
    threshold_pages: x.thresholdBytes > 0 ? Math.floor(x.thresholdBytes / r.guest.pageSize) : null,
  }))
}

/** With `series`, the result also carries the run's iterations (compare --html draws them). */
export function itemResult(index: number, name: string, r: ReplayResult, opts: {series?: boolean} = {}): ItemResult {
  return {index, name, effective: settingsToJson(r.settings), ...outcomeOf(r), ...(opts.series ? {series: iterationSeries(r)} : {})}
}

export interface Shard {
  /** 1-based. */
  index: number
  count: number
}

export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text)
  const index = m ? Number(m[1]) : NaN
  const count = m ? Number(m[2]) : NaN
  if (!m || !(count >= 1) || !(index >= 1) || index > count)
    throw new UserError('bad shard', {field: '--shard', expected: 'i/n with 1 <= i <= n, e.g. 2/4', found: showValue(text)})
  return {index, count}
}

/** The item numbers a shard runs (all of them without a shard). */
export function shardIndices(total: number, shard?: Shard): number[] {
  const out: number[] = []
  for (let i = 0; i < total; i++) if (!shard || i % shard.count === shard.index - 1) out.push(i)
  return out
}

export interface SweepRun {
  trace: string
  driver: Driver
  items: SweepItem[]
}
