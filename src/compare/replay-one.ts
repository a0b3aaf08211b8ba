/**
 * One replay of a trace file with given overrides, exactly as `migtrace replay` runs it (settings
 * resolved over the trace header, whether it has a mig_start (found without decoding it), the
 * driver), or several in one pass. Shared by report, compare, grid and the worker threads, so that
 * a compare column equals a single replay.
 */
import {openTrace} from '../trace/read/open.js'
import {resolveSettings, type RawOverrides} from '../replay/config.js'
import {replayEach, type Driver, type ReplayResult} from '../replay/index.js'
import {withReadFraction} from './progress.js'

export interface ReplayFileJob {
  trace: string
  /** Settings (raw text or parsed values); they win over the trace's own params. */
  overrides: RawOverrides
  driver: Driver
}

/** onProgress: the share (0..1) of the trace file the replay pass has read, for progress bars. */
export async function replayFile(job: ReplayFileJob, onProgress?: (fraction: number) => void): Promise<ReplayResult> {
  return (await replayFileEach({trace: job.trace, driver: job.driver, overrides: [job.overrides]}, onProgress))[0]!
}

/** Several replays of one trace file, as replayFile each, in one pass over the file (replayEach). */
export async function replayFileEach(job: {trace: string; driver: Driver; overrides: readonly RawOverrides[]}, onProgress?: (fraction: number) => void): Promise<ReplayResult[]> {
  const trace = await openTrace(job.trace)
  const runs = job.overrides.map((overrides) => ({driver: job.driver, settings: resolveSettings(trace.header, overrides), overrides}))
  // Whether the trace has a mig_start is looked up once (without decoding), and only if a run needs it.
  let hasStart: boolean | undefined
  const opts = []
  for (const r of runs) {
    if (job.driver === 'qemu' && r.settings['start-at'] === undefined) hasStart ??= await trace.containsKind('mig_start')
    opts.push({...r, noStartEvent: job.driver === 'qemu' && r.settings['start-at'] === undefined ? !hasStart : false})
  }
  // Runs held at once are bounded by their guest pages (each has its own bitmaps): a sweep of very
  // large guests takes more passes, each still one decode for its runs.
  const perPass = Math.max(1, Math.floor(PAGES_PER_PASS / Math.max(1, trace.layout.totalPages)))
  const out: ReplayResult[] = []
  for (let i = 0; i < opts.length; i += perPass) {
    const t = i === 0 ? trace : await openTrace(job.trace)
    const group = opts.slice(i, i + perPass)
    out.push(...(await withReadFraction(job.trace, onProgress, () => replayEach({header: t.header, layout: t.layout, events: t.events(), file: job.trace}, group))))
  }
  return out
}

/** Guest pages of the runs one pass holds (2^29 pages: 2 TiB of 4 KiB pages, ~0.5 GiB of bitmaps). */
const PAGES_PER_PASS = 2 ** 29
