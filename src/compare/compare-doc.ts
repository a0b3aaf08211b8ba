/**
 * The result of `migtrace compare`: every variant's figures side by side with the baseline's,
 * deltas and ratios (perf diff style). Built by one pure function from the sweep definition and
 * the item results, so a merged set of shards gives the same document, byte for byte.
 */
import {allMetricSpecs, CAUSE_PREFIX, diff, type Diff, type MetricSpec, type MetricUnit} from './metrics.js'
import type {ConditionResult} from './fail-if.js'
import type {ItemResult, Overrides, SweepRun} from './sweep.js'
import type {Variant} from './variants.js'
import type {Driver} from '../replay/index.js'
import {csvLines, mdTable, num, signed, textTable, type Table} from './table.js'

export const COMPARE_SCHEMA = 'migtrace.compare/1'

export interface CompareDef {
  command: 'compare'
  trace: string
  driver: Driver
  /** --config and --set: every variant starts from these. */
  base: Overrides
  variants: Variant[]
  baseline: string
}

export function compareRun(def: CompareDef): SweepRun {
  return {trace: def.trace, driver: def.driver, items: def.variants.map((v) => ({name: v.name, overrides: {...def.base, ...v.settings}}))}
}

export interface CompareDoc {
  schema: typeof COMPARE_SCHEMA
  trace: string
  driver: Driver
  baseline: string
  base: Overrides
  metrics: {name: string; unit: string; better: string}[]
  variants: {name: string; settings: Record<string, string>; effective: Record<string, unknown>; verdict: string; stopReason: string; metrics: Record<string, number>}[]
  /** For each variant but the baseline: metric -> delta / ratio / pct against the baseline. */
  diffs: {variant: string; metrics: Record<string, Diff>}[]
  failIf?: ConditionResult[]
  failed?: boolean
}

/** Metrics to list: the fixed ones, then the causes some variant has (registration order). */
function listedMetrics(results: readonly ItemResult[]): MetricSpec[] {
  const present = new Set(results.flatMap((r) => Object.keys(r.metrics)))
  const specs = allMetricSpecs().filter((m) => present.has(m.name))
  for (const name of present) if (name.startsWith(CAUSE_PREFIX) && !specs.some((s) => s.name === name)) specs.push({name, unit: 'pages', better: 'lower', doc: ''})
  return specs
}

export function compareDoc(def: CompareDef, results: readonly ItemResult[]): CompareDoc {
  const specs = listedMetrics(results)
  const base = results.find((r) => r.name === def.baseline)!
  return {
    schema: COMPARE_SCHEMA,
    trace: def.trace,
    driver: def.driver,
    baseline: def.baseline,
    base: def.base,
    metrics: specs.map((m) => ({name: m.name, unit: m.unit, better: m.better})),
    variants: results.map((r, i) => ({name: r.name, settings: def.variants[i]!.settings, effective: r.effective, verdict: r.verdict, stopReason: r.stopReason, metrics: r.metrics})),
    diffs: results
      .filter((r) => r.name !== def.baseline)
      .map((r) => ({variant: r.name, metrics: Object.fromEntries(specs.map((m) => [m.name, diff(r.metrics[m.name] ?? 0, base.metrics[m.name] ?? 0, m.unit)]))})),
  }
}

function settingsText(s: Record<string, string>): string {
  const e = Object.entries(s)
  return e.length === 0 ? '(base settings)' : e.map(([k, v]) => `${k}=${v}`).join(', ')
}

const digits = (unit: string): number => (unit === 'ratio' ? 6 : 3)
const ratioText = (d: Diff): string => (d.ratio === null ? 'n/a' : `${d.ratio.toFixed(4)}x`)
const pctText = (d: Diff): string => (d.pct === null ? 'n/a' : `${d.pct > 0 ? '+' : ''}${d.pct.toFixed(2)}%`)

/** The side-by-side table of the text and Markdown outputs (also the HTML page's). */
export function compareTable(doc: CompareDoc): Table {
  return sideBySide(doc)
}

