/**
 * `--fail-if` conditions: thresholds a CI job gates on. A condition that holds is a failure.
 *
 *   condition := [VARIANT ":"] METRIC ["@" ("delta" | "ratio" | "pct")] OP VALUE
 *   OP        := ">" | ">=" | "<" | "<=" | "==" | "=" | "!="
 *   METRIC    := a name of METRICS (totalTimeMs, downtimeMs, redundant, lostWrites, ...),
 *                "redundantBy.<cause>", or "verdict" (with == / != and a verdict word)
 *   VALUE     := a number, with the metric's unit where it has one: ms metrics take durations
 *                (300ms, 1.5s; bare = ms), byte metrics sizes (1G = 1 GiB, 2GB, 512MiB), ratios
 *                a number or a percentage (5% = 0.05); @ratio takes a plain number, @pct a
 *                percentage (10 or 10%); deltas may be negative.
 *
 * Without VARIANT, a plain metric is tested on every variant, and @delta/@ratio/@pct (against the
 * baseline) on every variant but the baseline. A ratio or percentage against a baseline of 0 is
 * undefined and never fails (use @delta there).
 */
import {listFlagItems} from '../util/list-flag.js'
import {UserError, showValue} from '../util/errors.js'
import {parseDurationNs, parseSize} from '../util/units.js'
import {CAUSE_PREFIX, diff, metricSpec, METRICS, type MetricSpec} from './metrics.js'
import type {ItemResult} from './sweep.js'

export const OPS = ['>=', '<=', '==', '!=', '>', '<', '='] as const
export type Op = (typeof OPS)[number]
export type Mode = 'value' | 'delta' | 'ratio' | 'pct'

export interface Condition {
  text: string
  variant?: string
  metric: string
  mode: Mode
  op: Op
  /** Numeric threshold, or the verdict word for metric 'verdict'. */
  value: number | string
}

const GRAMMAR = "[VARIANT:]METRIC[@delta|@ratio|@pct] OP VALUE, e.g. 'redundant>0.05', 'fast:downtimeMs@delta>20ms'"
const COND = /^\s*(?:([A-Za-z0-9][A-Za-z0-9_.+-]*)\s*:\s*)?([A-Za-z][A-Za-z0-9_.-]*)\s*(?:@\s*([a-z]+)\s*)?(>=|<=|==|!=|>|<|=)\s*(.+?)\s*$/
const VERDICTS = ['converged', 'not-converged', 'inconclusive', 'cancelled', 'postcopy']

function bad(text: string, reason: string, expected: string): UserError {
  return new UserError(reason, {field: '--fail-if', expected, found: showValue(text)})
}

function parseNumber(raw: string, text: string, spec: MetricSpec, mode: Mode): number {
  const neg = raw.startsWith('-')
  const body = (neg ? raw.slice(1) : raw).trim()
  const num = (t: string, expected: string): number => {
    const n = Number(t)
    if (t.trim() === '' || !Number.isFinite(n)) throw bad(text, 'bad threshold value', expected)
    return n
  }
  let v: number
  if (mode === 'ratio') v = num(body, 'a plain number (value / baseline), e.g. 1.1')
  else if (mode === 'pct') v = num(body.endsWith('%') ? body.slice(0, -1) : body, 'a percentage such as 10 or 10%')
  else if (spec.unit === 'ms') v = parseDurationNs(body, '--fail-if', 'ms') / 1e6
  else if (spec.unit === 'bytes') v = parseSize(body, '--fail-if')
  else if (spec.unit === 'ratio' && body.endsWith('%')) v = num(body.slice(0, -1), 'a ratio such as 0.05 or 5%') / 100
  else v = num(body, spec.unit === 'ratio' ? 'a ratio such as 0.05 or 5%' : 'a number')
  return neg ? -v : v
}

