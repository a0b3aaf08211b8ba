/** Pure parts of compare/grid: deltas and ratios by hand, the --fail-if grammar, variants, grid notation. */
import test from 'ava'
import {diff} from '../../src/compare/metrics.js'
import {evaluate, parseCondition, parseConditions} from '../../src/compare/fail-if.js'
import {gridAxes, parseGridBandwidth} from '../../src/compare/grid-doc.js'
import {parseVariantFlag, checkVariants} from '../../src/compare/variants.js'
import {parseShard, shardIndices, type ItemResult} from '../../src/compare/sweep.js'
import {UserError} from '../../src/util/errors.js'

test('diff: delta, ratio and percentage, by hand', (t) => {
  // 289.886 - 1355.617 = -1065.731; 289.886 / 1355.617 = 0.21384...; -78.615...%
  t.deepEqual(diff(289.886, 1355.617, 'ms'), {delta: -1065.731, ratio: 0.2138, pct: -78.62})
  // 252 / 237 = 1.063291...; +6.329...%
  t.deepEqual(diff(252, 237, 'pages'), {delta: 15, ratio: 1.0633, pct: 6.33})
  // float noise is rounded away: 0.3 - 0.1 = 0.19999999999999998
  t.is(diff(0.3, 0.1, 'ratio').delta, 0.2)
  t.deepEqual(diff(5, 0, 'pages'), {delta: 5, ratio: null, pct: null})
})

test('fail-if grammar: metrics, units, modes, variants', (t) => {
  t.like(parseCondition('redundant>0.05'), {metric: 'redundant', mode: 'value', op: '>', value: 0.05, variant: undefined})
  t.like(parseCondition('redundant > 5%'), {value: 0.05})
  t.like(parseCondition('downtimeMs>=1.5s'), {metric: 'downtimeMs', op: '>=', value: 1500})
  t.like(parseCondition('downtimeMs>300'), {value: 300})
  t.like(parseCondition('fast:downtimeMs@delta>-10ms'), {variant: 'fast', mode: 'delta', value: -10})
  t.like(parseCondition('bytesSent>1G'), {value: 2 ** 30})
  t.like(parseCondition('bytesSent@ratio>1.1'), {mode: 'ratio', value: 1.1})
  t.like(parseCondition('totalTimeMs@pct>10%'), {mode: 'pct', value: 10})
  t.like(parseCondition('lostWrites!=0'), {op: '!=', value: 0})
  t.like(parseCondition('verdict!=converged'), {metric: 'verdict', value: 'converged'})
  t.like(parseCondition('redundantBy.lazy-clear-window>100'), {metric: 'redundantBy.lazy-clear-window', value: 100})
  t.is(parseConditions(['redundant>0.05,lostWrites>0', 'iterations>3']).length, 3)
  const bad = ['redundant', 'nosuch>1', 'redundant>>1', 'downtimeMs>fast', 'redundant@avg>1', 'verdict>converged', 'verdict==great', 'bytesSent>1Q', 'x y:redundant>1', 'totalTimeMs@ratio>10ms']
  for (const b of bad) t.throws(() => parseCondition(b), {instanceOf: UserError}, b)
})

const result = (name: string, index: number, metrics: Record<string, number>, verdict = 'converged'): ItemResult => ({index, name, effective: {}, verdict, stopReason: 'converged', metrics})

test('fail-if evaluation: plain metrics test every variant, deltas every variant but the baseline', (t) => {
  const rs = [result('base', 0, {redundant: 0.04, downtimeMs: 100, lostWrites: 0}), result('fast', 1, {redundant: 0.06, downtimeMs: 80, lostWrites: 0}, 'not-converged')]
  const [a, b, c, d, e, f] = evaluate(
    parseConditions(['redundant>0.05', 'redundant>0.1', 'downtimeMs@delta<-15ms', 'base:redundant>0.05', 'verdict!=converged', 'lostWrites@ratio>1']),
    rs,
    rs[0],
  )
  t.deepEqual(a, {condition: 'redundant>0.05', failed: true, checks: [{variant: 'base', value: 0.04, failed: false}, {variant: 'fast', value: 0.06, failed: true}]})
  t.false(b!.failed)
  t.deepEqual(c!.checks, [{variant: 'fast', value: -20, failed: true}])
  t.false(d!.failed)
  t.deepEqual(e!.checks.map((k) => k.failed), [false, true])
  t.deepEqual(f!.checks, [{variant: 'fast', value: null, failed: false}], 'a ratio against 0 is undefined and never fails')
  t.throws(() => evaluate(parseConditions(['slow:redundant>0']), rs, rs[0]), {message: /unknown variant 'slow'/})
  t.throws(() => evaluate(parseConditions(['redundantBy.nosuch>0']), rs, rs[0]), {message: /no result has the metric/})
})

