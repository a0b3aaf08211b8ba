/**
 * Reading an Arrow IPC file or stream message by message, with bounded memory: the reader needs a
 * message's length, type and body length before it can hand the message to flechette, so this
 * file reads those few fields of the flatbuffer metadata itself (Message.fbs, File.fbs of the
 * Arrow format). Everything else is decoded by flechette.
 */
import {open} from 'node:fs/promises'
import {UserError} from '../../util/errors.js'
import {readChunks} from '../read/input.js'
import {BlockingFile} from '../read/file-reads.js'
import {noteTraceBytesRead} from '../read/progress.js'
import {ARROW_FILE_MAGIC} from './constants.js'

/** MessageHeader values (Message.fbs). */
export const MSG_SCHEMA = 1
export const MSG_DICTIONARY = 2
export const MSG_RECORD_BATCH = 3

/** What the first bytes of a file say: an Arrow IPC file, an Arrow IPC stream, or neither. */
export function arrowKind(head: Uint8Array): 'file' | 'stream' | undefined {
  if (head.length >= 6 && ARROW_FILE_MAGIC.every((c, i) => head[i] === c)) return 'file'
  if (head.length >= 8 && head[0] === 255 && head[1] === 255 && head[2] === 255 && head[3] === 255) return 'stream'
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Flatbuffer reading: just what framing needs (tables, scalars, strings, vectors of tables).

const u16 = (b: Uint8Array, p: number): number => b[p]! | (b[p + 1]! << 8)
const i32 = (b: Uint8Array, p: number): number => b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)
const u32 = (b: Uint8Array, p: number): number => i32(b, p) >>> 0

/** Position of field k of the table at t, or 0 when absent. */
export function fieldAt(b: Uint8Array, t: number, k: number): number {
  const vt = t - i32(b, t)
  const o = 4 + 2 * k
  if (vt < 0 || vt + 4 > b.length || o >= u16(b, vt)) return 0
  const off = u16(b, vt + o)
  return off === 0 ? 0 : t + off
}

/** The table an offset field at p points to. */
export const deref = (b: Uint8Array, p: number): number => p + u32(b, p)

function int64At(b: Uint8Array, p: number): number {
  return u32(b, p) + i32(b, p + 4) * 4294967296
}

function stringAt(b: Uint8Array, p: number): string {
  const s = deref(b, p)
  return Buffer.from(b.buffer, b.byteOffset + s + 4, u32(b, s)).toString('utf8')
}

/** A Message flatbuffer: its header type, body length, and (dictionaries) id and delta flag. */
export function messageInfo(meta: Uint8Array): {type: number; bodyLength: number; dictId: number; isDelta: boolean} {
  if (meta.length < 8) throw new RangeError('message metadata too short')
  const root = deref(meta, 0)
  const pType = fieldAt(meta, root, 1)
  const pHeader = fieldAt(meta, root, 2)
  const pBody = fieldAt(meta, root, 3)
  const type = pType === 0 ? 0 : meta[pType]!
  const bodyLength = pBody === 0 ? 0 : int64At(meta, pBody)
  let dictId = -1
  let isDelta = false
  if (type === MSG_DICTIONARY && pHeader !== 0) {
    const h = deref(meta, pHeader)
    const pId = fieldAt(meta, h, 0)
    const pDelta = fieldAt(meta, h, 2)
    dictId = pId === 0 ? 0 : int64At(meta, pId)
    isDelta = pDelta !== 0 && meta[pDelta] !== 0
  }
  if (!(bodyLength >= 0 && Number.isSafeInteger(bodyLength))) throw new RangeError(`bad body length ${bodyLength}`)
  return {type, bodyLength, dictId, isDelta}
}

/** The custom metadata of a File footer flatbuffer (key -> value). */
export function footerMetadata(footer: Uint8Array): Map<string, string> {
  const out = new Map<string, string>()
  const root = deref(footer, 0)
  const p = fieldAt(footer, root, 4)
  if (p === 0) return out
  const vec = deref(footer, p)
  const n = u32(footer, vec)
  for (let k = 0; k < n; k++) {
    const kv = deref(footer, vec + 4 + 4 * k)
    const pk = fieldAt(footer, kv, 0)
    const pv = fieldAt(footer, kv, 1)
    if (pk !== 0) out.set(stringAt(footer, pk), pv === 0 ? '' : stringAt(footer, pv))
  }
  return out
}

