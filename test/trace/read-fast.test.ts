// The readers' fast paths (canonical access rows, the JSON key scanner, copying only the line that
// straddles two chunks) must give exactly what the general paths give: the same events, the same
// error for a bad row. The oracles here are the general decoders themselves (RowDecoder.csvRow,
// and JSON.parse + RowDecoder.valuesRow as the JSON Lines reader worked before the scanner),
// run line by line on the same text.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {FIELDS, FIELD_INDEX, createBatch, type EventRecord} from '../../src/trace/events.js'
import {parseHeader} from '../../src/trace/header.js'
import {TraceLayout} from '../../src/trace/layout.js'
import {RowDecoder} from '../../src/trace/read/decode.js'
import {RawJson} from '../../src/trace/read/json-scan.js'
import {openTrace, type OpenTrace} from '../../src/trace/read/open.js'
import {TraceWriter} from '../../src/trace/write/writer.js'
import {pushRecord, toRecord} from '../../src/trace/write/encode.js'
import {UserError} from '../../src/util/errors.js'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'migtrace-fast-'))
const HEADER_OBJ = {format: 'migtrace', version: 1, memory: '1G', vcpus: 4, virtioMem: [{id: 'vmem0', base: '4G', regionSize: '1G'}]}
const HEADER_LINE = JSON.stringify(HEADER_OBJ)
const CSV_HEAD = `# ${HEADER_LINE}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n`

async function records(t: OpenTrace, batchSize?: number): Promise<EventRecord[]> {
  const out: EventRecord[] = []
  for await (const b of t.events({batchSize})) for (let i = 0; i < b.length; i++) out.push(toRecord(b, i, t.deviceIds))
  return out
}

/** What reading a whole file gives: the events, or the first error's message. */
async function readAll(path: string, batchSize?: number): Promise<EventRecord[] | string> {
  try {
    return await records(await openTrace(path), batchSize)
  } catch (e) {
    if (e instanceof UserError) return e.message
    throw e
  }
}

/** A seeded xorshift32: the same cases on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 4294967296
  }
}

test('traces of several chunks: every line, also one longer than a chunk, arrives once and in order (CSV and JSONL, any batch size)', async (t) => {
  const d = tmp()
  const header = parseHeader(HEADER_OBJ)
  const layout = new TraceLayout(header)
  const rnd = rng(7)
  const recs: EventRecord[] = []
  let time = 0
  for (let i = 0; i < 70000; i++) {
    time += 1 + Math.floor(rnd() * 1000)
    const r = rnd()
    const gpa = Math.floor(rnd() * 262144) * 4096
    if (i === 30000) recs.push({t_ns: time, kind: 'mig_set', params: `note=${'x'.repeat(1_500_000)}`})
    else if (r < 0.7) recs.push({t_ns: time, kind: 'write', vcpu: Math.floor(rnd() * 4), gpa: gpa + Math.floor(rnd() * 4096), len: 1 + Math.floor(rnd() * 4096 - (gpa % 4096)) || 1})
    else if (r < 0.8) recs.push({t_ns: time, kind: 'read', vcpu: 3, gpa, len: 4096})
    else if (r < 0.9) recs.push({t_ns: time, kind: 'dma_write', gpa, len: 64})
    else if (r < 0.95) recs.push({t_ns: time, kind: 'vmem_plug', dev: 'vmem0', gpa: 2 ** 32 + Math.floor(rnd() * 512) * 2 ** 21, count: 1})
    else recs.push({t_ns: time, kind: 'mig_sync', value: Math.floor(rnd() * 1e9)})
  }
  const b = createBatch(recs.length)
  for (const r of recs) pushRecord(b, r, layout.deviceIndex)
  for (const name of ['many.csv', 'many.jsonl']) {
    const w = await TraceWriter.open(join(d, name), header, layout.devices.map((x) => x.id))
    await w.writeBatch(b)
    await w.close()
    t.deepEqual(await readAll(join(d, name)), recs, name)
    t.deepEqual(await readAll(join(d, name), 997), recs, `${name}, batches of 997`)
  }
})

// ---------------------------------------------------------------------------------------------
// CSV: the canonical-access fast path against the general row decoder.

/** The general path alone, line by line: csvRow (plain rows) — the oracle for the fast path. */
function csvOracle(lines: string[]): EventRecord[] | string {
  const header = parseHeader(HEADER_OBJ)
  const layout = new TraceLayout(header)
  const dec = new RowDecoder(layout, 'x.csv')
  const b = createBatch(lines.length + 1)
  try {
    lines.forEach((l, k) => {
      const buf = Buffer.from(l)
      if (!dec.csvRow(b, buf, 0, buf.length, k + 3, false)) throw new Error('quoted rows are not in this test')
    })
  } catch (e) {
    if (e instanceof UserError) return e.message
    throw e
  }
  return Array.from({length: b.length}, (_, i) => toRecord(b, i, layout.devices.map((x) => x.id)))
}

