/**
 * Pieces shared by the charts that plot a device's state against trace time (virtio-mem plugged
 * size, VFIO pinned pages): the band that marks the migration, and step series carried to the end.
 */
import type {ReplayResult} from '../../replay/result.js'
import {evenly} from '../downsample.js'
import {COLORS} from '../theme.js'
import type {ChartRow} from '../types.js'

export const r3 = (v: number): number => Math.round(v * 1000) / 1000

/** A vega-lite layer: the migration (start to end) as a shaded band on a trace-time axis in ms. */
export function migrationBand(r: ReplayResult) {
  return {
    data: {values: [{start_ms: r3(r.startNs / 1e6), end_ms: r3(r.endNs / 1e6)}]},
    mark: {type: 'rect' as const, color: COLORS.live, opacity: 0.9},
    encoding: {x: {field: 'start_ms', type: 'quantitative' as const, title: 'trace time (ms)'}, x2: {field: 'end_ms'}},
  }
}

/**
 * Points of a step series (rows with `time_ms`), thinned for drawing, with the last value carried
 * to the end of the run so the step line reaches it.
 */
export function stepPoints(rows: readonly ChartRow[], r: ReplayResult): ChartRow[] {
  const endMs = r3(Math.max(r.endNs, r.traceEndNs) / 1e6)
  const points = evenly(rows, 5000)
  const last = rows.at(-1)
  if (last && (last.time_ms as number) < endMs) points.push({...last, time_ms: endMs})
  return points
}
