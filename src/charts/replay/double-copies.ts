/**
 * Double-copies (pages sent again with unchanged content, the ledger's `redundant` class) per
 * iteration, stacked by the cause the dirty source gave when it set the page's bitmap bit.
 * More than 200 iterations are summed into bins of equal width.
 */
import {KNOWN_CAUSES} from '../../replay/host.js'
import type {ReplayResult} from '../../replay/result.js'
import {binWidth} from '../downsample.js'
import {BASE_CONFIG, CAUSE_PALETTE, CHART_HEIGHT, CHART_WIDTH} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'

const MAX_BARS = 200

export const doubleCopiesChart: ChartDef<ReplayResult> = {
  id: 'double-copies',
  title: 'Double-copies by cause per iteration',
  caption: 'Pages sent again with unchanged content, per iteration, stacked by cause (see the cause list above). Only non-zero counts are listed and drawn.',
  appliesTo: (r) => r.totals.redundantPages > 0,
  rows: (r) => {
    const out: ChartRow[] = []
    for (const x of r.rows)
      for (const c of r.causes) {
        const pages = x.redundantByCause[c.id] ?? 0
        if (pages > 0) out.push({iteration: x.iteration, phase: x.phase, cause: c.id, pages})
      }
    return out
  },
  spec: (rows, r) => {
    const width = binWidth(r.rows.length, MAX_BARS)
    let values: ChartRow[] = rows
    let xTitle = 'iteration'
    if (width > 1) {
      const sums = new Map<string, ChartRow>()
      for (const row of rows) {
        const bin = Math.floor((row.iteration as number) / width) * width
        const key = `${bin}|${row.cause as string}`
        const cur = sums.get(key)
        if (cur) cur.pages = (cur.pages as number) + (row.pages as number)
        else sums.set(key, {iteration: bin, cause: row.cause ?? null, pages: row.pages ?? 0})
      }
      values = [...sums.values()]
      xTitle = `iteration (bins of ${width})`
    }
    // colours by the causes' fixed order (stable across reports); legend: the causes present only
    const all = KNOWN_CAUSES.map((c) => c.id)
    const causes = all.filter((id) => values.some((v) => v.cause === id))
    // one bar per iteration at most 48 px wide: a one-iteration run is one bar, not the whole chart
    const bars = new Set(values.map((v) => v.iteration)).size
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: bars * 48 < CHART_WIDTH ? {step: 48} : CHART_WIDTH,
      height: CHART_HEIGHT,
      data: {values},
      mark: {type: 'bar'},
      encoding: {
        x: {field: 'iteration', type: 'ordinal', title: xTitle, sort: 'ascending', axis: {labelAngle: 0}},
        y: {field: 'pages', type: 'quantitative', title: 'double-copied pages', stack: 'zero'},
        color: {field: 'cause', type: 'nominal', title: 'cause', scale: {domain: causes, range: causes.map((id) => CAUSE_PALETTE[all.indexOf(id) % CAUSE_PALETTE.length]!)}},
        order: {field: 'cause', type: 'ordinal'},
      },
    }
  },
}
