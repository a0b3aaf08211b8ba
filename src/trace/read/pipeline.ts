/**
 * Reading a trace on a worker thread while the main thread consumes its events (replay's model):
 * the reader (any format, the same code as in-thread) fills a small ring of batches whose columns
 * live in SharedArrayBuffers; the worker announces each full batch with a short message (its slot,
 * length, params, bytes read), the main thread hands a slot back when its consumer asks for the
 * next batch. At most SLOTS batches exist, so memory is bounded and a reader ahead of its consumer
 * waits (backpressure). The worker script is pipeline-worker.ts.
 *
 * What the in-thread reader guarantees holds here too: the batches in file order, each as the
 * in-thread reader makes it (tests compare the two exactly); a bad event's UserError, with the
 * same file, line, field and text, thrown after the batches before it; no thread left behind when
 * the consumer stops early or fails (the generator's finally ends it) or is dropped unfinished (the
 * worker keeps the process alive only while the main thread waits for it).
 *
 * No Atomics: a slot has one owner at a time (the worker while it is in its `free` list; the main
 * thread from the slot's message to its hand-back), and postMessage orders the plain writes to the
 * slot before the message that hands it over (the port's queue is mutex-protected), both ways.
 *
 * Whether to read on a thread is `readOnThread`'s measured rule (docs/replay.md "Speed").
 */
import {statSync} from 'node:fs'
import {availableParallelism, loadavg} from 'node:os'
import {fileURLToPath} from 'node:url'
import {isMainThread, Worker} from 'node:worker_threads'
import {DEFAULT_BATCH, type EventBatch} from '../events.js'
import {UserError, type UserErrorDetails} from '../../util/errors.js'
import {noteTraceBytesRead} from './progress.js'
import type {TraceHeader} from '../header.js'
import type {ReadOptions} from './lines.js'
import type {PassSource} from './pass.js'

/** Batches in the ring: one the consumer holds, the others filled ahead by the reader. */
export const SLOTS = 4

/**
 * Reading cost per byte of file on disk, in ns of CPU (the readers' rates in docs/replay.md
 * "Speed": Arrow about 55 ns an event of 73 bytes, CSV about 80 ns for 40 bytes, JSON Lines about
 * 200 ns for 70); a byte of a gzipped file costs about twelve of its text (it holds four, and the
 * gunzip costs more than the decode: 26-31 ns a byte of the bench's CSV.gz, 2.6 of its CSV).
 */
const NS_PER_BYTE = {arrow: 0.75, csv: 2, jsonl: 3} as const
const GZIP_FACTOR = 12

/**
 * Smallest estimated read time, in ms, worth a thread: the worker's start (the thread, its module
 * loads, the first batch) is 40-130 ms of wall time before the consumer gets anything, and the
 * most a thread can save is the shorter of the read and the consumer's work.
 */
export const THREAD_MIN_MS = 150

/**
 * Fewest CPUs for a reading thread. V8's own background threads (concurrent marking, the
 * optimizing compiler) already take 0.4-0.6 CPU-s of a 10^7-event replay, mostly on the second
 * core: on a quiet 2-CPU machine a thread moved the main thread from 1.27-1.28 to 0.78-0.83 CPU-s
 * of a 10^7-event Arrow replay, but the wall time stayed the same (1.46-1.71 s against 1.55-1.77,
 * three fresh processes each, in turn) and the process took 20 % more CPU; the bench's
 * end-to-end rows were slower with it in every format (docs/replay.md "Speed"). From 4 CPUs the
 * reader and the model each find a core besides V8's threads.
 */
export const THREAD_MIN_CPUS = 4

/** Of the pass read on a thread last: full batches received that its consumer has not taken yet (tests; one pass at a time). */
export const threadPassStats = {waiting: 0}

/** Options the worker gets (structured-clone friendly). */
export interface ThreadJob {
  src: PassSource
  /** The header the main thread parsed and checked (the worker builds its layout from it). */
  header: TraceHeader
  batchSize: number
  slots: SharedArrayBuffer[]
}

