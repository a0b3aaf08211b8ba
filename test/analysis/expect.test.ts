import {join} from 'node:path'
import test from 'ava'
import {compareWithObserved, failedRows, meetsTarget, observedMode, readExpectFile, type ReplayFigures} from '../../src/analysis/expect.js'
import {expectRowsJson, renderExpectText} from '../../src/analysis/expect-report.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT} from '../helpers/cli.js'

const observed = {
  status: 'completed',
  downtime: 50,
  'total-time': 3000,
  ram: {transferred: 1_000_000, normal: 200, duplicate: 50, 'dirty-sync-count': 5, 'precopy-bytes': 900_000, 'downtime-bytes': 100_000, 'postcopy-bytes': 0, 'postcopy-requests': 0},
}
const figures = (o: Partial<{bytes: number; dev: number; ram: number; syncs: number; down: number}> = {}): ReplayFigures => ({
  dirtySyncCount: o.syncs ?? 5,
  downtimeMs: o.down ?? 65,
  totalTimeMs: 2700,
  totals: {bytesSent: o.bytes ?? 1_040_000, normalPages: 190, zeroPages: 60},
  // Everything on the wire: RAM records plus device data (device state, VFIO).
  transferredBytes: (o.bytes ?? 1_040_000) + (o.dev ?? 10_000),
  downtime: {ramBytes: o.ram ?? 80_000},
})

test('rows: exact errors, relative errors and the precopy targets', (t) => {
  const rows = compareWithObserved(observed, figures())
  const by = Object.fromEntries(rows.map((r) => [r.metric, r]))
  t.deepEqual(rows.map((r) => r.metric), ['transferred', 'normal', 'duplicate', 'dirty-sync-count', 'downtime', 'total-time', 'precopy-bytes', 'downtime-bytes', 'postcopy-bytes', 'postcopy-requests'])
  // transferred = RAM records + device data = 1 050 000: +5 % exactly is within ±5 %.
  t.deepEqual(by.transferred, {metric: 'transferred', unit: 'bytes', observed: 1_000_000, predicted: 1_050_000, error: 50_000, relError: 0.05, target: '±5 %', pass: true})
  t.deepEqual([by.normal!.error, by.normal!.relError, by.normal!.pass, by.normal!.target], [-10, -0.05, null, null])
  // downtime 65 vs 50: +30 % but only 15 ms off -> passes on the 20 ms rule.
  t.deepEqual([by.downtime!.error, by.downtime!.relError, by.downtime!.pass], [15, 0.3, true])
  t.is(by['dirty-sync-count']!.pass, true)
  // RAM bytes only (qemu-semantics.md §8): precopy = RAM records - downtime RAM = 960 000; the
  // device state is in transferred but in neither precopy-bytes nor downtime-bytes.
  t.deepEqual([by['precopy-bytes']!.predicted, by['downtime-bytes']!.predicted], [960_000, 80_000])
  t.deepEqual([by['postcopy-bytes']!.predicted, by['postcopy-requests']!.relError], [0, null])
  t.deepEqual(failedRows(rows), [])
})

test('misses: 1 sync off of 5 is 20 %, downtime 25 % and 21 ms off, bytes 5.01 % off', (t) => {
  const rows = compareWithObserved(observed, figures({bytes: 1_040_100, syncs: 4, down: 71}))
  t.deepEqual(failedRows(rows).map((r) => [r.metric, r.relError]), [
    ['transferred', 0.0501],
    ['dirty-sync-count', -0.2],
    ['downtime', 0.42],
  ])
})

test('meetsTarget: the rel, abs and factor rules at their edges', (t) => {
  t.true(meetsTarget(100, 125, {rel: 0.25, text: ''}))
  t.false(meetsTarget(100, 125.5, {rel: 0.25, text: ''}))
  t.true(meetsTarget(10, 30, {rel: 0.25, abs: 20, text: ''}))
  t.false(meetsTarget(10, 30.5, {rel: 0.25, abs: 20, text: ''}))
  t.true(meetsTarget(2, 4, {factor: 2, text: ''}))
  t.true(meetsTarget(2, 1, {factor: 2, text: ''}))
  t.false(meetsTarget(2, 0.9, {factor: 2, text: ''}))
  t.false(meetsTarget(0, 1, {factor: 2, text: ''}))
  t.true(meetsTarget(0, 0, {rel: 0.05, text: ''}))
})

test('postcopy mode: detected from the real run 05, targets 10 % and 2x, unmodelled sides are null', (t) => {
  const obs = readExpectFile(join(ROOT, 'fixtures/qemu/05-high-postcopy-pfnmap/final-src.json'))
  t.is(observedMode(obs), 'postcopy')
  t.is(observedMode(observed), 'precopy')
  const f = {...figures({bytes: 1_671_559_926 * 1.09, dev: 0, ram: 0}), postcopy: {bytes: 508_519_111, requests: 4, bytesBeforeSwitchover: 1_671_559_926 * 1.09 - 508_519_111}}
  const by = Object.fromEntries(compareWithObserved(obs, f).map((r) => [r.metric, r]))
  t.is(by.transferred!.target, '±10 %')
  t.true(by.transferred!.pass)
  t.deepEqual([by['postcopy-requests']!.observed, by['postcopy-requests']!.pass], [2, true])
  t.is(by['dirty-sync-count']!.target, null)
  const noPc = Object.fromEntries(compareWithObserved(obs, figures()).map((r) => [r.metric, r]))
  t.deepEqual([noPc['postcopy-bytes']!.predicted, noPc['postcopy-bytes']!.pass, noPc['postcopy-bytes']!.note], [null, null, 'the replay does not model postcopy'])
})

test('a cancelled run without ram stats gives observed null rows, never a pass', (t) => {
  const rows = compareWithObserved({status: 'cancelled'}, figures())
  t.true(rows.every((r) => r.observed === null && r.pass === null && r.error === null))
})

test('text rendering: aligned table, signs, percentages, verdicts and notes', (t) => {
  const rows = compareWithObserved(observed, figures({syncs: 4}))
  const text = renderExpectText(rows.slice(0, 5))
  t.is(
    text,
    [
      'prediction vs QEMU (query-migrate)',
      '',
      'metric            unit    observed  predicted    error  rel. error  target           check',
      '----------------  -----  ---------  ---------  -------  ----------  ---------------  -----',
      'transferred       bytes  1,000,000  1,050,000  +50,000      +5.0 %  ±5 %             PASS',
      'normal            pages        200        190      -10      -5.0 %',
      'duplicate         pages         50         60      +10     +20.0 %',
      'dirty-sync-count  count          5          4       -1     -20.0 %  ±5 %             MISS',
      'downtime          ms            50         65      +15     +30.0 %  ±25 % or ±20 ms  PASS',
      '',
      'targets met: 2 of 3',
      '',
    ].join('\n'),
  )
  const json = expectRowsJson(rows)
  t.is(json[3]!.relErrorPct, -20)
  t.is(JSON.parse(JSON.stringify(json))[0].pass, true)
})

test('readExpectFile rejects what is not a query-migrate reply', (t) => {
  const e = t.throws(() => readExpectFile(join(ROOT, 'fixtures/qemu/05-high-postcopy-pfnmap/config.json')), {instanceOf: UserError})
  t.regex(e!.message, /not a query-migrate reply/)
})
