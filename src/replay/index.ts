/**
 * Replay entry point: run a trace's events through the host model and a driver in one session.
 * `events` may be any (async) iterable of batches, so tests can pass in-memory batches; a batch may
 * be reused by its producer after the session has consumed it.
 */
import type {EventBatch} from '../trace/events.js'
import {K} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {normalizeOverrides, resolveSettings, type RawOverrides} from './config.js'
import type {ReplaySettings, SettingKey} from './settings.js'
import {HostModel} from './host.js'
import {ReplaySession} from './session.js'
import type {ReplayDriver} from './driver.js'
import {PrecopyDriver} from './drivers/precopy.js'
import {RECORDED_CAUSES, RecordedDriver} from './drivers/recorded.js'
import {SnapshotDriver} from './drivers/snapshot.js'
import {buildResult} from './result-builder.js'
import type {Driver, ReplayResult} from './result.js'

export type {Driver, ReplayResult} from './result.js'

export interface ReplayInput {
  header: TraceHeader
  layout: TraceLayout
  events: AsyncIterable<EventBatch> | Iterable<EventBatch>
  /** The trace file, for error messages. */
  file?: string
}

export interface ReplayOptions {
  driver?: Driver
  /** Resolved settings; when absent they are resolved from `overrides` and the header. */
  settings?: ReplaySettings
  /** User settings (config file, --set): they win over the trace's own params. */
  overrides?: RawOverrides
  /** The trace is known to have no mig_start event (a pre-scan): start at 0 unless start-at. */
  noStartEvent?: boolean
}

export async function replay(input: ReplayInput, opts: ReplayOptions = {}): Promise<ReplayResult> {
  return (await replayEach(input, [opts]))[0]!
}

/** One run's model, session and driver, built before the first event. */
interface Run {
  session: ReplaySession
  driver: ReplayDriver
  /** The session needs no more of the trace. */
  done: boolean
}

function startRun(input: ReplayInput, opts: ReplayOptions): Run {
  const overrides = normalizeOverrides(opts.overrides ?? {})
  const settings = opts.settings ?? resolveSettings(input.header, overrides)
  const pinned = new Set(Object.keys(overrides) as SettingKey[])
  const recorded = (opts.driver ?? 'qemu') === 'recorded'
  const host = new HostModel(input.header, input.layout, settings, {driverCauses: recorded ? RECORDED_CAUSES : []})
  const session = new ReplaySession(host, input.header.vcpus)
  let driver: ReplayDriver
  if (recorded) driver = new RecordedDriver(host, settings, {file: input.file})
  else if (settings.mode === 'background-snapshot') driver = new SnapshotDriver(host, session.clock, settings, {noStartEvent: opts.noStartEvent, file: input.file})
  else driver = new PrecopyDriver(host, session.clock, settings, {pinned, noStartEvent: opts.noStartEvent, file: input.file})
  session.driver = driver
  return {session, driver, done: false}
}

function finishRun({session, driver}: Run): ReplayResult {
  session.endOfTrace()
  return buildResult(session, driver, driver.settings, driver.figures({lastEventNs: session.lastEventNs, notReplayed: session.notReplayed}))
}

/**
 * Several replays of one trace in one pass (compare, grid): each batch is decoded once and fed to
 * every run's session in turn, so N runs cost one decode plus N model runs. Each result equals
 * replay(input, runs[i]): sessions share nothing but the batch, which none of them changes or
 * keeps, and a run that needs no more events stops taking them. Runs are built, fed and finished
 * in their order, so an error is the one the first failing run would give alone.
 */
export async function replayEach(input: ReplayInput, runs: readonly ReplayOptions[]): Promise<ReplayResult[]> {
  const live = runs.map((o, k) => blame(k, () => startRun(input, o)))
  let open = live.length
  for await (const b of input.events) {
    for (let k = 0; k < live.length; k++) {
      const r = live[k]!
      if (r.done) continue
      if (blame(k, () => r.session.feed(b))) {
        r.done = true
        open--
      }
    }
    if (open === 0) break
  }
  return live.map((r, k) => blame(k, () => finishRun(r)))
}

/** Runs f; an error it throws names run k (`runIndex`), so a sweep can say which variant failed. */
function blame<T>(k: number, f: () => T): T {
  try {
    return f()
  } catch (e) {
    if (e !== null && typeof e === 'object' && !('runIndex' in e)) Object.assign(e, {runIndex: k})
    throw e
  }
}

/** The run of a replayEach an error came from (undefined: the trace itself, e.g. a bad line). */
export function failedRun(e: unknown): number | undefined {
  return e !== null && typeof e === 'object' && 'runIndex' in e && typeof e.runIndex === 'number' ? e.runIndex : undefined
}

/** One pass over the events looking for a mig_start (stops at the first one). */
export async function hasMigStart(events: AsyncIterable<EventBatch> | Iterable<EventBatch>): Promise<boolean> {
  const code = K.mig_start
  for await (const b of events) {
    const kind = b.kind
    for (let i = 0; i < b.length; i++) if (kind[i] === code) return true
  }
  return false
}
