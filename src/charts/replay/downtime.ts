/**
 * Downtime breakdown: the stop-copy sends the last dirty RAM pages and the non-iterable device
 * state while the VM is paused (migration_completion); the bar shows both parts against the
 * downtime-limit.
 */
import type {ReplayResult} from '../../replay/result.js'
import {BASE_CONFIG, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'
import {formatDurationNs} from '../../util/units.js'

const r3 = (v: number): number => Math.round(v * 1000) / 1000

export const downtimeChart: ChartDef<ReplayResult> = {
  id: 'downtime',
  title: 'Downtime breakdown',
  caption: 'The downtime split into the RAM still dirty at the switchover, the VFIO device state (when devices are passed through), the other device state and any remainder (e.g. the postcopy package and link latency), against downtime-limit (red rule; named above the bar instead when it is more than 5x the downtime, so a short downtime stays visible).',
  appliesTo: (r) => r.verdict !== 'cancelled',
  rows: (r) => {
    const d = r.downtime
    const parts: ChartRow[] = [
      {part: 'RAM', kind: 'part', ms: r3(d.ramMs), bytes: d.ramBytes, pages: d.ramPages},
      // vfio_save_complete_precopy: VFIO device state goes out before the rest of the device state
      ...(d.vfioStateMs !== undefined ? [{part: 'VFIO device state', kind: 'part', ms: r3(d.vfioStateMs), bytes: d.vfioStateBytes ?? null, pages: null}] : []),
      {part: 'device state', kind: 'part', ms: r3(d.deviceStateMs), bytes: d.deviceStateBytes, pages: null},
    ]
    // what the parts do not explain (e.g. the postcopy package and the link latency before the
    // guest resumes on the destination), so the bar always adds up to the downtime
    const other = r3(r.downtimeMs - d.ramMs - (d.vfioStateMs ?? 0) - d.deviceStateMs)
    if (other > 0) parts.push({part: 'other', kind: 'part', ms: other, bytes: null, pages: null})
    return [...parts, {part: 'downtime-limit', kind: 'limit', ms: r.settings['downtime-limit'], bytes: null, pages: null}]
  },
  spec: (rows) => {
    const parts: ChartRow[] = rows.filter((x) => x.kind === 'part' && (x.ms as number) > 0).map((x, i) => ({...x, bar: 'downtime', order: i}))
    const limitMs = (rows.find((x) => x.kind === 'limit')?.ms as number | undefined) ?? 0
    const totalMs = parts.reduce((a, x) => a + (x.ms as number), 0)
    // The axis fits the downtime: a 540 us postcopy downtime against a 300 ms limit would be an
    // invisible sliver, so a limit more than 5x the downtime is named in the title instead of drawn.
    const limitOnAxis = limitMs > 0 && limitMs <= 5 * totalMs
    const unit = Math.max(totalMs, limitOnAxis ? limitMs : 0) < 1 ? 'us' : 'ms'
    const k = unit === 'us' ? 1000 : 1
    const scaled = parts.map((x) => ({...x, value: r3((x.ms as number) * k)}))
    const title = limitOnAxis ? undefined : {text: `downtime ${formatDurationNs(totalMs * 1e6)}; limit ${formatDurationNs(limitMs * 1e6)} (off this scale)`, fontSize: 12, fontWeight: 'normal' as const}
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: 60,
      ...(title ? {title} : {}),
      layer: [
        {
          data: {values: scaled},
          mark: {type: 'bar', height: 30},
          encoding: {
            y: {field: 'bar', type: 'nominal', title: null},
            x: {field: 'value', type: 'quantitative', title: unit === 'us' ? 'µs' : 'ms', stack: 'zero'},
            color: {field: 'part', type: 'nominal', title: 'part', scale: {domain: ['RAM', 'VFIO device state', 'device state', 'other'], range: [COLORS.ram, COLORS.vfioState, COLORS.deviceState, '#bbbbbb']}},
            order: {field: 'order', type: 'quantitative'},
            tooltip: [{field: 'part'}, {field: 'ms', title: 'ms'}],
          },
        },
        ...(limitOnAxis
          ? [
              {
                data: {values: [{value: r3(limitMs * k)}]},
                mark: {type: 'rule' as const, color: COLORS.limit, strokeWidth: 2},
                encoding: {x: {field: 'value', type: 'quantitative' as const}},
              },
            ]
          : []),
      ],
    }
  },
}
