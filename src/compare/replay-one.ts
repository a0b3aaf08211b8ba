/**
 * One replay of a trace file with given overrides, exactly as `migtrace replay` runs it (settings
 * resolved over the trace header, the mig_start pre-scan, the driver). Shared by report, compare,
 * grid and the worker threads, so that a compare column equals a single replay.
 */
import {openTrace} from '../trace/read/open.js'
import type {EventBatch} from '../trace/events.js'
import {resolveSettings, type RawOverrides} from '../replay/config.js'
import {hasMigStart, replay, type Driver, type ReplayResult} from '../replay/index.js'

export interface ReplayFileJob {
  trace: string
  /** Settings (raw text or parsed values); they win over the trace's own params. */
  overrides: RawOverrides
  driver: Driver
}

async function* counting(events: AsyncIterable<EventBatch>, onEvents: (n: number) => void): AsyncIterable<EventBatch> {
  let n = 0
  for await (const b of events) {
    n += b.length
    onEvents(n)
    yield b
  }
}

export async function replayFile(job: ReplayFileJob, onEvents?: (eventsSoFar: number) => void): Promise<ReplayResult> {
  const trace = await openTrace(job.trace)
  const settings = resolveSettings(trace.header, job.overrides)
  const noStartEvent = job.driver === 'qemu' && settings['start-at'] === undefined ? !(await hasMigStart(trace.events())) : false
  const events = onEvents ? counting(trace.events(), onEvents) : trace.events()
  return replay({header: trace.header, layout: trace.layout, events, file: job.trace}, {driver: job.driver, settings, overrides: job.overrides, noStartEvent})
}
