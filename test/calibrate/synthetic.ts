/**
 * Synthetic "runs" for the calibrate tests: a small guest trace whose header's `observed` is what
 * the model itself predicts with known cost parameters, written as <dir>/<name>/trace.csv.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {replay} from '../../src/replay/index.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, MiB} from '../replay/helpers.js'


/** The cost parameters the synthetic observations were made with. */
export const TRUTH = {'zero-page-cost': 0.01, 'sender-page-cost': 0.03, 'sync-page-cost': 0.008} as const
/** Settings of every synthetic run (a padded block: the per-page sync path). */
export const RUN_SETTINGS = {'max-bandwidth': 256 * MiB, 'lazy-clear': false} as const

export interface SynthSpec {
  name: string
  /** Pages written per second, over the first `ws` pages, from a seeded LCG. */
  rate: number
  ws: number
  /** Guest RAM in pages: not a multiple of 64 takes the per-page sync path, a multiple the fast path. */
  pages: number
  /** Pages that hold data at the start (the rest are zero). */
  populatedPages: number
}

export const SPECS: SynthSpec[] = [
  // Zero, normal and per-page-path pages in different proportions, so the three costs can be told
  // apart (an aligned guest pays no per-page sync cost; the padded ones do, for every page at sync #1).
  {name: 'quiet', rate: 200, ws: 512, pages: 2049, populatedPages: 512},
  {name: 'busy', rate: 4000, ws: 1024, pages: 4096, populatedPages: 1536},
  {name: 'large', rate: 1500, ws: 2048, pages: 8193, populatedPages: 2048},
]

function writes(spec: SynthSpec, endNs: number): EventRecord[] {
  let x = spec.rate * 7919 + spec.ws
  const out: EventRecord[] = []
  const step = 1e9 / spec.rate
  for (let t = 1e6; t < endNs; t += step) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    out.push({t_ns: Math.round(t), kind: 'write', vcpu: 0, gpa: (x % spec.ws) * 4096, len: 8})
  }
  return out
}

const hdr = (spec: SynthSpec) => ({memory: spec.pages * 4096, populated: [{gpa: 0, len: spec.populatedPages * 4096}]})

/** Write the run directory; returns its path and the observation. */
export async function makeRun(dir: string, spec: SynthSpec, truth: Record<string, number> = TRUTH): Promise<{dir: string; observed: Record<string, unknown>}> {
  const {header, layout} = machine(hdr(spec))
  const recs = writes(spec, 3e9)
  const r = await replay({header, layout, events: batchesOf(layout, [{t_ns: 0, kind: 'mig_start', params: 'max-bandwidth=268435456'} as EventRecord, ...recs])}, {overrides: {...RUN_SETTINGS, ...truth}})
  const observed = {
    status: 'completed',
    downtime: r.downtimeMs,
    'total-time': r.totalTimeMs,
    ram: {transferred: r.transferredBytes, normal: r.totals.normalPages, duplicate: r.totals.zeroPages, 'dirty-sync-count': r.dirtySyncCount},
  }
  const d = join(dir, spec.name)
  mkdirSync(d, {recursive: true})
  const head = {format: 'migtrace', version: 1, ...hdr(spec), observed}
  const lines = [`# ${JSON.stringify(head)}`, 't_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params', '0,mig_start,,,,,,,,,,,max-bandwidth=268435456']
  for (const w of recs) lines.push(`${w.t_ns},write,0,,,0x${w.gpa!.toString(16)},,8,,,,,`)
  writeFileSync(join(d, 'trace.csv'), `${lines.join('\n')}\n`)
  return {dir: d, observed}
}
