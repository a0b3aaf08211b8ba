/**
 * Postcopy fault latency: how long vCPUs waited for a page they touched before it arrived, as
 * QEMU 10.1's postcopy-latency-dist buckets (bucket N = [2^N, 2^(N+1)) µs; bucket 0 also holds
 * faults under 1 µs), from the replay's postcopy result.
 */
import type {ReplayResult} from '../../replay/result.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH} from '../theme.js'
import type {ChartDef} from '../types.js'

const usText = (us: number): string => (us >= 1e6 ? `${us / 1e6} s` : us >= 1e3 ? `${us / 1e3} ms` : `${us} µs`)

export const postcopyLatencyChart: ChartDef<ReplayResult> = {
  id: 'postcopy-latency',
  title: 'Postcopy fault latency',
  caption: 'Faults of pages not yet received after the switchover, by how long the vCPU waited (log2 buckets, as postcopy-latency-dist). The table has every bucket; the chart shows the occupied range.',
  appliesTo: (r) => r.postcopy !== undefined && r.postcopy.latencyHistogram.some((n) => n > 0),
  rows: (r) =>
    r.postcopy!.latencyHistogram.map((faults, n) => ({
      bucket: n,
      from_us: n === 0 ? 0 : 2 ** n,
      to_us: 2 ** (n + 1),
      label: `${usText(n === 0 ? 0 : 2 ** n)} – ${usText(2 ** (n + 1))}`,
      faults,
    })),
  spec: (rows, r) => {
    const occupied = rows.filter((x) => (x.faults as number) > 0).map((x) => x.bucket as number)
    const lo = Math.max(0, Math.min(...occupied) - 1)
    const hi = Math.min(rows.length - 1, Math.max(...occupied) + 1)
    const shown = rows.filter((x) => (x.bucket as number) >= lo && (x.bucket as number) <= hi)
    const p = r.postcopy!.latencyNs
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      title: {text: `${p.count} faults: p50 ${(p.p50 / 1e6).toFixed(3)} ms, p99 ${(p.p99 / 1e6).toFixed(3)} ms, max ${(p.max / 1e6).toFixed(3)} ms`, fontSize: 12, fontWeight: 'normal'},
      data: {values: shown.map((x) => ({...x, from: usText(x.from_us as number)}))},
      mark: {type: 'bar', color: '#1f77b4'},
      encoding: {
        x: {field: 'from', type: 'ordinal', title: 'fault latency (bucket start; each bucket spans to the next)', sort: {field: 'bucket'}, axis: {labelAngle: 0}},
        tooltip: [{field: 'label', title: 'bucket'}, {field: 'faults'}],
        y: {field: 'faults', type: 'quantitative', title: 'faults'},
      },
    }
  },
}
