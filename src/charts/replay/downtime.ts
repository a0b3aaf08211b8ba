/**
 * Downtime breakdown: the stop-copy sends the last dirty RAM pages and the non-iterable device
 * state while the VM is paused (migration_completion); the bar shows both parts against the
 * downtime-limit.
 */
import type {ReplayResult} from '../../replay/result.js'
import {BASE_CONFIG, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef} from '../types.js'

const r3 = (v: number): number => Math.round(v * 1000) / 1000

export const downtimeChart: ChartDef<ReplayResult> = {
  id: 'downtime',
  title: 'Downtime breakdown',
  caption: 'The downtime split into the RAM still dirty at the switchover and the device state, against downtime-limit (red rule).',
  appliesTo: (r) => r.verdict !== 'cancelled',
  rows: (r) => [
    {part: 'RAM', kind: 'part', ms: r3(r.downtime.ramMs), bytes: r.downtime.ramBytes, pages: r.downtime.ramPages},
    {part: 'device state', kind: 'part', ms: r3(r.downtime.deviceStateMs), bytes: r.downtime.deviceStateBytes, pages: null},
    {part: 'downtime-limit', kind: 'limit', ms: r.settings['downtime-limit'], bytes: null, pages: null},
  ],
  spec: (rows) => {
    const parts = rows.filter((x) => x.kind === 'part' && (x.ms as number) > 0).map((x) => ({...x, bar: 'downtime'}))
    const limit = rows.filter((x) => x.kind === 'limit')
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: 60,
      layer: [
        {
          data: {values: parts},
          mark: {type: 'bar', height: 30},
          encoding: {
            y: {field: 'bar', type: 'nominal', title: null},
            x: {field: 'ms', type: 'quantitative', title: 'ms', stack: 'zero'},
            color: {field: 'part', type: 'nominal', title: 'part', scale: {domain: ['RAM', 'device state'], range: [COLORS.ram, COLORS.deviceState]}},
            order: {field: 'part', type: 'nominal'},
          },
        },
        {
          data: {values: limit},
          mark: {type: 'rule', color: COLORS.limit, strokeWidth: 2},
          encoding: {x: {field: 'ms', type: 'quantitative'}},
        },
      ],
    }
  },
}
