/**
 * `migtrace grid`: a bandwidth x downtime-limit sweep of one trace. Cell (b, d) is item number
 * b x |downtimes| + d of the sweep.
 *
 * Bandwidth notation: the one of every rate in migtrace (util/units.ts): `128MiB/s`, `1G/s` and
 * `125MB/s` are bytes per second, `10Gbit/s` and `10Gbps` bits. A bare size (`10G`) is refused as
 * ambiguous (QEMU reads 1G as 1 GiB/s, a link is sold as 1 Gbit/s), and so is a bare number.
 */
import {formatDurationNs, formatRate, parseDurationNs, parseRate} from '../util/units.js'
import {listFlagItems} from '../util/list-flag.js'
import {UserError, showValue} from '../util/errors.js'
import type {Driver} from '../replay/index.js'
import type {ItemResult, Overrides, SweepRun} from './sweep.js'
import {csvLines, mdTable, textTable, type Table} from './table.js'

export const GRID_SCHEMA = 'migtrace.grid/1'

/** Which settings the bandwidth axis sets. */
export const BANDWIDTH_SETTINGS = ['both', 'max-bandwidth', 'link-bandwidth'] as const
export type BandwidthSetting = (typeof BANDWIDTH_SETTINGS)[number]

/** A grid bandwidth in bytes/s (see the module comment for the notation). */
export function parseGridBandwidth(text: string): number {
  if (/^\s*[0-9.]+\s*$/.test(text))
    throw new UserError('a grid bandwidth needs a unit', {field: '--bandwidth', expected: 'a rate such as 128MiB/s, 125MB/s or 10Gbit/s', found: showValue(text)})
  const v = parseRate(text, '--bandwidth', {bare: 'refuse'})
  if (v <= 0) throw new UserError('a grid bandwidth must be above 0', {field: '--bandwidth', expected: 'a positive rate', found: showValue(text)})
  return v
}

export function parseGridDowntime(text: string): number {
  const ms = parseDurationNs(text, '--downtime', 'ms') / 1e6
  if (ms <= 0) throw new UserError('a downtime limit must be above 0', {field: '--downtime', expected: 'a duration such as 300ms', found: showValue(text)})
  return ms
}

export interface GridDef {
  command: 'grid'
  trace: string
  driver: Driver
  base: Overrides
  bandwidthSetting: BandwidthSetting
  bandwidths: {text: string; bytesPerSec: number}[]
  downtimes: {text: string; ms: number}[]
}

/** Parse axis lists (comma-separated flags, repeatable); duplicates are refused. */
export function gridAxes(bandwidths: readonly string[], downtimes: readonly string[]): Pick<GridDef, 'bandwidths' | 'downtimes'> {
  const bw = listFlagItems(bandwidths, '--bandwidth', '1Gbit/s,2.5Gbit/s,10Gbit/s').map((text) => ({text, bytesPerSec: parseGridBandwidth(text)}))
  const dt = listFlagItems(downtimes, '--downtime', '50ms,300ms,1s').map((text) => ({text, ms: parseGridDowntime(text)}))
  if (bw.length === 0) throw new UserError('no bandwidths', {field: '--bandwidth', expected: 'a list such as 1Gbit/s,2.5Gbit/s,10Gbit/s'})
  if (dt.length === 0) throw new UserError('no downtime limits', {field: '--downtime', expected: 'a list such as 50ms,300ms,1s'})
  const dup = <T>(xs: T[], key: (x: T) => number, field: string, show: (x: T) => string): void => {
    const seen = new Map<number, T>()
    for (const x of xs) {
      const prev = seen.get(key(x))
      if (prev !== undefined) throw new UserError('the same value twice on a grid axis', {field, expected: 'distinct values', found: `${show(prev)} and ${show(x)}`})
      seen.set(key(x), x)
    }
  }
  dup(bw, (x) => x.bytesPerSec, '--bandwidth', (x) => showValue(x.text))
  dup(dt, (x) => x.ms, '--downtime', (x) => showValue(x.text))
  return {bandwidths: bw, downtimes: dt}
}

export function cellName(def: GridDef, b: number, d: number): string {
  return `${def.bandwidths[b]!.text}@${def.downtimes[d]!.text}`
}

export function gridRun(def: GridDef): SweepRun {
  const items = []
  for (let b = 0; b < def.bandwidths.length; b++)
    for (let d = 0; d < def.downtimes.length; d++) {
      const bps = def.bandwidths[b]!.bytesPerSec
      const o: Overrides = {...def.base}
      if (def.bandwidthSetting !== 'link-bandwidth') o['max-bandwidth'] = bps
      if (def.bandwidthSetting !== 'max-bandwidth') o['link-bandwidth'] = bps
      o['downtime-limit'] = def.downtimes[d]!.ms
      items.push({name: cellName(def, b, d), overrides: o})
    }
  return {trace: def.trace, driver: def.driver, items}
}

