// The Arrow reader's direct path (src/trace/arrow/direct.ts: typed-array views of the IPC buffers)
// against its flechette path: the same events, the same batch columns, the same errors, on
// migtrace's own traces and on traces the reference Arrow library writes; and the direct path
// really takes migtrace's record batches (else the speed-up would silently be lost).
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import * as AA from 'apache-arrow'
import {createBatch, FIELDS, type EventBatch, type EventRecord} from '../../src/trace/events.js'
import {parseHeader} from '../../src/trace/header.js'
import {TraceLayout} from '../../src/trace/layout.js'
import {convertTrace} from '../../src/trace/read/convert.js'
import {openTrace} from '../../src/trace/read/open.js'
import {RowDecoder} from '../../src/trace/read/decode.js'
import {TraceWriter} from '../../src/trace/write/writer.js'
import {pushRecord} from '../../src/trace/write/encode.js'
import {UserError} from '../../src/util/errors.js'
import {arrowEvents} from '../../src/trace/arrow/read.js'
import {DirectArrow, DirectDecoder} from '../../src/trace/arrow/direct.js'
import {schemaFromFooter} from '../../src/trace/arrow/open.js'
import {IpcMessageReader, MSG_DICTIONARY, MSG_RECORD_BATCH, MSG_SCHEMA} from '../../src/trace/arrow/ipc.js'
import {ALL_KINDS, ALL_KINDS_HEADER} from '../../scripts/make-fixtures.js'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'migtrace-arrow-direct-'))

/** Every batch's columns (rows only), as the reader yields them, or the error message. */
async function columns(path: string, direct: boolean, batchSize: number): Promise<string[] | string> {
  const tr = await openTrace(path)
  const out: string[] = []
  try {
    const src = {path, gzip: false, kind: path.endsWith('.arrows') ? ('stream' as const) : ('file' as const)}
    for await (const b of arrowEvents(src, tr.layout, new RowDecoder(tr.layout, path), {direct, batchSize})) out.push(dump(b))
  } catch (e) {
    if (e instanceof UserError) return e.message
    throw e
  }
  return out
}

function dump(b: EventBatch): string {
  const cols = [...FIELDS.filter((f) => f !== 't_ns' && f !== 'params'), 't', 'line'].map((f) => `${f}=${Array.from((b as unknown as Record<string, ArrayLike<number>>)[f]!).slice(0, b.length).join(',')}`)
  return `${b.length} ${cols.join(' ')} params=${JSON.stringify([...b.params])}`
}

/** How many rows of an Arrow file the direct path takes (and how many it leaves to flechette). */
async function directRows(path: string, kind: 'file' | 'stream' = 'file'): Promise<{taken: number; left: number}> {
  const tr = await openTrace(path)
  const decoder = new RowDecoder(tr.layout, path)
  const direct = new DirectArrow()
  const dec = new DirectDecoder(tr.layout, decoder.checker, tr.header.vcpus)
  const b = createBatch(1 << 16)
  const reader = await IpcMessageReader.open(path, false, kind)
  let taken = 0
  let left = 0
  // (the reference library writes a file's schema in its footer only)
  const footer = await schemaFromFooter({path, gzip: false, kind})
  if (footer !== undefined) direct.plan(footer)
  try {
    for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
      if (m.type === MSG_SCHEMA) direct.plan(m.bytes.slice())
      else if (m.type === MSG_DICTIONARY) direct.dictionary(m.bytes.slice())
      else if (m.type === MSG_RECORD_BATCH) {
        const v = direct.columns(m.bytes)
        if (v !== undefined && dec.decode(v.cols, 0, v.rows, b, taken + left + 1)) taken += v.rows
        else left += v?.rows ?? 1
      }
    }
  } finally {
    await reader.close()
  }
  return {taken, left}
}