function sideBySide(doc: CompareDoc): Table {
  const base = doc.variants.find((v) => v.name === doc.baseline)!
  const others = doc.variants.filter((v) => v.name !== doc.baseline)
  const headers = ['metric', `${base.name} (baseline)`]
  for (const o of others) headers.push(o.name, `Δ ${o.name}`, `Δ% ${o.name}`, `ratio ${o.name}`)
  const right = headers.map((_, j) => j > 0)
  const rows: string[][] = []
  rows.push(['verdict', base.verdict, ...others.flatMap((o) => [o.verdict, o.verdict === base.verdict ? '' : 'changed', '', ''])])
  for (const m of doc.metrics) {
    // per-cause rows that are 0 everywhere say nothing (they stay in the JSON and CSV)
    if (m.name.startsWith(CAUSE_PREFIX) && doc.variants.every((v) => (v.metrics[m.name] ?? 0) === 0)) continue
    const row = [m.name, num(base.metrics[m.name] ?? 0, digits(m.unit))]
    for (const o of others) {
      const d = doc.diffs.find((x) => x.variant === o.name)!.metrics[m.name]!
      row.push(num(o.metrics[m.name] ?? 0, digits(m.unit)), signed(d.delta, digits(m.unit)), pctText(d), ratioText(d))
    }
    rows.push(row)
  }
  return {headers, rows, right}
}

function thresholdLines(doc: CompareDoc): string[] {
  if (!doc.failIf) return []
  const out: string[] = []
  for (const c of doc.failIf) {
    const which = c.checks.filter((k) => k.failed).map((k) => `${k.variant}=${String(k.value)}`)
    out.push(`${c.failed ? 'FAIL' : 'ok  '}  ${c.condition}${c.failed ? `  (${which.join(', ')})` : ''}`)
  }
  return out
}

export function compareText(doc: CompareDoc): string {
  const out: string[] = []
  out.push(`migtrace compare ${doc.trace}  [driver ${doc.driver}, ${doc.variants.length} variants, baseline ${doc.baseline}]`)
  out.push('')
  out.push(textTable({headers: ['variant', 'settings'], rows: doc.variants.map((v) => [v.name, settingsText(v.settings)])}))
  out.push('')
  out.push(textTable(sideBySide(doc)))
  const t = thresholdLines(doc)
  if (t.length > 0) out.push('', ...t)
  return `${out.join('\n')}\n`
}

export function compareMarkdown(doc: CompareDoc): string {
  const out: string[] = []
  out.push(`## migtrace compare: \`${doc.trace}\``)
  out.push('')
  out.push(`driver \`${doc.driver}\`, baseline **${doc.baseline}**`)
  out.push('')
  out.push(mdTable({headers: ['variant', 'settings'], rows: doc.variants.map((v) => [v.name, settingsText(v.settings)])}))
  out.push('')
  out.push(mdTable(sideBySide(doc)))
  const t = thresholdLines(doc)
  if (t.length > 0) out.push('', '```', ...t, '```')
  return `${out.join('\n')}\n`
}

/** Long format: one line per (metric, variant), with the baseline's value, delta, ratio, pct. */
export function compareCsv(doc: CompareDoc): string {
  const base = doc.variants.find((v) => v.name === doc.baseline)!
  const rows: (string | number | null)[][] = []
  for (const v of doc.variants) rows.push(['verdict', '', v.name, v.verdict, base.verdict, null, null, null])
  for (const m of doc.metrics)
    for (const v of doc.variants) {
      const value = v.metrics[m.name] ?? 0
      const b = base.metrics[m.name] ?? 0
      const d = diff(value, b, m.unit as MetricUnit)
      rows.push([m.name, m.unit, v.name, value, b, d.delta, d.ratio, d.pct])
    }
  return csvLines(['metric', 'unit', 'variant', 'value', 'baseline', 'delta', 'ratio', 'pct'], rows)
}
