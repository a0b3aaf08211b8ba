import {mkdtempSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'
import {compareCsv, compareMarkdown, compareText, type CompareDoc} from '../../src/compare/compare-doc.js'

const TRACE = 'fixtures/replay/small.csv'
const dirs: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'migtrace-compare-'))
  dirs.push(d)
  return d
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})
// --jobs 1 (in process) keeps the many runs of these tests cheap; the worker path has its own test
const VARIANTS = ['--variant', 'base', '--variant', 'fast:max-bandwidth=32MiB/s', '--variant', 'tight:downtime-limit=20ms,stop-policy=rounds']
const INLINE = ['--jobs', '1']

type Doc = {
  schema: string
  baseline: string
  variants: {name: string; verdict: string; metrics: Record<string, number>; effective: Record<string, unknown>}[]
  diffs: {variant: string; metrics: Record<string, {delta: number; ratio: number | null; pct: number | null}>}[]
  failIf?: {condition: string; failed: boolean}[]
  failed?: boolean
  metrics: {name: string}[]
}

type Single = Record<string, number> & {verdict: string}

async function replayJson(...set: string[]): Promise<Single> {
  const r = await runCli(['replay', TRACE, '--json', ...set.flatMap((s) => ['--set', s])])
  if (r.code !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout) as Single
}

let compared: Promise<Doc> | undefined
const compareDoc = (): Promise<Doc> =>
  (compared ??= runCli(['compare', TRACE, ...VARIANTS, ...INLINE, '--json']).then((r) => {
    if (r.code !== 0) throw new Error(r.stderr)
    return JSON.parse(r.stdout) as Doc
  }))

test('compare: each column is the single replay; deltas and ratios against the baseline', async (t) => {
  const [doc, base, fast, tight] = await Promise.all([compareDoc(), replayJson(), replayJson('max-bandwidth=32MiB/s'), replayJson('downtime-limit=20ms', 'stop-policy=rounds')])
  t.is(doc.schema, 'migtrace.compare/1')
  t.is(doc.baseline, 'base')
  const singles = {base, fast, tight}
  for (const v of doc.variants) {
    const s = singles[v.name as keyof typeof singles]
    t.is(v.verdict, s.verdict)
    for (const k of ['totalTimeMs', 'downtimeMs', 'bytesSent', 'pagesSent', 'redundantPages', 'lostWrites', 'iterations', 'zeroPages']) t.is(v.metrics[k], s[k], `${v.name} ${k}`)
    t.is(v.metrics.redundant, Math.round((s.redundantPages! / s.pagesSent!) * 1e6) / 1e6)
  }
  t.not(base.totalTimeMs, fast.totalTimeMs, 'the variants differ')
  for (const name of ['fast', 'tight'] as const) {
    const d = doc.diffs.find((x) => x.variant === name)!.metrics
    const s = singles[name]
    for (const k of ['totalTimeMs', 'downtimeMs']) {
      const a = s[k]!
      const b = base[k]!
      t.is(d[k]!.delta, Math.round((a - b) * 1000) / 1000, `${name} ${k} delta`)
      t.is(d[k]!.ratio, Math.round((a / b) * 1e4) / 1e4, `${name} ${k} ratio`)
      t.is(d[k]!.pct, Math.round(((100 * (a - b)) / b) * 100) / 100, `${name} ${k} pct`)
    }
    t.is(d.bytesSent!.delta, s.bytesSent! - base.bytesSent!)
  }
  t.is(doc.variants.find((v) => v.name === 'tight')!.effective['stop-policy'], 'rounds')
})

test('compare: text, md and csv formats', async (t) => {
  const doc = await compareDoc()
  const text = await runCli(['compare', TRACE, ...VARIANTS, ...INLINE])
  t.is(text.code, 0, text.stderr)
  // the JSON document is all the formats are made from
  t.is(text.stdout, compareText(doc as unknown as CompareDoc))
  t.regex(text.stdout, /^metric +base \(baseline\) +fast +Δ fast +Δ% fast +ratio fast +tight/m)
  const total = doc.variants.find((v) => v.name === 'fast')!.metrics.totalTimeMs!
  const d = doc.diffs.find((x) => x.variant === 'fast')!.metrics.totalTimeMs!
  const n = (v: number): string => v.toLocaleString('en-US', {maximumFractionDigits: 3})
  t.regex(text.stdout, new RegExp(`^totalTimeMs .* ${n(total)} +-${n(Math.abs(d.delta))} +${d.pct!.toFixed(2)}% +${d.ratio!.toFixed(4)}x`, 'm'))
  t.regex(compareMarkdown(doc as unknown as CompareDoc), /^\| metric \| base \(baseline\) \| fast \|/m)
  const lines = compareCsv(doc as unknown as CompareDoc).trimEnd().split('\n')
  t.is(lines[0], 'metric,unit,variant,value,baseline,delta,ratio,pct')
  t.is(lines.length, 1 + 3 * (1 + doc.metrics.length))
  t.true(lines.includes(`totalTimeMs,ms,fast,${total},${doc.variants[0]!.metrics.totalTimeMs},${d.delta},${d.ratio},${d.pct}`))
})

