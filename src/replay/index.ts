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
  for await (const b of input.events) if (session.feed(b)) break
  session.endOfTrace()
  return buildResult(session, driver, driver.settings, driver.figures({lastEventNs: session.lastEventNs, notReplayed: session.notReplayed}))
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
