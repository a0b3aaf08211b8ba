import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {KINDS, type EventRecord} from '../../src/trace/events.js'
import {openTrace, type OpenTrace} from '../../src/trace/read/open.js'
import {convertTrace} from '../../src/trace/read/convert.js'
import {validateTrace} from '../../src/trace/read/validate.js'
import {toRecord} from '../../src/trace/write/encode.js'
import {UserError} from '../../src/util/errors.js'
import {ALL_KINDS} from '../../scripts/make-fixtures.js'

const F = (name: string): string => `fixtures/${name}`
const BAD = (name: string): string => `fixtures/bad/${name}`

async function records(t: OpenTrace, batchSize?: number): Promise<EventRecord[]> {
  const out: EventRecord[] = []
  for await (const b of t.events({batchSize})) for (let i = 0; i < b.length; i++) out.push(toRecord(b, i, t.deviceIds))
  return out
}

async function firstError(path: string): Promise<UserError> {
  try {
    const t = await openTrace(path)
    for await (const _ of t.events()) void _
  } catch (e) {
    if (e instanceof UserError) return e
    throw e
  }
  throw new Error(`no error reading ${path}`)
}

test('the all-kinds fixtures hold every event kind, and CSV and JSONL decode to the same events', async (t) => {
  const csv = await records(await openTrace(F('all-kinds.csv')))
  const jsonl = await records(await openTrace(F('all-kinds.jsonl')))
  t.deepEqual(csv, ALL_KINDS)
  t.deepEqual(jsonl, ALL_KINDS)
  t.deepEqual([...new Set(csv.map((r) => r.kind))].sort(), KINDS.map((k) => k.name).sort())
})

test('gzip traces are read transparently (by their magic bytes)', async (t) => {
  for (const name of ['all-kinds.csv.gz', 'all-kinds.jsonl.gz']) {
    const tr = await openTrace(F(name))
    t.true(tr.gzip)
    t.deepEqual(await records(tr), ALL_KINDS)
  }
})

test('small batches are reused and still deliver every event in order', async (t) => {
  t.deepEqual(await records(await openTrace(F('all-kinds.csv')), 7), ALL_KINDS)
  t.deepEqual(await records(await openTrace(F('all-kinds.jsonl')), 3), ALL_KINDS)
})

test('each events() call is a new pass', async (t) => {
  const tr = await openTrace(F('all-kinds.csv'))
  t.is((await records(tr)).length, ALL_KINDS.length)
  t.is((await records(tr)).length, ALL_KINDS.length)
})

test('a CSV header can come from a sidecar file', async (t) => {
  const tr = await openTrace(F('sidecar.csv'))
  t.is(tr.headerFile, F('sidecar.json'))
  t.is(tr.header.vcpus, 4)
  t.is(tr.header.memslots.length, 2)
  t.deepEqual(await records(tr), [
    {t_ns: 10, kind: 'write', vcpu: 0, gpa: 4096, len: 8},
    {t_ns: 20, kind: 'write', vcpu: 3, gpa: 2 ** 32, len: 4096},
  ])
})

test('accepted variants: UTF-8 BOM, CRLF, no final newline, quoted fields', async (t) => {
  const one = {t_ns: 100, kind: 'write', vcpu: 0, gpa: 0x1000, len: 8}
  t.deepEqual(await records(await openTrace(BAD('bom.csv'))), [one])
  t.deepEqual(await records(await openTrace(BAD('crlf.csv'))), [one, {t_ns: 200, kind: 'write', vcpu: 1, gpa: 0x2000, len: 16}])
  t.deepEqual(await records(await openTrace(BAD('no-final-newline.csv'))), [one, {t_ns: 200, kind: 'write', vcpu: 0, gpa: 0x2000, len: 8}])
  t.deepEqual(await records(await openTrace(BAD('quoted-ok.csv'))), [one, {t_ns: 200, kind: 'write', vcpu: 1, gpa: 0x2000, len: 16}])
})

