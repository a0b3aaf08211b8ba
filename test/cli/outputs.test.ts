// What commands print: formats to stdout, --json on every command.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'

const dirs: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'migtrace-out-'))
  dirs.push(d)
  return d
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

test('replay --format csv without --out prints one table to stdout, the same bytes as the file', async (t) => {
  const dir = tmp()
  const [it, causes, files, bad] = await Promise.all([
    runCli(['replay', 'traces/converging.csv.gz', '--format', 'csv']),
    runCli(['replay', 'traces/converging.csv.gz', '--format', 'csv', '--table', 'causes']),
    runCli(['replay', 'traces/converging.csv.gz', '--format', 'csv', '--out', dir]),
    runCli(['replay', 'traces/converging.csv.gz', '--format', 'csv', '--table', 'nope']),
  ])
  t.is(it.code, 0)
  t.is(it.stderr, '')
  t.true(it.stdout.startsWith('iteration,phase,start_ms,end_ms,'))
  t.is(it.stdout, readFileSync(join(dir, 'iterations.csv'), 'utf8'))
  t.is(causes.stdout, readFileSync(join(dir, 'causes.csv'), 'utf8'))
  t.is(files.code, 0)
  t.is(bad.code, 2)
  t.is(bad.stderr, "migtrace: field '--table': no such table in this replay (expected headline, iterations, causes, send-counts, found 'nope')\n")
})