/** A trace of many kinds: every event of the all-kinds fixture, again and again, with writes between. */
function mixed(n: number): EventRecord[] {
  const out: EventRecord[] = []
  let t = 0
  let seed = 7
  const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
  for (let i = 0; out.length < n; i++) {
    const r = ALL_KINDS[i % ALL_KINDS.length]!
    // the fixture's own times restart each round: keep the order, move them on
    t += 1 + Math.floor(rnd() * 50)
    out.push({...r, t_ns: t})
    for (let k = Math.floor(rnd() * 20); k > 0; k--) {
      t += Math.floor(rnd() * 3)
      out.push({t_ns: t, kind: 'write', vcpu: Math.floor(rnd() * 2), gpa: Math.floor(rnd() * 2 ** 18) * 4096 + Math.floor(rnd() * 4000), len: 1 + Math.floor(rnd() * 96)})
    }
  }
  return out
}

test('the direct path yields the same batches as the flechette path, in slices of any size', async (t) => {
  const d = tmp()
  const a = join(d, 'all.arrow')
  await convertTrace('fixtures/all-kinds.csv', a)
  const header = parseHeader(ALL_KINDS_HEADER)
  const layout = new TraceLayout(header)
  const recs = mixed(200_000)
  const m = join(d, 'mixed.arrow')
  const w = await TraceWriter.open(m, header, layout.devices.map((x) => x.id))
  const b = createBatch(recs.length)
  for (const r of recs) pushRecord(b, r, layout.deviceIndex)
  await w.writeBatch(b)
  await w.close()
  for (const [file, sizes] of [
    [a, [1, 2, 7, 1 << 16]],
    [m, [1000, 4096, 1 << 16]],
  ] as const) {
    for (const size of sizes) {
      const want = await columns(file, false, size)
      t.true(Array.isArray(want), String(want))
      t.deepEqual(await columns(file, true, size), want, `${file} in slices of ${size}`)
    }
    t.deepEqual(await directRows(file), {taken: file === a ? ALL_KINDS.length : recs.length, left: 0}, `${file}: every row through the direct path`)
  }
})

const HEADER = {format: 'migtrace', version: 1, memory: '1G', vcpus: 2, virtioMem: [{id: 'vmem0', base: '4G', regionSize: '1G'}]}

/** A table the reference library writes, with the migtrace header; columns are given per row (null: not set). */
function table(rows: Record<string, unknown>[], types: Record<string, AA.DataType> = {}, header: object = HEADER): AA.Table {
  const names = ['t_ns', 'kind', ...new Set(rows.flatMap((r) => Object.keys(r)).filter((k) => k !== 't_ns' && k !== 'kind'))]
  const deflt: Record<string, AA.DataType> = {t_ns: new AA.Int64(), kind: new AA.Dictionary(new AA.Utf8(), new AA.Int8()), vcpu: new AA.Int32(), slot: new AA.Int32(), dev: new AA.Dictionary(new AA.Utf8(), new AA.Int16()), op: new AA.Dictionary(new AA.Utf8(), new AA.Int8()), params: new AA.Utf8()}
  const cols: Record<string, AA.Vector> = {}
  for (const name of names) {
    const type = types[name] ?? deflt[name] ?? new AA.Int64()
    const values = rows.map((r) => (r[name] === undefined ? null : r[name]))
    cols[name] = AA.vectorFromArray(type instanceof AA.Int64 || type instanceof AA.Uint64 ? values.map((v) => (v === null ? null : BigInt(v as number))) : values, type)
  }
  const t0 = new AA.Table(cols)
  return new AA.Table(new AA.Schema(t0.schema.fields, new Map([['migtrace.header', JSON.stringify(header)]])), t0.batches)
}

