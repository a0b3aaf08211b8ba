/**
 * Pieces shared by the charts that plot a device's state over time (virtio-mem plugged size, VFIO
 * pinned pages): the band that marks the migration, and step series carried to the end. The x axis
 * is the one of every report chart: time since migration start (negative before it).
 */
import type {ReplayResult} from '../../replay/result.js'
import {evenly} from '../downsample.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartRow, TopLevelSpec} from '../types.js'

export const r3 = (v: number): number => Math.round(v * 1000) / 1000

/** Trace time (ns) as the charts' x: ms since the migration start. */
export function sinceStartMs(r: ReplayResult, tNs: number): number {
  return r3((tNs - r.startNs) / 1e6)
}

/** A vega-lite layer: the migration (start to end) as a shaded band, time since its start in ms. */
export function migrationBand(r: ReplayResult) {
  return {
    data: {values: [{start_ms: 0, end_ms: sinceStartMs(r, r.endNs)}]},
    mark: {type: 'rect' as const, color: COLORS.live, opacity: 0.9},
    encoding: {x: {field: 'start_ms', type: 'quantitative' as const, title: 'time since migration start (ms)'}, x2: {field: 'end_ms'}},
  }
}

/**
 * Points of a step series (rows with `time_ms`), thinned for drawing, with the last value carried
 * to the end of the run so the step line reaches it.
 */
export function stepPoints(rows: readonly ChartRow[], r: ReplayResult): ChartRow[] {
  const endMs = sinceStartMs(r, Math.max(r.endNs, r.traceEndNs))
  const points = evenly(rows, 5000)
  const last = rows.at(-1)
  if (last && (last.time_ms as number) < endMs) points.push({...last, time_ms: endMs})
  return points
}

/**
 * The whole spec of such a chart: the migration band under a step line of `points` (time_ms on x,
 * `y` on y), optionally one line per value of `color`.
 */
export function stepChartSpec(r: ReplayResult, points: ChartRow[], line: {y: string; title: string; color?: string; colorField?: string}): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: BASE_CONFIG,
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    layer: [
      migrationBand(r),
      {
        data: {values: points},
        mark: {type: 'line', interpolate: 'step-after', strokeWidth: 2, point: false, ...(line.color ? {color: line.color} : {})},
        encoding: {
          x: {field: 'time_ms', type: 'quantitative'},
          y: {field: line.y, type: 'quantitative', title: line.title},
          ...(line.colorField ? {color: {field: line.colorField, type: 'nominal', title: line.colorField}} : {}),
        },
      },
    ],
  }
}
