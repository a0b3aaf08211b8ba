// migtrace diff: two saved replay results, against what compare says about the same two runs.
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-diff-'))
test.after.always(() => rmSync(dir, {recursive: true, force: true}))
const TRACE = 'traces/converging.csv.gz'
const FAST = ['max-bandwidth=256MiB/s', 'downtime-limit=100ms']

async function ok(args: string[]): Promise<string> {
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`${args.join(' ')}: exit ${r.code}\n${r.stderr}`)
  return r.stdout
}

let saved: Promise<[string, string]> | undefined
function savedResults(): Promise<[string, string]> {
  saved ??= (async () => {
    const [a, b] = await Promise.all([ok(['replay', TRACE, '--json']), ok(['replay', TRACE, '--format', 'json', ...FAST.flatMap((s) => ['--set', s])])])
    writeFileSync(join(dir, 'a.json'), a)
    writeFileSync(join(dir, 'b.json'), b)
    return [join(dir, 'a.json'), join(dir, 'b.json')]
  })()
  return saved
}

test('diff: the deltas, ratios and percentages are exactly those of compare for the same two runs', async (t) => {
  const [a, b] = await savedResults()
  const [d, c] = await Promise.all([ok(['diff', a, b, '--json']), ok(['compare', TRACE, '--variant', 'base', '--variant', `fast:${FAST.join(',')}`, '--json', '--jobs', '1'])])
  const doc = JSON.parse(d) as {schema: string; diff: Record<string, unknown>; settingsChanged: Record<string, unknown>; baseline: {metrics: Record<string, number>}; other: {metrics: Record<string, number>; verdict: string}}
  const cmp = JSON.parse(c) as {variants: {metrics: Record<string, number>; verdict: string}[]; diffs: {metrics: Record<string, unknown>}[]}
  t.is(doc.schema, 'migtrace.diff/1')
  t.deepEqual(doc.baseline.metrics, cmp.variants[0]!.metrics)
  t.deepEqual(doc.other.metrics, cmp.variants[1]!.metrics)
  t.deepEqual(doc.diff, cmp.diffs[0]!.metrics)
  t.is(doc.other.verdict, cmp.variants[1]!.verdict)
  t.deepEqual(doc.settingsChanged, {'max-bandwidth': [134217728, 268435456], 'downtime-limit': [300, 100]})
})

test('diff: text shows the changed settings and a better/worse mark; a result against itself changes nothing', async (t) => {
  const [a, b] = await savedResults()
  const [text, same] = await Promise.all([ok(['diff', a, b]), ok(['diff', a, a, '--format', 'csv'])])
  t.regex(text, /^max-bandwidth +134217728 +268435456$/m)
  t.regex(text, /^totalTimeMs +8,268\.926 +4,108\.732 +-4,160\.194 +-50\.31% +0\.4969x +better$/m)
  for (const line of same.trimEnd().split('\n').slice(2)) t.regex(line, /,(0|-0),(1|),(0|)$/, line)
})

test('diff: a file that is not a replay result is one line naming it, exit 2', async (t) => {
  const [a] = await savedResults()
  const r = await runCli(['diff', a, 'package.json'])
  t.is(r.code, 2)
  t.is(r.stderr, "migtrace: package.json: field 'schema': not a saved replay result (expected migtrace.replay/1 (the output of migtrace replay --json), found nothing)\n")
  const m = await runCli(['diff', a, join(dir, 'missing.json')])
  t.is(m.code, 2)
  t.regex(m.stderr, /^migtrace: .*missing\.json: no such file/)
})