const W = (t_ns: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({t_ns, kind: 'write', vcpu: 0, gpa: 4096, len: 8, ...extra})

test('bad rows get the same message through the direct path as through flechette', async (t) => {
  const d = tmp()
  const G = 2 ** 30
  // 6 GiB: two RAM slots, [0, 2 GiB) and [4 GiB, 8 GiB); the reader caches the last two
  const two = {format: 'migtrace', version: 1, memory: '6G', vcpus: 2}
  const alternate = (k: number): Record<string, unknown>[] => Array.from({length: k}, (_, i) => W(10 * (i + 1), {gpa: i % 2 === 0 ? 4096 * i : 4 * G + 4096 * i}))
  const cases: [string, Record<string, unknown>[], Record<string, AA.DataType>?, object?][] = [
    ['two slots, alternating', alternate(50), undefined, two],
    ['two slots, a write across the end of the low one', [...alternate(9), W(100, {gpa: 2 * G - 4})], undefined, two],
    ['two slots, a write in the hole between them', [...alternate(9), W(100, {gpa: 3 * G})], undefined, two],
    ['two slots, a write across the end of the high one', [...alternate(9), W(100, {gpa: 8 * G - 4})], undefined, two],
    ['time backwards', [W(10), W(20), W(15)]],
    ['time backwards after another kind', [W(10), {t_ns: 30, kind: 'mig_start'}, W(20)]],
    ['a field the kind does not use', [W(10), {t_ns: 20, kind: 'mig_sync', gpa: 4096}]],
    ['a required field missing', [W(10), {t_ns: 20, kind: 'dma_write', len: 8}]],
    ['vcpu on a dma_write', [W(10), {t_ns: 20, kind: 'dma_write', vcpu: 1, gpa: 4096, len: 8}]],
    ['len 0', [W(10), W(20, {len: 0})]],
    ['across the end of memory', [W(10), W(20, {gpa: 2 ** 30 - 4, len: 8})]],
    ['outside memory', [W(10), W(20, {gpa: 2 ** 33})]],
    ['unknown kind', [W(10), {t_ns: 20, kind: 'scribble'}]],
    ['an op the kind does not take', [W(10), {t_ns: 20, kind: 'page_sent', gpa: 4096, op: 'start'}]],
    ['an unknown op', [W(10), {t_ns: 20, kind: 'page_sent', gpa: 4096, op: 'sideways'}]],
    ['bad params', [W(10), {t_ns: 20, kind: 'mig_set', params: 'no equals sign'}]],
    ['an unknown device', [W(10), {t_ns: 20, kind: 'vmem_unplug_all', dev: 'vmem9'}]],
    ['a virtio-mem range outside its device', [W(10), {t_ns: 20, kind: 'vmem_plug', dev: 'vmem0', gpa: 4096, count: 1}]],
    ['a negative int32', [W(10), W(20, {vcpu: -1})]],
    ['a negative time', [{t_ns: -5, kind: 'mig_start'}]],
    ['uint64 above 2^63', [W(10), W(20, {gpa: 2 ** 63 + 2 ** 12})], {gpa: new AA.Uint64()}],
    ['narrow unsigned ints', [W(10, {vcpu: 1, len: 255}), W(20, {vcpu: 2})], {vcpu: new AA.Uint8(), len: new AA.Uint16()}],
    ['fine', [W(10), {t_ns: 20, kind: 'mig_set', params: 'max-bandwidth=1G'}, {t_ns: 30, kind: 'vmem_plug', dev: 'vmem0', gpa: 2 ** 32, count: 1}, {t_ns: 40, kind: 'page_sent', gpa: 8192, op: 'zero', count: 2}]],
  ]
  for (const [name, rows, types, header] of cases) {
    const p = join(d, 'x.arrow')
    writeFileSync(p, AA.tableToIPC(table(rows, types, header), 'file'))
    const want = await columns(p, false, 1 << 16)
    t.deepEqual(await columns(p, true, 1 << 16), want, name)
    t.deepEqual(await columns(p, true, 1), await columns(p, false, 1), `${name}, a row per slice`)
    if (name === 'fine' || name === 'two slots, alternating') {
      t.true(Array.isArray(want))
      t.deepEqual(await directRows(p), {taken: rows.length, left: 0}, 'the reference library file goes the direct path')
    } else if (name !== 'narrow unsigned ints') t.regex(String(want), /^\/.*x\.arrow:\d+: /, `${name}: an error`)
  }
})

/** A file of two record batches: the first sets every column (the all-kinds rows and writes), the second only writes (5 of 13 columns), ending in `last`. */
async function twoBatches(path: string, last: EventRecord): Promise<void> {
  const header = parseHeader(ALL_KINDS_HEADER)
  const layout = new TraceLayout(header)
  const first = mixed(1 << 16).slice(0, 1 << 16)
  let t = first.at(-1)!.t_ns
  const writes: EventRecord[] = Array.from({length: 5000}, (_, i) => ({t_ns: ++t, kind: 'write', vcpu: i & 1, gpa: ((i * 7919) % 2 ** 18) * 4096, len: 8}))
  const w = await TraceWriter.open(path, header, layout.devices.map((x) => x.id))
  const b = createBatch(first.length + writes.length + 1)
  for (const r of [...first, ...writes, {...last, t_ns: ++t}]) pushRecord(b, r, layout.deviceIndex)
  await w.writeBatch(b)
  await w.close()
}

test('a record batch of the direct path is read sparsely: the buffers of the columns its rows set, the rest by complete()', async (t) => {
  const d = tmp()
  const p = join(d, 'two.arrow')
  await twoBatches(p, {t_ns: 0, kind: 'write', vcpu: 0, gpa: 4096, len: 8})
  // What a full read gives, message by message.
  const full: Uint8Array[] = []
  const r0 = await IpcMessageReader.open(p, false, 'file')
  for (let m = await r0.next(); m !== undefined; m = await r0.next()) full.push(m.bytes.slice())
  await r0.close()
  const direct = new DirectArrow()
  const asked: number[] = []
  const reader = await IpcMessageReader.open(p, false, 'file', {
    bodyRanges: (m) => {
      const r = direct.bodyRanges(m)
      asked.push(r === undefined ? -1 : r.reduce((s, x) => s + x.length, 0))
      return r
    },
  })
  let k = 0
  let sparse = 0
  for (let m = await reader.next(); m !== undefined; m = await reader.next(), k++) {
    if (m.type === MSG_SCHEMA) t.true(direct.plan(m.bytes.slice()))
    if (m.type === MSG_DICTIONARY) direct.dictionary(m.bytes.slice())
    if (m.type !== MSG_RECORD_BATCH) {
      t.deepEqual(m.bytes, full[k])
      continue
    }
    const want = full[k]!
    const ranges = direct.bodyRanges(want)!
    const head = want.length - m.bodyLength
    // The ranges asked for hold the file's bytes ...
    for (const r of ranges) t.deepEqual(m.bytes.subarray(head + r.offset, head + r.offset + r.length), want.subarray(head + r.offset, head + r.offset + r.length))
    const read = ranges.reduce((s, x) => s + x.length, 0)
    // (A batch whose rows set every column leaves out its last buffer's padding only.)
    if (read < m.bodyLength - 64) {
      sparse++
      // ... the rest is not read (the buffer still holds the message before), until complete().
      t.notDeepEqual(m.bytes, want)
    }
    await m.complete()
    t.deepEqual(m.bytes, want, `record batch at message ${k}, after complete()`)
  }
  await reader.close()
  // The first batch sets every column: read whole; the second (writes only: t, kind, vcpu, gpa and
  // len) is read sparsely, less than half its body.
  t.is(asked.length, 2)
  t.is(sparse, 1)
  t.true(asked[1]! > 0 && asked[1]! < full.at(-1)!.length / 2, `read ${asked[1]} bytes`)
})

test('a sparsely read record batch the direct path declines goes the general path whole: same events and errors as a full read', async (t) => {
  const d = tmp()
  for (const [name, last] of [
    ['fine', {t_ns: 0, kind: 'write', vcpu: 1, gpa: 8192, len: 4}],
    ['len 0', {t_ns: 0, kind: 'write', vcpu: 0, gpa: 4096, len: 0}],
    ['a vCPU the header does not have', {t_ns: 0, kind: 'write', vcpu: 7, gpa: 4096, len: 8}],
    ['an iova on a write', {t_ns: 0, kind: 'write', vcpu: 0, gpa: 4096, iova: 4096, len: 8}],
  ] as [string, EventRecord][]) {
    const p = join(d, 'two.arrow')
    await twoBatches(p, last)
    const want = await columns(p, false, 1 << 16)
    t.deepEqual(await columns(p, true, 1 << 16), want, name)
    if (name === 'fine') t.true(Array.isArray(want))
    else t.regex(String(want), /two\.arrow:70537: /, name)
  }
})