/** What the worker posts. */
export type ThreadMessage =
  | {slot: number; length: number; params: [number, string][] | undefined; bytes: number}
  | {done: true}
  | {userError: {reason: string; details: UserErrorDetails}}
  | {bug: ThreadBug}

/**
 * A non-UserError from the worker as data: its message and stack, its class's name and its `code`
 * (Node's system and internal errors carry one: ENOENT, ERR_STRING_TOO_LONG), so that the main
 * thread rebuilds what base-command.ts tells apart (a RangeError of a failed allocation, a code).
 */
export interface ThreadBug {
  message: string
  stack?: string
  name?: string
  code?: string | number
}

/** The built-in error classes a bug crosses the thread as (any other is rebuilt as Error with its name). */
const ERROR_CLASSES: Record<string, new (message: string) => Error> = {Error, RangeError, TypeError, SyntaxError, ReferenceError, EvalError, URIError}

/** The worker's side: an error (not a UserError) as a ThreadBug. */
export function bugToThread(err: Error): ThreadBug {
  const code = (err as {code?: unknown}).code
  return {message: err.message, stack: err.stack, name: err.name, ...(typeof code === 'string' || typeof code === 'number' ? {code} : {})}
}

/** The main thread's side: the error rebuilt with the same built-in class, name, code and stack. */
export function bugFromThread(b: ThreadBug): Error {
  const name = b.name ?? 'Error'
  const Cls = Object.hasOwn(ERROR_CLASSES, name) ? ERROR_CLASSES[name]! : Error
  const err = new Cls(b.message)
  if (err.name !== name) Object.defineProperty(err, 'name', {value: name, writable: true, configurable: true})
  if (b.code !== undefined) Object.assign(err, {code: b.code})
  if (b.stack !== undefined) err.stack = b.stack
  return err
}

/**
 * Whether a pass reads on a worker thread. Never with an onError callback or a batch supply
 * (which cannot cross threads). Else forced by `opts.thread`, then by the environment variable
 * MIGTRACE_READ_THREAD (1 always, 0 never); else only on the main thread (a sweep's workers
 * already hold a core each), and as `threadPays` says.
 */
export function readOnThread(src: PassSource, opts: ReadOptions): boolean {
  if (opts.onError !== undefined || opts.supply !== undefined) return false
  if (opts.thread !== undefined) return opts.thread
  const env = process.env.MIGTRACE_READ_THREAD
  if (env === '1' || env === '0') return env === '1'
  if (!isMainThread) return false
  let size: number
  try {
    size = statSync(src.path).size
  } catch {
    return false
  }
  return threadPays(size, src, availableParallelism(), loadavg()[0]!)
}

/**
 * A thread pays when there is a CPU for it: THREAD_MIN_CPUS or more, and the last minute's load
 * average below their number (this pass's own thread is most of one: on a busy machine the two threads share
 * the same slice of CPU time, and the thread's extra work made a replay slower, docs/replay.md
 * "Speed"); and when the file's estimated read time is at least THREAD_MIN_MS.
 */
export function threadPays(bytes: number, src: {format: PassSource['format']; gzip: boolean}, cpus: number, load: number): boolean {
  if (cpus < THREAD_MIN_CPUS || load >= cpus) return false
  return (bytes * NS_PER_BYTE[src.format] * (src.gzip ? GZIP_FACTOR : 1)) / 1e6 >= THREAD_MIN_MS
}

/** Bytes of one slot of `capacity` events: 8 float64 columns, 3 int32, 2 uint8. */
export function slotBytes(capacity: number): number {
  return capacity * (8 * 8 + 3 * 4 + 2)
}

/**
 * An EventBatch whose columns are views of `buf` (slotBytes(capacity) bytes); `init` fills the
 * unset values as createBatch does (the worker's side; the main thread only reads).
 */
