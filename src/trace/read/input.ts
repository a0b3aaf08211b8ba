/**
 * The bytes of a trace file: existence and type checks with clear errors, transparent gunzip
 * (recognised by its magic bytes, whatever the name), and a line splitter for the few header
 * lines. Event decoding reads the chunks itself (see csv.ts / jsonl.ts).
 */
import {createReadStream, openSync, readSync, closeSync, statSync} from 'node:fs'
import {createGunzip} from 'node:zlib'
import {UserError} from '../../util/errors.js'
import {BlockingFile} from './file-reads.js'
import {noteTraceBytesRead} from './progress.js'

const CHUNK = 1 << 20

/** Check that `path` is a readable regular file; tell whether it is gzip-compressed. */
export function probeFile(path: string): {gzip: boolean; size: number} {
  let st
  try {
    st = statSync(path)
  } catch (e) {
    throw fsError(e, path)
  }
  if (st.isDirectory()) throw new UserError('is a directory, not a trace file', {file: path, expected: 'a .csv or .jsonl trace (optionally .gz)'})
  if (!st.isFile()) throw new UserError('not a regular file', {file: path, expected: 'a .csv or .jsonl trace (optionally .gz)'})
  const head = Buffer.alloc(2)
  let n = 0
  try {
    const fd = openSync(path, 'r')
    try {
      n = readSync(fd, head, 0, 2, 0)
    } finally {
      closeSync(fd)
    }
  } catch (e) {
    throw fsError(e, path)
  }
  return {gzip: n === 2 && head[0] === 0x1f && head[1] === 0x8b, size: st.size}
}

function fsError(e: unknown, path: string): UserError {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ENOENT') return new UserError('no such file', {file: path})
  if (code === 'EACCES' || code === 'EPERM') return new UserError('permission denied: cannot read the file', {file: path})
  if (code === 'EISDIR') return new UserError('is a directory, not a trace file', {file: path})
  return new UserError(`cannot read the file: ${(e as Error).message}`, {file: path})
}

/** The file's bytes, chunk by chunk, gunzipped when needed. Errors become UserErrors. */
export async function* readChunks(path: string, gzip: boolean): AsyncGenerator<Buffer> {
  const file = createReadStream(path, {highWaterMark: CHUNK})
  const stream = gzip ? file.pipe(createGunzip({chunkSize: CHUNK})) : file
  if (gzip) file.on('error', (e) => stream.destroy(e))
  try {
    for await (const chunk of stream) {
      noteTraceBytesRead(path, file.bytesRead)
      yield chunk as Buffer
    }
  } catch (e) {
    if (e instanceof UserError) throw e
    const code = (e as NodeJS.ErrnoException).code ?? ''
    if (gzip && code.startsWith('Z_')) throw new UserError(`gzip data is truncated or corrupt (${(e as Error).message})`, {file: path})
    throw fsError(e, path)
  } finally {
    file.destroy()
    stream.destroy()
  }
}

/**
 * The file's bytes chunk by chunk like `readChunks`, but a plain file is read into two buffers
 * used in turn, so a long read allocates nothing: a chunk stays valid only until the next one
 * after it is asked for. For the event readers, which copy what they keep.
 */
export async function* readChunksReusing(path: string, gzip: boolean): AsyncGenerator<Buffer> {
  if (gzip) {
    yield* readChunks(path, gzip)
    return
  }
  let file: BlockingFile
  try {
    file = new BlockingFile(path)
  } catch (e) {
    throw fsError(e, path)
  }
  const bufs = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)]
  let total = 0
  try {
    for (let k = 0; ; k ^= 1) {
      const buf = bufs[k]!
      let n
      try {
        n = await file.read(buf, 0, CHUNK, total)
      } catch (e) {
        throw fsError(e, path)
      }
      if (n === 0) return
      noteTraceBytesRead(path, (total += n))
      yield n === CHUNK ? buf : buf.subarray(0, n)
    }
  } finally {
    file.close()
  }
}

/** The first n bytes of the file (gunzipped when needed), fewer if it is shorter. */
export async function readHead(path: string, gzip: boolean, n: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let got = 0
  for await (const chunk of readChunks(path, gzip)) {
    parts.push(Buffer.from(chunk.subarray(0, n - got)))
    got += Math.min(chunk.length, n - got)
    if (got >= n) break
  }
  return Buffer.concat(parts)
}

/** UTF-8 byte order mark: accepted at the start of a file and skipped. */
export function bomLength(buf: Uint8Array): number {
  return buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0
}

export interface LeadingLines {
  /** The first lines (UTF-8, without terminators or a BOM). */
  lines: string[]
  /** Whether the file had any byte at all (after gunzip). */
  empty: boolean
}

/**
 * The first `count` lines of a file, without reading more than needed (a header is one line,
 * however long its JSON).
 */
export async function readLeadingLines(path: string, gzip: boolean, count: number): Promise<LeadingLines> {
  const lines: string[] = []
  const parts: Buffer[] = []
  let first = true
  let any = false
  for await (let chunk of readChunks(path, gzip)) {
    if (chunk.length > 0) any = true
    if (first) {
      chunk = chunk.subarray(bomLength(chunk))
      first = false
    }
    let pos = 0
    for (;;) {
      const nl = chunk.indexOf(10, pos)
      if (nl < 0) break
      parts.push(chunk.subarray(pos, nl))
      lines.push(stripCr(Buffer.concat(parts).toString('utf8')))
      parts.length = 0
      pos = nl + 1
      if (lines.length >= count) return {lines, empty: false}
    }
    parts.push(chunk.subarray(pos))
  }
  const rest = Buffer.concat(parts)
  if (rest.length > 0) lines.push(stripCr(rest.toString('utf8')))
  return {lines, empty: !any}
}

const stripCr = (s: string): string => (s.endsWith('\r') ? s.slice(0, -1) : s)
