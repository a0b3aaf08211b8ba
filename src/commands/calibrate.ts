import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import type {CalibrateDoc} from '../schemas/outputs.js'
import {UserError} from '../util/errors.js'

export default class Calibrate extends BaseCommand {
  static override summary = "Fit the host's cost parameters (zero-page, sender, sync, link rate) to observed runs; print the residuals; write a settings file for replay --config"
  static override description =
    'Each run is a lab run directory (migtrace lab run / lab/runs/<name>) or a directory with a trace.csv.gz whose header holds the observation. Runs are imported once and replayed in-process for each candidate; Nelder-Mead on the logs of the parameters minimises the squared relative residuals of transferred bytes, total time, downtime and sync count over the --fit runs; the --check runs are only reported. docs/lab.md (calibrate).'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --fit idle,random,slow-link --check fast-link,virtio-mem --out lab/calibration.json',
    '<%= config.bin %> <%= command.id %> runs/a runs/b --params sync-page-cost,link-bandwidth --json',
  ]
  static override enableJsonFlag = true
  static override strict = false
  static override args = {runs: Args.string({description: 'run directories (or give run names with --fit/--check, looked up in --runs-dir)'})}
  static override flags = {
    fit: Flags.string({description: 'runs to fit on, by name (comma-separated); default: every run not in --check'}),
    check: Flags.string({description: 'runs only to check the fit on, by name (comma-separated)'}),
    'runs-dir': Flags.string({description: 'where --fit/--check names are looked up when not given as directories', default: 'lab/runs'}),
    params: Flags.string({description: 'parameters to fit (comma-separated): zero-page-cost, sender-page-cost, multifd-page-cost, sync-page-cost, sync-first-page-cost, sync-cost, dest-record-cost, dest-record-intervals, precopy-socket-buffer, link-bandwidth, host-cpus, first-touch-cost', default: 'zero-page-cost,sender-page-cost,sync-page-cost'}),
    config: Flags.string({char: 'c', description: 'JSON file of settings under the fitted ones (a fitted key there is its start value)'}),
    set: Flags.string({description: 'a setting under the fitted ones, key=value (repeatable; a fitted key is its start value)', multiple: true, default: []}),
    'max-evals': Flags.integer({description: 'most candidate evaluations (each replays every fit run)', default: 60, min: 1}),
    out: Flags.string({char: 'o', description: 'write the settings file (the fitted values over the settings the fit runs share), for replay --config'}),
  }

  async run(): Promise<CalibrateDoc> {
    const {argv, flags} = await this.parse(Calibrate)
    const {existsSync, writeFileSync} = await import('node:fs')
    const {basename, join, resolve} = await import('node:path')
    const {loadConfigFile, parseSetFlags} = await import('../replay/config.js')
    const {FIT_PARAMS, evaluate, fit} = await import('../calibrate/fit.js')
    const {loadRun, coldMemoryOf, sharedRunSettings} = await import('../calibrate/runs.js')
    type FitParam = keyof typeof FIT_PARAMS

    const names = (s: string | undefined): string[] => (s ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '')
    const params = names(flags.params)
    for (const p of params) if (!(p in FIT_PARAMS)) throw new UserError('not a parameter calibrate fits', {field: '--params', expected: Object.keys(FIT_PARAMS).join(', '), found: p})
    if (params.length === 0) throw new UserError('nothing to fit', {field: '--params', expected: Object.keys(FIT_PARAMS).join(', ')})
    const fitParams = params as FitParam[]
    const base = {...(flags.config ? loadConfigFile(flags.config) : {}), ...parseSetFlags(flags.set)} as Record<string, unknown>
    const start: Partial<Record<FitParam, number>> = {}
    for (const p of fitParams) {
      const v = base[p]
      if (typeof v === 'number' && v > 0) start[p] = v
      delete base[p]
    }

    // Runs: directories given as arguments, or names looked up in --runs-dir.
    const dirs = new Map<string, string>()
    for (const d of argv as string[]) dirs.set(basename(resolve(d)), d)
    const fitNames = names(flags.fit)
    const checkNames = names(flags.check)
    for (const n of [...fitNames, ...checkNames]) {
      if (dirs.has(n)) continue
      const d = join(flags['runs-dir'], n)
      if (!existsSync(d)) throw new UserError('no such run', {field: fitNames.includes(n) ? '--fit' : '--check', expected: `a run directory given as an argument or under ${flags['runs-dir']}`, found: n})
      dirs.set(n, d)
    }
    if (dirs.size === 0) throw new UserError('no runs to fit', {field: 'runs', expected: 'run directories, or --fit names under --runs-dir'})
    const checkSet = new Set(checkNames)
    const fitSet = new Set(fitNames.length > 0 ? fitNames : [...dirs.keys()].filter((n) => !checkSet.has(n)))
    for (const n of fitSet) if (checkSet.has(n)) throw new UserError('a run cannot be both fitted and checked', {field: '--check', found: n})
    if (fitSet.size === 0) throw new UserError('no runs to fit on', {field: '--fit', expected: 'at least one run not in --check'})

    const runs = []
    for (const [name, dir] of dirs) {
      if (!fitSet.has(name) && !checkSet.has(name)) continue
      process.stderr.write(`calibrate: loading ${name} (${dir})\n`)
      runs.push(await loadRun(dir, {name}))
      const cold = coldMemoryOf(dir)
      // A lab run captured where untouched guest RAM costs a page allocation when read (no zero page
      // on read faults, RAM not preallocated): its per-page times are this host's, not plain QEMU's
      // on a standard host (docs/lab.md, "Cold host memory"). Said, not refused: it is still a run.
      if (cold) process.stderr.write(`calibrate: warning: ${name} was captured on cold host memory (the host maps no zero page on reads and the run has no --prealloc): its zero-page and per-page times include host page allocations\n`)
    }
    const fitRuns = runs.filter((r) => fitSet.has(r.name))
    const checkRuns = runs.filter((r) => checkSet.has(r.name))

    const baseSettings = base as import('../replay/config.js').SettingsOverrides
    // "Before": every run with its own and the --config/--set settings, none fitted (the model as it
    // was); done first, so a run the replay refuses fails before the long search.
    const before = await evaluate(runs, baseSettings)
    const outcome = await fit(fitRuns, {
      params: fitParams,
      base: baseSettings,
      start,
      maxEvals: flags['max-evals'],
      onEval: (n, ssr) => process.stderr.write(`calibrate: evaluation ${n}: sum of squares ${ssr.toPrecision(4)}\n`),
    })
    const fitted = Object.fromEntries(outcome.params.map((p) => [p.name, Number(p.value.toPrecision(4))]))
    const after = await evaluate(runs, {...baseSettings, ...fitted})
    const afterByKey = new Map(after.residuals.map((r) => [`${r.run}/${r.metric}`, r]))
    const residuals = before.residuals.map((b) => {
      const a = afterByKey.get(`${b.run}/${b.metric}`)
      return {run: b.run, role: fitSet.has(b.run) ? ('fit' as const) : ('check' as const), metric: b.metric, observed: b.observed, before: b.predicted, after: a?.predicted ?? null, relBefore: b.rel, relAfter: a?.rel ?? null}
    })
    const ssr = (role: 'fit' | 'check', which: 'relBefore' | 'relAfter'): number => residuals.filter((r) => r.role === role).reduce((s, r) => s + (r[which] ?? 0) ** 2, 0)

    // The settings file: what every fit run shares of its own settings (the lab's replay settings,
    // not a trace's fixed ones), the user's, then the fitted values; in setting units (ms, bytes/s),
    // as --config reads them.
    const shared = sharedRunSettings(fitRuns)
    const settings = Object.fromEntries(Object.entries({...shared, ...baseSettings, ...fitted}).filter(([, v]) => ['string', 'number', 'boolean'].includes(typeof v))) as Record<string, string | number | boolean>
    if (flags.out) writeFileSync(flags.out, `${JSON.stringify(settings, null, 2)}\n`)

    const doc: CalibrateDoc = {
      schema: 'migtrace.calibrate/1',
      runs: runs.map((r) => ({name: r.name, dir: r.dir, role: fitSet.has(r.name) ? 'fit' : 'check'})),
      params: outcome.params.map((p) => ({name: p.name, value: Number(p.value.toPrecision(4)), start: p.start, sigmaLog: p.sigmaLog, sensitivity: p.sensitivity})),
      evals: outcome.evals,
      converged: outcome.converged,
      sumOfSquares: {fitBefore: ssr('fit', 'relBefore'), fitAfter: ssr('fit', 'relAfter'), checkBefore: ssr('check', 'relBefore'), checkAfter: ssr('check', 'relAfter')},
      residuals,
      settings,
      out: flags.out ?? null,
    }
    if (!this.jsonEnabled()) this.log(renderText(doc))
    return doc
  }
}