const EXPECTED_ERRORS: [string, string][] = [
  ['wrong-columns.csv', "fixtures/bad/wrong-columns.csv:4: wrong number of columns (expected 13 (t_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params), found 12)"],
  ['unclosed-quote.csv', "fixtures/bad/unclosed-quote.csv:4: field 'kind': unclosed quote (expected a closing double quote)"],
  ['unknown-kind.csv', "fixtures/bad/unknown-kind.csv:4: field 'kind': unknown event kind (expected a known kind (did you mean 'write'?), found 'wrte')"],
  ['missing-field.csv', "fixtures/bad/missing-field.csv:4: field 'len': missing value: a write event needs len (expected a length in bytes, found an empty value)"],
  ['extra-field.csv', "fixtures/bad/extra-field.csv:4: field 'slot': a write event does not use this field (expected an empty value, found '3')"],
  ['non-numeric.csv', "fixtures/bad/non-numeric.csv:4: field 'len': not a number (expected a whole number >= 0 (decimal, or 0x hex), found 'abc')"],
  ['negative.csv', "fixtures/bad/negative.csv:4: field 'len': negative value (expected a whole number >= 0 (decimal, or 0x hex), found '-8')"],
  ['nan.csv', "fixtures/bad/nan.csv:4: field 'gpa': not a number (expected a whole number >= 0 (decimal, or 0x hex), found 'NaN')"],
  ['fractional.csv', "fixtures/bad/fractional.csv:4: field 'len': not a whole number (expected a whole number >= 0 (decimal, or 0x hex), found '1.5')"],
  ['unsafe-integer.csv', "fixtures/bad/unsafe-integer.csv:4: field 'len': number too large (expected at most 9007199254740991 (2^53-1), found '9007199254740993')"],
  ['no-memslot.csv', "fixtures/bad/no-memslot.csv:4: field 'gpa': address in no memslot (expected an address inside 0x0..0x40000000 (slot 0), 0x100000000..0x140000000 (slot 1), found 0x50000000)"],
  ['crosses-slot.csv', "fixtures/bad/crosses-slot.csv:4: field 'len': range crosses the end of memslot 0 (expected an end at or below 0x40000000, found an end at 0x40001000)"],
  ['time-backwards.csv', "fixtures/bad/time-backwards.csv:4: field 't_ns': time goes backwards (expected >= 100 (the time on line 3), found 50)"],
  ['vcpu-range.csv', "fixtures/bad/vcpu-range.csv:4: field 'vcpu': no such vCPU (expected 0..1 (the header has vcpus: 2), found 2)"],
  ['unknown-dev.csv', "fixtures/bad/unknown-dev.csv:4: field 'dev': no device with this id in the header (expected one of vmem0, c0, gpu0, found 'vmem9')"],
  ['wrong-dev-type.csv', "fixtures/bad/wrong-dev-type.csv:4: field 'dev': a vmem_plug event needs a virtio-mem device (expected the id of a virtio-mem in the header, found 'c0', a vfio-container)"],
  ['unknown-slot.csv', "fixtures/bad/unknown-slot.csv:4: field 'slot': no memslot with this id (expected one of 0, 1, found 7)"],
  ['bad-op.csv', "fixtures/bad/bad-op.csv:4: field 'op': not an op of vfio_dirty_pages (expected one of start, stop, get, found 'pause')"],
  ['bad-params.csv', "fixtures/bad/bad-params.csv:4: field 'params': malformed parameters (expected key=value pairs joined by ';' (letters, digits and - _ . : / + @ only), found 'downtime-limit 300')"],
  ['truncated.csv', 'fixtures/bad/truncated.csv:4: truncated last line: wrong number of columns (expected 13 (t_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params), found 6)'],
  ['empty.csv', `fixtures/bad/empty.csv: empty file: a trace starts with its header (expected a first line '# {"format":"migtrace","version":1,...}' or a sidecar <trace>.json)`],
  ['header-missing.csv', `fixtures/bad/header-missing.csv:1: header missing: no header line and no sidecar file (expected a first line '# {"format":"migtrace","version":1,...}' or a sidecar <trace>.json (looked for fixtures/bad/header-missing.csv.json, fixtures/bad/header-missing.json))`],
  ['header-invalid.csv', "fixtures/bad/header-invalid.csv:1: field 'vcpus': Too small: expected number to be >0"],
  ['header-bad-json.csv', 'fixtures/bad/header-bad-json.csv:1: the header is not valid JSON (expected one JSON object, found Expected double-quoted property name in JSON at position 34)'],
  ['unknown-version.csv', "fixtures/bad/unknown-version.csv:1: field 'version': unknown header version (expected 1, found 2)"],
  ['header-missing.jsonl', 'fixtures/bad/header-missing.jsonl:1: header missing: the first line is an event (expected {"format":"migtrace","version":1,...} on the first line)'],
  ['unknown-field.jsonl', "fixtures/bad/unknown-field.jsonl:3: field 'size': unknown field (expected one of t_ns, kind, vcpu, dev, slot, gpa, iova, len, page, count, value, op, params, found 'size')"],
  ['not-json.jsonl', 'fixtures/bad/not-json.jsonl:3: not valid JSON (expected a field name in double quotes, found the end of the line at column 28)'],
  ['truncated.jsonl', 'fixtures/bad/truncated.jsonl:3: truncated last line: not complete JSON (expected a closing double quote, found an unterminated string (opened at column 20))'],
  ['negative.jsonl', "fixtures/bad/negative.jsonl:3: field 'len': negative value (expected a whole number >= 0 (decimal, or 0x hex), found -8)"],
  ['fractional.jsonl', "fixtures/bad/fractional.jsonl:3: field 'len': not a whole number (expected a whole number >= 0 (decimal, or 0x hex), found 2.5)"],
]

