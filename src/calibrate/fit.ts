/**
 * `migtrace calibrate`: the host's cost parameters fitted to observed runs. Each candidate is
 * replayed on every fit run in-process (./runs.ts) and scored by the squared relative residuals
 * of transferred bytes, total time, downtime and sync count; Nelder-Mead (./nelder-mead.ts)
 * searches the natural logs of the parameters (they are positive and span decades). At the
 * optimum the Jacobian of the residuals by central differences gives each parameter's sensitivity
 * and, from the Gauss-Newton covariance s^2 (J^T J)^-1, its uncertainty.
 */
import type {ExpectRow} from '../analysis/expect.js'
import type {SettingsOverrides} from '../replay/config.js'
import {SETTING_BY_KEY} from '../replay/settings.js'
import {nelderMead} from './nelder-mead.js'
import {predict, type ObservedRun} from './runs.js'

/** The parameters calibrate can fit, with the start of the search (setting units). */
export const FIT_PARAMS = {
  'zero-page-cost': {start: 0.0015, doc: 'ms per zero page'},
  'sender-page-cost': {start: 0.03, doc: 'ms per normal page on the migration thread (no multifd)'},
  'multifd-page-cost': {start: 0.01, doc: 'ms per normal page on a multifd channel thread'},
  'sync-page-cost': {start: 0.005, doc: 'ms per dirty page on the per-page sync path'},
  'sync-first-page-cost': {start: 0.002, doc: 'ms per dirty page on the per-page sync path at sync #1 (every page dirty)'},
  'dest-record-cost': {start: 0.002, doc: "ms per main-stream record on the destination's load loop"},
  'dest-record-intervals': {start: 1.2, doc: "the destination's load loop a record, in the capture's trace-page-interval (runs whose trace measured it; dest-record-cost for the others)"},
  'precopy-socket-buffer': {start: 4 * 2 ** 20, doc: "bytes the precopy source can run ahead of the destination's load loop"},
  'sync-cost': {start: 10, doc: 'ms per GiB of guest RAM per sync'},
  'link-bandwidth': {start: 200 * 2 ** 20, doc: 'bytes/s'},
  'host-cpus': {start: 2, doc: "cores' worth the sender threads share with the busy vCPUs"},
  // Only runs whose guest RAM was not preallocated depend on it (guest-ram-prealloc=false): fit it
  // on cold-memory captures (lab/runs-cold), not on the --prealloc matrix.
  'first-touch-cost': {start: 0.007, doc: 'ms per page on its first send, when guest RAM was not preallocated'},
} as const
export type FitParam = keyof typeof FIT_PARAMS
export const DEFAULT_FIT_PARAMS: FitParam[] = ['zero-page-cost', 'sender-page-cost', 'sync-page-cost']

/** The metrics scored, each a relative residual (predicted - observed) / observed. */
export const FIT_METRICS = ['transferred', 'total-time', 'downtime', 'dirty-sync-count'] as const

export interface Residual {
  run: string
  metric: string
  observed: number
  predicted: number
  rel: number
}

export function residuals(run: string, rows: readonly ExpectRow[]): Residual[] {
  const out: Residual[] = []
  for (const m of FIT_METRICS) {
    const r = rows.find((x) => x.metric === m)
    if (r === undefined || r.observed === null || r.predicted === null || r.observed === 0) continue
    out.push({run, metric: m, observed: r.observed, predicted: r.predicted, rel: (r.predicted - r.observed) / r.observed})
  }
  return out
}

export interface ParamFit {
  name: FitParam
  value: number
  start: number
  /** 1-sigma of ln(value): the relative uncertainty; null when the runs cannot tell it (no effect). */
  sigmaLog: number | null
  /** Root of the summed squared residual change per unit change of ln(value). */
  sensitivity: number
}

export interface FitOutcome {
  params: ParamFit[]
  /** Sum of squared residuals over the fit runs, before (start values) and after. */
  ssrStart: number
  ssr: number
  evals: number
  converged: boolean
}

export interface FitOptions {
  params: readonly FitParam[]
  /** Settings under the fitted ones (the user's --config / --set). */
  base: SettingsOverrides
  /** Start values (setting units); FIT_PARAMS' starts otherwise. */
  start?: Partial<Record<FitParam, number>>
  maxEvals: number
  onEval?: (n: number, ssr: number, values: Record<string, number>) => void
}

/**
 * The settings of a point of the search (natural logs). A `size` parameter (precopy-socket-buffer)
 * is rounded to whole bytes: parseSize takes nothing else, and even exp(ln(4 MiB)) is
 * 4194304.000000001. The candidates, the reported value and the --out file are then whole bytes.
 */
export const settingsOf = (params: readonly FitParam[], x: readonly number[]): Record<string, number> =>
  Object.fromEntries(params.map((p, i) => [p, SETTING_BY_KEY.get(p)?.kind === 'size' ? Math.round(Math.exp(x[i]!)) : Math.exp(x[i]!)]))