export function parseCondition(text: string): Condition {
  const m = COND.exec(text)
  if (!m) throw bad(text, 'bad --fail-if condition', GRAMMAR)
  const [, variant, metric, modeText, op, rawValue] = m as unknown as [string, string | undefined, string, string | undefined, Op, string]
  const mode = (modeText ?? 'value') as Mode
  if (!['value', 'delta', 'ratio', 'pct'].includes(mode)) throw bad(text, `unknown comparison '@${modeText}'`, '@delta, @ratio or @pct')
  if (metric === 'verdict') {
    if (mode !== 'value' || (op !== '==' && op !== '=' && op !== '!='))
      throw bad(text, 'verdict can only be tested with == or !=', "e.g. 'verdict!=converged'")
    if (!VERDICTS.includes(rawValue)) throw bad(text, 'unknown verdict', VERDICTS.join(' | '))
    return {text, variant, metric, mode, op, value: rawValue}
  }
  const spec = metricSpec(metric) ?? (metric.startsWith(CAUSE_PREFIX) && metric.length > CAUSE_PREFIX.length ? {name: metric, unit: 'pages' as const, better: 'lower' as const, doc: ''} : undefined)
  if (!spec) throw bad(text, `unknown metric '${metric}'`, `one of verdict, ${METRICS.map((x) => x.name).join(', ')}, ${CAUSE_PREFIX}<cause>`)
  return {text, variant, metric, mode, op, value: parseNumber(rawValue, text, spec, mode)}
}

/** Conditions naming a variant must name one of these (checked before anything runs). */
export function checkConditionVariants(conditions: readonly Condition[], names: readonly string[]): void {
  for (const c of conditions)
    if (c.variant !== undefined && !names.includes(c.variant)) throw bad(c.text, `unknown variant '${c.variant}'`, `one of ${names.join(', ')}`)
}

/** `--fail-if` flags; each may hold several conditions separated by commas. */
export function parseConditions(flags: readonly string[]): Condition[] {
  return listFlagItems(flags, '--fail-if', "'redundant>0.05,downtimeMs>300'").map(parseCondition)
}

function holds(a: number | string, op: Op, b: number | string): boolean {
  switch (op) {
    case '>':
      return a > b
    case '>=':
      return a >= b
    case '<':
      return a < b
    case '<=':
      return a <= b
    case '==':
    case '=':
      return a === b
    case '!=':
      return a !== b
  }
}

export interface Check {
  variant: string
  /** The tested figure (null: undefined ratio against a zero baseline). */
  value: number | string | null
  failed: boolean
}

export interface ConditionResult {
  condition: string
  failed: boolean
  checks: Check[]
}

/**
 * Evaluate conditions over the results of a sweep (in order), against the baseline's result.
 * A condition naming a variant that is not in the sweep, or a metric no result has, is a user error.
 */
export function evaluate(conditions: readonly Condition[], results: readonly ItemResult[], baseline: ItemResult | undefined): ConditionResult[] {
  return conditions.map((c) => {
    if (c.variant !== undefined && !results.some((r) => r.name === c.variant))
      throw bad(c.text, `unknown variant '${c.variant}'`, `one of ${results.map((r) => r.name).join(', ')}`)
    if (c.mode !== 'value' && !baseline) throw bad(c.text, 'no baseline to compare with', 'a plain metric (no @delta/@ratio/@pct) here')
    if (c.metric !== 'verdict' && !results.some((r) => c.metric in r.metrics))
      throw bad(c.text, `no result has the metric '${c.metric}'`, `one of ${Object.keys(results[0]?.metrics ?? {}).join(', ')}`)
    const targets = results.filter((r) => (c.variant !== undefined ? r.name === c.variant : c.mode === 'value' || r.name !== baseline?.name))
    const unit = metricSpec(c.metric)?.unit ?? 'pages'
    const checks: Check[] = targets.map((r) => {
      if (c.metric === 'verdict') return {variant: r.name, value: r.verdict, failed: holds(r.verdict, c.op, c.value)}
      const v = r.metrics[c.metric] ?? 0
      let x: number | null = v
      if (c.mode !== 'value') {
        const d = diff(v, baseline!.metrics[c.metric] ?? 0, unit)
        x = c.mode === 'delta' ? d.delta : c.mode === 'ratio' ? d.ratio : d.pct
      }
      return {variant: r.name, value: x, failed: x !== null && holds(x, c.op, c.value)}
    })
    return {condition: c.text, failed: checks.some((k) => k.failed), checks}
  })
}
