/**
 * Line streaming of a text file that may be gzip-compressed (detected by its magic bytes, not its
 * name). zstd is refused with a clear message: Node 20 has no zstd decoder (zlib gained one in 22.15).
 */
import {createReadStream, openSync, readSync, closeSync, statSync} from 'node:fs'
import {createGunzip} from 'node:zlib'
import {createInterface} from 'node:readline'
import {UserError} from '../../util/errors.js'
import {fileErrorReason} from '../../util/fs-errors.js'

/** Bytes read up front: the compression magic, and (uncompressed) a first look for binary data. */
const PROBE_BYTES = 1 << 16
const LOG_EXPECT = 'a QEMU trace log (-trace ... -D FILE), optionally gzip-compressed'

function magic(path: string): Buffer {
  let fd: number | undefined
  try {
    const st = statSync(path)
    if (st.isDirectory()) throw new UserError('is a directory, not a QEMU trace log', {file: path, expected: LOG_EXPECT})
    // The log is read more than once (a scan, then the events): a pipe or a device cannot be.
    if (!st.isFile()) throw new UserError('not a regular file', {file: path, expected: `${LOG_EXPECT}, as a file (the log is read twice)`})
    fd = openSync(path, 'r')
    const b = Buffer.alloc(PROBE_BYTES)
    const n = readSync(fd, b, 0, PROBE_BYTES, 0)
    return b.subarray(0, n)
  } catch (e) {
    if (e instanceof UserError) throw e
    throw new UserError(`cannot read the log: ${fileErrorReason(e)}`, {file: path})
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Lines checked for NUL bytes: a text log never has one, nearly every binary file has one early. */
const BINARY_CHECK_LINES = 1000

/** Lines of a file (gzip transparently), without their newline. */
export async function* readLines(path: string): AsyncGenerator<string> {
  const m = magic(path)
  if (m.length >= 4 && m[0] === 0x28 && m[1] === 0xb5 && m[2] === 0x2f && m[3] === 0xfd)
    throw new UserError('zstd-compressed input is not supported on Node 20', {file: path, expected: 'a plain or gzip file (zstd -dc FILE | gzip > FILE.gz)'})
  const gzip = m.length >= 2 && m[0] === 0x1f && m[1] === 0x8b
  // Before readline would hold a whole line-less binary file in memory as one line.
  const nul = gzip ? -1 : m.indexOf(0)
  if (nul >= 0) throw new UserError('binary data, not a text log', {file: path, line: countLines(m, nul), expected: LOG_EXPECT})
  const raw = createReadStream(path)
  const input = gzip ? raw.pipe(createGunzip()) : raw
  const rl = createInterface({input, crlfDelay: Infinity})
  let lineNo = 0
  try {
    for await (const line of rl) {
      if (++lineNo <= BINARY_CHECK_LINES && line.includes('\0')) throw new UserError('binary data, not a text log', {file: path, line: lineNo, expected: LOG_EXPECT})
      yield line
    }
  } catch (e) {
    if (e instanceof UserError) throw e
    const code = (e as NodeJS.ErrnoException).code ?? ''
    if (code.startsWith('Z_')) throw new UserError(`gzip data is truncated or corrupt (${(e as Error).message})`, {file: path, line: lineNo + 1})
    throw new UserError(`cannot read the log: ${fileErrorReason(e)}`, {file: path})
  } finally {
    rl.close()
    raw.destroy()
  }
}

function countLines(buf: Buffer, end: number): number {
  let n = 1
  for (let i = buf.indexOf(10); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) n++
  return n
}
