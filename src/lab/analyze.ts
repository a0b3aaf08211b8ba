/**
 * A lab run's prediction against its observation: import the source trace (migtrace import qemu,
 * with the run's config, its observed query-migrate, its host-stamped console and, when the run
 * was recorded, the recording of the guest's stores: the writes come from it, else the dirtier's
 * are re-created from its seed; for a postcopy run also the destination's console, trace and final
 * query-migrate, so its writes after the switchover are too), replay it through the model (`migtrace replay --json`, run as the CLI so
 * the lab follows whatever the replay command does), and compare with QEMU's own figures
 * (src/analysis/expect.ts). Writes trace.csv.gz, replay.json and expect.txt into the run directory.
 */
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {importQemuTrace} from '../import/qemu/importer.js'
import {renderExpectText} from '../analysis/expect-report.js'
import type {ExpectRow} from '../analysis/expect.js'
import {UserError} from '../util/errors.js'
import {loadConfigFile} from '../replay/config.js'
import {DST_ZERO_TRACE_FILES, isMultifdRun, recordingOf, sourceTraceOf} from './run-files.js'

/**
 * Replay settings for lab traces, not tuned here: TCG has no KVM dirty log, so QEMU's lazy clear
 * does nothing (lazy-clear=false, docs/import-qemu.md), and zero pages cost the sender ~1.5 us
 * each on this host (calibrated once on run 01-idle, docs/import-qemu.md).
 */
export const LAB_REPLAY_SETTINGS = ['lazy-clear=false', 'zero-page-cost=1.5us']

/**
 * The project's calibration of this host (`migtrace calibrate` on the kept runs in lab/runs, docs/lab.md):
 * the sender's, the zero pages' and the syncs' costs and the cores the sender shares. A lab run's
 * comparison uses it by default, so what `lab run` prints is the model's best prediction here.
 */
export const PROJECT_CALIBRATION = fileURLToPath(new URL('../../lab/calibration.json', import.meta.url))

/**
 * The settings of a lab comparison as `key=value` strings, later winning: the lab's base settings,
 * then the calibration file's (`config`: a path, 'none' for none, undefined for the project's when
 * it exists). The run's own fixed settings come from the trace header (resolveSettings).
 */
export function labComparisonSettings(config: string | undefined): {settings: string[]; config?: string} {
  const file = config === 'none' ? undefined : (config ?? (existsSync(PROJECT_CALIBRATION) ? PROJECT_CALIBRATION : undefined))
  if (file === undefined) return {settings: [...LAB_REPLAY_SETTINGS]}
  // Checked the way replay --config checks it (every key and value), then passed on as --set values
  // so that it overrides the lab's base settings (replay applies --config under every --set).
  loadConfigFile(file)
  const raw = JSON.parse(readFileSync(file, 'utf8').replace(/^\uFEFF/, '')) as Record<string, string | number | boolean>
  return {settings: [...LAB_REPLAY_SETTINGS, ...Object.entries(raw).map(([k, v]) => `${k}=${String(v)}`)], config: file}
}

export interface LabAnalysis {
  trace: string
  importSummary: {events: number; writes?: unknown; layoutFrom?: unknown}
  settings: string[]
  rows: ExpectRow[]
  text: string
}

const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

function runCliJson(args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NODE_ENV: 'production'}})
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`migtrace ${args.join(' ')}: exit ${code}: ${err.trim().split('\n').slice(-2).join(' | ')}`))
      else {
        try {
          resolve(JSON.parse(out) as Record<string, unknown>)
        } catch (e) {
          reject(new Error(`migtrace ${args[0]}: output is not JSON: ${(e as Error).message}`))
        }
      }
    })
  })
}

/**
 * A run that switched to postcopy: the destination's console (the dirtier's writes after the
 * switchover), its trace (the resume time and the observed faults: trace-dst.log.gz, or the kept
 * trace-dst.postcopy.log.gz) and its final query-migrate (postcopy-blocktime), for `import qemu`.
 * A destination console without dirtier lines (a guest that crashed) adds no writes. A precopy
 * multifd run: its destination trace (the first round's zero pages: the populated map).
 */