for (const [file, message] of EXPECTED_ERRORS) {
  test(`bad input ${file}: ${message.slice(message.indexOf(': ') + 2, message.indexOf(': ') + 50)}...`, async (t) => {
    const e = await firstError(BAD(file))
    t.is(e.message, message)
    t.is(e.file, BAD(file))
  })
}

test('every bad-input fixture in fixtures/bad is covered above or accepted', async (t) => {
  const {readdirSync} = await import('node:fs')
  const {BAD_CORPUS, BAD_CORPUS_ACCEPTED, BAD_CORPUS_COMPANIONS} = await import('../helpers/bad-corpus.js')
  // The files for the other commands (and their exact messages) are in test/helpers/bad-corpus.ts.
  const covered = new Set([...EXPECTED_ERRORS.map(([f]) => f), ...BAD_CORPUS_ACCEPTED, ...BAD_CORPUS_COMPANIONS, ...BAD_CORPUS.map(([f]) => f)])
  t.deepEqual(readdirSync('fixtures/bad').filter((f) => !covered.has(f)), [])
})

test('a directory and a missing file get clear errors', async (t) => {
  t.is((await firstError('fixtures')).message, 'fixtures: is a directory, not a trace file (expected a .csv or .jsonl trace (optionally .gz))')
  t.is((await firstError('fixtures/nope.csv')).message, 'fixtures/nope.csv: no such file')
})

test('a corrupt gzip stream is a user error naming the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-read-'))
  const {readFileSync} = await import('node:fs')
  const gz = readFileSync(F('all-kinds.csv.gz'))
  const cut = join(dir, 'cut.csv.gz')
  writeFileSync(cut, gz.subarray(0, gz.length - 40))
  const e = await firstError(cut)
  t.regex(e.message, /^.*cut\.csv\.gz:\d+: gzip data is truncated or corrupt \(unexpected end of file\)$/)
})

