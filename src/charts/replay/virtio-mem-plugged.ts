/**
 * virtio-mem plugged size over time, per device: each ACKed plug or unplug steps the line
 * (virtio_mem_handle_request); the band marks the migration, during which requests answer BUSY
 * (virtio_mem_is_busy), so the line is flat there.
 */
import type {ReplayResult} from '../../replay/result.js'
import type {ChartDef, ChartRow} from '../types.js'
import {r3, sinceStartMs, stepChartSpec, stepPoints} from './time-series.js'

const MiB = 2 ** 20

const data = (r: ReplayResult) => r.components['virtio-mem']

export const virtioMemPluggedChart: ChartDef<ReplayResult> = {
  id: 'virtio-mem-plugged',
  title: 'virtio-mem: plugged size over time',
  caption: 'Plugged memory of each virtio-mem device (MiB) against time since migration start; the shaded band is the migration, during which plug and unplug requests answer BUSY.',
  appliesTo: (r) => (data(r)?.devices.length ?? 0) > 0,
  rows: (r) => {
    const out: ChartRow[] = []
    for (const d of data(r)!.devices)
      for (const p of d.pluggedOverTime) out.push({device: d.id, time_ms: sinceStartMs(r, p.tNs), trace_time_ms: r3(p.tNs / 1e6), plugged_bytes: p.pluggedBytes, plugged_mib: r3(p.pluggedBytes / MiB)})
    return out
  },
  spec: (rows, r) => {
    const points: ChartRow[] = []
    for (const id of new Set(rows.map((x) => x.device))) points.push(...stepPoints(rows.filter((x) => x.device === id), r))
    return stepChartSpec(r, points, {y: 'plugged_mib', title: 'plugged (MiB)', colorField: 'device'})
  },
}
