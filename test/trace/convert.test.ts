import {mkdtempSync, readFileSync, readdirSync, existsSync, writeFileSync} from 'node:fs'
import {gunzipSync} from 'node:zlib'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {convertTrace} from '../../src/trace/read/convert.js'
import {UserError} from '../../src/util/errors.js'
import {ALL_KINDS} from '../../scripts/make-fixtures.js'

const tmp = (): string => mkdtempSync(join(tmpdir(), 'migtrace-convert-'))
const text = (p: string): string => readFileSync(p, 'utf8')

test('CSV -> JSONL -> CSV is byte-identical, and JSONL -> CSV -> JSONL too', async (t) => {
  const d = tmp()
  t.is(await convertTrace('fixtures/all-kinds.csv', join(d, 'a.jsonl')), ALL_KINDS.length)
  t.is(text(join(d, 'a.jsonl')), text('fixtures/all-kinds.jsonl'))
  await convertTrace(join(d, 'a.jsonl'), join(d, 'b.csv'))
  t.is(text(join(d, 'b.csv')), text('fixtures/all-kinds.csv'))
  await convertTrace('fixtures/all-kinds.jsonl', join(d, 'c.csv'))
  await convertTrace(join(d, 'c.csv'), join(d, 'c.jsonl'))
  t.is(text(join(d, 'c.jsonl')), text('fixtures/all-kinds.jsonl'))
})

test('a hand-written or sidecar trace becomes canonical after one pass, then stays byte-identical', async (t) => {
  const d = tmp()
  await convertTrace('fixtures/sidecar.csv', join(d, 'one.jsonl'))
  await convertTrace(join(d, 'one.jsonl'), join(d, 'two.csv'))
  await convertTrace(join(d, 'two.csv'), join(d, 'three.jsonl'))
  await convertTrace(join(d, 'three.jsonl'), join(d, 'four.csv'))
  t.is(text(join(d, 'three.jsonl')), text(join(d, 'one.jsonl')))
  t.is(text(join(d, 'four.csv')), text(join(d, 'two.csv')))
  // The sidecar header is now inline and complete.
  t.true(text(join(d, 'two.csv')).startsWith('# {"format":"migtrace","version":1,"description":"a CSV trace whose header is in this sidecar file","pageSize":4096,'))
  t.is(text(join(d, 'two.csv')).split('\n').slice(2).join('\n'), '10,write,0,,,0x1000,,8,,,,,\n20,write,3,,,0x100000000,,4096,,,,,\n')
})

test('gzip output is gzip of the same text', async (t) => {
  const d = tmp()
  await convertTrace('fixtures/all-kinds.jsonl', join(d, 'x.csv.gz'))
  t.is(gunzipSync(readFileSync(join(d, 'x.csv.gz'))).toString('utf8'), text('fixtures/all-kinds.csv'))
})

test('a bad input leaves no output file and no temporary file', async (t) => {
  const d = tmp()
  const out = join(d, 'out.jsonl')
  const e = await t.throwsAsync(convertTrace('fixtures/bad/time-backwards.csv', out))
  t.true(e instanceof UserError)
  t.is(e.message, "fixtures/bad/time-backwards.csv:4: field 't_ns': time goes backwards (expected >= 100 (the time on line 3), found 50)")
  t.false(existsSync(out))
  t.deepEqual(readdirSync(d), [])
})

test('an existing output is replaced only on success', async (t) => {
  const d = tmp()
  const out = join(d, 'out.csv')
  writeFileSync(out, 'old')
  await t.throwsAsync(convertTrace('fixtures/bad/negative.csv', out))
  t.is(text(out), 'old')
  await convertTrace('fixtures/all-kinds.jsonl', out)
  t.is(text(out), text('fixtures/all-kinds.csv'))
})

test('output names must say the format, and must not be the input', async (t) => {
  const e1 = await t.throwsAsync(convertTrace('fixtures/all-kinds.csv', join(tmp(), 'x.txt')))
  t.regex(e1.message, /x\.txt: cannot tell the output format from the file name \(expected a name ending in \.csv, \.jsonl, \.csv\.gz, \.jsonl\.gz or \.arrow\)$/)
  const e2 = await t.throwsAsync(convertTrace('fixtures/all-kinds.csv', './fixtures/all-kinds.csv'))
  t.is(e2.message, './fixtures/all-kinds.csv: the output would overwrite the input (expected another file name)')
})
