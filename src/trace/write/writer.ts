/**
 * Streaming trace writer. Output goes to a temporary file beside the target (src/io/atomic-output.ts),
 * renamed into place only when the whole trace was written: a failed or interrupted run, or a full
 * disk, leaves no half-written trace. The format follows the file name: `.csv` or `.jsonl`, either
 * with `.gz` for gzip, or `.arrow` (an Arrow IPC file, see ../arrow/schema.ts).
 */
import {createReadStream, createWriteStream, writevSync, type WriteStream} from 'node:fs'
import {finished, pipeline} from 'node:stream/promises'
import {createGzip, gzipSync, type Gzip} from 'node:zlib'
import {AtomicOutput} from '../../io/atomic-output.js'
import {checkOutputFile} from '../../io/output-path.js'
import type {EventBatch} from '../events.js'
import type {TraceHeader} from '../header.js'
import {serializeHeader} from '../header.js'
import {UserError} from '../../util/errors.js'
import {CSV_COLUMNS_LINE, CsvBatchEncoder, jsonlLine} from './encode.js'
import {ArrowTraceEncoder} from '../arrow/write.js'

export type TraceFormat = 'csv' | 'jsonl' | 'arrow'

export interface FormatInfo {
  format: TraceFormat
  gzip: boolean
}

/** Format from a file name: x.csv, x.jsonl (also .ndjson), x.arrow, optionally followed by .gz. */
export function formatFromPath(path: string): FormatInfo | undefined {
  const lower = path.toLowerCase()
  const gzip = lower.endsWith('.gz')
  const base = gzip ? lower.slice(0, -3) : lower
  if (base.endsWith('.csv')) return {format: 'csv', gzip}
  if (base.endsWith('.jsonl') || base.endsWith('.ndjson')) return {format: 'jsonl', gzip}
  if (base.endsWith('.arrow')) return {format: 'arrow', gzip}
  return undefined
}

/** What an output name must end in, for messages. */
export const OUTPUT_NAMES = 'a name ending in .csv, .jsonl, .csv.gz, .jsonl.gz or .arrow'

/** The header as one line of JSON (a CSV trace's first line after '# ', an Arrow trace's schema metadata). */
export function headerJson(header: TraceHeader): string {
  return JSON.stringify(serializeHeader(header))
}

/** The first line(s) of a text trace file: the header, then (CSV) the column names. */
export function headerText(header: TraceHeader, format: TraceFormat): string {
  const json = headerJson(header)
  return format === 'csv' ? `# ${json}\n${CSV_COLUMNS_LINE}\n` : `${json}\n`
}

/** Linux's IOV_MAX: the most buffers one writev takes. */
const IOV_MAX = 1024

/** Write every byte of `chunks`, in order, at the descriptor's position (writev may write less than asked). */
export function writeAllSync(fd: number, chunks: readonly Uint8Array[]): void {
  let k = 0
  let skip = 0 // bytes of chunks[k] already written
  while (k < chunks.length) {
    const group: Uint8Array[] = []
    for (let j = k; j < chunks.length && group.length < IOV_MAX; j++) group.push(j === k ? chunks[j]!.subarray(skip) : chunks[j]!)
    let n = writevSync(fd, group)
    if (n === 0 && group.some((c) => c.byteLength > 0)) throw new Error('writev wrote nothing')
    while (k < chunks.length && n >= chunks[k]!.byteLength - skip) {
      n -= chunks[k]!.byteLength - skip
      skip = 0
      k++
    }
    if (k < chunks.length) skip += n
  }
}

const FLUSH_AT = 1 << 20
const CSV_CHUNK_SLACK = 1 << 16

export class TraceWriter {
  private readonly out = new AtomicOutput('the trace')
  private readonly eventsFile: string
  private readonly file: WriteStream
  private readonly gz?: Gzip
  private readonly sink: NodeJS.WritableStream
  private buf = ''
  private closed = false
  private failure?: Error
  /** Writes waiting for 'drain': a stream error must end the wait (a full disk never drains). */
  private waiting: ((e: Error) => void)[] = []
  readonly format: TraceFormat
  private readonly csv?: CsvBatchEncoder
  private chunk?: Buffer
  private chunkPos = 0
  /**
   * CSV chunks the stream has finished with, for reuse: a fresh 1 MiB buffer per flush costs its
   * first touch of every page (page faults, ~a third of the encoding time on a VM).
   */
  private readonly spareChunks: Buffer[] = []
  private readonly arrow?: ArrowTraceEncoder
  eventsWritten = 0

