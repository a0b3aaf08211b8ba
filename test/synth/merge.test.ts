// TrackMerger against a plain reference merge: every event of every track once, ordered by time
// with ties to the lower track index, each column and each params entry carried over; tracks
// that interleave event by event (the one-event runs) and in long runs, with params on both.
import test from 'ava'
import {K, type EventBatch} from '../../src/trace/events.js'
import {TrackMerger} from '../../src/synth/merge.js'
import {fieldBits, type Track} from '../../src/synth/track.js'
import {WORKLOAD_NAMES, parseSpec, synthesize} from '../../src/synth/index.js'

interface Ev {
  t: number
  kind: number
  vcpu: number
  gpa: number
  len: number
  value: number
  params?: string
}

/** A track over a fixed list of events, handed out `step` at a time. */
class ListTrack implements Track {
  private i = 0
  constructor(
    readonly evs: Ev[],
    private readonly step: number,
  ) {}
  fill(out: EventBatch, limit: number): boolean {
    let j = out.length
    const stop = Math.min(limit, j + this.step)
    while (j < stop && this.i < this.evs.length) {
      const e = this.evs[this.i++]!
      out.t[j] = e.t
      out.kind[j] = e.kind
      if (e.vcpu >= 0) out.vcpu[j] = e.vcpu
      if (e.gpa >= 0) out.gpa[j] = e.gpa
      if (e.len >= 0) out.len[j] = e.len
      if (e.value >= 0) out.value[j] = e.value
      if (e.params !== undefined) out.params.set(j, e.params)
      j++
    }
    out.length = j
    return this.i < this.evs.length
  }
}

test('merged batches equal a reference merge (time, then track order), every column and params', (t) => {
  let s = 5
  const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296)
  const tracks: Ev[][] = []
  // Track 0: control events with params, sparse; tracks 1-3 interleave; track 4 comes in long runs.
  tracks.push(Array.from({length: 300}, (_, i) => ({t: i * 997, kind: i % 2 === 0 ? K.mig_set : K.mig_sync, vcpu: -1, gpa: -1, len: -1, value: i % 2 === 0 ? -1 : i, params: i % 2 === 0 ? `x=${i}` : undefined})))
  for (let v = 0; v < 3; v++) {
    let time = 0
    tracks.push(Array.from({length: 20000}, () => ({t: (time += Math.floor(rnd() * 40)), kind: K.write, vcpu: v, gpa: Math.floor(rnd() * 1e6) * 8, len: 8, value: -1})))
  }
  let time = 0
  tracks.push(Array.from({length: 20000}, (_, i) => ({t: (time += i % 500 === 0 ? 20000 : 0), kind: K.dma_write, vcpu: -1, gpa: i * 4096, len: 4096, value: -1, params: undefined})))
  const want = tracks.flatMap((evs, k) => evs.map((e, i) => ({e, k, i}))).sort((a, b) => a.e.t - b.e.t || a.k - b.k || a.i - b.i)
  for (const [batchSize, step] of [[65536, 4096], [1000, 7]] as const) {
    const merger = new TrackMerger(tracks.map((evs) => new ListTrack(evs, step)), batchSize)
    const got: Ev[] = []
    let unsetOk = true
    for (let b = merger.next(); b !== undefined; b = merger.next())
      for (let i = 0; i < b.length; i++) {
        const p = b.params.get(i)
        got.push({t: b.t[i]!, kind: b.kind[i]!, vcpu: b.vcpu[i]!, gpa: b.gpa[i]!, len: b.len[i]!, value: b.value[i]!, ...(p === undefined ? {} : {params: p})})
        unsetOk &&= b.dev[i] === -1 && b.slot[i] === -1 && b.iova[i] === -1 && b.page[i] === -1 && b.count[i] === -1 && b.op[i] === 0
      }
    t.true(unsetOk, 'the columns no track sets stay unset')
    const expected = want.map(({e}) => ({t: e.t, kind: e.kind, vcpu: e.vcpu, gpa: e.gpa, len: e.len, value: e.value, ...(e.params === undefined ? {} : {params: e.params})}))
    // The first event that differs (a diff of the whole arrays would be slow to print).
    const at = expected.findIndex((x, i) => JSON.stringify(x) !== JSON.stringify(got[i]))
    const what = `batches of ${batchSize}, tracks filled ${step} at a time`
    t.is(got.length, expected.length, what)
    t.deepEqual(at < 0 ? undefined : [at, got[at]], at < 0 ? undefined : [at, expected[at]], what)
  }
})

/** Every column and params entry of every batch, concatenated (the batch object is reused). */
function* merged(m: TrackMerger): Generator<EventBatch> {
  for (let b = m.next(); b !== undefined; b = m.next()) yield b
}

function drain(batches: Iterable<EventBatch>): {columns: Record<string, number[]>; params: [number, string][]} {
  const names = ['t', 'kind', 'vcpu', 'dev', 'slot', 'gpa', 'iova', 'len', 'page', 'count', 'value', 'op', 'line'] as const
  const columns: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
  const params: [number, string][] = []
  let base = 0
  for (const b of batches) {
    for (const n of names) columns[n]!.push(...b[n].subarray(0, b.length))
    for (const [i, p] of b.params) if (i < b.length) params.push([base + i, p])
    base += b.length
  }
  return {columns, params}
}

test("the columns each workload declares (Track.fields) are all it sets: the merge equals the every-column merge", (t) => {
  const spec = parseSpec({
    seed: 8,
    duration: '300ms',
    memory: '3G',
    vcpus: 4,
    workloads: WORKLOAD_NAMES.map((workload, i) => ({workload, params: {}, ...(workload === 'virtio-mem' || workload === 'malicious' ? {vcpu: i % 4} : {})})),
    migration: {start: '100ms', params: 'max-bandwidth=134217728', set: [{at: '200ms', params: 'downtime-limit=500'}], postcopy: '250ms'},
  })
  for (const size of [65536, 777]) {
    const declared = drain(synthesize(spec).batches(size))
    // The reference: the same tracks merged with every column reset and copied.
    const every = drain(merged(new TrackMerger(synthesize(spec).tracks, size, true)))
    t.true(declared.columns.t!.length > 10000)
    t.deepEqual(new Set(declared.columns.kind).size > 10, true, 'many kinds: devices, virtio-mem, migration control')
    t.is(declared.params.length, 2)
    t.deepEqual(declared, every)
  }
})

test('a track that sets a column it does not declare loses it (what the every-column test would catch)', (t) => {
  const evs: Ev[] = Array.from({length: 50}, (_, i) => ({t: i, kind: K.write, vcpu: 1, gpa: 4096 * i, len: 4096, value: 7}))
  const lying = (): Track => Object.assign(new ListTrack(evs, 16), {fields: fieldBits('vcpu', 'gpa', 'len')})
  const other = (): Track => Object.assign(new ListTrack([{t: 3, kind: K.mig_postcopy, vcpu: -1, gpa: -1, len: -1, value: -1}], 16), {fields: 0})
  const declared = drain(batchesOf(new TrackMerger([other(), lying()], 64)))
  const every = drain(batchesOf(new TrackMerger([other(), lying()], 64, true)))
  t.deepEqual(every.columns.value, [7, 7, 7, -1, ...Array(47).fill(7)])
  t.deepEqual(declared.columns.value, Array(51).fill(-1))
  t.deepEqual(declared.columns.gpa, every.columns.gpa)
  t.deepEqual(declared.columns.kind, every.columns.kind)
})

function* batchesOf(m: TrackMerger): Generator<EventBatch> {
  for (let b = m.next(); b !== undefined; b = m.next()) yield b
}