test('variants: NAME:key=value,... checked against the settings', (t) => {
  t.deepEqual(parseVariantFlag('fast:max-bandwidth=1GiB/s,downtime-limit=500ms'), {name: 'fast', settings: {'max-bandwidth': '1GiB/s', 'downtime-limit': '500ms'}})
  t.deepEqual(parseVariantFlag('base'), {name: 'base', settings: {}})
  t.deepEqual(parseVariantFlag('a:clear-bitmap-shift=20'), {name: 'a', settings: {'x-clear-bitmap-shift': '20'}}, 'aliases are canonical')
  t.throws(() => parseVariantFlag('fast:max-bandwidth'), {message: /bad --variant setting/})
  t.throws(() => parseVariantFlag('fast:nosuch=1'), {message: /unknown setting/})
  t.throws(() => parseVariantFlag('fast:downtime-limit=soon'), {message: /downtime-limit/})
  t.throws(() => parseVariantFlag('bad name:downtime-limit=1'), {message: /bad variant name/})
  const vs = [parseVariantFlag('a'), parseVariantFlag('b')]
  t.is(checkVariants(vs), 0)
  t.is(checkVariants(vs, 'b'), 1)
  t.throws(() => checkVariants(vs, 'c'), {message: /unknown baseline/})
  t.throws(() => checkVariants([...vs, parseVariantFlag('a')]), {message: /same name/})
})

test('grid bandwidth notation: K/M/G/T alone = link bits/s; explicit units as the rate parser', (t) => {
  t.is(parseGridBandwidth('10Gbit/s'), 1.25e9)
  t.is(parseGridBandwidth('2.5Gbit/s'), 312_500_000)
  t.is(parseGridBandwidth('1Gb/s'), 125_000_000)
  t.is(parseGridBandwidth('100Mbit/s'), 12_500_000)
  t.is(parseGridBandwidth('10Gbps'), 1.25e9)
  t.is(parseGridBandwidth('1G/s'), 2 ** 30, 'G alone is binary bytes, as everywhere (QEMU)')
  t.is(parseGridBandwidth('1GiB'), 2 ** 30)
  for (const ambiguous of ['10G', '2.5G', '100M', '1Gb'])
    t.throws(() => parseGridBandwidth(ambiguous), {message: /ambiguous rate/}, ambiguous)
  t.throws(() => parseGridBandwidth('10G'), {message: "field '--bandwidth': ambiguous rate: bytes or bits per second? (expected 10GiB/s (bytes, QEMU's reading of 10G) or 10Gbit/s (a link speed), found '10G')"})
  t.is(parseGridBandwidth('128MiB/s'), 134_217_728)
  t.is(parseGridBandwidth('125MB/s'), 125_000_000)
  t.throws(() => parseGridBandwidth('1000'), {message: /needs a unit/})
  t.throws(() => parseGridBandwidth('fast'), {instanceOf: UserError})
  const axes = gridAxes(['1Gbit/s,2.5Gbit/s', '10Gbit/s'], ['50ms,300ms', '1s', '2'])
  t.deepEqual(
    axes.downtimes.map((d) => d.ms),
    [50, 300, 1000, 2],
  )
  t.is(axes.bandwidths.length, 3)
  t.throws(() => gridAxes(['1Gbit/s,125MB/s'], ['1s']), {message: /same value twice/})
})

test('shards: i/n, round robin', (t) => {
  t.deepEqual(parseShard('2/3'), {index: 2, count: 3})
  for (const bad of ['0/3', '4/3', '1/0', 'a/b', '1'])
    t.throws(() => parseShard(bad), {instanceOf: UserError}, bad)
  t.deepEqual(shardIndices(7, {index: 1, count: 3}), [0, 3, 6])
  t.deepEqual(shardIndices(7, {index: 3, count: 3}), [2, 5])
  t.deepEqual(shardIndices(3), [0, 1, 2])
  t.deepEqual(shardIndices(2, {index: 3, count: 3}), [], 'more shards than items: some are empty')
})

test('one rate convention: G binary bytes, GB decimal bytes, bits spelt out; formatRate shows it resolved', async (t) => {
  const {formatRate, parseRate} = await import('../../src/util/units.js')
  t.is(parseRate('1G'), 2 ** 30, "a trace's or QEMU's 1G is 1 GiB/s")
  t.is(parseRate('1G/s'), 2 ** 30)
  t.is(parseRate('1GiB/s'), 2 ** 30)
  t.is(parseRate('1GB/s'), 1e9)
  t.is(parseRate('8Gbit/s'), 1e9)
  t.is(parseRate('8Gbps'), 1e9)
  t.is(parseRate('134217728'), 134217728)
  t.is(parseRate('134217728', 'x', {bare: 'refuse'}), 134217728, 'a bare number is bytes/s, as QEMU')
  t.throws(() => parseRate('1G', '--set max-bandwidth', {bare: 'refuse'}), {message: /ambiguous rate/})
  t.is(formatRate(2 ** 30), '1 GiB/s')
  t.is(formatRate(1.25e9), '10 Gbit/s')
  t.is(formatRate(125e6), '1 Gbit/s')
  t.is(formatRate(128 * 2 ** 20), '128 MiB/s')
  t.is(formatRate(1e9 + 1), '953.67 MiB/s')
})
