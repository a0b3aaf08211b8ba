/**
 * Transfer timeline: cumulative bytes on the wire against migration time, over bands that mark the
 * phases (setup, each live iteration, the stop-copy = the downtime, postcopy). The line has a point
 * at every 100 ms rate window (ReplayResult.transferTimeline), so the bursts and sleeps of QEMU's
 * rate limit and the slow windows of a sync show; a run without a timeline (recorded, snapshot)
 * falls back to the iteration boundaries, where the ledger's totals are exact.
 */
import type {ReplayResult} from '../../replay/result.js'
import {evenly} from '../downsample.js'
import {BASE_CONFIG, CHART_HEIGHT, CHART_WIDTH, COLORS} from '../theme.js'
import type {ChartDef, ChartRow} from '../types.js'

const MiB = 2 ** 20
const r3 = (v: number): number => Math.round(v * 1000) / 1000
/** More segments than this are drawn as one band per run of the same phase. */
const MAX_BANDS = 300

/** Consecutive segments of the same phase as one band. */
function coalesce(rows: ChartRow[]): ChartRow[] {
  const out: ChartRow[] = []
  for (const r of rows) {
    const last = out.at(-1)
    if (last && last.phase === r.phase) last.end_ms = r.end_ms ?? last.end_ms ?? null
    else out.push({phase: r.phase ?? null, start_ms: r.start_ms ?? null, end_ms: r.end_ms ?? null})
  }
  return out
}

/** One segment per iteration (and the setup before it): the phase bands, and the fallback line. */
function iterationSegments(r: ReplayResult): ChartRow[] {
  const out: ChartRow[] = []
  const ms = (ns: number): number => r3((ns - r.startNs) / 1e6)
  const first = r.rows[0]
  if (first && first.startNs > r.startNs)
    out.push({segment: 'setup', iteration: null, phase: 'setup', start_ms: 0, end_ms: ms(first.startNs), bytes_sent: 0, cumulative_bytes: 0})
  let cum = 0
  for (const x of r.rows) {
    cum += x.bytesSent
    out.push({segment: `${x.phase === 'live' ? 'iteration' : x.phase} ${x.iteration}`, iteration: x.iteration, phase: x.phase, start_ms: ms(x.startNs), end_ms: ms(x.endNs), bytes_sent: x.bytesSent, cumulative_bytes: cum})
  }
  return out
}

/** One row per stretch between two timeline points (a rate window, or the downtime's pass). */
function windowRows(r: ReplayResult, bands: readonly ChartRow[]): ChartRow[] {
  const {tMs, bytes} = r.transferTimeline!
  const out: ChartRow[] = []
  let b = 0
  for (let i = 1; i < tMs.length; i++) {
    const start = tMs[i - 1]!
    const end = tMs[i]!
    // The band the stretch starts in names its phase (bands are in time order).
    while (b + 1 < bands.length && (bands[b + 1]!.start_ms as number) <= start) b++
    const sent = bytes[i]! - bytes[i - 1]!
    out.push({
      window: i - 1,
      phase: bands[b]?.phase ?? null,
      start_ms: r3(start),
      end_ms: r3(end),
      bytes_sent: sent,
      cumulative_bytes: bytes[i]!,
      rate_mib_s: end > start ? r3(sent / MiB / ((end - start) / 1000)) : null,
    })
  }
  return out
}

const hasTimeline = (r: ReplayResult): boolean => (r.transferTimeline?.tMs.length ?? 0) >= 2

export const transferTimelineChart: ChartDef<ReplayResult> = {
  id: 'transfer-timeline',
  title: 'Transfer timeline: cumulative bytes sent, phases marked',
  caption:
    'Cumulative bytes on the wire (MiB) at every 100 ms rate window, over bands for the setup, the live iterations, the stop-copy (the downtime) and postcopy when the run switched to it; a steep stretch is a burst at link speed, a flat one the thread asleep or syncing. Runs without rate windows (recorded, snapshot) show the iteration boundaries. The dashed line is the guest RAM size.',
  appliesTo: (r) => r.rows.length > 0,
  rows: (r) => (hasTimeline(r) ? windowRows(r, iterationSegments(r)) : iterationSegments(r)),
  spec: (rows, r) => {
    const segments = hasTimeline(r) ? iterationSegments(r) : rows
    const bands = segments.length <= MAX_BANDS ? segments : coalesce(segments)
    const PHASES = [
      ['setup', COLORS.setup],
      ['live', COLORS.live],
      ['stop-copy', COLORS.stopCopy],
      ['postcopy', COLORS.postcopy],
    ] as const
    const happened = PHASES.filter(([p]) => segments.some((x) => x.phase === p))
    const points: ChartRow[] = []
    for (const s of rows) {
      if (points.length === 0) points.push({time_ms: s.start_ms ?? 0, mib: 0})
      points.push({time_ms: s.end_ms ?? 0, mib: r3((s.cumulative_bytes as number) / MiB)})
    }
    return {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      config: BASE_CONFIG,
      width: CHART_WIDTH,
      height: CHART_HEIGHT,
      layer: [
        {
          data: {values: bands},
          mark: {type: 'rect', opacity: 0.9, stroke: 'white', strokeWidth: 0.5},
          encoding: {
            x: {field: 'start_ms', type: 'quantitative', title: 'time since migration start (ms)'},
            x2: {field: 'end_ms'},
            color: {field: 'phase', type: 'nominal', title: 'phase', scale: {domain: happened.map(([p]) => p), range: happened.map(([, c]) => c)}},
          },
        },
        {
          data: {values: evenly(points, 5000)},
          mark: {type: 'line', color: COLORS.sent, point: false, strokeWidth: 2},
          encoding: {
            x: {field: 'time_ms', type: 'quantitative'},
            y: {field: 'mib', type: 'quantitative', title: 'cumulative MiB sent'},
          },
        },
        {
          data: {values: [{ram_mib: r3(r.guest.bytes / MiB)}]},
          mark: {type: 'rule', strokeDash: [4, 4], color: '#555'},
          encoding: {y: {field: 'ram_mib', type: 'quantitative'}},
        },
      ],
    }
  },
}
