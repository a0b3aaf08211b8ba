/**
 * Streaming trace writer. Output goes to a temporary file beside the target, renamed into place only
 * when the whole trace was written: a failed or interrupted run leaves no half-written trace.
 * The format follows the file name: `.csv` or `.jsonl`, either with `.gz` for gzip.
 */
import {createWriteStream, renameSync, rmSync, type WriteStream} from 'node:fs'
import {createGzip, type Gzip} from 'node:zlib'
import {once} from 'node:events'
import type {EventBatch} from '../events.js'
import type {TraceHeader} from '../header.js'
import {serializeHeader} from '../header.js'
import {UserError} from '../../util/errors.js'
import {CSV_COLUMNS_LINE, CsvBatchEncoder, jsonlLine} from './encode.js'

export type TraceFormat = 'csv' | 'jsonl'

export interface FormatInfo {
  format: TraceFormat
  gzip: boolean
}

/** Format from a file name: x.csv, x.jsonl (also .ndjson), optionally followed by .gz. */
export function formatFromPath(path: string): FormatInfo | undefined {
  const lower = path.toLowerCase()
  const gzip = lower.endsWith('.gz')
  const base = gzip ? lower.slice(0, -3) : lower
  if (base.endsWith('.csv')) return {format: 'csv', gzip}
  if (base.endsWith('.jsonl') || base.endsWith('.ndjson')) return {format: 'jsonl', gzip}
  return undefined
}

/** The first line(s) of a trace file: the header, then (CSV) the column names. */
export function headerText(header: TraceHeader, format: TraceFormat): string {
  const json = JSON.stringify(serializeHeader(header))
  return format === 'csv' ? `# ${json}\n${CSV_COLUMNS_LINE}\n` : `${json}\n`
}

const FLUSH_AT = 1 << 20
const CSV_CHUNK_SLACK = 1 << 16

export class TraceWriter {
  private readonly tmp: string
  private readonly file: WriteStream
  private readonly gz?: Gzip
  private readonly sink: NodeJS.WritableStream
  private buf = ''
  private closed = false
  private failure?: Error
  readonly format: TraceFormat
  private readonly csv?: CsvBatchEncoder
  private chunk?: Buffer
  private chunkPos = 0
  eventsWritten = 0

  private constructor(
    readonly path: string,
    info: FormatInfo,
    private readonly devNames: readonly string[],
  ) {
    this.format = info.format
    if (info.format === 'csv') this.csv = new CsvBatchEncoder(devNames)
    this.tmp = `${path}.tmp-${process.pid}-${Date.now()}`
    this.file = createWriteStream(this.tmp)
    this.file.on('error', (e) => (this.failure = e))
    if (info.gzip) {
      this.gz = createGzip({level: 6})
      this.gz.on('error', (e) => (this.failure = e))
      this.gz.pipe(this.file)
      this.sink = this.gz
    } else {
      this.sink = this.file
    }
  }

  /** Open a writer for `path` (format from its name unless given) and write the header. */
  static async open(path: string, header: TraceHeader, devNames: readonly string[], format?: FormatInfo): Promise<TraceWriter> {
    const info = format ?? formatFromPath(path)
    if (!info) throw new UserError('cannot tell the trace format from the file name', {file: path, expected: 'a name ending in .csv, .jsonl, .csv.gz or .jsonl.gz'})
    const w = new TraceWriter(path, info, devNames)
    await w.write(headerText(header, info.format))
    return w
  }

  private async write(text: string | Buffer): Promise<void> {
    if (this.failure) throw this.failure
    if (!this.sink.write(text)) await once(this.sink as NodeJS.EventEmitter, 'drain')
  }

  /** Append every event of a batch. */
  async writeBatch(b: EventBatch): Promise<void> {
    if (this.csv) return this.writeCsvBatch(b, this.csv)
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
      // Each chunk is handed to the stream as it is, so a fresh one is taken after every flush.
      this.chunk ??= Buffer.allocUnsafe(FLUSH_AT + CSV_CHUNK_SLACK)
      const [next, pos] = enc.encode(b, i, this.chunk, this.chunkPos)
      if (next === i && pos === this.chunkPos && this.chunkPos === 0) {
        // A single line longer than a whole chunk (huge params): encode it on its own.
        const big = Buffer.allocUnsafe(CSV_CHUNK_SLACK + (b.params.get(i)?.length ?? 0) + enc.maxDevLen + 256)
        const [, n] = enc.encode(b, i, big, 0)
        await this.write(big.subarray(0, n))
        i++
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
    const out = this.chunk.subarray(0, this.chunkPos)
    this.chunk = undefined
    this.chunkPos = 0
    await this.write(out)
  }

  /** Finish the file and move it into place. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await this.flushChunk()
      if (this.buf.length > 0) await this.write(this.buf)
      this.buf = ''
      const done = once(this.file, 'close')
      this.sink.end()
      await done
      if (this.failure) throw this.failure
      renameSync(this.tmp, this.path)
    } catch (e) {
      rmSync(this.tmp, {force: true})
      throw e
    }
  }

  /** Drop the output: nothing is left at the target path. */
  async abort(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.file.destroy()
    this.gz?.destroy()
    rmSync(this.tmp, {force: true})
  }
}