  private constructor(
    readonly path: string,
    private readonly info: FormatInfo,
    private readonly devNames: readonly string[],
    /** The header is written by close(), in front of the events (see open's `headerAtClose`). */
    private readonly headerAtClose = false,
    gzipLevel = 6,
  ) {
    this.format = info.format
    if (info.format === 'csv') this.csv = new CsvBatchEncoder(devNames)
    if (info.format === 'arrow') this.arrow = new ArrowTraceEncoder((chunks) => this.writeOwned(chunks), devNames)
    // With the header at close, the events go to a scratch file first (see open).
    try {
      this.eventsFile = headerAtClose ? this.out.scratchFor(path) : this.out.tempFor(path)
      this.file = this.out.streamTo(this.eventsFile, path)
    } catch (e) {
      this.out.abort()
      throw e
    }
    this.file.on('error', (e) => this.fail(e))
    if (info.gzip) {
      this.gz = createGzip({level: gzipLevel})
      this.gz.on('error', (e) => this.fail(e))
      this.gz.pipe(this.file)
      this.sink = this.gz
    } else {
      this.sink = this.file
    }
  }

  /**
   * Open a writer for `path` (format from its name unless given) and write the header.
   * `headerAtClose`: a streaming producer that learns parts of its header only at the end (a
   * recording's totals) gives the final header to close(); the events go to the temporary file
   * first and the header is put in front of them then (gzip: as a gzip member of its own, which
   * every gunzip reads as one stream), without re-encoding the events.
   * `gzipLevel` (default 6): a producer that must keep up with a live source (a recording) trades
   * size for speed with 1.
   */
  static async open(path: string, header: TraceHeader, devNames: readonly string[], format?: FormatInfo, opts: {headerAtClose?: boolean; gzipLevel?: number} = {}): Promise<TraceWriter> {
    const info = format ?? formatFromPath(path)
    if (!info) throw new UserError('cannot tell the trace format from the file name', {file: path, expected: OUTPUT_NAMES})
    // Arrow has its own compression scheme, and other tools cannot open a gzipped Arrow file.
    if (info.format === 'arrow' && info.gzip) throw new UserError('an Arrow trace is not gzipped', {file: path, expected: 'a name ending in .arrow, without --gzip'})
    // Before any work: a directory, a device or a read-only place is refused in one line now,
    // not after the whole trace was generated.
    checkOutputFile(path, {what: 'the trace'})
    const w = new TraceWriter(path, info, devNames, opts.headerAtClose === true, opts.gzipLevel ?? 6)
    try {
      if (!w.headerAtClose) {
        if (w.arrow) await w.arrow.start(headerJson(header))
        else await w.write(headerText(header, info.format))
      }
    } catch (e) {
      await w.abort()
      throw e
    }
    return w
  }

  private fail(e: Error): void {
    this.failure ??= e
    for (const wake of this.waiting.splice(0)) wake(e)
  }

