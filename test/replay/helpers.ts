/** Builders for in-memory traces used by the replay and model tests. */
import {createBatch, type EventBatch, type EventRecord} from '../../src/trace/events.js'
import {parseHeader, type HeaderInput, type TraceHeader} from '../../src/trace/header.js'
import {TraceLayout} from '../../src/trace/layout.js'
import {pushRecord} from '../../src/trace/write/encode.js'

export const MiB = 2 ** 20
export const GiB = 2 ** 30

/**
 * A layout whose granule table has holes inside and after it: 64 KiB pages, memslots on 1 MiB
 * bounds (0-3 MiB, 5-7 MiB, 16-75 MiB), so 1 MiB granules. For `machine(HOLES_1MIB_64K)`.
 */
export const HOLES_1MIB_64K = {
  pageSize: 65536,
  ramBlocks: [{name: 'pc.ram', size: 64 * MiB}],
  memslots: [
    {id: 0, base: 0, size: 3 * MiB, ramBlock: 'pc.ram', offset: 0},
    {id: 1, base: 5 * MiB, size: 2 * MiB, ramBlock: 'pc.ram', offset: 3 * MiB},
    {id: 2, base: 16 * MiB, size: 59 * MiB, ramBlock: 'pc.ram', offset: 5 * MiB},
  ],
} satisfies Partial<HeaderInput>

export function machine(extra: Partial<HeaderInput> & {memory?: number | string} = {}): {header: TraceHeader; layout: TraceLayout} {
  const header = parseHeader({format: 'migtrace', version: 1, ...(extra.ramBlocks ? {} : {memory: extra.memory ?? GiB}), ...extra})
  return {header, layout: new TraceLayout(header)}
}

/** Guest-physical address of a global page (any layout). */
export function pageGpa(layout: TraceLayout, page: number): number {
  for (const s of layout.slots) if (page >= s.firstPage && page < s.firstPage + s.pages) return s.gpaStart + (page - s.firstPage) * layout.pageSize
  throw new Error(`page ${page} is in no slot`)
}

/** Batches from records (a fresh batch per chunk, never reused). */
export function batchesOf(layout: TraceLayout, records: EventRecord[], size = 65536): EventBatch[] {
  const out: EventBatch[] = []
  for (let i = 0; i < records.length; i += size) {
    const b = createBatch(Math.min(size, records.length - i))
    for (const r of records.slice(i, i + size)) pushRecord(b, r, layout.deviceIndex)
    out.push(b)
  }
  return out
}

export interface WriterSpec {
  /** Pages written per second. */
  rate: number
  startNs?: number
  endNs: number
  /** Pages the writer cycles over: [first, first + pages). */
  first?: number
  pages: number
  vcpu?: number
}

/** A sequential writer: page first + (j mod pages) at startNs + j / rate. */
export function sequentialWriter(layout: TraceLayout, spec: WriterSpec, batchSize = 65536): EventBatch[] {
  const start = spec.startNs ?? 0
  const first = spec.first ?? 0
  const n = Math.max(0, Math.ceil(((spec.endNs - start) * spec.rate) / 1e9))
  const out: EventBatch[] = []
  let b = createBatch(batchSize)
  const ps = layout.pageSize
  for (let j = 0; j < n; j++) {
    if (b.length === batchSize) {
      out.push(b)
      b = createBatch(batchSize)
    }
    const i = b.length++
    b.t[i] = start + (j * 1e9) / spec.rate
    b.kind[i] = 0 // write
    b.vcpu[i] = spec.vcpu ?? 0
    b.gpa[i] = pageGpa(layout, first + (j % spec.pages))
    b.len[i] = ps
  }
  if (b.length > 0) out.push(b)
  return out
}

/** Merge batches of several sources into time order (small tests only). */
export function mergeByTime(layout: TraceLayout, ...lists: EventBatch[][]): EventBatch[] {
  const recs: {t: number; b: EventBatch; i: number}[] = []
  for (const list of lists) for (const b of list) for (let i = 0; i < b.length; i++) recs.push({t: b.t[i]!, b, i})
  recs.sort((x, y) => x.t - y.t)
  const out = createBatch(Math.max(1, recs.length))
  for (const r of recs) {
    const j = out.length++
    for (const col of ['t', 'kind', 'vcpu', 'dev', 'slot', 'gpa', 'iova', 'len', 'page', 'count', 'value', 'op', 'line'] as const) (out[col] as Float64Array)[j] = (r.b[col] as Float64Array)[r.i]!
    const p = r.b.params.get(r.i)
    if (p !== undefined) out.params.set(j, p)
  }
  return [out]
}

/** mulberry32: a small seeded PRNG for property tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