test('compare --fail-if: exit 1 when a condition holds, 0 when none does, 2 on a bad expression', async (t) => {
  const doc = await compareDoc()
  const worst = Math.max(...doc.variants.map((v) => v.metrics.redundant!))
  const fails = await runCli(['compare', TRACE, ...VARIANTS, ...INLINE, '--fail-if', `redundant>${worst - 0.001}`])
  t.is(fails.code, 1, fails.stderr)
  t.regex(fails.stdout, new RegExp(`^FAIL  redundant>${worst - 0.001}`, 'm'))
  const passes = await runCli(['compare', TRACE, ...VARIANTS, ...INLINE, '--fail-if', `redundant>${worst}`, '--fail-if', 'lostWrites>0'])
  t.is(passes.code, 0, passes.stderr)
  t.regex(passes.stdout, /^ok {4}lostWrites>0$/m)
  const json = await runCli(['compare', TRACE, ...VARIANTS, ...INLINE, '--json', '--fail-if', 'fast:totalTimeMs@ratio<1'])
  t.is(json.code, 1)
  const jd = JSON.parse(json.stdout) as Doc
  t.true(jd.failed)
  t.deepEqual(jd.failIf!.map((c) => c.failed), [true])
  for (const bad of ['redundant>>1', 'nosuch>1', 'downtimeMs>soon']) {
    const r = await runCli(['compare', TRACE, ...VARIANTS, ...INLINE, '--fail-if', bad])
    t.is(r.code, 2, bad)
    t.regex(r.stderr, /^migtrace: field '--fail-if': /, bad)
    t.is(r.stdout, '', 'nothing runs before the expression is checked')
  }
  const unknownVariant = await runCli(['compare', TRACE, ...VARIANTS, ...INLINE, '--fail-if', 'slow:redundant>0'])
  t.is(unknownVariant.code, 2)
  t.regex(unknownVariant.stderr, /unknown variant 'slow'/)
  t.is(unknownVariant.stdout, '')
})

test('compare: scenarios file with a baseline and common settings; bad variants exit 2', async (t) => {
  const dir = tmp()
  const file = join(dir, 'scen.json')
  writeFileSync(file, JSON.stringify({baseline: 'slow', settings: {'downtime-limit': '50ms'}, scenarios: [{name: 'fast', settings: {'max-bandwidth': '32MiB/s'}}, {name: 'slow'}]}))
  const r = await runCli(['compare', TRACE, '--scenarios', file, '--json', '--jobs', '1'])
  t.is(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as Doc
  t.is(doc.baseline, 'slow')
  t.deepEqual(
    doc.variants.map((v) => [v.name, v.effective['downtime-limit'], v.effective['max-bandwidth']]),
    [
      ['fast', 50, 32 * 2 ** 20],
      ['slow', 50, 8 * 2 ** 20],
    ],
  )
  t.deepEqual(
    doc.diffs.map((d) => d.variant),
    ['fast'],
  )
  writeFileSync(file, JSON.stringify({scenarios: [{name: 'x', settings: {'max-bandwidth': 'lots'}}]}))
  const bad = await runCli(['compare', TRACE, '--scenarios', file])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /scen\.json: field 'max-bandwidth': not a valid rate/)
  const none = await runCli(['compare', TRACE])
  t.is(none.code, 2)
  t.regex(none.stderr, /nothing to compare/)
  const badSet = await runCli(['compare', TRACE, '--variant', 'a:max-bandwidth'])
  t.is(badSet.code, 2)
  // repeatable flags are not greedy: the trace may come after them
  const after = await runCli(['compare', '--variant', 'a:nosuch=1', TRACE])
  t.is(after.code, 2)
  t.regex(after.stderr, /unknown setting in --variant a/)
})

test('compare: worker threads and inline runs print the same JSON', async (t) => {
  const [pooled, inline] = await Promise.all([runCli(['compare', TRACE, ...VARIANTS, '--jobs', '2', '--json']), compareDoc()])
  t.is(pooled.code, 0, pooled.stderr)
  t.is(pooled.stderr, '', 'no progress bar when stderr is not a terminal')
  t.is(pooled.stdout, `${JSON.stringify(inline, null, 2)}\n`)
})