const pct = (v: number | null): string => (v === null ? '-' : `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)} %`)
const val = (v: number | null, metric: string): string => (v === null ? '-' : metric === 'transferred' ? `${(v / 2 ** 20).toFixed(1)} MiB` : metric === 'dirty-sync-count' ? String(v) : `${v.toFixed(1)} ms`)

function renderText(d: CalibrateDoc): string {
  const lines: string[] = []
  lines.push(`fitted on ${d.runs.filter((r) => r.role === 'fit').map((r) => r.name).join(', ')}${d.runs.some((r) => r.role === 'check') ? `; checked on ${d.runs.filter((r) => r.role === 'check').map((r) => r.name).join(', ')}` : ''} (${d.evals} evaluations${d.converged ? '' : ', stopped at --max-evals'})`)
  lines.push('')
  lines.push('parameter          value         start         ±1 sigma   sensitivity')
  for (const p of d.params) lines.push(`${p.name.padEnd(18)} ${p.value.toPrecision(4).padEnd(13)} ${p.start.toPrecision(4).padEnd(13)} ${(p.sigmaLog === null ? 'not determined' : `${((Math.exp(p.sigmaLog) - 1) * 100).toFixed(0)} %`).padEnd(10)} ${p.sensitivity.toFixed(3)}`)
  lines.push('')
  lines.push(`sum of squared relative residuals: fit ${d.sumOfSquares.fitBefore.toFixed(4)} -> ${d.sumOfSquares.fitAfter.toFixed(4)}${d.runs.some((r) => r.role === 'check') ? `, check ${d.sumOfSquares.checkBefore.toFixed(4)} -> ${d.sumOfSquares.checkAfter.toFixed(4)}` : ''}`)
  lines.push('')
  const w = Math.max(3, ...d.residuals.map((r) => r.run.length))
  lines.push(`${'run'.padEnd(w)}  role   metric            observed      before (not fitted)     after`)
  for (const r of d.residuals) lines.push(`${r.run.padEnd(w)}  ${r.role.padEnd(5)}  ${r.metric.padEnd(16)}  ${val(r.observed, r.metric).padEnd(12)}  ${`${val(r.before, r.metric)} (${pct(r.relBefore)})`.padEnd(22)}  ${val(r.after, r.metric)} (${pct(r.relAfter)})`)
  if (d.out) lines.push('', `settings written to ${d.out} (replay --config ${d.out})`)
  return lines.join('\n')
}