test('semantic rules: virtio-mem ranges, IOMMU alignment, KVM clear alignment, dirty ring mode, page_sent alignment', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-read-'))
  const header = '# {"format":"migtrace","version":1,"memory":"1G","vcpus":2,"virtioMem":[{"id":"vmem0","base":"4G","regionSize":"1G"}],"vfio":[{"id":"c0","devices":[{"id":"gpu0"}]}]}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n'
  const cases: [string, string][] = [
    ['1,vmem_plug,,vmem0,,0x100100000,,,,1,,,', "field 'gpa': address not aligned to the device block size (expected a multiple of 2097152, found 0x100100000)"],
    ['1,vmem_plug,,vmem0,,0x13fe00000,,,,2,,,', "field 'count': blocks reach past the end of virtio-mem device vmem0 (expected at most 1 blocks from 0x13fe00000, found 2)"],
    ['1,vmem_plug,,vmem0,,0x1000,,,,1,,,', "field 'gpa': address outside virtio-mem device vmem0 (expected an address in 0x100000000..0x140000000, found 0x1000)"],
    ['1,vmem_resize,,vmem0,,,,,,,1000,,', "field 'value': requested size must be a multiple of the block size within the region (expected a multiple of 2097152 up to 1073741824, found 1000)"],
    ['1,vmem_reset,,vmem0,,,,,,,2,,', "field 'value': a vmem_reset value is the reset type (expected 0 (a reset) or 1 (a wake-up from suspend), found 2)"],
    ['1,vmem_reset,,c0,,,,,,,,,', "field 'dev': a vmem_reset event needs a virtio-mem device (expected the id of a virtio-mem in the header, found 'c0', a vfio-container)"],
    ['1,vmem_reset,,vmem0,,,,,,,1,,', ''],
    ['1,mig_net_fail,,,,,,,,,,,', ''],
    ['1,vfio_map,,c0,,0x1000,0x1800,4096,,,,,', "field 'iova': not aligned to the IOMMU page size (expected a multiple of 4096, found 0x1800)"],
    ['1,vfio_dma_write,,c0,,,0x1000,8,,,,,', "field 'dev': a vfio_dma_write event needs a vfio-device device (expected the id of a vfio-device in the header, found 'c0', a vfio-container)"],
    ['1,vfio_dirty_pages,,c0,,,,,,,,get,', "field 'iova': missing value: a vfio_dirty_pages get needs iova (expected an IO virtual address, found an empty value)"],
    ['1,vfio_dirty_pages,,c0,,,0x1000,4096,,,,start,', "field 'iova': a vfio_dirty_pages start or stop does not use this field (expected an empty value, found 0x1000)"],
    ['1,kvm_clear_dirty_log,,,0,,,,32,64,,,', "field 'page': KVM_CLEAR_DIRTY_LOG needs first_page aligned to 64 (expected a multiple of 64, found 32)"],
    ['1,kvm_clear_dirty_log,,,0,,,,0,100,,,', "field 'count': KVM_CLEAR_DIRTY_LOG needs a multiple of 64 pages unless the range reaches the slot end (expected a multiple of 64, or 262144, found 100)"],
    ['1,kvm_dirty_ring_page,0,,0,,,,5,,,,', "field 'kind': dirty-ring events need dirty ring tracking (expected dirtyTracking.mode 'ring' in the header, found mode 'bitmap')"],
    ['1,page_sent,,,,0x1008,,,,,,,', "field 'gpa': a sent page must start on a page boundary (expected a multiple of the page size 4096, found 0x1008)"],
    ['1,write,0,,,0x1000,,0,,,,,', "field 'len': must be at least 1 (expected a number >= 1, found 0)"],
    ['1,write,0,,,0x1000,,8,,,,,,', 'wrong number of columns (expected 13 (t_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params), found 14)'],
    [',write,0,,,0x1000,,8,,,,,', "field 't_ns': missing value: a write event needs t_ns (expected a time in ns, found an empty value)"],
    ['1,mig_postcopy,,,,,,,,,,,', ''],
  ]
  for (const [row, reason] of cases) {
    const p = join(dir, 'case.csv')
    writeFileSync(p, `${header}${row}\n`)
    if (reason === '') {
      t.is((await records(await openTrace(p))).length, 1, row)
      continue
    }
    const e = await firstError(p)
    t.is(e.message, `${p}:3: ${reason}`, row)
  }
})

