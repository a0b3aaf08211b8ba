/**
 * The charts of `compare --html`: every variant's run drawn on one set of axes (as guestperf's
 * comparison plots do), one colour per variant: bytes sent over time, the dirty set at each sync,
 * and the downtime against each variant's limit.
 */
import type {CompareDoc} from '../../compare/compare-doc.js'
import type {IterationSeries} from '../../compare/sweep.js'
import {evenly} from '../downsample.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'

export interface CompareOverlayInput {
  doc: CompareDoc
  /** Per variant, in the doc's order: its iterations. */
  series: {variant: string; rows: IterationSeries[]}[]
}

const MiB = 2 ** 20
const r3 = (v: number): number => Math.round(v * 1000) / 1000
const variantScale = (input: CompareOverlayInput) => ({domain: input.doc.variants.map((v) => v.name)})

export const compareTransferChart: ChartDef<CompareOverlayInput> = {
  id: 'compare-transfer',
  title: 'Bytes sent over time, per variant',
  caption: 'Cumulative MiB on the wire against time since migration start, one line per variant; each line ends when its migration does (the last step is the stop-copy, the downtime).',
  appliesTo: (input) => input.series.some((s) => s.rows.length > 0),
  rows: (input) =>
    input.series.flatMap((s) => {
      let cum = 0
      return s.rows.map((x) => {
        cum += x.bytes_sent
        return {variant: s.variant, iteration: x.iteration, phase: x.phase, end_ms: x.end_ms, cumulative_bytes: cum}
      })
    }),
  spec: (rows, input) => {
    const values: ChartRow[] = []
    for (const v of input.doc.variants) {
      const mine = rows.filter((x) => x.variant === v.name)
      if (mine.length === 0) continue
      values.push({variant: v.name, time_ms: 0, mib: 0})
      for (const x of evenly(mine, 3000)) values.push({variant: v.name, time_ms: x.end_ms ?? 0, mib: r3((x.cumulative_bytes as number) / MiB)})
    }
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      data: {values},
      mark: {type: 'line', point: values.length <= 400, strokeWidth: 2},
      encoding: {
        x: {field: 'time_ms', type: 'quantitative', title: 'time since migration start (ms)'},
        y: {field: 'mib', type: 'quantitative', title: 'cumulative MiB sent'},
        color: {field: 'variant', type: 'nominal', title: 'variant', scale: variantScale(input)},
      },
    }
  },
}

export const compareConvergenceChart: ChartDef<CompareOverlayInput> = {
  id: 'compare-convergence',
  title: 'Dirty pages at each sync, per variant',
  caption: 'The dirty set right after the sync that opened each iteration (log scale), one line per variant; a variant converges when its line falls to its own switchover threshold (dashed, same colour).',
  appliesTo: (input) => input.series.some((s) => s.rows.length > 0),
  rows: (input) => input.series.flatMap((s) => s.rows.map((x) => ({variant: s.variant, iteration: x.iteration, phase: x.phase, dirty_pages_at_sync: x.dirty_pages_at_sync, threshold_pages: x.threshold_pages}))),
  spec: (rows, input) => {
    const values: ChartRow[] = evenly(rows, 4000).flatMap((x) => [
      {variant: x.variant ?? null, iteration: x.iteration ?? 0, series: 'dirty at sync', pages: x.dirty_pages_at_sync ?? null},
      {variant: x.variant ?? null, iteration: x.iteration ?? 0, series: 'threshold', pages: x.threshold_pages ?? null},
    ])
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      data: {values},
      transform: [{filter: 'isValid(datum.pages) && datum.pages > 0'}],
      mark: {type: 'line', point: rows.length <= 400},
      encoding: {
        x: {field: 'iteration', type: 'quantitative', title: 'iteration', axis: {tickMinStep: 1, format: 'd'}},
        y: {field: 'pages', type: 'quantitative', title: 'pages', scale: {type: 'log'}},
        color: {field: 'variant', type: 'nominal', title: 'variant', scale: variantScale(input)},
        strokeDash: {field: 'series', type: 'nominal', title: null, scale: {domain: ['dirty at sync', 'threshold'], range: [[1, 0], [6, 4]]}},
        detail: {field: 'series', type: 'nominal'},
      },
    }
  },
}

export const compareDowntimeChart: ChartDef<CompareOverlayInput> = {
  id: 'compare-downtime',
  title: 'Downtime per variant',
  caption: 'Each variant\'s downtime (bar) and its downtime-limit (red tick).',
  appliesTo: (input) => input.doc.variants.length > 0,
  rows: (input) =>
    input.doc.variants.map((v) => ({variant: v.name, verdict: v.verdict, downtime_ms: v.metrics.downtimeMs ?? 0, downtime_limit_ms: Number(v.effective['downtime-limit'] ?? 0)})),
  spec: (rows, input) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: BASE_CONFIG,
    width: CHART_WIDTH,
    data: {values: rows},
    encoding: {y: {field: 'variant', type: 'nominal', title: null, sort: input.doc.variants.map((v) => v.name)}},
    layer: [
      {mark: {type: 'bar', height: 18}, encoding: {x: {field: 'downtime_ms', type: 'quantitative', title: 'ms'}, color: {field: 'variant', type: 'nominal', legend: null, scale: variantScale(input)}}},
      {mark: {type: 'tick', color: COLORS.limit, thickness: 2, size: 24}, encoding: {x: {field: 'downtime_limit_ms', type: 'quantitative'}}},
    ],
  }),
}

export const COMPARE_CHARTS: readonly ChartDef<CompareOverlayInput>[] = [compareTransferChart, compareConvergenceChart, compareDowntimeChart]
