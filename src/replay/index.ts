/**
 * Replay entry point: run a trace's events through the host model and a precopy driver.
 * `events` may be any (async) iterable of batches, so tests can pass in-memory batches; a batch may
 * be reused by its producer after the engine has consumed it.
 */
import type {EventBatch} from '../trace/events.js'
import {K} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {normalizeOverrides, resolveSettings, type RawOverrides, type ReplaySettings, type SettingKey} from './config.js'
import {PrecopyEngine} from './engine.js'
import {RecordedReplay} from './recorded.js'
import {SnapshotEngine} from './snapshot.js'
import type {Driver, ReplayResult} from './result.js'

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
  if ((opts.driver ?? 'qemu') === 'recorded') {
    const rec = new RecordedReplay(input.header, input.layout, settings, {file: input.file, pinned})
    for await (const b of input.events) if (rec.feed(b)) break
    return rec.finish()
  }
  if (settings.mode === 'background-snapshot') {
    const snap = new SnapshotEngine(input.header, input.layout, settings, {noStartEvent: opts.noStartEvent, file: input.file})
    for await (const b of input.events) if (snap.feed(b)) break
    snap.endOfTrace()
    return snap.result()
  }
  const engine = new PrecopyEngine(input.header, input.layout, settings, {pinned, noStartEvent: opts.noStartEvent, file: input.file})
  let done = false
  let result: ReplayResult | undefined
  for await (const b of input.events) {
    if (!done) {
      if (!engine.feed(b)) continue
      done = true
      if (!engine.wantsEventsAfterMigration) break
      engine.endOfTrace()
      result = engine.result()
      engine.feedAfterMigration(b, engine.stoppedAt)
    } else engine.feedAfterMigration(b, 0)
  }
  if (result === undefined) {
    engine.endOfTrace()
    return engine.result()
  }
  const vm = engine.virtioMemData()
  if (vm) result.components['virtio-mem'] = vm
  return result
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

export type {ReplayResult, IterationRow, Verdict, Driver} from './result.js'
export type {StopReason} from './policies.js'