test('validate collects errors past the first, skipping bad rows, up to --max-errors', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-read-'))
  const p = join(dir, 'many.csv')
  const rows = ['1,write,0,,,0x1000,,8,,,,,', '2,write,9,,,0x1000,,8,,,,,', '3,wrte,0,,,0x1000,,8,,,,,', '4,write,0,,,0x1000,,8,,,,,', '1,write,0,,,0x1000,,8,,,,,']
  writeFileSync(p, `# {"format":"migtrace","version":1,"vcpus":2}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n${rows.join('\n')}\n`)
  const all = await validateTrace(p, {maxErrors: 10})
  t.false(all.valid)
  t.is(all.events, 2)
  t.deepEqual(all.errors.map((e) => [e.line, e.field]), [[4, 'vcpu'], [5, 'kind'], [7, 't_ns']])
  t.false(all.stoppedEarly)
  const two = await validateTrace(p, {maxErrors: 2})
  t.is(two.errors.length, 2)
  t.true(two.stoppedEarly)
  const ok = await validateTrace(F('all-kinds.jsonl'))
  t.true(ok.valid)
  t.is(ok.events, ALL_KINDS.length)
})

test('JSON Lines accepts addresses as numbers or 0x strings and null as "not set"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-read-'))
  const p = join(dir, 't.jsonl')
  writeFileSync(p, '{"format":"migtrace","version":1}\n{"t_ns":5,"kind":"write","vcpu":0,"gpa":8192,"len":8,"dev":null}\n\n{"t_ns":6,"kind":"read","vcpu":0,"gpa":"0x2000","len":"8"}\n')
  t.deepEqual(await records(await openTrace(p)), [
    {t_ns: 5, kind: 'write', vcpu: 0, gpa: 8192, len: 8},
    {t_ns: 6, kind: 'read', vcpu: 0, gpa: 8192, len: 8},
  ])
})

test('a pass over a plain trace reads the file blocking, yet lets the event loop turn (timers, Ctrl-C) while it decodes', async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'migtrace-read-turns-'))
  const csv = join(d, 'w.csv')
  const rows = Array.from({length: 600_000}, (_, i) => `${i * 10},write,${i & 1},,,0x${(((i * 7919) % 16384) * 4096).toString(16)},,8,,,,,`)
  writeFileSync(csv, `# ${JSON.stringify({format: 'migtrace', version: 1, memory: '64M', vcpus: 2})}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n${rows.join('\n')}\n`)
  const arrow = join(d, 'w.arrow')
  await convertTrace(csv, arrow)
  for (const path of [arrow, csv]) {
    const tr = await openTrace(path)
    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    const t0 = performance.now()
    let events = 0
    // Each batch takes a while to consume, as a replay's model would.
    for await (const b of tr.events({thread: false, batchSize: 4096})) {
      events += b.length
      const until = performance.now() + 0.5
      while (performance.now() < until);
    }
    const ms = performance.now() - t0
    clearInterval(timer)
    t.is(events, 600_000)
    // A turn at a read once TURN_MS (10 ms) passed since the last: the Arrow trace is 10 record
    // batches, the CSV about 25 chunks of 1 MiB. (Reads that never turned would leave 0 and 3 ticks.)
    t.true(ticks >= 6, `${path}: ${ticks} timer ticks in ${ms.toFixed(0)} ms`)
  }
})