test('CSV: rows near the canonical access form decode as the general path decodes them, errors included', async (t) => {
  const d = tmp()
  const p = join(d, 'x.csv')
  const cases = [
    '1,write,0,,,0x1000,,8,,,,,',
    '1,read,3,,,4096,,8,,,,,',
    '1,write,0,,,0X1AbC0,,8,,,,,',
    '007,write,0,,,0x1000,,008,,,,,',
    '1234567890123456,write,0,,,0x1000,,8,,,,,',
    '1,write,0,,,0x3fffffff,,1,,,,,',
    '1,write,0,,,0x3fffffff,,2,,,,,',
    '1,write,4,,,0x1000,,8,,,,,',
    '1,write,0,,,0x1000,,0,,,,,',
    '1,write,0,,,0x,,8,,,,,',
    '1,write,0,,,0x1000,,8,,,,',
    '1,write,0,,,0x1000,,8,,,,,,',
    '1,write,0,,,0x1000,,8,,,,,x',
    '1,write,,,,0x1000,,8,,,,,',
    '1,write,0,,0,0x1000,,8,,,,,',
    '1,writes,0,,,0x1000,,8,,,,,',
    '1,write,0,,,0x00000000000001000,,8,,,,,',
    '1,write,0,,,0x40000000,,8,,,,,',
    '1,write,0,,,0x1000,,9007199254740993,,,,,',
    '1,write,99999999999,,,0x1000,,8,,,,,',
    '2,write,0,,,0x1000,,8,,,,,\n1,write,0,,,0x1000,,8,,,,,',
    // Device writes without a device: the run takes them too (an empty vcpu).
    '1,dma_write,,,,0x1000,,4096,,,,,',
    '1,vhost_write,,,,4096,,1500,,,,,',
    '1,dma_write,,,,0x1000,,0,,,,,',
    '1,dma_write,,,,0xffffffffff000,,4096,,,,,',
    '1,dma_write,,,,0x3ffff000,,8192,,,,,',
    '1,dma_write,0,,,0x1000,,4096,,,,,',
    '1,vhost_write,,vmem0,,0x1000,,4096,,,,,',
    '1,dma_write,,,1,0x1000,,4096,,,,,',
    '1,dma_writ,,,,0x1000,,4096,,,,,',
    '1,vhost_writes,,,,0x1000,,4096,,,,,',
    '1,dma_write,,,,0x1000,,4096,,,,',
    '2,dma_write,,,,0x1000,,8,,,,,\n1,vhost_write,,,,0x1000,,8,,,,,',
  ]
  for (const c of cases) {
    writeFileSync(p, `${CSV_HEAD}${c}\n`)
    const want = csvOracle(c.split('\n'))
    t.deepEqual(await readAll(p), typeof want === 'string' ? want.replace('x.csv', p) : want, c)
  }
})

