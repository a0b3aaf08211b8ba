/**
 * From a spec to events: builds the header, one track per workload instance plus the migration
 * track, and merges them into time-ordered batches; or writes them straight into a trace file.
 */
import type {EventBatch} from '../trace/events.js'
import {DEFAULT_BATCH} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import {TraceLayout} from '../trace/layout.js'
import {OUTPUT_NAMES, TraceWriter, formatFromPath, type FormatInfo} from '../trace/write/writer.js'
import {UserError} from '../util/errors.js'
import {SynthHeaderBuilder} from './header-builder.js'
import {TrackMerger} from './merge.js'
import {MigrationTrack, type ControlEvent} from './migration-track.js'
import {PageSpace} from './page-space.js'
import {parseParams, type Params} from './params.js'
import {Rng} from './prng.js'
import type {SynthSpec} from './spec.js'
import type {Track} from './track.js'
import {EmptyTrack} from './track.js'
import {workloadByName, type Region, type WorkloadDef} from './workloads/index.js'

/** Bumped when the same spec and seed would give different events. */
export const GENERATOR_VERSION = 1

export interface Synthesis {
  header: TraceHeader
  layout: TraceLayout
  durationNs: number
  /**
   * Events the spec asks for, from its rates: every `rate` parameter times its workload's active
   * window (the rate is per entry, split between its vCPUs). Fixed costs (mapping, pinning, one
   * pass over a region) are not counted: a floor, for refusing what cannot finish.
   */
  estimatedEvents: number
  /** The workloads' and the migration's event tracks, which batches() merges (and so uses up). */
  readonly tracks: readonly Track[]
  /** Events in time order; the batch object is reused from one step to the next. */
  batches(batchSize?: number): Generator<EventBatch>
}

interface Planned {
  def: WorkloadDef
  params: Params
  prepared: Record<string, string>
  entry: SynthSpec['workloads'][number]
  field: string
}

export function synthesize(spec: SynthSpec): Synthesis {
  const err = (e: unknown): never => {
    if (e instanceof UserError && spec.origin !== undefined) throw e.withLocation(spec.origin)
    throw e
  }
  try {
    return build(spec)
  } catch (e) {
    return err(e)
  }
}

function build(spec: SynthSpec): Synthesis {
  const hb = new SynthHeaderBuilder(spec.header, undefined)
  // Parameters first (errors point at the entry), then devices in spec order.
  const planned: Planned[] = spec.workloads.map((entry, i) => {
    const def = workloadByName(entry.workload)!
    const field = `workloads.${i}.params`
    const params = parseParams(def.params, entry.params, field)
    const prepared = def.prepare ? def.prepare(hb, params, field) : {}
    return {def, params, prepared, entry, field}
  })
  const header = hb.finish({
    populated: spec.populated,
    seed: spec.seed,
    generator: {name: 'migtrace generate', version: GENERATOR_VERSION, spec: spec.source},
    ...(spec.description !== undefined ? {description: spec.description} : {}),
  })
  const layout = new TraceLayout(header)
  const vmemBlocks = new Set(header.virtioMem.map((d) => d.ramBlock))
  const space = new PageSpace(layout, vmemBlocks)
  const duration = spec.durationNs
  const migrateAt = spec.migration?.start

  const devIndex = (id: string): number => {
    const i = layout.deviceIndex.get(id)
    if (i === undefined) throw new Error(`bug: device ${id} missing from the header`)
    return i
  }

  const tracks: Track[] = []
  if (spec.migration) {
    const m = spec.migration
    const events: ControlEvent[] = [{t: m.start, kind: 'mig_start', ...(m.params !== undefined && m.params !== '' ? {params: m.params} : {})}]
    for (const s of m.set) events.push({t: s.at, kind: 'mig_set', params: s.params})
    if (m.postcopy !== undefined) {
      if (m.postcopy < m.start) throw new UserError('postcopy cannot start before the migration', {field: 'migration.postcopy', expected: `a time >= migration.start`})
      events.push({t: m.postcopy, kind: 'mig_postcopy'})
    }
    tracks.push(new MigrationTrack(events.filter((e) => e.t < duration)))
  }

  planned.forEach((p, i) => {
    const {def, entry} = p
    const at = `workloads.${i}`
    const start = Math.min(entry.start ?? 0, duration)
    const end = Math.min(entry.end ?? duration, duration)
    if (end < start) throw new UserError('a workload cannot end before it starts', {field: `${at}.end`, expected: `a time >= start`})

    let vcpus: number[]
    if (def.placement === 'device') {
      if (entry.vcpu !== undefined || entry.vcpus !== undefined)
        throw new UserError(`workload '${def.name}' is a device and runs on no vCPU`, {field: `${at}.${entry.vcpu !== undefined ? 'vcpu' : 'vcpus'}`})
      vcpus = [-1]
    } else if (def.placement === 'single-vcpu') {
      if (entry.vcpus !== undefined) throw new UserError(`workload '${def.name}' runs on one vCPU: use 'vcpu'`, {field: `${at}.vcpus`})
      vcpus = [entry.vcpu ?? 0]
    } else {
      if (entry.vcpu !== undefined && entry.vcpus !== undefined) throw new UserError("give either 'vcpu' or 'vcpus', not both", {field: `${at}.vcpus`})
      vcpus = entry.vcpu !== undefined ? [entry.vcpu] : entry.vcpus === undefined || entry.vcpus === 'all' ? [...Array(header.vcpus).keys()] : entry.vcpus
    }
    for (const v of vcpus)
      if (v >= header.vcpus) throw new UserError('no such vCPU', {field: `${at}.${entry.vcpu !== undefined ? 'vcpu' : 'vcpus'}`, expected: `0 .. ${header.vcpus - 1}`, found: String(v)})

    let region: Region = {first: 0, pages: space.pages}
    if ('offset' in def.params && 'span' in def.params) {
      const first = p.params.pages('offset', space.pages, space.pageSize)
      if (first >= space.pages) throw new UserError('the region starts past the end of guest RAM', {field: `${p.field}.offset`, expected: `< ${space.pages * space.pageSize} bytes`})
      const pages = Math.min(p.params.pages('span', space.pages, space.pageSize), space.pages - first)
      if (pages < 1) throw new UserError('the region must hold at least one page', {field: `${p.field}.span`, expected: `>= ${space.pageSize} bytes`})
      region = {first, pages}
    }

    const count = vcpus.length
    const params = 'rate' in def.params && count > 1 ? p.params.with('rate', p.params.num('rate') / count) : p.params
    vcpus.forEach((vcpu, k) => {
      let r = region
      if (def.partition && count > 1) {
        const a = region.first + Math.floor((k * region.pages) / count)
        const b = region.first + Math.floor(((k + 1) * region.pages) / count)
        r = {first: a, pages: b - a}
      }
      if (r.pages < 1 || start >= end) {
        tracks.push(new EmptyTrack())
        return
      }
      const ctx = {header, layout, space, rng: new Rng(spec.seed, i * 65536 + k), vcpu, start, end, migrateAt, region: r, field: p.field, devIndex}
      tracks.push(def.create(ctx, params, p.prepared))
    })
  })

  let estimatedEvents = 0
  for (const p of planned) {
    const start = Math.min(p.entry.start ?? 0, duration)
    const end = Math.min(p.entry.end ?? duration, duration)
    const seconds = Math.max(0, end - start) / 1e9
    for (const [name, d] of Object.entries(p.def.params)) if (d.type === 'rate') estimatedEvents += p.params.num(name) * seconds
  }

  return {
    header,
    layout,
    durationNs: duration,
    estimatedEvents,
    tracks,
    *batches(batchSize = DEFAULT_BATCH) {
      const merger = new TrackMerger(tracks, batchSize)
      for (let b = merger.next(); b !== undefined; b = merger.next()) yield b
    },
  }
}

