/**
 * Opening a trace: find and validate its header (inline, a sidecar JSON for CSV, the schema
 * metadata of an Arrow file), derive the layout, and offer a streaming pass over its events. This is the one entry point every consumer
 * (validate, inspect, convert, replay, importers' tests) reads traces through.
 */
import {closeSync, existsSync, openSync, readSync, statSync} from 'node:fs'
import type {EventBatch, KindName} from '../events.js'
import {CSV_COLUMNS_LINE} from '../write/encode.js'
import {formatFromPath, type TraceFormat} from '../write/writer.js'
import {parseHeader, type TraceHeader} from '../header.js'
import {TraceLayout} from '../layout.js'
import {UserError, showValue} from '../../util/errors.js'
import {parseJsonText, readJsonFile} from '../../util/json-file.js'
import {probeFile, readHead, readLeadingLines} from './input.js'
import {textContainsKind} from './kind-scan.js'
import {arrowKind} from '../arrow/ipc.js'
import {arrowContainsKind, readArrowHeader} from '../arrow/open.js'
import type {ReadOptions} from './lines.js'
import {tracePass} from './pass.js'

export type {ReadOptions} from './lines.js'

export interface OpenTrace {
  path: string
  format: TraceFormat
  gzip: boolean
  header: TraceHeader
  layout: TraceLayout
  /** Where the header was read from: the trace itself, or its sidecar JSON file. */
  headerFile: string
  /** Device ids by index (`EventBatch.dev` values), as TraceWriter wants them. */
  deviceIds: string[]
  /** Line number of the first event line (for messages about an empty trace); 1 in Arrow (rows). */
  firstEventLine: number
  /**
   * One streaming pass over the events, batch by batch, in file order. Each call starts a new
   * pass. A batch is reused for the next one: copy what you need before asking for more, and do
   * not write to it. A large trace is read on a worker thread ahead of its consumer (pipeline.ts),
   * with the same batches and errors.
   */
  events(opts?: ReadOptions): AsyncIterable<EventBatch>
  /**
   * Whether an event of this kind is in the trace, found without decoding the events: a byte
   * search in a text trace, the footer's kind counts (or the kind column alone) in an Arrow trace.
   */
  containsKind(kind: KindName): Promise<boolean>
}

const HEADER_EXPECT = "a first line '# {\"format\":\"migtrace\",\"version\":1,...}' or a sidecar <trace>.json"

/** Candidate sidecar files for a CSV trace: x.csv.gz.json, x.csv.json, x.json. */
export function sidecarCandidates(path: string): string[] {
  const out = [`${path}.json`]
  const noGz = path.replace(/\.gz$/i, '')
  if (noGz !== path) out.push(`${noGz}.json`)
  const noCsv = noGz.replace(/\.csv$/i, '')
  if (noCsv !== noGz) out.push(`${noCsv}.json`)
  return out
}

function parseJsonHeader(text: string, file: string, line: number | undefined): TraceHeader {
  const obj = parseJsonText(text, {file, line, oneLine: line !== undefined, what: 'the header', expected: 'one JSON object'})
  return parseHeaderObject(obj, file, line)
}

function parseHeaderObject(obj: unknown, file: string, line: number | undefined): TraceHeader {
  if (typeof obj === 'object' && obj !== null && !Array.isArray(obj) && 't_ns' in obj && !('format' in obj))
    throw new UserError('header missing: the first line is an event', {file, line, expected: '{"format":"migtrace","version":1,...} on the first line'})
  return parseHeader(obj, file, line)
}

/** A UTF-16 byte order mark (Windows editors, PowerShell's '>'): say so, rather than show its bytes as a bad header. */
function refuseUtf16(path: string): void {
  const head = Buffer.alloc(2)
  let n = 0
  try {
    const fd = openSync(path, 'r')
    try {
      n = readSync(fd, head, 0, 2, 0)
    } finally {
      closeSync(fd)
    }
  } catch {
    return
  }
  if (n === 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)))
    throw new UserError('UTF-16 text: a trace is UTF-8', {file: path, expected: 'UTF-8 (convert with: iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8)'})
}

