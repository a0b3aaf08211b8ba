/** Files appear whole or not at all: write a temp file beside the target, then rename over it. */
import {mkdirSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path)
  mkdirSync(dir, {recursive: true})
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`)
  try {
    writeFileSync(tmp, data)
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, {force: true})
    throw e
  }
}
