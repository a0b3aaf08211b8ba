/**
 * Heat maps of a bandwidth x downtime-limit grid: one rect per cell coloured by a figure, with the
 * figure and a verdict mark written in the cell (✓ converged, ✗ not converged, ? inconclusive: the
 * trace ended first, – cancelled).
 */
import type {GridDoc} from '../../compare/grid-doc.js'
import {formatDurationNs} from '../../util/units.js'
import {BASE_CONFIG} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'

const MARK: Record<string, string> = {converged: '✓', 'not-converged': '✗', inconclusive: '?', cancelled: '–', postcopy: 'P'}

function gridRows(doc: GridDoc): ChartRow[] {
  return doc.cells.map((c) => ({
    bandwidth: c.bandwidth,
    bandwidth_bytes_per_s: c.bandwidthBytesPerSec,
    downtime_limit: c.downtimeLimit,
    downtime_limit_ms: c.downtimeLimitMs,
    verdict: c.verdict,
    total_time_ms: c.totalTimeMs,
    downtime_ms: c.downtimeMs,
  }))
}

function heatmap(id: string, title: string, field: 'total_time_ms' | 'downtime_ms', scheme: string): ChartDef<GridDoc> {
  return {
    id,
    title,
    caption: `Rows: bandwidth; columns: downtime-limit; colour: ${field === 'total_time_ms' ? 'total migration time' : 'downtime'} (ms). In each cell: the figure and the verdict (✓ converged, ✗ not converged, ? inconclusive: the trace ended first, – cancelled, P completed in postcopy).`,
    appliesTo: (doc) => doc.cells.length > 0,
    rows: gridRows,
    spec: (rows, doc) => {
      const values = rows.map((r) => ({...r, label: `${formatDurationNs((r[field] as number) * 1e6)} ${MARK[r.verdict as string] ?? ''}`.trim()}))
      // the text is white on the darker half of the colour scale, black on the lighter half
      const figures = rows.map((r) => r[field] as number)
      const mid = (Math.min(...figures) + Math.max(...figures)) / 2
      const x = {field: 'downtime_limit', type: 'ordinal' as const, title: 'downtime-limit', sort: doc.downtimes.map((d) => d.text), axis: {labelAngle: 0}}
      const y = {field: 'bandwidth', type: 'ordinal' as const, title: 'bandwidth', sort: doc.bandwidths.map((b) => b.text)}
      return {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        config: {...BASE_CONFIG, legend: {...BASE_CONFIG.legend, orient: 'right' as const}},
        width: Math.max(200, 110 * doc.downtimes.length),
        height: Math.max(80, 40 * doc.bandwidths.length),
        data: {values},
        layer: [
          {
            mark: {type: 'rect', stroke: 'white', strokeWidth: 1},
            encoding: {x, y, color: {field, type: 'quantitative', title: 'ms', scale: {scheme}}},
          },
          {
            mark: {type: 'text', fontSize: 12},
            encoding: {x, y, text: {field: 'label', type: 'nominal'}, color: {condition: {test: `datum['${field}'] > ${mid}`, value: 'white'}, value: 'black'}},
          },
        ],
      }
    },
  }
}

export const GRID_CHARTS: readonly ChartDef<GridDoc>[] = [
  heatmap('grid-total-time', 'Total migration time by bandwidth and downtime-limit', 'total_time_ms', 'yelloworangered'),
  heatmap('grid-downtime', 'Downtime by bandwidth and downtime-limit', 'downtime_ms', 'purples'),
]
