// Arrow traces: a first-class format next to CSV and JSON Lines. Round trips are byte-identical
// back to text; the reference Arrow implementation (apache-arrow, the Arrow project's own JS
// library, independent of the flechette encoder migtrace uses) reads what migtrace writes, and
// migtrace reads what it writes, with the same errors as for text traces.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {gzipSync} from 'node:zlib'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import * as AA from 'apache-arrow'
import {createBatch, type EventRecord} from '../../src/trace/events.js'
import {parseHeader, serializeHeader} from '../../src/trace/header.js'
import {TraceLayout} from '../../src/trace/layout.js'
import {kindNeedle} from '../../src/trace/read/kind-scan.js'
import {convertTrace} from '../../src/trace/read/convert.js'
import {openTrace} from '../../src/trace/read/open.js'
import {validateTrace} from '../../src/trace/read/validate.js'
import {TraceWriter} from '../../src/trace/write/writer.js'
import {pushRecord, toRecord} from '../../src/trace/write/encode.js'
import {UserError} from '../../src/util/errors.js'
import {footerMetadata, readFooter} from '../../src/trace/arrow/ipc.js'
import {ALL_KINDS} from '../../scripts/make-fixtures.js'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'migtrace-arrow-'))
const text = (p: string): string => readFileSync(p, 'utf8')

async function readAll(path: string): Promise<EventRecord[] | string> {
  try {
    const t = await openTrace(path)
    const out: EventRecord[] = []
    for await (const b of t.events()) for (let i = 0; i < b.length; i++) out.push(toRecord(b, i, t.deviceIds))
    return out
  } catch (e) {
    if (e instanceof UserError) return e.message
    throw e
  }
}

test('CSV -> Arrow -> CSV and JSONL -> Arrow -> JSONL are byte-identical', async (t) => {
  const d = tmp()
  t.is(await convertTrace('fixtures/all-kinds.csv', join(d, 'a.arrow')), ALL_KINDS.length)
  await convertTrace(join(d, 'a.arrow'), join(d, 'a.csv'))
  t.is(text(join(d, 'a.csv')), text('fixtures/all-kinds.csv'))
  await convertTrace('fixtures/all-kinds.jsonl', join(d, 'b.arrow'))
  await convertTrace(join(d, 'b.arrow'), join(d, 'b.jsonl'))
  t.is(text(join(d, 'b.jsonl')), text('fixtures/all-kinds.jsonl'))
  t.deepEqual(await readAll(join(d, 'a.arrow')), ALL_KINDS)
  const tr = await openTrace(join(d, 'a.arrow'))
  t.is(tr.format, 'arrow')
  t.deepEqual(serializeHeader(tr.header), serializeHeader((await openTrace('fixtures/all-kinds.csv')).header))
})

test('a trace of several record batches, with params of every size, round-trips through Arrow', async (t) => {
  const d = tmp()
  const header = parseHeader({format: 'migtrace', version: 1, memory: '1G', vcpus: 4, virtioMem: [{id: 'vmem0', base: '4G', regionSize: '1G'}]})
  const layout = new TraceLayout(header)
  const recs: EventRecord[] = []
  for (let i = 0; i < 150_000; i++) {
    const t_ns = i * 10
    if (i % 50_000 === 7) recs.push({t_ns, kind: 'mig_set', params: `note=${'y'.repeat(100_000 + i)}`})
    else if (i % 997 === 3) recs.push({t_ns, kind: 'vmem_plug', dev: 'vmem0', gpa: 2 ** 32 + (i % 512) * 2 ** 21, count: 1})
    else if (i % 13 === 0) recs.push({t_ns, kind: 'page_sent', gpa: (i % 262144) * 4096, op: i % 2 ? 'zero' : 'normal'})
    else recs.push({t_ns, kind: 'write', vcpu: i % 4, gpa: (i * 7919) % 2 ** 30, len: 1})
  }
  const b = createBatch(recs.length)
  for (const r of recs) pushRecord(b, r, layout.deviceIndex)
  for (const name of ['x.csv', 'x.arrow']) {
    const w = await TraceWriter.open(join(d, name), header, layout.devices.map((x) => x.id))
    // In pieces of odd sizes: the Arrow writer gathers them into full record batches.
    for (let at = 0; at < recs.length; at += 33_333) {
      const part = createBatch(33_333)
      for (const r of recs.slice(at, at + 33_333)) pushRecord(part, r, layout.deviceIndex)
      await w.writeBatch(part)
    }
    await w.close()
  }
  t.deepEqual(await readAll(join(d, 'x.arrow')), recs)
  await convertTrace(join(d, 'x.arrow'), join(d, 'y.csv'))
  t.is(text(join(d, 'y.csv')), text(join(d, 'x.csv')))
  const reader = AA.RecordBatchFileReader.from(readFileSync(join(d, 'x.arrow')))
  reader.open()
  t.is(reader.numRecordBatches, 3)
})