export interface WriteOptions {
  /** Compress with gzip even when the name does not end in .gz (".gz" is then appended). */
  gzip?: boolean
  /** Called after each batch with the share of guest time done (0..1). */
  onProgress?: (done: number) => void
  /** Refuse a spec whose rates ask for more events, and stop (writing nothing) past it. Default DEFAULT_MAX_EVENTS. */
  maxEvents?: number
}

/**
 * 10^9 events: minutes of work and tens of GB of CSV on a laptop. A spec asking for far more (a
 * typo of a rate or a duration: 10^16 events would run for years) is refused before it starts.
 */
export const DEFAULT_MAX_EVENTS = 1e9

function tooManyEvents(what: string, events: number, max: number): UserError {
  return new UserError(what, {field: '--max-events', expected: `at most ${formatCount(max)} events (raise the limit with --max-events N)`, found: formatCount(events)})
}

const formatCount = (n: number): string => (!Number.isFinite(n) ? 'more than 1e308' : n >= 1e6 ? n.toExponential(2).replace('e+', 'e') : String(Math.round(n)))

export interface WriteResult {
  path: string
  events: number
  header: TraceHeader
}

/** The path and format a trace is written to: by extension, `.gz` appended when gzip is asked. */
export function outputTarget(path: string, gzip: boolean): {path: string; format: FormatInfo} {
  const info = formatFromPath(path)
  if (!info) throw new UserError('cannot tell the trace format from the file name', {file: path, expected: OUTPUT_NAMES})
  if (gzip && !info.gzip) return {path: `${path}.gz`, format: {format: info.format, gzip: true}}
  return {path, format: info}
}

/** Generate a spec's trace into a file (written to a temporary name, renamed when complete). */
export async function writeSynthTrace(spec: SynthSpec, out: string, opts: WriteOptions = {}): Promise<WriteResult> {
  const target = outputTarget(out, opts.gzip ?? false)
  const syn = synthesize(spec)
  const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS
  if (syn.estimatedEvents > maxEvents) {
    const e = tooManyEvents('the spec asks for more events than the limit', syn.estimatedEvents, maxEvents)
    throw spec.origin !== undefined ? e.withLocation(spec.origin) : e
  }
  const names = syn.layout.devices.map((d) => d.id)
  const writer = await TraceWriter.open(target.path, syn.header, names, target.format)
  try {
    for (const b of syn.batches()) {
      // The estimate is a floor: the cap holds whatever the workloads really emit.
      if (writer.eventsWritten + b.length > maxEvents) throw tooManyEvents(`stopped after ${writer.eventsWritten} events: the trace would exceed the limit`, writer.eventsWritten + b.length, maxEvents)
      await writer.writeBatch(b)
      opts.onProgress?.(syn.durationNs > 0 ? Math.min(1, b.t[b.length - 1]! / syn.durationNs) : 1)
    }
    await writer.close()
  } catch (e) {
    await writer.abort()
    throw e
  }
  opts.onProgress?.(1)
  return {path: target.path, events: writer.eventsWritten, header: syn.header}
}
