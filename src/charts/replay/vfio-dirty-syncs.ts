/**
 * VFIO at each dirty sync: the pages VFIO reported dirty (vfio_get_dirty_bitmap ->
 * vfio_iova_dirty_bitmap for type1, the device's DMA log for device tracking) against the pages
 * mapped and pinned then. This is what decides a passthrough device's migration: an IOMMU-backed
 * type1 group cannot say what the device wrote, so every mapped page is reported dirty at every
 * sync and precopy never converges; a mediated device reports its pinned pages at every sync.
 */
import type {ReplayResult} from '../../replay/result.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'
import {evenly} from '../downsample.js'
import {r3} from './time-series.js'

interface VfioSync {
  sync: number
  tNs: number
  lastStage: boolean
  pinnedPages: number
  mappedPages: number
  reportedDirtyPages: number
  deferredPages: number
}
interface VfioData {
  containers: {id: string; mode: string; perSync: VfioSync[]}[]
}

const data = (r: ReplayResult): VfioData | undefined => r.components.vfio as VfioData | undefined
const SERIES = ['reported dirty', 'mapped', 'pinned'] as const

export const vfioDirtySyncsChart: ChartDef<ReplayResult> = {
  id: 'vfio-dirty-syncs',
  title: 'VFIO: pages reported dirty at each sync',
  caption:
    'At each dirty-bitmap sync (time since migration start), the guest pages VFIO reported dirty, against the pages mapped for DMA and the pages pinned. ' +
    'When the reported line sits on the mapped line, VFIO cannot tell what the device wrote (an IOMMU-backed type1 group, or no tracking): every mapped page is sent again at every iteration.',
  appliesTo: (r) => (data(r)?.containers ?? []).some((c) => c.perSync.length > 0),
  rows: (r) =>
    data(r)!.containers.flatMap((c) =>
      c.perSync.map((s) => ({
        container: c.id,
        tracking: c.mode,
        sync: s.sync,
        last_stage: s.lastStage,
        time_ms: r3((s.tNs - r.startNs) / 1e6),
        reported_dirty_pages: s.reportedDirtyPages,
        mapped_pages: s.mappedPages,
        pinned_pages: s.pinnedPages,
        deferred_pages: s.deferredPages,
      })),
    ),
  spec: (rows) => {
    const containers = new Set(rows.map((x) => x.container)).size
    const values: ChartRow[] = evenly(rows, 2000).flatMap((x) => [
      {time_ms: x.time_ms ?? 0, container: x.container ?? null, series: SERIES[0], pages: x.reported_dirty_pages ?? 0},
      {time_ms: x.time_ms ?? 0, container: x.container ?? null, series: SERIES[1], pages: x.mapped_pages ?? 0},
      {time_ms: x.time_ms ?? 0, container: x.container ?? null, series: SERIES[2], pages: x.pinned_pages ?? 0},
    ])
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      data: {values},
      encoding: {
        x: {field: 'time_ms', type: 'quantitative', title: 'time since migration start (ms)'},
        y: {field: 'pages', type: 'quantitative', title: 'pages', axis: {format: ',d'}},
        color: {field: 'series', type: 'nominal', title: null, scale: {domain: [...SERIES], range: [COLORS.dirty, '#7f7f7f', COLORS.vfioState]}},
        strokeDash: {field: 'series', type: 'nominal', title: null, scale: {domain: [...SERIES], range: [[1, 0], [6, 4], [2, 2]]}},
        ...(containers > 1 ? {detail: {field: 'container', type: 'nominal' as const}} : {}),
      },
      layer: [{mark: {type: 'line', interpolate: 'step-after'}}, {mark: {type: 'point', filled: true, size: 30}}],
    }
  },
}
