/**
 * Runs the items of a sweep: inline (one at a time, in this thread) with jobs = 1, else on a pool of
 * worker threads (min(jobs, items)), each replaying one item at a time. Results come back keyed
 * by item number, so the output never depends on which worker finished first.
 */
import {existsSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {fileURLToPath} from 'node:url'
import {Worker} from 'node:worker_threads'
import {UserError} from '../util/errors.js'
import {replayFile} from './replay-one.js'
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
  if (jobs === 1) {
    for (const i of indices) {
      const item = run.items[i]!
      const r = await replayFile({trace: run.trace, overrides: item.overrides, driver: run.driver}, partly && ((f) => partly(i, f)))
      results.set(i, itemResult(i, item.name, r, {series: opts.series}))
      progress(i)
    }
    return results
  }
  const script = workerScript()
  if (!existsSync(script)) throw new Error(`the worker script ${script} is missing: run 'npm run build' (or use --jobs 1)`)
  const queue = [...indices]
  const workers: Worker[] = []
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false
      let active = 0
      const fail = (e: Error): void => {
        if (failed) return
        failed = true
        reject(e)
      }
      const feed = (w: Worker): void => {
        const i = queue.shift()
        if (i === undefined) {
          if (active === 0) resolve()
          return
        }
        active++
        const item = run.items[i]!
        w.postMessage({index: i, name: item.name, trace: run.trace, driver: run.driver, overrides: item.overrides, progress: partly !== undefined, series: opts.series} satisfies JobMessage)
      }
      for (let k = 0; k < jobs; k++) {
        const w = new Worker(script)
        workers.push(w)
        w.on('message', (m: ReplyMessage) => {
          if ('progress' in m) {
            partly?.(m.index, m.progress)
            return
          }
          active--
          if (!m.ok) {
            if (m.userError) fail(new UserError(m.userError.reason, m.userError.details))
            else fail(Object.assign(new Error(`replay of ${run.items[m.index]?.name ?? m.index} failed in a worker: ${m.message}`), {stack: m.stack}))
            return
          }
          results.set(m.index, m.result)
          progress(m.index)
          if (!failed) feed(w)
        })
        w.on('error', (e) => fail(e))
        w.on('exit', (code) => {
          if (code !== 0 && !failed && (queue.length > 0 || active > 0)) fail(new Error(`a replay worker exited with code ${code}`))
        })
      }
      for (const w of workers) feed(w)
    })
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
  return results
}
