/**
 * Worker thread of the sweep runner: replays the jobs it is sent, one at a time, and posts back
 * the small per-item result (never the full ReplayResult). Runs from dist/ (compiled JS): worker
 * threads do not get the tsx loader.
 */
import {parentPort} from 'node:worker_threads'
import {UserError} from '../util/errors.js'
import {replayFile} from './replay-one.js'
import {itemResult} from './sweep.js'
import type {JobMessage, ReplyMessage} from './worker-protocol.js'

if (!parentPort) throw new Error('bug: compare/worker.js must run in a worker thread')
const port = parentPort

port.on('message', (job: JobMessage) => {
  // progress: the share of the trace read, posted at most every 1 %
  let posted = 0
  const onProgress = job.progress
    ? (f: number): void => {
        if (f - posted < 0.01) return
        posted = f
        port.postMessage({index: job.index, progress: f} satisfies ReplyMessage)
      }
    : undefined
  replayFile({trace: job.trace, overrides: job.overrides, driver: job.driver}, onProgress).then(
    (r) => port.postMessage({index: job.index, ok: true, result: itemResult(job.index, job.name, r, {series: job.series})} satisfies ReplyMessage),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e))
      const reply: ReplyMessage =
        err instanceof UserError
          ? {index: job.index, ok: false, message: err.message, userError: {reason: err.reason, details: {file: err.file, line: err.line, field: err.field, expected: err.expected, found: err.found}}}
          : {index: job.index, ok: false, message: err.message, stack: err.stack}
      port.postMessage(reply)
    },
  )
})
