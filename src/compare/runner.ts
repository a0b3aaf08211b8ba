/**
 * Runs the items of a sweep: inline with jobs = 1, all items in one pass over the trace (each batch
 * decoded once and fed to every item's model), else on min(jobs, items) worker threads, each
 * taking a share of the items (round robin) in one pass of its own. Results come back keyed by
 * item number, so the output never depends on which worker finished first.
 */
import {existsSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'
import {UserError} from '../util/errors.js'
import type {RawOverrides} from '../replay/config.js'
import {replayFileEach} from './replay-one.js'
import {itemResult, type ItemResult, type SweepRun} from './sweep.js'
import type {JobMessage, ReplyMessage} from './worker-protocol.js'

export interface RunOptions {
  /** Worker threads; 1 runs inline. Default: the number of CPUs. */
  jobs?: number
  /**
   * Called as items progress with (items done, items to do); `done` is fractional, counting each
   * running item by the share of its trace read so far.
   */
  onProgress?: (done: number, total: number) => void
  /** Keep each run's iterations in its result (compare --html). */
  series?: boolean
}

export function defaultJobs(): number {
  return Math.max(1, availableParallelism())
}

/**
 * The compiled worker script. From dist/ it sits beside this module; from src/ (tests under tsx)
 * it is the built copy in dist/, since a worker thread cannot load .ts.
 */
export function workerScript(): string {
  const here = import.meta.url
  const url = here.endsWith('.ts') ? new URL('../../dist/compare/worker.js', here) : new URL('./worker.js', here)
  return fileURLToPath(url)
}

export async function runSweep(run: SweepRun, indices: readonly number[], opts: RunOptions = {}): Promise<Map<number, ItemResult>> {
  const jobs = Math.max(1, Math.min(opts.jobs ?? defaultJobs(), indices.length))
  const results = new Map<number, ItemResult>()
  let done = 0
  const running = new Map<number, number>()
  const report = (): void => {
    let partial = 0
    for (const f of running.values()) partial += f
    opts.onProgress?.(done + partial, indices.length)
  }
  const progress = (i: number): void => {
    running.delete(i)
    done++
    report()
  }
  const partly = opts.onProgress
    ? (i: number, f: number): void => {
        running.set(i, f)
        report()
      }
    : undefined
  const overrides = (is: readonly number[]): RawOverrides[] => is.map((i) => run.items[i]!.overrides)
  if (jobs === 1) {
    // Every item in one pass over the trace: one decode, a model run per item.
    const rs = await replayFileEach({trace: run.trace, driver: run.driver, overrides: overrides(indices)}, partly && ((f) => indices.forEach((i) => partly(i, f))))
    indices.forEach((i, k) => {
      results.set(i, itemResult(i, run.items[i]!.name, rs[k]!, {series: opts.series}))
      progress(i)
    })
    return results
  }
  const script = workerScript()
  if (!existsSync(script)) throw new Error(`the worker script ${script} is missing: run 'npm run build' (or use --jobs 1)`)
  // One group of items per worker (round robin, so slow and fast grid cells spread): each worker
  // decodes the trace once for its group.
  const groups: number[][] = Array.from({length: jobs}, () => [])
  indices.forEach((i, k) => groups[k % jobs]!.push(i))
  const workers: Worker[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false
      let active = groups.length
      const fail = (e: Error): void => {
        if (failed) return
        failed = true
        reject(e)
      }
      groups.forEach((group) => {
        const w = new Worker(script)
        workers.push(w)
        w.on('message', (m: ReplyMessage) => {
          if ('progress' in m) {
            for (const i of group) partly?.(i, m.progress)
            return
          }
          active--
          if (!m.ok) {
            if (m.userError) fail(new UserError(m.userError.reason, m.userError.details))
            else fail(Object.assign(new Error(`replay of ${run.items[m.index]?.name ?? m.index} failed in a worker: ${m.message}`), {stack: m.stack}))
            return
          }
          for (const r of m.results) {
            results.set(r.index, r)
            progress(r.index)
          }
          if (active === 0) resolve()
        })
        w.on('error', (e) => fail(e))
        w.on('exit', (code) => {
          if (code !== 0 && !failed && active > 0) fail(new Error(`a replay worker exited with code ${code}`))
        })
        const items = group.map((i) => ({index: i, name: run.items[i]!.name, overrides: run.items[i]!.overrides}))
        w.postMessage({items, trace: run.trace, driver: run.driver, progress: partly !== undefined, series: opts.series} satisfies JobMessage)
      })
    })
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
  return results
}
