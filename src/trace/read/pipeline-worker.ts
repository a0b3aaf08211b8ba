/**
 * The worker thread of a pass read on a thread (pipeline.ts): opens the trace, runs its reader
 * with the ring of shared slots as its batch supply, and posts each full batch's slot; waits for a
 * slot to come back when all are out. Errors go back as data: a UserError's parts (the main
 * thread builds the same error from them), anything else as a bug with its stack, class name and
 * code (bugToThread; the main thread rebuilds it with bugFromThread). Runs from dist/ (compiled
 * JS), or as .ts under tsx (tests, bin/dev: pipeline.ts workerScript registers tsx in the thread).
 */
import {parentPort, workerData} from 'node:worker_threads'
import type {EventBatch} from '../events.js'
import {UserError} from '../../util/errors.js'
import {TraceLayout} from '../layout.js'
import {inThreadPass} from './pass.js'
import {batchOn, bugToThread, type ThreadJob, type ThreadMessage} from './pipeline.js'
import {onTraceBytesRead} from './progress.js'

if (!parentPort) throw new Error('bug: trace/read/pipeline-worker.js must run in a worker thread')
const port = parentPort
const job = workerData as ThreadJob

const batches = job.slots.map((s) => batchOn(s, job.batchSize, true))
const slotOf = new Map<EventBatch, number>(batches.map((b, i) => [b, i]))
/** Slots this side may fill (the main thread holds or has not yet read the others). */
const free: number[] = batches.map((_, i) => i)
let wake: (() => void) | undefined
port.on('message', (slot: number) => {
  free.push(slot)
  wake?.()
})
let bytes = 0
onTraceBytesRead((_path, n) => {
  bytes = n
})

const take = (): EventBatch => {
  const k = free.shift()
  if (k === undefined) throw new Error('bug: the reader asked for a batch while every slot is out')
  return batches[k]!
}

async function main(): Promise<void> {
  const events = inThreadPass(job.src, new TraceLayout(job.header), {batchSize: job.batchSize, supply: {first: take, next: take}})
  for await (const b of events) {
    const params = b.params.size > 0 ? [...b.params] : undefined
    port.postMessage({slot: slotOf.get(b)!, length: b.length, params, bytes} satisfies ThreadMessage)
    while (free.length === 0) await new Promise<void>((resolve) => (wake = resolve))
    wake = undefined
  }
  port.postMessage({done: true} satisfies ThreadMessage)
}

main().catch((e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e))
  const reply: ThreadMessage =
    err instanceof UserError
      ? {userError: {reason: err.reason, details: {file: err.file, line: err.line, field: err.field, expected: err.expected, found: err.found}}}
      : {bug: bugToThread(err)}
  port.postMessage(reply)
})
