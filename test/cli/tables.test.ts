// replay --format arrow|parquet --out DIR: the tables analysts load, read back with independent
// readers (arquero's Arrow reader, hyparquet) and compared with the CSV tables value for value.
import {mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import * as aq from 'arquero'
import {parquetReadObjects} from 'hyparquet'
import {runCli} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-tables-'))
test.after.always(() => rmSync(dir, {recursive: true, force: true}))
const TRACE = 'traces/vfio-passthrough.csv.gz'

let csvDir: Promise<string> | undefined
function csvTables(): Promise<string> {
  csvDir ??= runCli(['replay', TRACE, '--format', 'csv', '--out', join(dir, 'csv')]).then((r) => {
    if (r.code !== 0) throw new Error(r.stderr)
    return join(dir, 'csv')
  })
  return csvDir
}

function csvObjects(path: string): Record<string, unknown>[] {
  return aq.fromCSV(readFileSync(path, 'utf8')).objects() as Record<string, unknown>[]
}

const plain = (v: unknown): unknown => (typeof v === 'bigint' ? Number(v) : v === undefined ? null : v)

for (const format of ['arrow', 'parquet'] as const) {
  test(`replay --format ${format} --out: one file per table, the same values as the CSV tables`, async (t) => {
    const out = join(dir, format)
    const r = await runCli(['replay', TRACE, '--format', format, '--out', out])
    t.is(r.code, 0, r.stderr)
    const csv = await csvTables()
    const names = readdirSync(csv).filter((f) => f.endsWith('.csv')).map((f) => f.replace(/\.csv$/, '')).sort()
    t.deepEqual(readdirSync(out).sort(), names.map((n) => `${n}.${format}`).sort())
    t.deepEqual(r.stdout.trimEnd().split('\n').sort(), names.map((n) => join(out, `${n}.${format}`)).sort(), 'it lists the files written')
    t.true(names.includes('vfio-syncs'), 'the device tables too')
    for (const name of names) {
      const expected = csvObjects(join(csv, `${name}.csv`))
      const bytes = readFileSync(join(out, `${name}.${format}`))
      const rows =
        format === 'arrow'
          ? (aq.fromArrow(bytes).objects() as Record<string, unknown>[])
          : await parquetReadObjects({file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer})
      t.is(rows.length, expected.length, name)
      rows.forEach((row, i) => {
        const want = expected[i]!
        t.deepEqual(Object.keys(row), Object.keys(want), `${name} columns`)
        for (const k of Object.keys(want)) {
          const [a, b] = [plain(row[k]), want[k]]
          // CSV cannot tell text "1" from a number; compare as text then
          t.is(typeof a === typeof b ? a : String(a), typeof a === typeof b ? b : String(b), `${name} row ${i} ${k}`)
        }
      })
    }
  })
}

test('arrow and parquet need --out (they are files), exit 2 before replaying', async (t) => {
  const r = await runCli(['replay', TRACE, '--format', 'parquet'])
  t.is(r.code, 2)
  t.is(r.stderr, "migtrace: field '--out': parquet tables are files (expected --out DIR with --format parquet)\n")
})
