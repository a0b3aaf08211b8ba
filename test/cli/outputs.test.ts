// What commands print: formats to stdout, --json on every command.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {ROOT, runCli} from '../helpers/cli.js'

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

// A terminal for the child (util-linux `script`), to see the progress bars a user sees.
function inTerminal(command: string): {out: string; code: number} | undefined {
  const r = spawnSync('script', ['-qec', command, '/dev/null'], {cwd: ROOT, encoding: 'utf8', env: {...process.env, NODE_ENV: 'production'}, timeout: 120_000})
  if (r.error) return undefined
  return {out: r.stdout.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '\n'), code: r.status ?? -1}
}

test('progress: on a terminal, validate, inspect and replay show bytes read of the file size with an ETA; compare counts runs', async (t) => {
  const trace = 'traces/hotset-nonconverging.csv.gz'
  const size = `${(statSync(join(ROOT, trace)).size / 2 ** 20).toFixed(2)} MiB`
  const probe = inTerminal('true')
  if (!probe) {
    t.log('SKIPPED: no script(1) to give the child a terminal')
    t.pass()
    return
  }
  for (const cmd of ['validate', 'inspect', 'replay']) {
    const r = inTerminal(`node bin/run.js ${cmd} ${trace} > /dev/null`)!
    t.is(r.code, 0, r.out)
    t.regex(r.out, new RegExp(`^${cmd} \\[.*\\] \\d+% \\| [0-9.]+ (B|KiB|MiB) of ${size} \\| ETA `, 'm'), cmd)
  }
  const c = inTerminal(`node bin/run.js compare ${trace} --variant a --variant b:downtime-limit=50ms --jobs 1 > /dev/null`)!
  t.regex(c.out, /^compare \[.*\] 0\/2 runs 0% \| ETA /m)
  t.regex(c.out, /^compare \[.*\] 1\/2 runs \d+% \| ETA /m)
  const quiet = inTerminal(`node bin/run.js compare ${trace} --variant a --quiet --jobs 1 > /dev/null`)!
  t.notRegex(quiet.out, /runs/)
})
