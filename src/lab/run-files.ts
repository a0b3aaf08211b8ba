/**
 * What a lab run directory holds, read without the importer: `lab matrix` (which keeps the files)
 * and `lab analyze` (which imports them) both ask.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

/** A multifd run's destination trace: QEMU's whole log, or the first round's zero records `lab matrix` keeps (src/lab/keep.ts). */
export const DST_ZERO_TRACE_FILES = ['trace-dst.log.gz', 'trace-dst.zero.log.gz']

/** The run's config.json says multifd (`--multifd-channels N`, N > 0). */
export function isMultifdRun(dir: string): boolean {
  const cfg = join(dir, 'config.json')
  if (!existsSync(cfg)) return false
  const c = JSON.parse(readFileSync(cfg, 'utf8')) as {args?: {multifd_channels?: unknown}}
  return typeof c.args?.multifd_channels === 'number' && c.args.multifd_channels > 0
}