/** Residuals of every run under `settings`. */
export async function evaluate(runs: readonly ObservedRun[], settings: SettingsOverrides): Promise<{residuals: Residual[]; rows: Map<string, ExpectRow[]>}> {
  const all: Residual[] = []
  const rows = new Map<string, ExpectRow[]>()
  for (const run of runs) {
    const p = await predict(run, settings)
    rows.set(run.name, p.rows)
    all.push(...residuals(run.name, p.rows))
  }
  return {residuals: all, rows}
}

const byKey = (rs: readonly Residual[]): Map<string, number> => new Map(rs.map((r) => [`${r.run}/${r.metric}`, r.rel]))
const ssrOf = (rs: readonly Residual[]): number => rs.reduce((s, r) => s + r.rel * r.rel, 0)

/** Inverse of a small symmetric matrix by Gauss-Jordan; null when singular. */
export function invert(a: number[][]): number[][] | null {
  const n = a.length
  const m = a.map((row, i) => [...row, ...Array.from({length: n}, (_, j) => (i === j ? 1 : 0))])
  for (let c = 0; c < n; c++) {
    let piv = c
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[piv]![c]!)) piv = r
    const scale = Math.max(...a.map((row) => Math.abs(row[c]!)), 1e-300)
    if (Math.abs(m[piv]![c]!) <= 1e-12 * scale) return null
    ;[m[c], m[piv]] = [m[piv]!, m[c]!]
    const d = m[c]![c]!
    for (let k = 0; k < 2 * n; k++) m[c]![k]! /= d
    for (let r = 0; r < n; r++) {
      if (r === c) continue
      const f = m[r]![c]!
      if (f !== 0) for (let k = 0; k < 2 * n; k++) m[r]![k]! -= f * m[c]![k]!
    }
  }
  return m.map((row) => row.slice(n))
}

export async function fit(runs: readonly ObservedRun[], opts: FitOptions): Promise<FitOutcome> {
  const params = opts.params
  const x0 = params.map((p) => Math.log(opts.start?.[p] ?? FIT_PARAMS[p].start))
  const cache = new Map<string, Residual[]>()
  let n = 0
  const resid = async (x: readonly number[]): Promise<Residual[]> => {
    const key = x.map((v) => v.toPrecision(12)).join(',')
    const hit = cache.get(key)
    if (hit) return hit
    const values = settingsOf(params, x)
    const r = (await evaluate(runs, {...opts.base, ...values})).residuals
    cache.set(key, r)
    n++
    opts.onEval?.(n, ssrOf(r), values)
    return r
  }
  const ssrStart = ssrOf(await resid(x0))
  // Nelder-Mead, restarted from its best point with a fresh simplex while that still improves: a
  // collapsed simplex stalls on the steps that sync counts make in the objective.
  const objective = async (x: number[]): Promise<number> => ssrOf(await resid(x))
  let nm = await nelderMead(objective, x0, {step: Math.log(2), maxEvals: opts.maxEvals, fTol: 1e-7, xTol: 0.005})
  for (let restart = 0; restart < 4 && n < opts.maxEvals; restart++) {
    const again = await nelderMead(objective, nm.x, {step: Math.log(1.5), maxEvals: opts.maxEvals - n, fTol: 1e-7, xTol: 0.005})
    const better = again.f < nm.f * (1 - 1e-6)
    nm = again.f <= nm.f ? {...again, converged: again.converged} : nm
    if (!better) break
  }
  // Jacobian of the residuals in ln(parameter), central differences of 5 %.
  const h = 0.05
  const base = await resid(nm.x)
  const cols: number[][] = []
  for (let i = 0; i < params.length; i++) {
    const up = [...nm.x]
    const dn = [...nm.x]
    up[i]! += h
    dn[i]! -= h
    // Residuals matched by run and metric: a metric the model cannot give at one point counts 0.
    const ru = byKey(await resid(up))
    const rd = byKey(await resid(dn))
    cols.push(base.map((r) => ((ru.get(`${r.run}/${r.metric}`) ?? 0) - (rd.get(`${r.run}/${r.metric}`) ?? 0)) / (2 * h)))
  }
  const jtj = cols.map((a) => cols.map((b) => a.reduce((s, v, k) => s + v * b[k]!, 0)))
  const dof = Math.max(1, base.length - params.length)
  const s2 = ssrOf(base) / dof
  // Parameters the residuals do not depend on (a sender cost hidden by a slower link) are left out
  // of the covariance: they are not determined, and would make J^T J singular for the others.
  const live = params.map((_, i) => i).filter((i) => Math.sqrt(jtj[i]![i]!) > 1e-9)
  const sub = invert(live.map((i) => live.map((j) => jtj[i]![j]!)))
  const best = settingsOf(params, nm.x)
  const out: ParamFit[] = params.map((p, i) => {
    const sens = Math.sqrt(jtj[i]![i]!)
    const k = live.indexOf(i)
    const v = k >= 0 ? sub?.[k]?.[k] : undefined
    return {
      name: p,
      value: best[p]!,
      start: opts.start?.[p] ?? FIT_PARAMS[p].start,
      sigmaLog: sens > 1e-9 && v !== undefined && v >= 0 ? Math.sqrt(s2 * v) : null,
      sensitivity: sens,
    }
  })
  return {params: out, ssrStart, ssr: nm.f, evals: n, converged: nm.converged}
}