export interface GridCell {
  bandwidth: string
  bandwidthBytesPerSec: number
  downtimeLimit: string
  downtimeLimitMs: number
  verdict: string
  stopReason: string
  totalTimeMs: number
  downtimeMs: number
  metrics: Record<string, number>
}

export interface GridDoc {
  schema: typeof GRID_SCHEMA
  trace: string
  driver: Driver
  base: Overrides
  bandwidthSetting: BandwidthSetting
  bandwidths: {text: string; bytesPerSec: number}[]
  downtimes: {text: string; ms: number}[]
  /** Row-major: bandwidths outer, downtime limits inner. */
  cells: GridCell[]
}

export function gridDoc(def: GridDef, results: readonly ItemResult[]): GridDoc {
  const cells: GridCell[] = results.map((r) => {
    const b = def.bandwidths[Math.floor(r.index / def.downtimes.length)]!
    const d = def.downtimes[r.index % def.downtimes.length]!
    return {
      bandwidth: b.text,
      bandwidthBytesPerSec: b.bytesPerSec,
      downtimeLimit: d.text,
      downtimeLimitMs: d.ms,
      verdict: r.verdict,
      stopReason: r.stopReason,
      totalTimeMs: r.metrics.totalTimeMs ?? 0,
      downtimeMs: r.metrics.downtimeMs ?? 0,
      metrics: r.metrics,
    }
  })
  return {schema: GRID_SCHEMA, trace: def.trace, driver: def.driver, base: def.base, bandwidthSetting: def.bandwidthSetting, bandwidths: def.bandwidths, downtimes: def.downtimes, cells}
}

const ms = (v: number): string => formatDurationNs(v * 1e6)
const VERDICT_SHORT: Record<string, string> = {converged: 'converged', 'not-converged': 'NOT converged', inconclusive: 'inconclusive', cancelled: 'cancelled', postcopy: 'postcopy'}

function matrix(doc: GridDoc, cell: (c: GridCell) => string): Table {
  const D = doc.downtimes.length
  return {
    headers: ['bandwidth \\ downtime-limit', ...doc.downtimes.map((d) => (/[a-z]/i.test(d.text) ? d.text : `${d.text} (${ms(d.ms)})`))],
    rows: doc.bandwidths.map((b, i) => [formatRate(b.bytesPerSec).replace(' ', '') === b.text.replace(/\s/g, '') ? b.text : `${b.text} (${formatRate(b.bytesPerSec)})`, ...doc.downtimes.map((_, j) => cell(doc.cells[i * D + j]!))]),
    right: [false, ...doc.downtimes.map(() => true)],
  }
}

const SECTIONS: [string, (c: GridCell) => string][] = [
  ['total time', (c) => ms(c.totalTimeMs)],
  ['downtime', (c) => ms(c.downtimeMs)],
  ['verdict', (c) => VERDICT_SHORT[c.verdict] ?? c.verdict],
]

function header(doc: GridDoc): string {
  return `migtrace grid ${doc.trace}  [driver ${doc.driver}, ${doc.bandwidths.length} x ${doc.downtimes.length} cells, bandwidth sets ${doc.bandwidthSetting === 'both' ? 'max-bandwidth and link-bandwidth' : doc.bandwidthSetting}]`
}

export function gridText(doc: GridDoc): string {
  const out = [header(doc)]
  for (const [title, f] of SECTIONS) out.push('', title, textTable(matrix(doc, f)))
  return `${out.join('\n')}\n`
}

export function gridMarkdown(doc: GridDoc): string {
  const out = [`## migtrace grid: \`${doc.trace}\``, '', header(doc).replace(/^migtrace grid \S+\s+/, '')]
  for (const [title, f] of SECTIONS) out.push('', `### ${title}`, '', mdTable(matrix(doc, f)))
  return `${out.join('\n')}\n`
}

/** One line per cell. */
export function gridCsv(doc: GridDoc): string {
  const extra = ['iterations', 'bytesSent', 'redundant', 'lostWrites']
  return csvLines(
    ['bandwidth', 'bandwidth_bytes_per_s', 'downtime_limit', 'downtime_limit_ms', 'verdict', 'stop_reason', 'total_time_ms', 'downtime_ms', ...extra],
    doc.cells.map((c) => [c.bandwidth, c.bandwidthBytesPerSec, c.downtimeLimit, c.downtimeLimitMs, c.verdict, c.stopReason, c.totalTimeMs, c.downtimeMs, ...extra.map((k) => c.metrics[k] ?? 0)]),
  )
}

