/** Charts of long replays stay small: points are thinned, bars binned; the CSV keeps every row. */
import test from 'ava'
import {evenly, binWidth, MAX_POINTS} from '../../src/charts/downsample.js'
import {renderCharts} from '../../src/charts/render.js'
import {REPLAY_CHARTS} from '../../src/charts/replay/index.js'
import type {IterationRow, ReplayResult} from '../../src/replay/result.js'
import {KNOWN_CAUSES} from '../../src/replay/host.js'
import {chartSections, marksByType} from './svg-marks.js'

test('evenly keeps the first and the last and at most max items', (t) => {
  const xs = Array.from({length: 25_001}, (_, i) => i)
  const out = evenly(xs, 1000)
  t.is(out.length, 1000)
  t.is(out[0], 0)
  t.is(out.at(-1), 25_000)
  t.deepEqual(evenly([1, 2, 3], 10), [1, 2, 3])
  t.is(evenly(xs).length, MAX_POINTS)
  t.is(binWidth(150, 200), 1)
  t.is(binWidth(5000, 200), 25)
})

/** A replay of 5,000 live iterations (what a non-converging run under a long time cap looks like). */
function longReplay(n: number): ReplayResult {
  const [c1, c2] = [KNOWN_CAUSES[1]!.id, KNOWN_CAUSES[3]!.id]
  const rows: IterationRow[] = Array.from({length: n}, (_, i) => ({
    iteration: i,
    phase: i === n - 1 ? 'stop-copy' : 'live',
    startNs: i * 1e8,
    endNs: (i + 1) * 1e8,
    dirtyPagesAtSync: 1000 + (i % 7),
    newDirtyPages: 900,
    syncs: 1,
    thresholdBytes: i === 0 ? 0 : 4096 * 500,
    bandwidthBps: 1e8,
    expectedDowntimeMs: 40,
    dirtyRatePps: 9000,
    pagesSent: 1000,
    bytesSent: 1000 * 4104,
    first: 10,
    redirtied: 900,
    redundant: 90,
    zero: 0,
    redundantByCause: {[c1]: 60, [c2]: 30},
  }))
  return {
    driver: 'qemu',
    settings: {'downtime-limit': 300, 'max-bandwidth': 1e8} as ReplayResult['settings'],
    verdict: 'not-converged',
    stopReason: 'time-cap',
    startNs: 0,
    setupEndNs: 0,
    stopNs: (n - 1) * 1e8,
    endNs: n * 1e8,
    traceEndNs: n * 1e8,
    traceEndedFirst: false,
    totalTimeMs: n * 100,
    setupTimeMs: 0,
    downtimeMs: 100,
    downtime: {ramMs: 100, deviceStateMs: 0, ramPages: 1000, ramBytes: 4104000, deviceStateBytes: 0},
    iterations: n - 1,
    dirtySyncCount: n,
    totals: {pagesSent: n * 1000, bytesSent: n * 4104000, firstPages: 0, redirtiedPages: 0, redundantPages: n * 90, redundantBytes: n * 90 * 4104, zeroPages: 0, normalPages: n * 1000, redundantByCause: {[c1]: n * 60, [c2]: n * 30}},
    transferredBytes: n * 4104000,
    causes: KNOWN_CAUSES,
    lostWrites: 0,
    sendHistogram: new Array(16).fill(0),
    guest: {pages: 262144, pageSize: 4096, bytes: 2 ** 30},
    rows,
    components: {},
    events: {replayed: 0, writes: 0, notReplayed: 0, ignored: {}, unmapped: 0},
    lazyClears: 0,
    notes: [],
  }
}

test('a 5,000-iteration replay: thinned points, binned bars, complete tables', async (t) => {
  const r = longReplay(5000)
  const charts = await renderCharts(REPLAY_CHARTS, r)
  const byId = new Map(charts.map((c) => [c.id, c]))
  const svg = (id: string): string => chartSections(`<section class="chart" id="chart-${id}" data-chart="${id}">${byId.get(id)!.svg}</section>`).get(id)!
  // convergence: 3 lines, no points (too many iterations to mark each)
  t.deepEqual(marksByType(svg('convergence')), {line: 3})
  t.is(byId.get('convergence')!.rows.length, 5000)
  // double-copies: 5,000 iterations in bins of 25 -> 200 bars of 2 causes
  t.deepEqual(marksByType(svg('double-copies')), {rect: 200 * 2})
  t.is(byId.get('double-copies')!.rows.length, 5000 * 2)
  // timeline: one band per run of a phase (live, then stop-copy)
  t.deepEqual(marksByType(svg('transfer-timeline')), {rect: 2, line: 1, rule: 1})
  t.is(byId.get('transfer-timeline')!.rows.length, 5000)
  for (const c of charts) t.true(c.svg.length < 500_000, `${c.id}: ${c.svg.length} bytes of SVG`)
})
