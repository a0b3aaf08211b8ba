/**
 * Worker thread of the sweep runner: replays the group of items it is sent in one pass over the
 * trace and posts back the small per-item results (never the full ReplayResult). Runs from dist/ (compiled JS): worker
 * threads do not get the tsx loader.
 */
import {parentPort} from 'node:worker_threads'
import {UserError} from '../util/errors.js'
import {failedRun} from '../replay/index.js'
import {replayFileEach} from './replay-one.js'
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
        port.postMessage({progress: f} satisfies ReplyMessage)
      }
    : undefined
  replayFileEach({trace: job.trace, driver: job.driver, overrides: job.items.map((it) => it.overrides)}, onProgress).then(
    (rs) => port.postMessage({ok: true, results: rs.map((r, k) => itemResult(job.items[k]!.index, job.items[k]!.name, r, {series: job.series}))} satisfies ReplyMessage),
    (e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e))
      const index = job.items[failedRun(e) ?? 0]!.index
      const reply: ReplyMessage =
        err instanceof UserError
          ? {index, ok: false, message: err.message, userError: {reason: err.reason, details: {file: err.file, line: err.line, field: err.field, expected: err.expected, found: err.found}}}
          : {index, ok: false, message: err.message, stack: err.stack}
      port.postMessage(reply)
    },
  )
})
