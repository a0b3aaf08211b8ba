/**
 * The lab's run matrix (lab/matrix.json): run each entry with `migtrace lab run`, then keep its
 * small results in the project (lab/runs/<name>/) so the table in docs/lab.md can be regenerated
 * and the model checked against them without QEMU. Big files (QEMU's whole trace logs, the imported
 * trace) stay in the work directory; what re-analysis needs is kept small (src/lab/keep.ts).
 */
import {spawn} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {UserError} from '../util/errors.js'
import {filterGzipLines, KEEP_TRACE_BYTES, keepRecording, thinDestinationZeroTrace, thinSourceTrace} from './keep.js'
import {DstLine, readRamLoadLoop, type RamLoadRecord} from '../import/qemu/dst-zero-pages.js'
import {isMultifdRun} from './run-files.js'

export interface MatrixRun {
  name: string
  what: string
  args: string[]
}

export interface MatrixSpec {
  common: string[]
  runs: MatrixRun[]
}

/** Files copied into lab/runs/<name>/ (all small: JSON, CSV, consoles, the comparison). */
export const KEPT_FILES = ['config.json', 'summary.json', 'observed.json', 'final-src.json', 'final-dst.json', 'passes.csv', 'timeline.jsonl', 'events.jsonl', 'src-console.log', 'dst-console.log', 'expect.txt', 'replay.json']


const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export function readMatrix(path: string): MatrixSpec {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new UserError('cannot read the lab matrix', {file: path, found: (e as Error).message})
  }
  const m = raw as Partial<MatrixSpec>
  if (!Array.isArray(m.runs) || !m.runs.every((r) => typeof r?.name === 'string' && Array.isArray(r.args)))
    throw new UserError('not a lab matrix', {file: path, field: 'runs', expected: 'a list of {name, what, args: [...]}'})
  return {common: Array.isArray(m.common) ? m.common : [], runs: m.runs as MatrixRun[]}
}

/** The common flags, less those the run sets itself (a run's own value wins), then the run's. */
export function mergeArgs(common: readonly string[], own: readonly string[]): string[] {
  const set = new Set(own.filter((a) => a.startsWith('--')))
  const out: string[] = []
  for (let i = 0; i < common.length; i++) {
    const flag = common[i]!
    const hasValue = i + 1 < common.length && !common[i + 1]!.startsWith('--')
    if (!set.has(flag)) out.push(flag, ...(hasValue ? [common[i + 1]!] : []))
    if (hasValue) i++
  }
  return [...out, ...own]
}

/** `migtrace lab run` for one entry, as a child process (its output passed through). Resolves with its exit code. */
export function runEntry(spec: MatrixSpec, run: MatrixRun, extra: string[], work: string | undefined, onLine: (l: string) => void): Promise<number> {
  const args = [CLI, 'lab', 'run', '--name', run.name, '--force', ...mergeArgs(spec.common, run.args), ...extra, ...(work ? ['--work', work] : [])]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NODE_ENV: 'production'}})
    let buf = ''
    const take = (d: string): void => {
      buf += d
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, nl))
        buf = buf.slice(nl + 1)
      }
    }
    child.stdout.setEncoding('utf8').on('data', take)
    child.stderr.setEncoding('utf8').on('data', take)
    child.on('error', reject)
    child.on('close', (code) => {
      if (buf !== '') onLine(buf)
      resolve(code ?? 1)
    })
  })
}

/**
 * Copy a run's small files from its run directory into `dest` (replacing what was there), with what
 * re-analysis needs (src/lab/keep.ts): the source trace (whole when small, else thinned) and the
 * recording of the guest's stores.
 */
export async function keepResults(runDir: string, dest: string): Promise<string[]> {
  // Nothing captured there (a --keep-only of a run never made here): keep what dest holds.
  if (!existsSync(runDir)) return []
  rmSync(dest, {recursive: true, force: true})
  mkdirSync(dest, {recursive: true})
  const kept: string[] = []
  for (const f of KEPT_FILES) {
    if (!existsSync(join(runDir, f))) continue
    copyFileSync(join(runDir, f), join(dest, f))
    kept.push(f)
  }
  const trace = join(runDir, 'trace-src.log.gz')
  if (existsSync(trace) && statSync(trace).size <= KEEP_TRACE_BYTES) {
    copyFileSync(trace, join(dest, 'trace-src.log.gz'))
    kept.push('trace-src.log.gz')
  } else if (existsSync(trace)) {
    await thinSourceTrace(trace, join(dest, 'trace-src.thin.log.gz'))
    kept.push('trace-src.thin.log.gz')
  }
  if ((await keepRecording(runDir, dest)) !== undefined) kept.push('recording.csv.gz')
  return kept
}

/**
 * For a precopy multifd run, the destination's trace without the `ram_load_loop` lines after the
 * first round (src/lab/keep.ts thinDestinationZeroTrace): its zero pages give the importer the
 * populated map. Written as trace-dst.zero.log.gz; returns its size, or -1 when the run is not a
 * precopy multifd run or has no destination trace.
 */
export async function keepMultifdDstTrace(runDir: string, dest: string): Promise<number> {
  const src = join(runDir, 'trace-dst.log.gz')
  const summary = join(runDir, 'summary.json')
  if (!existsSync(src) || !existsSync(summary) || !isMultifdRun(runDir)) return -1
  const s = JSON.parse(readFileSync(summary, 'utf8')) as Record<string, unknown>
  if (s.postcopy_started_at_s !== undefined && s.postcopy_started_at_s !== null) return -1
  return (await thinDestinationZeroTrace(src, join(dest, 'trace-dst.zero.log.gz'))).bytes
}

/**
 * For a postcopy run, the destination's trace without its precopy per-page loads (`ram_load_loop`,
 * one line per page record received, most of the file): what is left is the postcopy phase
 * (`ram_load_postcopy_loop`, `postcopy_place_page`), the faults and requests
 * (`postcopy_ram_fault_thread_request`, `postcopy_page_req_add`/`_del`) and the state changes:
 * the input a page-request model needs. Written as trace-dst.postcopy.log.gz; returns its size, or
 * -1 when the run is not postcopy or has no destination trace.
 */
export async function keepPostcopyDstTrace(runDir: string, dest: string): Promise<number> {
  const src = join(runDir, 'trace-dst.log.gz')
  const summary = join(runDir, 'summary.json')
  if (!existsSync(src) || !existsSync(summary)) return -1
  const s = JSON.parse(readFileSync(summary, 'utf8')) as Record<string, unknown>
  if (s.postcopy_started_at_s === undefined) return -1
  const rec: RamLoadRecord = {block: '', offset: 0, flags: 0}
  const kept = await filterGzipLines(src, join(dest, 'trace-dst.postcopy.log.gz'), (line, lineNo) => {
    try {
      return readRamLoadLoop(line, rec, src, lineNo) !== DstLine.RamLoad
    } catch {
      // A ram_load_loop line of a shape the reader does not know: dropped all the same.
      return false
    }
  })
  return kept.bytes
}
