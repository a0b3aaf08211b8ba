/**
 * The event loop shared by both encodings: walk the file line by line over raw Buffer chunks
 * (no string per line unless the format needs one), hand each event line to a decoder, and yield
 * the batch whenever it is full. A bad row goes to `onError` (validate collects them) or is thrown.
 */
import {createBatch, resetBatch, DEFAULT_BATCH, type EventBatch} from '../events.js'
import {UserError} from '../../util/errors.js'
import {bomLength, readChunks} from './input.js'

export interface ReadOptions {
  /**
   * Called with each bad event (the row is skipped). Return false to stop reading. Without it the
   * first bad event is thrown.
   */
  onError?: (err: UserError) => boolean | void
  /** Events per batch (default 65536). */
  batchSize?: number
}

/** Decodes the line buf[s..e) (no terminator) into the batch, or throws a UserError. */
export type LineDecoder = (b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean) => void

export interface LineSource {
  path: string
  gzip: boolean
  /** Lines before the first event (header, column line). */
  skipLines: number
}

const NL = 10
const CR = 13
const HASH = 35

export async function* eventLines(src: LineSource, decode: LineDecoder, opts: ReadOptions, allowComments: boolean): AsyncGenerator<EventBatch> {
  const batch = createBatch(opts.batchSize ?? DEFAULT_BATCH)
  const capacity = batch.t.length
  const onError = opts.onError
  let line = 0
  let leftover: Buffer | undefined
  let first = true
  // Returns false when reading must stop.
  const report = (e: unknown): boolean => {
    if (!(e instanceof UserError) || onError === undefined) throw e
    return onError(e) !== false
  }
  // Synchronous on purpose: an await per line would cost a microtask per event.
  const one = (buf: Buffer, s: number, e: number, unterminated: boolean): boolean => {
    line++
    if (line <= src.skipLines) return true
    if (e > s && buf[e - 1] === CR) e--
    if (e === s || (allowComments && buf[s] === HASH)) return true
    try {
      decode(batch, buf, s, e, line, unterminated)
    } catch (err) {
      return report(err)
    }
    return true
  }
  try {
    for await (const chunk of readChunks(src.path, src.gzip)) {
      let buf = chunk
      if (leftover !== undefined) {
        buf = Buffer.concat([leftover, chunk])
        leftover = undefined
      }
      let pos = 0
      if (first) {
        pos = bomLength(buf)
        if (buf.length < 3 && buf.length > 0) {
          // Too short to tell whether a BOM starts here: wait for more bytes.
          leftover = buf
          continue
        }
        first = false
      }
      for (;;) {
        const nl = buf.indexOf(NL, pos)
        if (nl < 0) break
        if (!(one(buf, pos, nl, false))) return
        pos = nl + 1
        if (batch.length === capacity) {
          yield batch
          resetBatch(batch)
        }
      }
      if (pos < buf.length) leftover = buf.subarray(pos)
    }
    if (leftover !== undefined && leftover.length > 0) {
      const s = first ? bomLength(leftover) : 0
      if (!(one(leftover, s, leftover.length, true))) return
    }
  } catch (e) {
    // Stream errors (corrupt gzip, unreadable file) carry no line yet: add where we stopped.
    if (e instanceof UserError && e.line === undefined && e.file === src.path) {
      report(new UserError(e.reason, {file: e.file, line: line + 1, field: e.field, expected: e.expected, found: e.found}))
      return
    }
    throw e
  }
  if (batch.length > 0) {
    yield batch
    resetBatch(batch)
  }
}