test('the reference Arrow library reads a migtrace Arrow trace: types, values, nulls, header and kind counts', async (t) => {
  const d = tmp()
  const p = join(d, 'a.arrow')
  await convertTrace('fixtures/all-kinds.csv', p)
  const bytes = readFileSync(p)
  const table = AA.tableFromIPC(bytes)
  t.deepEqual(
    table.schema.fields.map((f) => `${f.name}:${String(f.type)}${f.nullable ? '?' : ''}`),
    ['t_ns:Int64', 'kind:Dictionary<Int8, Utf8>', 'vcpu:Int32?', 'dev:Dictionary<Int16, Utf8>?', 'slot:Int32?', 'gpa:Int64?', 'iova:Int64?', 'len:Int64?', 'page:Int64?', 'count:Int64?', 'value:Int64?', 'op:Dictionary<Int8, Utf8>?', 'params:Utf8?'],
  )
  t.is(table.numRows, ALL_KINDS.length)
  const rows = table.toArray().map((r) => Object.fromEntries(Object.entries(r!.toJSON() as Record<string, unknown>).filter(([, v]) => v !== null).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])))
  t.deepEqual(rows, ALL_KINDS as unknown as Record<string, unknown>[])
  t.deepEqual(JSON.parse(table.schema.metadata.get('migtrace.header')!), serializeHeader((await openTrace('fixtures/all-kinds.csv')).header))
  // (the reference library does not show a footer's own metadata: read with migtrace's reader)
  const counts = JSON.parse(footerMetadata((await readFooter(p))!).get('migtrace.kinds')!) as Record<string, number>
  t.is(counts.write, ALL_KINDS.filter((r) => r.kind === 'write').length)
  t.is(Object.values(counts).reduce((a, v) => a + v, 0), ALL_KINDS.length)
})

/** A trace written by the reference library, as another tool would write one. */
function foreignTable(header: object, columns: Record<string, AA.Vector>): AA.Table {
  const table = new AA.Table(columns)
  const schema = new AA.Schema(table.schema.fields, new Map([['migtrace.header', JSON.stringify(header)]]))
  return new AA.Table(schema, table.batches)
}

const HEADER = {format: 'migtrace', version: 1, memory: '1G', vcpus: 2}

function writesTable(len: bigint[], vcpu: (number | null)[] = len.map(() => 0), kindType: 'dict' | 'utf8' = 'dict'): AA.Table {
  const n = len.length
  const kinds = Array.from({length: n}, () => 'write')
  return foreignTable(HEADER, {
    t_ns: AA.vectorFromArray(BigInt64Array.from({length: n}, (_, i) => BigInt(100 * (i + 1)))),
    kind: kindType === 'dict' ? AA.vectorFromArray(kinds, new AA.Dictionary(new AA.Utf8(), new AA.Int32())) : AA.vectorFromArray(kinds, new AA.Utf8()),
    vcpu: AA.vectorFromArray(vcpu, new AA.Int32()),
    gpa: AA.makeVector(BigUint64Array.from({length: n}, (_, i) => BigInt(4096 * (i + 1)))),
    len: AA.vectorFromArray(BigInt64Array.from(len)),
  })
}

