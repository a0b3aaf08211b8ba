/**
 * Golden reports of the fixture trace (fixtures/replay/small.csv) and of the bundled trace that
 * `npm start` replays (traces/converging.csv.gz), in text, JSON and Markdown. Regenerate after an intended change with UPDATE_GOLDEN=1 npx ava test/replay/golden.test.ts.
 */
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'
import {openTrace} from '../../src/trace/read/open.js'
import {hasMigStart, replay} from '../../src/replay/index.js'
import {REPLAY_SCHEMA, replayJson, replayMarkdown, replayText} from '../../src/report/replay-report.js'
import {ROOT, runCli} from '../helpers/cli.js'

const FIXTURE = 'fixtures/replay/small.csv'
const GOLDEN = join(ROOT, 'test/replay/golden')
const update = process.env.UPDATE_GOLDEN === '1'

function golden(t: {is: (a: string, b: string, m?: string) => void; pass: () => void}, name: string, actual: string): void {
  const path = join(GOLDEN, name)
  if (update || !existsSync(path)) {
    writeFileSync(path, actual)
    if (update) return t.pass()
  }
  t.is(actual, readFileSync(path, 'utf8'), `${name} differs from the golden file (UPDATE_GOLDEN=1 to accept)`)
}

async function run(file = FIXTURE) {
  const trace = await openTrace(join(ROOT, file))
  if (!(await hasMigStart(trace.events()))) throw new Error(`${file} lost its mig_start`)
  return replay({header: trace.header, layout: trace.layout, events: trace.events(), file})
}

test('golden text, JSON and Markdown reports of the bundled trace npm start replays', async (t) => {
  const file = 'traces/converging.csv.gz'
  const r = await run(file)
  const ctx = {trace: file}
  golden(t, 'converging.txt', replayText(r, ctx))
  golden(t, 'converging.json', `${JSON.stringify(replayJson(r, ctx), null, 2)}\n`)
  golden(t, 'converging.md', await replayMarkdown(r, ctx))
})

test('golden text, JSON and Markdown reports of the fixture trace', async (t) => {
  const r = await run()
  const ctx = {trace: FIXTURE}
  golden(t, 'small.txt', replayText(r, ctx))
  golden(t, 'small.json', `${JSON.stringify(replayJson(r, ctx), null, 2)}\n`)
  golden(t, 'small.md', await replayMarkdown(r, ctx))
})

test('the JSON report carries the documented top-level fields', async (t) => {
  const r = await run()
  const doc = replayJson(r, {trace: FIXTURE})
  for (const k of ['schema', 'verdict', 'stopReason', 'iterations', 'dirtySyncCount', 'totalTimeMs', 'downtimeMs', 'downtime', 'pagesSent', 'bytesSent', 'zeroPages', 'redundantPages', 'redundantByCause', 'lostWrites', 'perIteration'])
    t.true(k in doc, k)
  t.is(doc.schema, REPLAY_SCHEMA)
  // Every figure derives from the ledger: per-iteration sums equal the totals.
  const rows = doc.perIteration as Record<string, number>[]
  t.is(rows.reduce((s, x) => s + x.pages_sent!, 0), doc.pagesSent as number)
  t.is(rows.reduce((s, x) => s + x.bytes_sent!, 0), doc.bytesSent as number)
  t.is(rows.reduce((s, x) => s + x.redundant!, 0), doc.redundantPages as number)
  const byCause = doc.redundantByCause as Record<string, number>
  t.is(Object.values(byCause).reduce((a, b) => a + b, 0), doc.redundantPages as number)
  t.true(byCause['dma-vhost']! > 0 && byCause['lazy-clear-window']! > 0, 'the fixture exercises two causes')
})

test('CLI: replay --json, --format csv --out, and user mistakes exit 2', async (t) => {
  const json = await runCli(['replay', FIXTURE, '--json', '--set', 'downtime-limit=200ms'])
  t.is(json.code, 0, json.stderr)
  const doc = JSON.parse(json.stdout) as Record<string, unknown>
  t.is(doc.schema, REPLAY_SCHEMA)
  t.is((doc.settings as Record<string, unknown>)['downtime-limit'], 200)

  const dir = join(ROOT, 'tmp', `replay-csv-${process.pid}`)
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const csv = await runCli(['replay', FIXTURE, '--format', 'csv', '--out', dir])
  t.is(csv.code, 0, csv.stderr)
  const iterations = readFileSync(join(dir, 'iterations.csv'), 'utf8').split('\n')
  t.true(iterations[0]!.startsWith('iteration,phase,start_ms,end_ms,dirty_pages_at_sync'))
  t.true(existsSync(join(dir, 'causes.csv')) && existsSync(join(dir, 'headline.csv')))

  const bad = await runCli(['replay', FIXTURE, '--set', 'max-bandwith=1G'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /^migtrace: field 'max-bandwith': unknown setting in --set/)
  const badValue = await runCli(['replay', FIXTURE, '--set', 'stop-policy=fast'])
  t.is(badValue.code, 2)
  t.regex(badValue.stderr, /stop-policy.*expected qemu \| rounds \| xen/)
  const cfg = join(dir, 'bad-config.json')
  writeFileSync(cfg, JSON.stringify({'downtime-limit': '300ms', 'clear-policy': 'sometimes'}))
  const badCfg = await runCli(['replay', FIXTURE, '--config', cfg])
  t.is(badCfg.code, 2, badCfg.stderr)
  t.regex(badCfg.stderr, /bad-config\.json: field 'clear-policy': bad value \(expected known-dirty \| all-ones/)
})
