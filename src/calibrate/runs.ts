/**
 * Observed runs for `migtrace calibrate` and `lab table --reanalyze`, loaded once and replayed
 * in-process as often as a fit needs: the events are decoded once into batches kept in memory
 * (the trace reader reuses its batches, so each is copied), and every replay walks those.
 * A run directory is either a lab run (trace-src.log.gz or the kept trace-src.thin.log.gz, config.json,
 * observed.json, the source console, and its recording.csv.gz when recorded: imported as src/lab/analyze.ts does, into a temporary file) or a directory holding a
 * migtrace trace `trace.csv.gz` / `trace.csv` whose header carries the observation
 * (`observed`: a query-migrate reply).
 */
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {basename, join, resolve} from 'node:path'
import type {EventBatch} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {compareWithObserved, type ExpectRow} from '../analysis/expect.js'
import {headerSettings, parseSetFlags, type SettingsOverrides} from '../replay/config.js'
import {hasMigStart, replay, type ReplayResult} from '../replay/index.js'
import {UserError} from '../util/errors.js'
import {coldMemoryCapture} from '../lab/host-memory.js'

export interface ObservedRun {
  name: string
  dir: string
  header: TraceHeader
  layout: TraceLayout
  batches: EventBatch[]
  noStartEvent: boolean
  observed: Record<string, unknown>
  /** The run's own settings: the lab's replay settings and its capabilities (lab runs); none else. */
  runSettings: SettingsOverrides
}

const TRACE_NAMES = ['trace.csv.gz', 'trace.csv']

function copyBatch(b: EventBatch): EventBatch {
  return {
    length: b.length,
    t: b.t.slice(0, b.length),
    kind: b.kind.slice(0, b.length),
    vcpu: b.vcpu.slice(0, b.length),
    dev: b.dev.slice(0, b.length),
    slot: b.slot.slice(0, b.length),
    gpa: b.gpa.slice(0, b.length),
    iova: b.iova.slice(0, b.length),
    len: b.len.slice(0, b.length),
    page: b.page.slice(0, b.length),
    count: b.count.slice(0, b.length),
    value: b.value.slice(0, b.length),
    op: b.op.slice(0, b.length),
    params: new Map(b.params),
    line: b.line.slice(0, b.length),
  }
}

/** What a directory must hold, for the one-line error. */
const EXPECTED = 'a lab run directory (trace-src.log.gz, config.json, observed.json, src-console.log) or a directory with trace.csv.gz whose header holds `observed`'

/** Load one run: import a lab run's source trace (quietly, into a temporary file), read the events once. */
/** `writes: 'recreated'`: a recorded lab run imported as without its recording (the dirtier's writes from its seed). */
export async function loadRun(dir: string, opts: {name?: string; writes?: 'recorded' | 'recreated'} = {}): Promise<ObservedRun> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError('not a run directory', {file: dir, expected: EXPECTED})
  const name = opts.name ?? basename(resolve(dir))
  const own = TRACE_NAMES.map((f) => join(dir, f)).find((p) => existsSync(p))
  const {sourceTraceOf} = await import('../lab/run-files.js')
  const lab = sourceTraceOf(dir) !== undefined
  let tracePath: string
  let tmp: string | undefined
  let runSettings: SettingsOverrides = {}
  if (lab) {
    for (const f of ['config.json', 'observed.json']) if (!existsSync(join(dir, f))) throw new UserError('the lab run lacks a file calibration needs', {file: join(dir, f), expected: EXPECTED})
    const consoleFile = ['src-console.log', 'src-serial.log'].map((f) => join(dir, f)).find((p) => existsSync(p))
    if (consoleFile === undefined) throw new UserError('the lab run lacks its source console', {file: join(dir, 'src-console.log'), expected: EXPECTED})
    const {importQemuTrace} = await import('../import/qemu/importer.js')
    const {LAB_REPLAY_SETTINGS, labImportInputs} = await import('../lab/analyze.js')
    tmp = mkdtempSync(join(tmpdir(), 'migtrace-calibrate-'))
    tracePath = join(tmp, 'trace.csv.gz')
    // The same import as the lab's comparison (src/lab/analyze.ts): the recording's writes when the
    // run was recorded, and a postcopy run brings its destination's writes after the switchover.
    const imp = await importQemuTrace({...labImportInputs(dir, {writes: opts.writes}), out: tracePath})
    runSettings = parseSetFlags([...LAB_REPLAY_SETTINGS, ...((imp.header.source?.settings ?? []) as string[])])
  } else if (own !== undefined) tracePath = own
  else throw new UserError('not a run directory', {file: dir, expected: EXPECTED})
  try {
    const {openTrace} = await import('../trace/read/open.js')
    const trace = await openTrace(tracePath)
    const observed = trace.header.observed
    if (observed === undefined || typeof observed !== 'object') throw new UserError('the run has no observation to fit to', {file: tracePath, field: 'observed', expected: 'a header `observed` object (query-migrate of the real run)'})
    const batches: EventBatch[] = []
    for await (const b of trace.events()) batches.push(copyBatch(b))
    return {name, dir, header: trace.header, layout: trace.layout, batches, noStartEvent: !(await hasMigStart(batches)), observed, runSettings}
  } finally {
    if (tmp !== undefined) rmSync(tmp, {recursive: true, force: true})
  }
}

/**
 * Whether a lab run's timings include first-touch host page allocations (src/lab/host-memory.ts):
 * true, false, or undefined when the run does not say (no config.json, or captured before runs
 * recorded `host_memory`).
 */
export function coldMemoryOf(dir: string): boolean | undefined {
  const f = join(dir, 'config.json')
  if (!existsSync(f)) return undefined
  try {
    return coldMemoryCapture(JSON.parse(readFileSync(f, 'utf8')) as Parameters<typeof coldMemoryCapture>[0])
  } catch {
    return undefined
  }
}

export interface Prediction {
  result: ReplayResult
  rows: ExpectRow[]
}

/** Replay a loaded run with its own settings, then `settings` over them; compare with the observation. */
export async function predict(run: ObservedRun, settings: SettingsOverrides): Promise<Prediction> {
  const overrides = {...run.runSettings, ...settings}
  const result = await replay({header: run.header, layout: run.layout, events: run.batches, file: run.dir}, {driver: 'qemu', overrides, noStartEvent: run.noStartEvent})
  return {result, rows: compareWithObserved(run.observed, result)}
}

/**
 * What every run shares of its own settings, for a settings file (calibrate --out): the lab's
 * replay settings, not the trace's fixed settings (header.source.settings: its QEMU version,
 * multifd, guest-ram-prealloc, ...), which every replay of a trace applies by itself; written into
 * a file they would override another run's own (a calibration fitted on preallocated runs would
 * replay a cold run as preallocated).
 */
export function sharedRunSettings(runs: readonly Pick<ObservedRun, 'runSettings' | 'header'>[]): Record<string, unknown> {
  const shared: Record<string, unknown> = {}
  if (runs.length === 0) return shared
  const traceKeys = new Set<string>()
  for (const r of runs) for (const k of Object.keys(headerSettings(r.header))) traceKeys.add(k)
  for (const [k, v] of Object.entries(runs[0]!.runSettings)) {
    if (traceKeys.has(k)) continue
    if (runs.every((r) => (r.runSettings as Record<string, unknown>)[k] === v)) shared[k] = v
  }
  return shared
}
