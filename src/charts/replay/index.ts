/**
 * The charts of the HTML replay report, in the order they appear. Adding a chart: write one file
 * in this folder exporting a ChartDef<ReplayResult>, and add it to this list (docs/reports.md).
 */
import type {ReplayResult} from '../../replay/result.js'
import type {ChartDef} from '../types.js'
import {convergenceChart} from './convergence.js'
import {doubleCopiesChart} from './double-copies.js'
import {downtimeChart} from './downtime.js'
import {postcopyLatencyChart} from './postcopy-latency.js'
import {transferTimelineChart} from './transfer-timeline.js'
import {vfioDirtySyncsChart} from './vfio-dirty-syncs.js'
import {vfioPinnedChart} from './vfio-pinned.js'
import {virtioMemPluggedChart} from './virtio-mem-plugged.js'

export const REPLAY_CHARTS: readonly ChartDef<ReplayResult>[] = [
  convergenceChart,
  transferTimelineChart,
  doubleCopiesChart,
  downtimeChart,
  postcopyLatencyChart,
  virtioMemPluggedChart,
  vfioDirtySyncsChart,
  vfioPinnedChart,
]
