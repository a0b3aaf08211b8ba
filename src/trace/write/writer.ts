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
import {CSV_COLUMNS_LINE, csvLine, jsonlLine} from './encode.js'

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

export class TraceWriter {
  private readonly tmp: string
  private readonly file: WriteStream
  private readonly gz?: Gzip
  private readonly sink: NodeJS.WritableStream
  private buf = ''
  private closed = false
  private failure?: Error
  readonly format: TraceFormat
  private readonly line: (b: EventBatch, i: number, devNames: readonly string[]) => string
  eventsWritten = 0

  private constructor(
    readonly path: string,
    info: FormatInfo,
    private readonly devNames: readonly string[],
  ) {
    this.format = info.format
    this.line = info.format === 'csv' ? csvLine : jsonlLine
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

  private async write(text: string): Promise<void> {
    if (this.failure) throw this.failure
    if (!this.sink.write(text)) await once(this.sink as NodeJS.EventEmitter, 'drain')
  }

  /** Append every event of a batch. */
  async writeBatch(b: EventBatch): Promise<void> {
    const line = this.line
    const names = this.devNames
    let s = this.buf
    for (let i = 0; i < b.length; i++) {
      s += line(b, i, names)
      if (s.length >= FLUSH_AT) {
        await this.write(s)
        s = ''
      }
    }
    this.buf = s
    this.eventsWritten += b.length
  }

  /** Finish the file and move it into place. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
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