/** The footer flatbuffer of an Arrow file (plain, not gzipped), or undefined when there is none. */
export async function readFooter(path: string): Promise<Uint8Array | undefined> {
  const fh = await open(path, 'r')
  try {
    const {size} = await fh.stat()
    if (size < 8 + 10) return undefined
    const tail = Buffer.alloc(10)
    await fh.read(tail, 0, 10, size - 10)
    if (!ARROW_FILE_MAGIC.every((c, i) => tail[4 + i] === c)) return undefined
    const len = tail.readInt32LE(0)
    if (len <= 0 || len > size - 18) return undefined
    const footer = Buffer.alloc(len)
    await fh.read(footer, 0, len, size - 10 - len)
    return footer
  } catch {
    return undefined
  } finally {
    await fh.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Sequential bytes from a plain or gzipped file.

interface ByteSource {
  /** Fill dst[at, at+n) from the next bytes; returns how many there were (fewer only at the end). */
  read(dst: Uint8Array, at: number, n: number): Promise<number>
  /** A plain file's position and positional read, so unwanted bytes need not be read (gzip: absent). */
  readonly seekable?: {
    position(): number
    size(): number
    skip(n: number): void
    readAt(dst: Uint8Array, at: number, n: number, pos: number): Promise<number>
  }
  close(): Promise<void>
}

async function plainSource(path: string): Promise<ByteSource> {
  const file = new BlockingFile(path)
  let pos = 0
  const readAt = (dst: Uint8Array, at: number, n: number, from: number): Promise<number> => file.read(dst, at, n, from)
  return {
    async read(dst, at, n) {
      const got = await readAt(dst, at, n, pos)
      pos += got
      if (n >= 4096) noteTraceBytesRead(path, pos)
      return got
    },
    seekable: {
      position: () => pos,
      size: () => file.size,
      skip(n) {
        pos += n
        noteTraceBytesRead(path, pos)
      },
      readAt,
    },
    close: async () => file.close(),
  }
}

function gzipSource(path: string): ByteSource {
  const it = readChunks(path, true)
  let chunk: Buffer | undefined
  let off = 0
  return {
    async read(dst, at, n) {
      let got = 0
      while (got < n) {
        if (chunk === undefined || off >= chunk.length) {
          const r = await it.next()
          if (r.done) break
          chunk = r.value
          off = 0
        }
        const k = Math.min(n - got, chunk.length - off)
        dst.set(chunk.subarray(off, off + k), at + got)
        off += k
        got += k
      }
      return got
    },
    async close() {
      await it.return(undefined)
    },
  }
}

export interface IpcMessage {
  type: number
  /** The whole message as an IPC stream holds it (marker, length, metadata, body), body 8-byte aligned. */
  bytes: Uint8Array
  bodyLength: number
  dictId: number
  isDelta: boolean
  /**
   * Reads the parts of the body the reader's `bodyRanges` left out (until then they hold stale
   * bytes); does nothing when the whole body was read. Only before the next `next()`.
   */
  complete(): Promise<void>
}

/** A byte range of a message body. */
export interface BodyRange {
  offset: number
  length: number
}

/**
 * Which parts of a record batch's body to read, given the message's bytes with its metadata in
 * place (the body not yet read): sorted, non-overlapping ranges, or undefined for all of it.
 */
export type BodyRanges = (message: Uint8Array) => readonly BodyRange[] | undefined

const WHOLE = async (): Promise<void> => {}

/**
 * The messages of an Arrow IPC file or stream, in order, until the end-of-stream marker. The bytes
 * of a record batch are valid until the next call; copy schema and dictionary messages to keep them.
 */
export class IpcMessageReader {
  private buf = new Uint8Array(1 << 16)
  /** Bytes consumed so far (for messages about a truncated file). */
  private offset = 0
  /** Calls of next() so far. */
  private messages = 0

  private constructor(
    private readonly src: ByteSource,
    private readonly path: string,
    readonly kind: 'file' | 'stream',
    private readonly bodyRanges: BodyRanges | undefined,
  ) {}

  /**
   * `bodyRanges`: of a record batch in a plain (not gzipped) file, read only these parts of the
   * body. A trace's columns that no event of a batch sets (most of them: a guest write uses 5 of
   * 13) are still whole buffers in the file, more than half its bytes; not reading them halves
   * the time a replay waits for the file (npm run bench -- trace-io).
   */
  static async open(path: string, gzip: boolean, kind: 'file' | 'stream', opts: {bodyRanges?: BodyRanges} = {}): Promise<IpcMessageReader> {
    const src = gzip ? gzipSource(path) : await plainSource(path)
    const r = new IpcMessageReader(src, path, kind, opts.bodyRanges)
    if (kind === 'file') {
      // "ARROW1" and two bytes of padding, then the stream.
      const head = new Uint8Array(8)
      if ((await src.read(head, 0, 8)) < 8) throw r.truncated()
      r.offset = 8
    }
    return r
  }

  async close(): Promise<void> {
    await this.src.close()
  }

  private truncated(): UserError {
    return new UserError(`the Arrow ${this.kind} is truncated (it ends inside a message, at byte ${this.offset})`, {file: this.path, expected: 'a complete Arrow IPC file'})
  }

  private bad(reason: string): UserError {
    return new UserError(`not a valid Arrow IPC ${this.kind}: ${reason}`, {file: this.path, expected: 'an Arrow IPC file as migtrace or pyarrow writes it'})
  }

  /** The next message, or undefined at the end of the stream. */
  async next(): Promise<IpcMessage | undefined> {
    this.messages++
    const prefix = new Uint8Array(8)
    const got = await this.src.read(prefix, 0, 4)
    if (got === 0) {
      // A stream may end without its end-of-stream marker; a file may not (its footer follows).
      if (this.kind === 'file') throw this.truncated()
      return undefined
    }
    if (got < 4) throw this.truncated()
    let metaLength = i32(prefix, 0)
    let prefixLength = 4
    if (metaLength === -1) {
      if ((await this.src.read(prefix, 4, 4)) < 4) throw this.truncated()
      metaLength = i32(prefix, 4)
      prefixLength = 8
    }
    this.offset += prefixLength
    if (metaLength === 0) return undefined
    if (metaLength < 0) throw this.bad(`negative metadata length at byte ${this.offset - 4}`)
    // Laid out as [marker][length][metadata, padded to 8][body] so flechette's views of the body are aligned.
    const padded = (metaLength + 7) & ~7
    const head = 8 + padded
    this.ensure(head)
    if ((await this.src.read(this.buf, 8, metaLength)) < metaLength) throw this.truncated()
    this.offset += metaLength
    this.buf.fill(0, 8 + metaLength, head)
    let info
    try {
      info = messageInfo(this.buf.subarray(8, 8 + metaLength))
    } catch (e) {
      throw this.bad(`unreadable message metadata at byte ${this.offset - metaLength} (${(e as Error).message})`)
    }
    this.ensure(head + info.bodyLength)
    const view = new DataView(this.buf.buffer, this.buf.byteOffset)
    view.setInt32(0, -1, true)
    view.setInt32(4, padded, true)
    const bytes = this.buf.subarray(0, head + info.bodyLength)
    const seek = this.src.seekable
    const ranges = seek !== undefined && this.bodyRanges !== undefined && info.type === MSG_RECORD_BATCH ? this.bodyRanges(bytes) : undefined
    let complete = WHOLE
    if (ranges === undefined || seek === undefined) {
      if ((await this.src.read(this.buf, head, info.bodyLength)) < info.bodyLength) throw this.truncated()
    } else complete = await this.readRanges(seek, head, info.bodyLength, ranges)
    this.offset += info.bodyLength
    return {...info, bytes, complete}
  }

  /** The wanted ranges of a body at `head` in the buffer; returns what reads the rest. */
  private async readRanges(seek: NonNullable<ByteSource['seekable']>, head: number, bodyLength: number, ranges: readonly BodyRange[]): Promise<() => Promise<void>> {
    const start = seek.position()
    // The body must be all there: a truncated file is told as such, whatever is read of it.
    const size = seek.size() - start
    if (size < bodyLength) {
      this.offset += Math.max(0, size)
      throw this.truncated()
    }
    const buf = this.buf
    let at = 0
    const gaps: BodyRange[] = []
    for (const r of ranges) {
      if (r.offset < at || r.offset + r.length > bodyLength) throw new Error(`bug: body ranges out of order or past the body (${r.offset}+${r.length})`)
      if (r.offset > at) gaps.push({offset: at, length: r.offset - at})
      if ((await seek.readAt(buf, head + r.offset, r.length, start + r.offset)) < r.length) throw this.truncated()
      at = r.offset + r.length
    }
    if (at < bodyLength) gaps.push({offset: at, length: bodyLength - at})
    seek.skip(bodyLength)
    if (gaps.length === 0) return WHOLE
    const message = this.messages
    return async () => {
      // The buffer is this message's until the next call of next(): it still holds the body.
      if (this.messages !== message) throw new Error('bug: complete() after next()')
      for (const g of gaps) if ((await seek.readAt(buf, head + g.offset, g.length, start + g.offset)) < g.length) throw this.truncated()
      gaps.length = 0
    }
  }

  private ensure(n: number): void {
    if (n <= this.buf.length) return
    // Keeps what was read (the metadata of the message being read).
    const bigger = new Uint8Array(Math.max(n, 2 * this.buf.length))
    bigger.set(this.buf)
    this.buf = bigger
  }
}
