/**
 * `migtrace replay --expect`: the model's figures beside QEMU's observed ones, from the
 * observations an imported trace carries in its header, or from a query-migrate file.
 */
import test from 'ava'
import {runCli} from '../helpers/cli.js'

const TRACE = 'traces/qemu-01-idle-pfnmap.csv.gz'
const LAB = ['--set', 'lazy-clear=false', '--set', 'zero-page-cost=1.5us']

test('an imported trace is compared with the observations in its header (text and JSON)', async (t) => {
  const text = await runCli(['replay', TRACE, ...LAB])
  t.is(text.code, 0, text.stderr)
  t.regex(text.stdout, /prediction vs QEMU \(query-migrate\)/)
  t.regex(text.stdout, /dirty-sync-count\s+count\s+3\s+3\s+0\s+0\.0 %\s+±5 %\s+PASS/)
  t.regex(text.stdout, /targets met: 3 of 3/)

  const json = await runCli(['replay', TRACE, ...LAB, '--json'])
  t.is(json.code, 0, json.stderr)
  const doc = JSON.parse(json.stdout) as {expect: {metric: string; observed: number; predicted: number; pass: boolean | null}[]}
  const byMetric = Object.fromEntries(doc.expect.map((r) => [r.metric, r]))
  t.is(byMetric['dirty-sync-count']!.observed, 3)
  t.is(byMetric['dirty-sync-count']!.predicted, 3)
  t.true(byMetric.transferred!.pass)
  t.true(byMetric.downtime!.pass)
})

test('--no-expect leaves the comparison out; --expect FILE compares any trace with a run', async (t) => {
  const none = await runCli(['replay', TRACE, ...LAB, '--no-expect'])
  t.is(none.code, 0, none.stderr)
  t.notRegex(none.stdout, /prediction vs QEMU/)

  const other = await runCli(['replay', 'fixtures/replay/small.csv', '--expect', 'fixtures/qemu/01-idle-pfnmap/final-src.json'])
  t.is(other.code, 0, other.stderr)
  t.regex(other.stdout, /prediction vs QEMU/)
  t.regex(other.stdout, /transferred\s+bytes\s+99,691,092/)

  const bad = await runCli(['replay', 'fixtures/replay/small.csv', '--expect', 'fixtures/replay/small.csv'])
  t.is(bad.code, 2)
  t.is(bad.stderr.trim().split('\n').length, 1, bad.stderr)
})