test('traces written by the reference library (file or stream, other integer types, plain utf8 kinds) read as the same events', async (t) => {
  const d = tmp()
  const want = [8n, 16n, 24n].map((l, i) => ({t_ns: 100 * (i + 1), kind: 'write', vcpu: 0, gpa: 4096 * (i + 1), len: Number(l)}))
  for (const [name, table, format] of [
    ['file.arrow', writesTable([8n, 16n, 24n]), 'file'],
    ['stream.arrows', writesTable([8n, 16n, 24n]), 'stream'],
    ['utf8.arrow', writesTable([8n, 16n, 24n], undefined, 'utf8'), 'file'],
  ] as const) {
    const p = join(d, name)
    writeFileSync(p, AA.tableToIPC(table, format))
    t.deepEqual(await readAll(p), want, name)
  }
  // gzipped too (by its magic bytes, like text traces)
  writeFileSync(join(d, 'z.arrows.gz'), gzipSync(AA.tableToIPC(writesTable([8n, 16n, 24n]), 'stream')))
  t.deepEqual(await readAll(join(d, 'z.arrows.gz')), want)
  await convertTrace('fixtures/all-kinds.csv', join(d, 'a.arrow'))
  writeFileSync(join(d, 'a.arrow.gz'), gzipSync(readFileSync(join(d, 'a.arrow'))))
  t.deepEqual(await readAll(join(d, 'a.arrow.gz')), ALL_KINDS)
})

test('bad values in an Arrow trace get the text formats messages, with the row as the line', async (t) => {
  const d = tmp()
  const p = join(d, 'bad.arrow')
  const cases: [AA.Table, string][] = [
    [writesTable([8n, -8n, 8n]), "field 'len': negative value (expected a whole number >= 0 (decimal, or 0x hex), found -8)"],
    [writesTable([8n, 2n ** 60n, 8n]), "field 'len': number too large (expected at most 9007199254740991 (2^53-1), found '1152921504606846976')"],
    [writesTable([8n, 8n, 8n], [0, 5, 0]), "field 'vcpu': no such vCPU (expected 0..1 (the header has vcpus: 2), found 5)"],
    [writesTable([8n, 8n, 8n], [0, null, 0]), "field 'vcpu': missing value: a write event needs vcpu (expected a vCPU index, found an empty value)"],
  ]
  for (const [table, reason] of cases) {
    writeFileSync(p, AA.tableToIPC(table, 'file'))
    t.is(await readAll(p), `${p}:2: ${reason}`)
  }
  // validate goes on past a bad row, as for text traces
  writeFileSync(p, AA.tableToIPC(writesTable([8n, -8n, 8n], [0, 5, 0]), 'file'))
  const v = await validateTrace(p, {maxErrors: 10})
  t.is(v.events, 2)
  t.deepEqual(v.errors.map((e) => [e.line, e.field]), [[2, 'len']])
})

test('a damaged Arrow file or a foreign one without the header is one clear error', async (t) => {
  const d = tmp()
  const good = join(d, 'good.arrow')
  await convertTrace('fixtures/all-kinds.csv', good)
  const bytes = readFileSync(good)
  const cut = join(d, 'cut.arrow')
  writeFileSync(cut, bytes.subarray(0, 3000))
  t.regex((await readAll(cut)) as string, /cut\.arrow: the Arrow file is truncated \(it ends inside a message, at byte \d+\) \(expected a complete Arrow IPC file\)$/)
  const bare = join(d, 'bare.arrow')
  writeFileSync(bare, AA.tableToIPC(new AA.Table({t_ns: AA.vectorFromArray(BigInt64Array.of(1n)), kind: AA.vectorFromArray(['write'])}), 'file'))
  t.regex((await readAll(bare)) as string, /bare\.arrow: header missing: the schema has no migtrace header/)
  const extra = join(d, 'extra.arrow')
  writeFileSync(extra, AA.tableToIPC(foreignTable(HEADER, {t_ns: AA.vectorFromArray(BigInt64Array.of(1n)), kind: AA.vectorFromArray(['mig_start']), size: AA.vectorFromArray([1])}), 'file'))
  t.is(await readAll(extra), `${extra}: field 'size': unknown column (expected columns named as the event fields: t_ns, kind, vcpu, dev, slot, gpa, iova, len, page, count, value, op, params, found 'size')`)
  const err = await t.throwsAsync(TraceWriter.open(join(d, 'x.arrow.gz'), parseHeader(HEADER), []))
  t.is(err?.message, `${join(d, 'x.arrow.gz')}: an Arrow trace is not gzipped (expected a name ending in .arrow, without --gzip)`)
})

