/**
 * Line streaming of a text file that may be gzip-compressed (detected by its magic bytes, not its
 * name). zstd is refused with a clear message: Node 20 has no zstd decoder (zlib gained one in 22.15).
 */
import {createReadStream, openSync, readSync, closeSync} from 'node:fs'
import {createGunzip} from 'node:zlib'
import {createInterface} from 'node:readline'
import {UserError} from '../../util/errors.js'

function magic(path: string): Buffer {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (e) {
    throw new UserError('cannot open file', {file: path, found: (e as NodeJS.ErrnoException).code ?? String(e)})
  }
  try {
    const b = Buffer.alloc(4)
    const n = readSync(fd, b, 0, 4, 0)
    return b.subarray(0, n)
  } finally {
    closeSync(fd)
  }
}

/** Lines of a file (gzip transparently), without their newline. */
export async function* readLines(path: string): AsyncGenerator<string> {
  const m = magic(path)
  if (m.length >= 4 && m[0] === 0x28 && m[1] === 0xb5 && m[2] === 0x2f && m[3] === 0xfd)
    throw new UserError('zstd-compressed input is not supported on Node 20', {file: path, expected: 'a plain or gzip file (zstd -dc FILE | gzip > FILE.gz)'})
  const raw = createReadStream(path)
  const input = m.length >= 2 && m[0] === 0x1f && m[1] === 0x8b ? raw.pipe(createGunzip()) : raw
  const rl = createInterface({input, crlfDelay: Infinity})
  try {
    for await (const line of rl) yield line
  } catch (e) {
    throw new UserError('cannot read file', {file: path, found: e instanceof Error ? e.message : String(e)})
  } finally {
    rl.close()
    raw.destroy()
  }
}
