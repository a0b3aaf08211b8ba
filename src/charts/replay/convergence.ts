/**
 * Convergence: per iteration, the dirty set right after the sync that opened it, the pages sent in
 * it, and the switchover threshold in pages. QEMU switches over when the pending bytes
 * (migration_dirty_pages x TARGET_PAGE_SIZE, ram_state_pending_exact) are at most threshold_size
 * (bandwidth x downtime-limit, migration_update_counters), so the dirty line must dip under the
 * threshold line for precopy to converge.
 */
import type {ReplayResult} from '../../replay/result.js'
import {evenly} from '../downsample.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'

const SERIES = ['dirty pages at sync', 'pages sent', 'threshold (pages)'] as const
/** Beyond this many iterations the points are dropped (lines only): they would be a blur and megabytes of SVG. */
const MAX_POINT_ITERATIONS = 200

export const convergenceChart: ChartDef<ReplayResult> = {
  id: 'convergence',
  title: 'Convergence: dirty pages at each sync, pages sent, switchover threshold',
  caption:
    'Per iteration (log scale). Precopy can switch over once the dirty set falls to the threshold (bandwidth x downtime-limit, in pages). ' +
    'The threshold is unknown (empty) until the first bandwidth measurement.',
  appliesTo: (r) => r.rows.length > 0,
  rows: (r) =>
    r.rows.map((x) => ({
      iteration: x.iteration,
      phase: x.phase,
      dirty_pages_at_sync: x.dirtyPagesAtSync,
      pages_sent: x.pagesSent,
      // ram_state_pending_exact counts dirty pages x TARGET_PAGE_SIZE against threshold_size.
      threshold_pages: x.thresholdBytes > 0 ? Math.floor(x.thresholdBytes / r.guest.pageSize) : null,
      threshold_bytes: x.thresholdBytes,
    })),
  spec: (rows) => ({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    config: BASE_CONFIG,
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    data: {
      values: evenly(rows, 3000).flatMap((r) => [
        {iteration: r.iteration, series: SERIES[0], pages: r.dirty_pages_at_sync},
        {iteration: r.iteration, series: SERIES[1], pages: r.pages_sent},
        {iteration: r.iteration, series: SERIES[2], pages: r.threshold_pages},
      ]) as ChartRow[],
    },
    // log scale: zero and unknown values cannot be drawn
    transform: [{filter: 'isValid(datum.pages) && datum.pages > 0'}],
    encoding: {
      x: {field: 'iteration', type: 'quantitative', title: 'iteration', axis: {tickMinStep: 1, format: 'd'}},
      y: {field: 'pages', type: 'quantitative', title: 'pages', scale: {type: 'log'}},
      color: {field: 'series', type: 'nominal', title: null, scale: {domain: [...SERIES], range: [COLORS.dirty, COLORS.sent, COLORS.threshold]}},
      strokeDash: {field: 'series', type: 'nominal', title: null, scale: {domain: [...SERIES], range: [[1, 0], [1, 0], [6, 4]]}},
    },
    layer: rows.length <= MAX_POINT_ITERATIONS ? [{mark: {type: 'line'}}, {mark: {type: 'point', filled: true, size: 36}}] : [{mark: {type: 'line'}}],
  }),
}