test('containsKind finds a mig_start without decoding the events, in every format', async (t) => {
  const d = tmp()
  const head = `# ${JSON.stringify(HEADER)}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n`
  const files: [string, string, boolean][] = [
    ['with.csv', `${head}1,write,0,,,0x1000,,8,,,,,\n2,mig_start,,,,,,,,,,,\n`, true],
    ['without.csv', `${head}# mig_start in a comment\n1,mig_set,,,,,,,,,,,note=mig_start\n`, false],
    ['quoted.csv', `${head}1,"mig_start",,,,,,,,,,,\n`, true],
    ['with.jsonl', `${JSON.stringify(HEADER)}\n{"t_ns":1,"kind":"mig_start"}\n`, true],
    ['escaped.jsonl', `${JSON.stringify(HEADER)}\n{"t_ns":1,"kind":"mig\\u005fstart"}\n`, true],
    ['without.jsonl', `${JSON.stringify({...HEADER, description: 'mig_start'})}\n{"t_ns":1,"kind":"mig_set","params":"a=mig_start"}\n`, false],
  ]
  for (const [name, body, want] of files) {
    writeFileSync(join(d, name), body)
    t.is(await (await openTrace(join(d, name))).containsKind('mig_start'), want, name)
    if (name.endsWith('.csv')) {
      await convertTrace(join(d, name), join(d, `${name}.arrow`))
      t.is(await (await openTrace(join(d, `${name}.arrow`))).containsKind('mig_start'), want, `${name}.arrow`)
    }
  }
  // A stream has no footer: the kind column is looked at instead.
  writeFileSync(join(d, 's.arrows'), AA.tableToIPC(writesTable([8n]), 'stream'))
  t.false(await (await openTrace(join(d, 's.arrows'))).containsKind('mig_start'))
  t.true(await (await openTrace(join(d, 's.arrows'))).containsKind('write'))
  // A long CSV: the name in a line that straddles two read chunks.
  const long = `${head}${'1,write,0,,,0x1000,,8,,,,,\n'.repeat(40330)}2,mig_start,,,,,,,,,,,\n`
  writeFileSync(join(d, 'long.csv'), long)
  t.true(await (await openTrace(join(d, 'long.csv'))).containsKind('mig_start'))
  // The byte search looks for the name from its first byte that is rare in a trace (a name of
  // common bytes only: all of it), and still finds the name only as a kind.
  t.is(kindNeedle('mig_start'), 'g_start')
  t.is(kindNeedle('write'), 'write')
  const writes = join(d, 'writes.csv')
  writeFileSync(writes, `${head}1,mig_set,,,,,,,,,,,note=write\n2,dma_write,,,,0x1000,,8,,,,,\n`)
  t.false(await (await openTrace(writes)).containsKind('write'))
  writeFileSync(writes, `${head}1,dma_write,,,,0x1000,,8,,,,,\n2,write,0,,,0x1000,,8,,,,,\n`)
  t.true(await (await openTrace(writes)).containsKind('write'))
})

test('a writer that learns its header at the end writes a valid Arrow trace too', async (t) => {
  const d = tmp()
  const src = await openTrace('fixtures/all-kinds.csv')
  const p = join(d, 'late.arrow')
  const w = await TraceWriter.open(p, src.header, src.deviceIds, undefined, {headerAtClose: true})
  for await (const b of src.events()) await w.writeBatch(b)
  await w.close(src.header)
  t.deepEqual(await readAll(p), ALL_KINDS)
  const reader = AA.RecordBatchFileReader.from(readFileSync(p))
  reader.open()
  t.is(reader.readAll().reduce((n, b) => n + b.numRows, 0), ALL_KINDS.length)
})
