/**
 * What a lab run directory holds, read without the importer: `lab matrix` (which keeps the files)
 * and `lab analyze` (which imports them) both ask.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

/** The source trace of a run directory: QEMU's whole log, or the thinned one `lab matrix` keeps (src/lab/keep.ts). */
export const SOURCE_TRACE_FILES = ['trace-src.log.gz', 'trace-src.thin.log.gz']
/** The recording of the source guest's stores (src/lab/driver.ts; kept trimmed by src/lab/keep.ts). */
export const RECORDING_FILES = ['recording.csv.gz']

export const sourceTraceOf = (dir: string): string | undefined => SOURCE_TRACE_FILES.map((f) => join(dir, f)).find((p) => existsSync(p))
export const recordingOf = (dir: string): string | undefined => RECORDING_FILES.map((f) => join(dir, f)).find((p) => existsSync(p))

/** A multifd run's destination trace: QEMU's whole log, or the first round's zero records `lab matrix` keeps (src/lab/keep.ts). */
export const DST_ZERO_TRACE_FILES = ['trace-dst.log.gz', 'trace-dst.zero.log.gz']

/** The run's config.json says multifd (`--multifd-channels N`, N > 0). */
export function isMultifdRun(dir: string): boolean {
  const cfg = join(dir, 'config.json')
  if (!existsSync(cfg)) return false
  const c = JSON.parse(readFileSync(cfg, 'utf8')) as {args?: {multifd_channels?: unknown}}
  return typeof c.args?.multifd_channels === 'number' && c.args.multifd_channels > 0
}