function sniffFormat(first: string, path: string): 'csv' | 'jsonl' {
  if (first.startsWith('#') || first.startsWith('t_ns,')) return 'csv'
  if (first.startsWith('{')) return 'jsonl'
  throw new UserError('cannot tell the trace format', {file: path, line: 1, expected: 'a name ending in .csv or .jsonl (optionally .gz), an Arrow file, or a migtrace header', found: showValue(first)})
}

/** Open a trace file: header checked (zod), layout built; events are read on demand. */
export async function openTrace(path: string, opts: ReadOptions = {}): Promise<OpenTrace> {
  const {gzip} = probeFile(path)
  // Arrow is recognised by its magic bytes, whatever the name (like gzip).
  const arrow = arrowKind(await readHead(path, gzip, 8))
  if (arrow !== undefined) return openArrowTrace(path, gzip, arrow, opts)
  if (!gzip) refuseUtf16(path)
  const lead = await readLeadingLines(path, gzip, 2)
  const first = lead.lines[0]
  if (lead.empty || first === undefined) throw new UserError('empty file: a trace starts with its header', {file: path, expected: HEADER_EXPECT})
  const named = formatFromPath(path)?.format
  const format = named === 'csv' || named === 'jsonl' ? named : sniffFormat(first, path)

  let header: TraceHeader
  let headerFile = path
  let skipLines: number
  if (format === 'jsonl') {
    if (first.trim() === '') throw new UserError('header missing: the first line is empty', {file: path, line: 1, expected: 'the header object {"format":"migtrace","version":1,...}'})
    header = parseJsonHeader(first, path, 1)
    skipLines = 1
  } else if (first.startsWith('#') && first.slice(1).trimStart().startsWith('{')) {
    header = parseJsonHeader(first.slice(1), path, 1)
    const cols = lead.lines[1]
    if (cols !== CSV_COLUMNS_LINE)
      throw new UserError(cols === undefined ? 'the column line is missing' : 'unexpected column line', {file: path, line: 2, expected: CSV_COLUMNS_LINE, found: cols === undefined ? 'the end of the file' : showValue(cols)})
    skipLines = 2
  } else if (first === CSV_COLUMNS_LINE) {
    const sidecar = sidecarCandidates(path).find((p) => existsSync(p) && statSync(p).isFile())
    if (sidecar === undefined) throw new UserError('header missing: no header line and no sidecar file', {file: path, line: 1, expected: `${HEADER_EXPECT} (looked for ${sidecarCandidates(path).join(', ')})`})
    headerFile = sidecar
    header = parseHeaderObject(readJsonFile(sidecar, {what: 'the sidecar header', expected: 'one JSON object'}), sidecar, undefined)
    skipLines = 1
  } else {
    throw new UserError('header missing', {file: path, line: 1, expected: HEADER_EXPECT, found: showValue(first)})
  }

  const layout = new TraceLayout(header)
  const deviceIds = layout.devices.map((d) => d.id)
  const src = {path, gzip, skipLines}
  return {
    path,
    format,
    gzip,
    header,
    layout,
    headerFile,
    deviceIds,
    firstEventLine: skipLines + 1,
    events(passOpts?: ReadOptions): AsyncIterable<EventBatch> {
      return tracePass({...src, format}, layout, {...opts, ...passOpts})
    },
    containsKind: (kind) => textContainsKind({path, gzip, format, skipLines}, kind),
  }
}

async function openArrowTrace(path: string, gzip: boolean, kind: 'file' | 'stream', opts: ReadOptions): Promise<OpenTrace> {
  const src = {path, gzip, kind}
  const header = await readArrowHeader(src)
  const layout = new TraceLayout(header)
  return {
    path,
    format: 'arrow',
    gzip,
    header,
    layout,
    headerFile: path,
    deviceIds: layout.devices.map((d) => d.id),
    firstEventLine: 1,
    events: (passOpts?: ReadOptions): AsyncIterable<EventBatch> => tracePass({path, gzip, format: 'arrow', skipLines: 0, arrowKind: kind}, layout, {...opts, ...passOpts}),
    containsKind: (k) => arrowContainsKind(src, k),
  }
}
