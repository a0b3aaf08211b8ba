/**
 * One pass over a trace's events from what opening it found (format, where the events start):
 * on this thread through the format's reader, or on a worker thread (pipeline.ts) by the rule of
 * `readOnThread`. The worker runs `inThreadPass` itself with the same source and header, so both
 * paths are the same readers; this module and the readers load neither zod nor flechette's table
 * code, which keeps the worker's start short.
 */
import type {EventBatch} from '../events.js'
import type {TraceLayout} from '../layout.js'
import {arrowEvents} from '../arrow/read.js'
import {RowDecoder} from './decode.js'
import {csvEvents} from './csv.js'
import {jsonlEvents} from './jsonl.js'
import type {ReadOptions} from './lines.js'
import {readOnThread, threadEvents} from './pipeline.js'

/** Where a trace's events are and how they are encoded (structured-clone friendly). */
export interface PassSource {
  path: string
  gzip: boolean
  format: 'csv' | 'jsonl' | 'arrow'
  /** Text formats: lines before the first event (header, column line). */
  skipLines: number
  /** Arrow: a file (with footer) or a stream. */
  arrowKind?: 'file' | 'stream'
}

export function tracePass(src: PassSource, layout: TraceLayout, opts: ReadOptions): AsyncIterable<EventBatch> {
  return readOnThread(src, opts) ? threadEvents(src, layout.header, opts) : inThreadPass(src, layout, opts)
}

export function inThreadPass(src: PassSource, layout: TraceLayout, opts: ReadOptions): AsyncIterable<EventBatch> {
  const decoder = new RowDecoder(layout, src.path)
  if (src.format === 'arrow') return arrowEvents({path: src.path, gzip: src.gzip, kind: src.arrowKind ?? 'file'}, layout, decoder, opts)
  return src.format === 'csv' ? csvEvents(src, decoder, opts) : jsonlEvents(src, decoder, opts)
}
