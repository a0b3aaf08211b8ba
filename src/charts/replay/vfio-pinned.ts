/**
 * VFIO pinned pages over time: pages pinned by mediated devices (vfio_pin_pages), summed over the
 * containers. With type1 tracking every still-pinned page is reported dirty at every read of the
 * bitmap (vfio_iova_dirty_bitmap re-populates it), so this is the floor of every sync's dirty set.
 */
import type {ReplayResult} from '../../replay/result.js'
import {COLORS} from '../theme.js'
import type {ChartDef} from '../types.js'
import {r3, sinceStartMs, stepChartSpec, stepPoints} from './time-series.js'

const data = (r: ReplayResult) => r.components.vfio

export const vfioPinnedChart: ChartDef<ReplayResult> = {
  id: 'vfio-pinned',
  title: 'VFIO: pinned pages over time',
  caption: 'Guest pages pinned by mediated VFIO devices (all containers), against time since migration start; the shaded band is the migration. With type1 dirty tracking, pinned pages are reported dirty at every sync. Shown only when a device pinned pages (a passthrough device maps, it does not pin: see the chart of pages reported dirty at each sync).',
  appliesTo: (r) => (data(r)?.pinnedOverTime ?? []).some((p) => p.pinnedPages > 0),
  rows: (r) => data(r)!.pinnedOverTime.map((p) => ({time_ms: sinceStartMs(r, p.tNs), trace_time_ms: r3(p.tNs / 1e6), pinned_pages: p.pinnedPages})),
  spec: (rows, r) => stepChartSpec(r, stepPoints(rows, r), {y: 'pinned_pages', title: 'pinned pages', color: COLORS.vfioState}),
}