  private async write(text: string | Buffer, done?: () => void): Promise<void> {
    if (this.failure) throw this.out.failure(this.failure, this.path)
    if (done ? this.sink.write(text, (err) => err || done()) : this.sink.write(text)) return
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => {
        this.sink.removeListener('drain', onDrain)
        reject(this.out.failure(e, this.path))
      }
      const onDrain = (): void => {
        this.waiting = this.waiting.filter((w) => w !== onError)
        resolve()
      }
      this.sink.once('drain', onDrain)
      this.waiting.push(onError)
    })
  }

  /**
   * Write chunks that are still someone's working memory: resolves once the stream has passed the
   * last of them to the file (so their buffers may be reused), not merely accepted them.
   */
  private writeOwned(chunks: Uint8Array[]): Promise<void> {
    // Arrow (never gzipped: open refuses it) goes to the file's descriptor right away, from this
    // thread: a record batch's buffers were just filled and are still in this core's cache, so the
    // kernel copies them into the page cache at cache speed. Through the stream the copy ran later
    // on a libuv thread, from buffers (two staging sets of ~5 MB) long evicted, at memory speed:
    // 0.4-0.8 CPU-s of system time per 10^7 events (730 MB) against 0.2-0.5 (docs/replay.md "Speed").
    // A write into the page cache does not wait for the disk (unless the dirty limit is reached).
    // Only this path writes to the stream, so nothing queued in it can be overtaken.
    if (this.arrow && !this.gz) {
      try {
        if (this.failure) throw this.failure
        // The stream was given the descriptor (AtomicOutput.streamTo) and keeps it as `fd`, which
        // @types/node's WriteStream does not declare.
        writeAllSync((this.file as unknown as {fd: number}).fd, chunks)
        return Promise.resolve()
      } catch (e) {
        return Promise.reject(this.out.failure(e, this.path))
      }
    }
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.out.failure(this.failure, this.path))
      if (chunks.length === 0) return resolve()
      const onError = (e: Error): void => reject(this.out.failure(e, this.path))
      this.waiting.push(onError)
      for (let k = 0; k < chunks.length - 1; k++) this.sink.write(chunks[k]!)
      this.sink.write(chunks[chunks.length - 1]!, (err?: Error | null) => {
        this.waiting = this.waiting.filter((w) => w !== onError)
        if (err || this.failure) onError(err ?? this.failure!)
        else resolve()
      })
    })
  }

  /** Append every event of a batch. */
  async writeBatch(b: EventBatch): Promise<void> {
    if (this.csv) return this.writeCsvBatch(b, this.csv)
    if (this.arrow) {
      await this.arrow.write(b)
      this.eventsWritten += b.length
      return
    }
    const names = this.devNames
    let s = this.buf
    for (let i = 0; i < b.length; i++) {
      s += jsonlLine(b, i, names)
      if (s.length >= FLUSH_AT) {
        await this.write(s)
        s = ''
      }
    }
    this.buf = s
    this.eventsWritten += b.length
  }

  private async writeCsvBatch(b: EventBatch, enc: CsvBatchEncoder): Promise<void> {
    let i = 0
    while (i < b.length) {
      // Each chunk is handed to the stream as it is, so another is taken after every flush: one the
      // stream has finished with (its write callback ran), or a new one.
      this.chunk ??= this.spareChunks.pop() ?? Buffer.allocUnsafe(FLUSH_AT + CSV_CHUNK_SLACK)
      const [next, pos] = enc.encode(b, i, this.chunk, this.chunkPos)
      if (next === i && pos === this.chunkPos && this.chunkPos === 0) {
        // A single line longer than a whole chunk (huge params): encode it on its own.
        // (The lines after it that fit go along: continue after the last one encoded.)
        const big = Buffer.allocUnsafe(CSV_CHUNK_SLACK + (b.params.get(i)?.length ?? 0) + enc.maxDevLen + 256)
        const [after, n] = enc.encode(b, i, big, 0)
        await this.write(big.subarray(0, n))
        i = after
        continue
      }
      i = next
      this.chunkPos = pos
      if (i < b.length || this.chunkPos >= FLUSH_AT) await this.flushChunk()
    }
    this.eventsWritten += b.length
  }

  private async flushChunk(): Promise<void> {
    if (!this.chunk || this.chunkPos === 0) return
    const full = this.chunk
    const out = full.subarray(0, this.chunkPos)
    this.chunk = undefined
    this.chunkPos = 0
    await this.write(out, () => this.spareChunks.push(full))
  }

  /** Finish the file and move it into place (`header`: the final header of a `headerAtClose` writer). */
  async close(header?: TraceHeader): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.headerAtClose !== (header !== undefined)) throw new Error('bug: close(header) goes with open(..., {headerAtClose: true})')
    try {
      await this.flushChunk()
      if (this.buf.length > 0) await this.write(this.buf)
      this.buf = ''
      // Arrow: the file's start goes in front like a text header; the footer needs its length.
      const arrowPrefix = this.arrow && header !== undefined ? this.arrow.prefix(headerJson(header)) : undefined
      if (this.arrow) await this.arrow.finish()
      if (this.failure) throw this.failure
      this.sink.end()
      // Settles when the file is flushed and closed, or at its first error (ENOSPC at the end).
      await finished(this.file)
      if (this.failure) throw this.failure
      if (header !== undefined) {
        // The header in front of the events, in the target's own temp file; the events' file is scratch.
        const text = arrowPrefix ?? Buffer.from(headerText(header, this.info.format))
        this.out.writeFile(this.path, this.info.gzip ? gzipSync(text, {level: 9}) : text)
        await pipeline(createReadStream(this.eventsFile), createWriteStream(this.out.tempFor(this.path), {flags: 'a'}))
      }
      this.out.commit()
    } catch (e) {
      this.file.destroy()
      this.gz?.destroy()
      this.out.abort()
      throw this.out.failure(e, this.path)
    }
  }

  /**
   * Remove the temporary files now, synchronously: for a process 'exit' handler (Ctrl-C while a
   * long producer runs), where abort() could not finish.
   */
  removeTempSync(): void {
    this.out.abort()
  }

  /** Drop the output: nothing is left at the target path. */
  async abort(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.file.destroy()
    this.gz?.destroy()
    this.out.abort()
  }
}
