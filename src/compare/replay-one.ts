/**
 * One replay of a trace file with given overrides, exactly as `migtrace replay` runs it (settings
 * resolved over the trace header, whether it has a mig_start (found without decoding it), the driver). Shared by report, compare,
 * grid and the worker threads, so that a compare column equals a single replay.
 */
import {openTrace} from '../trace/read/open.js'
import {resolveSettings, type RawOverrides} from '../replay/config.js'
import {replay, type Driver, type ReplayResult} from '../replay/index.js'
import {withReadFraction} from './progress.js'

export interface ReplayFileJob {
  trace: string
  /** Settings (raw text or parsed values); they win over the trace's own params. */
  overrides: RawOverrides
  driver: Driver
}

/** onProgress: the share (0..1) of the trace file the replay pass has read, for progress bars. */
export async function replayFile(job: ReplayFileJob, onProgress?: (fraction: number) => void): Promise<ReplayResult> {
  const trace = await openTrace(job.trace)
  const settings = resolveSettings(trace.header, job.overrides)
  const noStartEvent = job.driver === 'qemu' && settings['start-at'] === undefined ? !(await trace.containsKind('mig_start')) : false
  return withReadFraction(job.trace, onProgress, () =>
    replay({header: trace.header, layout: trace.layout, events: trace.events(), file: job.trace}, {driver: job.driver, settings, overrides: job.overrides, noStartEvent}),
  )
}
