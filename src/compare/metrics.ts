/**
 * The figures a comparison shows and `--fail-if` tests, by name. Names follow the replay JSON
 * (migtrace.replay/1) where it has the figure; `redundant` is the double-copy ratio (double-copied
 * pages / pages sent), and `redundantBy.<cause>` the double-copies of one cause. Every value is
 * taken from the ReplayResult's headline figures, rounded as the replay JSON rounds them, so a
 * compare column equals what `migtrace replay --json` prints for the same settings.
 */
import {KNOWN_CAUSES} from '../replay/host.js'
import {replayHeadline} from '../analysis/replay-tables.js'
import type {ReplayResult} from '../replay/result.js'

export type MetricUnit = 'ms' | 'bytes' | 'pages' | 'count' | 'ratio'

export interface MetricSpec {
  name: string
  unit: MetricUnit
  /** Which way is better, for the comparison's wording (perf diff style). */
  better: 'lower' | 'higher'
  doc: string
}

/** Numeric metrics, in the order a comparison lists them. */
export const METRICS: readonly MetricSpec[] = [
  {name: 'totalTimeMs', unit: 'ms', better: 'lower', doc: 'migration start to the end of the downtime'},
  {name: 'downtimeMs', unit: 'ms', better: 'lower', doc: 'the VM is paused: RAM left at the switchover + device state'},
  {name: 'downtimeRamMs', unit: 'ms', better: 'lower', doc: 'downtime part: the RAM still dirty at the switchover'},
  {name: 'downtimeVfioStateMs', unit: 'ms', better: 'lower', doc: 'downtime part: the VFIO device state (0 without VFIO)'},
  {name: 'downtimeDeviceStateMs', unit: 'ms', better: 'lower', doc: 'downtime part: the other device state'},
  {name: 'setupTimeMs', unit: 'ms', better: 'lower', doc: 'migration start to the first page sent'},
  {name: 'iterations', unit: 'count', better: 'lower', doc: 'live iterations'},
  {name: 'dirtySyncCount', unit: 'count', better: 'lower', doc: 'dirty bitmap syncs'},
  {name: 'pagesSent', unit: 'pages', better: 'lower', doc: 'page records sent (zero pages included)'},
  {name: 'bytesSent', unit: 'bytes', better: 'lower', doc: 'bytes on the wire (page records)'},
  {name: 'transferredBytes', unit: 'bytes', better: 'lower', doc: 'everything on the wire (query-migrate transferred): device data, multifd packet headers, compression and XBZRLE included (docs/stream.md)'},
  {name: 'ratioToRam', unit: 'ratio', better: 'lower', doc: 'bytesSent / guest RAM'},
  {name: 'firstPages', unit: 'pages', better: 'lower', doc: 'first copies of non-zero pages'},
  {name: 'redirtiedPages', unit: 'pages', better: 'lower', doc: 're-sends of pages whose content changed'},
  {name: 'redundantPages', unit: 'pages', better: 'lower', doc: 'double-copies: re-sends of unchanged pages'},
  {name: 'redundantBytes', unit: 'bytes', better: 'lower', doc: 'double-copies in bytes'},
  {name: 'redundant', unit: 'ratio', better: 'lower', doc: 'double-copy ratio: redundantPages / pagesSent (0 when nothing was sent)'},
  {name: 'zeroPages', unit: 'pages', better: 'lower', doc: 'zero pages sent'},
  {name: 'lostWrites', unit: 'pages', better: 'lower', doc: 'pages whose destination copy is stale at the end'},
  {name: 'converged', unit: 'count', better: 'higher', doc: '1 when the verdict is converged, else 0'},
]

/** Per-cause metrics are named `redundantBy.<cause id>` (pages). */
export const CAUSE_PREFIX = 'redundantBy.'

export function causeMetricSpecs(): MetricSpec[] {
  return KNOWN_CAUSES.map((c) => ({name: `${CAUSE_PREFIX}${c.id}`, unit: 'pages', better: 'lower', doc: `double-copies caused by ${c.id}`}))
}

export function allMetricSpecs(): MetricSpec[] {
  return [...METRICS, ...causeMetricSpecs()]
}

export function metricSpec(name: string): MetricSpec | undefined {
  return allMetricSpecs().find((m) => m.name === name)
}

/** What one replay contributes to a comparison: small, plain, JSON-stable. */
export interface Outcome {
  verdict: string
  stopReason: string
  metrics: Record<string, number>
}

const round = (v: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(v * f) / f
}

export function outcomeOf(r: ReplayResult): Outcome {
  const h = replayHeadline(r)
  const metrics: Record<string, number> = {
    totalTimeMs: h.totalTimeMs,
    downtimeMs: h.downtimeMs,
    downtimeRamMs: h.downtimeRamMs,
    downtimeVfioStateMs: round(r.downtime.vfioStateMs ?? 0, 3),
    downtimeDeviceStateMs: h.downtimeDeviceStateMs,
    setupTimeMs: h.setupTimeMs,
    iterations: h.iterations,
    dirtySyncCount: h.dirtySyncCount,
    pagesSent: h.pagesSent,
    bytesSent: h.bytesSent,
    transferredBytes: r.transferredBytes,
    ratioToRam: h.ratioToRam,
    firstPages: h.firstPages,
    redirtiedPages: h.redirtiedPages,
    redundantPages: h.redundantPages,
    redundantBytes: h.redundantBytes,
    redundant: h.pagesSent > 0 ? round(h.redundantPages / h.pagesSent, 6) : 0,
    zeroPages: h.zeroPages,
    lostWrites: h.lostWrites,
    converged: r.verdict === 'converged' ? 1 : 0,
  }
  // The run's own causes (a cause the run cannot have reads 0 wherever metrics are looked up).
  for (const c of r.causes) metrics[`${CAUSE_PREFIX}${c.id}`] = r.totals.redundantByCause[c.id] ?? 0
  return {verdict: r.verdict, stopReason: r.stopReason, metrics}
}

/** Digits kept in deltas, so float noise (0.1 + 0.2) never shows. */
export function digitsOf(unit: MetricUnit): number {
  return unit === 'ms' ? 3 : unit === 'ratio' ? 6 : 0
}

export interface Diff {
  delta: number
  /** value / baseline; null when the baseline is 0 (undefined ratio). */
  ratio: number | null
  /** 100 x (value - baseline) / baseline; null when the baseline is 0. */
  pct: number | null
}

export function diff(value: number, base: number, unit: MetricUnit): Diff {
  const delta = round(value - base, digitsOf(unit))
  if (base === 0) return {delta, ratio: null, pct: null}
  return {delta, ratio: round(value / base, 4), pct: round((100 * (value - base)) / base, 2)}
}