export function batchOn(buf: SharedArrayBuffer, capacity: number, init: boolean): EventBatch {
  let at = 0
  // Float64 columns first, then int32, then bytes: every view aligned. `none`: the unset value.
  const f64 = (none: number): Float64Array => {
    const a = new Float64Array(buf, at, capacity)
    at += 8 * capacity
    if (init && none !== 0) a.fill(none)
    return a
  }
  const i32 = (): Int32Array => {
    const a = new Int32Array(buf, at, capacity)
    at += 4 * capacity
    if (init) a.fill(-1)
    return a
  }
  const u8 = (): Uint8Array => {
    const a = new Uint8Array(buf, at, capacity)
    at += capacity
    return a
  }
  const t = f64(0)
  const gpa = f64(-1)
  const iova = f64(-1)
  const len = f64(-1)
  const page = f64(-1)
  const count = f64(-1)
  const value = f64(-1)
  const line = f64(0)
  const vcpu = i32()
  const dev = i32()
  const slot = i32()
  const kind = u8()
  const op = u8()
  return {length: 0, t, kind, vcpu, dev, slot, gpa, iova, len, page, count, value, op, params: new Map(), line}
}

/**
 * The worker script and its loader: from dist/ the compiled module beside this one; from src/
 * (tests and bin/dev under tsx) the .ts module with the tsx loader, so that the thread runs the
 * same source as the in-thread reader, whether dist/ is built or not.
 */
function workerScript(): {script: string; eval: boolean} {
  const here = import.meta.url
  if (!here.endsWith('.ts')) return {script: fileURLToPath(new URL('./pipeline-worker.js', here)), eval: false}
  // A worker's entry module does not go through hooks given in execArgv (Node 20): register tsx's
  // in the thread, then import the .ts module.
  const url = new URL('./pipeline-worker.ts', here).href
  const tsx = import.meta.resolve('tsx/esm/api')
  return {script: `import(${JSON.stringify(tsx)}).then(({register}) => { register(); return import(${JSON.stringify(url)}) })`, eval: true}
}

/** One pass over the events of a trace, read on a worker thread. */
export async function* threadEvents(src: PassSource, header: TraceHeader, opts: ReadOptions): AsyncGenerator<EventBatch> {
  const capacity = opts.batchSize ?? DEFAULT_BATCH
  const slots = Array.from({length: SLOTS}, () => new SharedArrayBuffer(slotBytes(capacity)))
  const batches = slots.map((s) => batchOn(s, capacity, false))
  const job: ThreadJob = {src, header, batchSize: capacity, slots}
  const w = workerScript()
  const worker = new Worker(w.script, {workerData: job, eval: w.eval})
  const inbox: ThreadMessage[] = []
  let failure: Error | undefined
  let exited = false
  let wake: (() => void) | undefined
  let waiting = 0
  worker.on('message', (m: ThreadMessage) => {
    inbox.push(m)
    if ('slot' in m) threadPassStats.waiting = ++waiting
    wake?.()
  })
  worker.on('error', (e) => {
    failure ??= e
    wake?.()
  })
  worker.on('exit', () => {
    exited = true
    wake?.()
  })
  // Alive only while this pass waits for it: a consumer that drops the pass unfinished (never
  // calling return) leaves a parked worker that does not hold the process open.
  worker.unref()
  /** The slot the consumer holds, handed back when it asks for the next batch. */
  let held = -1
  try {
    for (;;) {
      if (held >= 0) {
        worker.postMessage(held)
        held = -1
      }
      while (inbox.length === 0 && failure === undefined && !exited) {
        worker.ref()
        await new Promise<void>((resolve) => (wake = resolve))
        wake = undefined
        worker.unref()
      }
      const m = inbox.shift()
      if (m === undefined) throw failure ?? new Error('bug: the trace reader thread stopped without a word')
      if ('slot' in m) {
        threadPassStats.waiting = --waiting
        const b = batches[m.slot]!
        b.length = m.length
        b.params.clear()
        if (m.params !== undefined) for (const [i, p] of m.params) b.params.set(i, p)
        noteTraceBytesRead(src.path, m.bytes)
        held = m.slot
        yield b
      } else if ('done' in m) {
        return
      } else if ('userError' in m) {
        throw new UserError(m.userError.reason, m.userError.details)
      } else {
        throw bugFromThread(m.bug)
      }
    }
  } finally {
    await worker.terminate()
  }
}