export function destinationFiles(dir: string): {dstConsole?: string; dstTrace?: string; dstStats?: string} {
  const summary = join(dir, 'summary.json')
  if (!existsSync(summary)) return {}
  const s = JSON.parse(readFileSync(summary, 'utf8')) as Record<string, unknown>
  if (s.postcopy_started_at_s === undefined || s.postcopy_started_at_s === null) {
    // A precopy multifd run: the destination's zero-page records give the first round's populated
    // map (src/import/qemu/dst-zero-pages.ts): the whole trace, or the one lab matrix keeps.
    if (!isMultifdRun(dir)) return {}
    const tr = DST_ZERO_TRACE_FILES.map((f) => join(dir, f)).find((f) => existsSync(f))
    return tr !== undefined ? {dstTrace: tr} : {}
  }
  const out: {dstConsole?: string; dstTrace?: string; dstStats?: string} = {}
  const con = join(dir, 'dst-console.log')
  if (existsSync(con) && readFileSync(con, 'utf8').includes('DIRTIER t=')) out.dstConsole = con
  const tr = ['trace-dst.log.gz', 'trace-dst.postcopy.log.gz'].map((f) => join(dir, f)).find((f) => existsSync(f))
  if (tr !== undefined) out.dstTrace = tr
  if (existsSync(join(dir, 'final-dst.json'))) out.dstStats = join(dir, 'final-dst.json')
  return out
}


/**
 * What `import qemu` reads of a lab run: its source trace, observation, config and console, the
 * destination's files after a postcopy switchover, and the recording when there is one (the
 * guest's real writes; `writes: 'recreated'` re-creates the dirtier's from its seed instead).
 */
export function labImportInputs(dir: string, opts: {writes?: 'recorded' | 'recreated'} = {}): {trace: string; stats: string; workload: string; console: string; recording?: string; dstConsole?: string; dstTrace?: string; dstStats?: string} {
  const need = (p: string | undefined, f: string): string => {
    if (p === undefined || !existsSync(p)) throw new UserError('the run directory lacks a file the analysis needs', {file: join(dir, f), expected: `${f} (a run captured with a trace preset, that reached the migration)`})
    return p
  }
  const trace = need(sourceTraceOf(dir), 'trace-src.log.gz')
  const stats = need(join(dir, 'observed.json'), 'observed.json')
  const workload = need(join(dir, 'config.json'), 'config.json')
  const consoleFile = existsSync(join(dir, 'src-console.log')) ? join(dir, 'src-console.log') : need(join(dir, 'src-serial.log'), 'src-console.log')
  const recording = opts.writes === 'recreated' ? undefined : recordingOf(dir)
  return {trace, stats, workload, console: consoleFile, ...(recording !== undefined ? {recording} : {}), ...destinationFiles(dir)}
}

export async function analyzeRun(dir: string, opts: {settings?: string[]; config?: string; driver?: 'qemu' | 'recorded'; writes?: 'recorded' | 'recreated'} = {}): Promise<LabAnalysis> {
  const trace = join(dir, 'trace.csv.gz')
  const base = labComparisonSettings(opts.config)
  const imp = await importQemuTrace({...labImportInputs(dir, {writes: opts.writes}), out: trace})
  // The run's capabilities (multifd, XBZRLE) and its QEMU version's rules, from config.json: the
  // trace header carries them and the replay applies them; listed here so the report shows them.
  const runSettings = (imp.header.source?.settings ?? []) as string[]
  // Later wins, in the order calibrate's predict() and `lab table --reanalyze` apply them: the lab's
  // base settings, the run's own, the calibration, then the user's --set.
  const cal = base.settings.slice(LAB_REPLAY_SETTINGS.length)
  const settings = [...LAB_REPLAY_SETTINGS, ...runSettings, ...cal, ...(opts.settings ?? [])]
  const doc = await runCliJson(['replay', trace, '--driver', opts.driver ?? 'qemu', ...settings.flatMap((s) => ['--set', s]), '--json'])
  writeFileSync(join(dir, 'replay.json'), `${JSON.stringify(doc, null, 2)}\n`)
  const rows = (doc.expect ?? []) as ExpectRow[]
  const text = renderExpectText(rows, `prediction vs QEMU (query-migrate), replay --set ${settings.join(' --set ')}`)
  writeFileSync(join(dir, 'expect.txt'), text)
  const w = imp.header.source?.workload as Record<string, unknown> | undefined
  const rec = imp.header.source?.recordedWrites as Record<string, unknown> | undefined
  return {trace, importSummary: {events: imp.events, writes: rec !== undefined ? {recorded: rec.emitted, recreated: rec.dirtierRecreated === true ? w?.writesEmitted : 0} : w?.writesEmitted, layoutFrom: imp.header.source?.layoutFrom}, settings, rows, text}
}