test('CSV: a seeded fuzz of byte changes to canonical access rows gives what the general path gives', async (t) => {
  const d = tmp()
  const p = join(d, 'fuzz.csv')
  const rnd = rng(12345)
  const alphabet = '0123456789abcdefxX,-.#" wrteadmvhos_\r'
  let checked = 0
  for (let k = 0; k < 400; k++) {
    const rows: string[] = []
    for (let i = 0; i < 5; i++) {
      const r = rnd()
      const kind = r < 0.6 ? 'write' : r < 0.75 ? 'read' : r < 0.9 ? 'dma_write' : 'vhost_write'
      const vcpu = r < 0.75 ? String(Math.floor(rnd() * 4)) : ''
      rows.push(`${100 * (k * 5 + i)},${kind},${vcpu},,,0x${(Math.floor(rnd() * 262143) * 4096).toString(16)},,${1 + Math.floor(rnd() * 64)},,,,,`)
    }
    const i = Math.floor(rnd() * rows.length)
    const row = rows[i]!
    const at = Math.floor(rnd() * row.length)
    const op = rnd()
    const ch = alphabet[Math.floor(rnd() * alphabet.length)]!
    rows[i] = op < 0.4 ? row.slice(0, at) + ch + row.slice(at + 1) : op < 0.7 ? row.slice(0, at) + ch + row.slice(at) : row.slice(0, at) + row.slice(at + 1)
    if (rows[i]!.includes('"') || rows[i]!.includes('\r') || rows[i]!.startsWith('#') || rows[i] === '') continue
    writeFileSync(p, `${CSV_HEAD}${rows.join('\n')}\n`)
    const want = csvOracle(rows)
    t.deepEqual(await readAll(p), typeof want === 'string' ? want.replace('x.csv', p) : want, rows[i])
    checked++
  }
  t.true(checked > 300)
})

// ---------------------------------------------------------------------------------------------
// JSON Lines: the scanner and the access fast path against JSON.parse + valuesRow.

const INDEX = new Map<string, number>(Object.entries(FIELD_INDEX))

