/**
 * The event loop shared by both encodings: walk the file line by line over raw Buffer chunks
 * (no string per line unless the format needs one), hand each event line to a decoder, and yield
 * the batch whenever it is full. A bad row goes to `onError` (validate collects them) or is thrown.
 */
import {createBatch, resetBatch, DEFAULT_BATCH, type EventBatch} from '../events.js'
import {UserError} from '../../util/errors.js'
import {bomLength, readChunksReusing} from './input.js'

export interface ReadOptions {
  /**
   * Called with each bad event (the row is skipped). Return false to stop reading. Without it the
   * first bad event is thrown.
   */
  onError?: (err: UserError) => boolean | void
  /** Events per batch (default 65536). */
  batchSize?: number
  /**
   * Read on a worker thread, the consumer (replay's model) overlapping the decode (pipeline.ts):
   * true or false forces it; unset, the rule of `readOnThread` decides. Never with `onError` (a
   * callback cannot cross threads).
   */
  thread?: boolean
  /** The batches to fill, instead of one reused batch (the pipeline's ring of shared slots). */
  supply?: BatchSupply
}

/**
 * Batches for a reader to fill in turn. Every one has the capacity `batchSize` asks for.
 */
export interface BatchSupply {
  /** The first batch: as createBatch makes it (every column unset, length 0). */
  first(): EventBatch
  /**
   * The batch to fill after `yielded` was handed on: `yielded` itself, another one this pass
   * yielded before (as it was yielded: the reader resets it as it would its own), or a new one as
   * `first` makes it. The consumer of a batch only reads it.
   */
  next(yielded: EventBatch): EventBatch
}

/** The reader's first batch: the supply's, or its own. */
export function firstBatch(opts: ReadOptions): EventBatch {
  return opts.supply?.first() ?? createBatch(opts.batchSize ?? DEFAULT_BATCH)
}

/** Decodes the line buf[s..e) (no terminator) into the batch, or throws a UserError. */
export type LineDecoder = (b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean) => void

/**
 * A fast path over many lines: decodes whole lines from buf[s] on, one row each, numbered from
 * `line`, at most `room` of them, and stops at the first line it does not take; returns where it
 * stopped. `end` is just after the chunk's last newline (buf[end - 1] is a newline, s < end), so a
 * scanner may read byte after byte without a bounds check: the newline stops every digit loop and
 * fails every literal compare before the end (an out-of-bounds read would also deoptimise V8's
 * compiled loop). It never throws: a line with a problem is left to the LineDecoder.
 */
export type RunDecoder = (b: EventBatch, buf: Buffer, s: number, end: number, line: number, room: number) => number

export interface LineSource {
  path: string
  gzip: boolean
  /** Lines before the first event (header, column line). */
  skipLines: number
}

const NL = 10
const CR = 13
const HASH = 35

export async function* eventLines(src: LineSource, decode: LineDecoder, opts: ReadOptions, allowComments: boolean, run?: RunDecoder): AsyncGenerator<EventBatch> {
  let batch = firstBatch(opts)
  const capacity = batch.t.length
  const supply = opts.supply
  // After a full batch was handed on: the next one to fill, emptied.
  const refill = (): void => {
    if (supply !== undefined) batch = supply.next(batch)
    resetBatch(batch)
  }
  const onError = opts.onError
  let line = 0
  /** The start of a line that continues in the next chunk. */
  let leftover: Buffer | undefined
  /** Whole chunks inside that line, when it is longer than a chunk. */
  const longLine: Buffer[] = []
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
    for await (const chunk of readChunksReusing(src.path, src.gzip)) {
      let buf = chunk
      let pos = 0
      if (first) {
        if (leftover !== undefined) {
          buf = Buffer.concat([leftover, chunk])
          leftover = undefined
        }
        if (buf.length < 3) {
          // Too short to tell whether a BOM starts here: wait for more bytes.
          leftover = buf
          continue
        }
        pos = bomLength(buf)
        first = false
      } else if (leftover !== undefined) {
        // Only the line that straddles the two chunks is copied, not the whole chunk.
        const nl = chunk.indexOf(NL)
        if (nl < 0) {
          // A line longer than a chunk: collect the pieces, join them once.
          // The reader reuses its buffers: keep copies.
          if (longLine.length === 0) leftover = Buffer.from(leftover)
          longLine.push(Buffer.from(chunk))
          continue
        }
        const joined = Buffer.concat([leftover, ...longLine, chunk.subarray(0, nl)])
        leftover = undefined
        longLine.length = 0
        if (!one(joined, 0, joined.length, false)) return
        pos = nl + 1
        if (batch.length === capacity) {
          yield batch
          refill()
        }
      }
      // Just after the chunk's last newline: where the fast path must stop (RunDecoder).
      const runEnd = run === undefined ? 0 : buf.lastIndexOf(NL) + 1
      for (;;) {
        if (run !== undefined && line >= src.skipLines && pos < runEnd) {
          const before = batch.length
          pos = run(batch, buf, pos, runEnd, line + 1, capacity - before)
          line += batch.length - before
          if (batch.length === capacity) {
            yield batch
            refill()
            continue
          }
        }
        const nl = buf.indexOf(NL, pos)
        if (nl < 0) break
        if (!one(buf, pos, nl, false)) return
        pos = nl + 1
        if (batch.length === capacity) {
          yield batch
          refill()
        }
      }
      if (pos < buf.length) leftover = buf.subarray(pos)
    }
    if (longLine.length > 0) leftover = Buffer.concat([leftover!, ...longLine])
    if (leftover !== undefined && leftover.length > 0) {
      const s = first ? bomLength(leftover) : 0
      if (!one(leftover, s, leftover.length, true)) return
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
    if (supply === undefined) resetBatch(batch)
  }
}
