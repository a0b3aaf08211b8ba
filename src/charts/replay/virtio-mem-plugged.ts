/**
 * virtio-mem plugged size over time, per device: each ACKed plug or unplug steps the line
 * (virtio_mem_handle_request); the band marks the migration, during which requests answer BUSY
 * (virtio_mem_is_busy), so the line is flat there.
 */
import type {ReplayResult} from '../../replay/result.js'
import {evenly} from '../downsample.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'

const MiB = 2 ** 20
const r3 = (v: number): number => Math.round(v * 1000) / 1000

interface VirtioMemData {
  devices: {id: string; regionSize: number; requestedSize: number; pluggedOverTime: {tNs: number; pluggedBytes: number}[]}[]
}

const data = (r: ReplayResult): VirtioMemData | undefined => r.components['virtio-mem'] as VirtioMemData | undefined

export const virtioMemPluggedChart: ChartDef<ReplayResult> = {
  id: 'virtio-mem-plugged',
  title: 'virtio-mem: plugged size over time',
  caption: 'Plugged memory of each virtio-mem device (MiB) against trace time; the shaded band is the migration, during which plug and unplug requests answer BUSY.',
  appliesTo: (r) => (data(r)?.devices.length ?? 0) > 0,
  rows: (r) => {
    const out: ChartRow[] = []
    for (const d of data(r)!.devices)
      for (const p of d.pluggedOverTime) out.push({device: d.id, time_ms: r3(p.tNs / 1e6), plugged_bytes: p.pluggedBytes, plugged_mib: r3(p.pluggedBytes / MiB)})
    return out
  },
  spec: (rows, r) => {
    // A step line needs the last value carried to the end of the run.
    const endMs = r3(Math.max(r.endNs, r.traceEndNs) / 1e6)
    const points: ChartRow[] = []
    for (const id of new Set(rows.map((x) => x.device))) {
      const mine = rows.filter((x) => x.device === id)
      points.push(...evenly(mine, 5000))
      const last = mine.at(-1)
      if (last && (last.time_ms as number) < endMs) points.push({...last, time_ms: endMs})
    }
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      layer: [
        {
          data: {values: [{start_ms: r3(r.startNs / 1e6), end_ms: r3(r.endNs / 1e6), what: 'migration'}]},
          mark: {type: 'rect', color: COLORS.live, opacity: 0.9},
          encoding: {x: {field: 'start_ms', type: 'quantitative', title: 'trace time (ms)'}, x2: {field: 'end_ms'}},
        },
        {
          data: {values: points},
          mark: {type: 'line', interpolate: 'step-after', strokeWidth: 2, point: false},
          encoding: {
            x: {field: 'time_ms', type: 'quantitative'},
            y: {field: 'plugged_mib', type: 'quantitative', title: 'plugged (MiB)'},
            color: {field: 'device', type: 'nominal', title: 'device'},
          },
        },
      ],
    }
  },
}