/** JSON Lines as the reader decoded it before the scanner: JSON.parse, then valuesRow. */
function jsonOracle(lines: string[]): EventRecord[] | string {
  const header = parseHeader(HEADER_OBJ)
  const layout = new TraceLayout(header)
  const dec = new RowDecoder(layout, 'x.jsonl')
  const b = createBatch(lines.length + 1)
  for (let k = 0; k < lines.length; k++) {
    const line = k + 2
    let obj: unknown
    try {
      obj = JSON.parse(lines[k]!)
    } catch {
      return `x.jsonl:${line}: not valid JSON`
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return `x.jsonl:${line}: not a JSON object`
    const values: unknown[] = new Array(FIELDS.length)
    for (const key in obj) {
      const fi = INDEX.get(key)
      if (fi === undefined) return `x.jsonl:${line}: field '${key}': unknown field`
      const v = (obj as Record<string, unknown>)[key]
      // The reader keeps a nested value as its text, to show it in the message.
      values[fi] = typeof v === 'object' && v !== null ? new RawJson(JSON.stringify(v)) : v
    }
    try {
      dec.valuesRow(b, values, line)
    } catch (e) {
      if (e instanceof UserError) return e.message
      throw e
    }
  }
  return Array.from({length: b.length}, (_, i) => toRecord(b, i, layout.devices.map((x) => x.id)))
}

/** The reader's result in the oracle's terms (syntax errors compared by kind, not wording). */
function comparable(got: EventRecord[] | string, path: string): EventRecord[] | string {
  if (typeof got !== 'string') return got
  const m = got.replace(path, 'x.jsonl')
  for (const short of ['not valid JSON', 'not a JSON object', 'unknown field']) {
    const at = m.indexOf(short)
    if (at >= 0 && !/field '(kind|t_ns|vcpu|dev|slot|gpa|iova|len|page|count|value|op|params)': (?!unknown field)/.test(m)) return m.slice(0, at + short.length)
  }
  return m
}

test('JSONL: lines of every shape decode as JSON.parse + valuesRow decode them', async (t) => {
  const d = tmp()
  const p = join(d, 'x.jsonl')
  const cases = [
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"read","vcpu":3,"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"dma_write","gpa":"0x1000","len":4096}',
    '{"t_ns":1,"kind":"vhost_write","gpa":"0x1000","len":1500}',
    '{"t_ns":1,"kind":"dma_write","gpa":"0x1000","len":0}',
    '{"t_ns":1,"kind":"vhost_write","gpa":"0x1000","len":01}',
    '{"t_ns":1,"kind":"dma_write","gpa":"0xffffffffff000","len":4096}',
    '{"t_ns":1,"kind":"dma_write","vcpu":0,"gpa":"0x1000","len":4096}',
    '{"t_ns":1,"kind":"vhost_write","gpa":"0x1000"}',
    '{"t_ns":1,"kind":"dma_write","gpa":"0x1000","len":4096,"dev":"vmem0"}',
    '{"t_ns":1,"kind":"vhost_write","gpa":"0x","len":1500}',
    ' { "len" : 8 , "gpa" : 4096 , "vcpu" : 0 , "kind" : "write" , "t_ns" : 1 } ',
    '{"t_ns":1,"kind":"\\u0077rite","vcpu":0,"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,"len":16}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8.0}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":1e3}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":2.5}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":-8}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":-0}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":"8"}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":""}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":null}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":true}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":9007199254740993}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,"dev":null}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,"dev":"vmem0"}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,"slot":[1]}',
    '{"t_ns":1,"kind":"vmem_plug","dev":"vmem0","gpa":"0x100000000","count":1}',
    '{"t_ns":1,"kind":"vmem_plug","dev":"vm\\u0065m0","gpa":"0x100000000","count":1}',
    '{"t_ns":1,"kind":"vmem_plug","dev":7,"gpa":"0x100000000","count":1}',
    '{"t_ns":1,"kind":"mig_start","params":"max-bandwidth=1"}',
    '{"t_ns":1,"kind":"mig_start","params":"max bandwidth"}',
    '{"t_ns":1,"kind":7}',
    '{"t_ns":1,"kind":"wrte"}',
    '{"t_ns":1}',
    '{}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,"size":1}',
    '{"t_ns":01,"kind":"write","vcpu":0,"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8}x',
    '{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,}',
    '{"t_ns":1,"kind":"write"',
    '{"t_ns":1,"kind":"wr\tite"}',
    '{"t_ns":1,"kind":"wr\\qite"}',
    '[1,2]',
    '42',
    '"write"',
    'null',
    '{"t_ns":1,"kind":"write","vcpu":{"a":[1,{"b":null}]},"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"write","vcpu":[1,2,],"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"write","vcpu":[1 2],"gpa":"0x1000","len":8}',
    '{"t_ns":1,"kind":"write","vcpu":{"a" 1},"gpa":"0x1000","len":8}',
  ]
  for (const c of cases) {
    writeFileSync(p, `${HEADER_LINE}\n${c}\n`)
    t.deepEqual(comparable(await readAll(p), p), jsonOracle([c]), c)
  }
})

test('JSONL: a seeded fuzz of byte changes to event lines gives what JSON.parse + valuesRow give', async (t) => {
  const d = tmp()
  const p = join(d, 'fuzz.jsonl')
  const rnd = rng(99)
  const alphabet = '0123456789abcdefx,:{}[]"\\ -.eEnultr'
  for (let k = 0; k < 400; k++) {
    const rows: string[] = []
    for (let i = 0; i < 4; i++) {
      const tn = 100 * (k * 4 + i)
      const r = rnd()
      rows.push(
        r < 0.5
          ? `{"t_ns":${tn},"kind":"write","vcpu":${Math.floor(rnd() * 4)},"gpa":"0x${(Math.floor(rnd() * 262143) * 4096).toString(16)}","len":${1 + Math.floor(rnd() * 64)}}`
          : r < 0.7
            ? `{"t_ns":${tn},"kind":"${rnd() < 0.5 ? 'dma_write' : 'vhost_write'}","gpa":"0x${(Math.floor(rnd() * 262143) * 4096).toString(16)}","len":${1 + Math.floor(rnd() * 4096)}}`
            : `{"t_ns":${tn},"kind":"vmem_plug","dev":"vmem0","gpa":"0x${(2 ** 32 + Math.floor(rnd() * 511) * 2 ** 21).toString(16)}","count":1}`,
      )
    }
    const i = Math.floor(rnd() * rows.length)
    const row = rows[i]!
    const at = Math.floor(rnd() * row.length)
    const op = rnd()
    const ch = alphabet[Math.floor(rnd() * alphabet.length)]!
    rows[i] = op < 0.4 ? row.slice(0, at) + ch + row.slice(at + 1) : op < 0.7 ? row.slice(0, at) + ch + row.slice(at) : row.slice(0, at) + row.slice(at + 1)
    if (rows[i]!.trim() === '') continue
    writeFileSync(p, `${HEADER_LINE}\n${rows.join('\n')}\n`)
    t.deepEqual(comparable(await readAll(p), p), jsonOracle(rows), rows[i])
  }
})

test('JSONL: any depth of nesting is one clear error naming file, line and field (never a stack overflow)', async (t) => {
  const d = tmp()
  const p = join(d, 'deep.jsonl')
  const deep = '['.repeat(100000) + ']'.repeat(100000)
  const cases: [string, string][] = [
    [`{"t_ns":1,"kind":"write","vcpu":${deep},"gpa":"0x1000","len":8}`, `${p}:2: field 'vcpu': not a number (expected a whole number >= 0 (decimal, or 0x hex), found '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...')`],
    [`{"t_ns":1,"kind":${deep}}`, `${p}:2: field 'kind': not a kind name (expected a string such as "write", found '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...')`],
    [`{"t_ns":1,"kind":"vmem_plug","dev":${deep},"gpa":"0x100000000","count":1}`, `${p}:2: field 'dev': not a string (expected a string, found '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...')`],
    [`{"t_ns":1,"kind":"write","vcpu":0,"gpa":"0x1000","len":8,"slot":${deep}}`, `${p}:2: field 'slot': a write event does not use this field (expected an empty value, found '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...')`],
    [deep, `${p}:2: not a JSON object (expected one JSON object per line, found '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...')`],
    [`{"t_ns":1,"x":${deep}}`, `${p}:2: field 'x': unknown field (expected one of ${FIELDS.join(', ')}, found 'x')`],
    [`{"kind":"write","t_ns":${'{"a":'.repeat(50000)}1${'}'.repeat(50000)}}`, `${p}:2: field 't_ns': not a number (expected a whole number >= 0 (decimal, or 0x hex), found '{"a":{"a":{"a":{"a":{"a":{"a":{"a":{"...')`],
    [`{"t_ns":1,"kind":${'['.repeat(100000)}`, `${p}:2: not valid JSON (expected a JSON value, found the end of the line at column ${100000 + 18})`],
  ]
  for (const [line, message] of cases) {
    writeFileSync(p, `${HEADER_LINE}\n${line}\n`)
    t.is(await readAll(p), message)
  }
})

test('JSONL: syntax errors say what was expected and where', async (t) => {
  const d = tmp()
  const p = join(d, 's.jsonl')
  const cases: [string, string][] = [
    ['{"t_ns":1,"kind":"write",', "not valid JSON (expected a field name in double quotes, found the end of the line at column 26)"],
    ['{"t_ns":1,"kind":"wri', 'not valid JSON (expected a closing double quote, found an unterminated string (opened at column 18))'],
    ['{"t_ns":01}', 'not valid JSON (expected no leading zero in a number, found a leading zero at column 9)'],
    ['{"t_ns":1 "kind":"write"}', "not valid JSON (expected ',' or '}', found '\"' at column 11)"],
    ['{"t_ns":1,"kind":"wr\\qite"}', 'not valid JSON (expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX), found \'q\' at column 22)'],
    ['{"t_ns":1,"kind":"write"} {}', "not valid JSON (expected the end of the line after the object, found '{' at column 27)"],
    ['{"t_ns":1,"kind":"w\u0001"}', 'not valid JSON (expected no control character inside a string, found a control character (0x01) at column 20)'],
  ]
  for (const [line, reason] of cases) {
    writeFileSync(p, `${HEADER_LINE}\n${line}\n`)
    t.is(await readAll(p), `${p}:2: ${reason}`, line)
  }
})
