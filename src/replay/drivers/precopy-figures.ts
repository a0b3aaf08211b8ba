/**
 * The `qemu` driver's part of the result: the verdict, the downtime and its parts, the notes that
 * explain them, and the postcopy and throttle figures when the run had them.
 */
import type {DriverFigures} from '../driver.js'
import type {IterationBook} from '../iterations.js'
import type {IterationRow, StallInfo, Verdict} from '../result.js'
import {linkRate, type Sender} from '../sender/index.js'
import type {ReplaySettings} from '../settings.js'
import type {GuestClock} from '../throttle-clock.js'
import type {Throttle} from '../throttle.js'
import type {Switchover} from './switchover.js'

/** What the `qemu` driver knows at the end of a run. */
export interface PrecopyState {
  readonly settings: ReplaySettings
  readonly pageSize: number
  readonly startNs: number
  /** First page sent (the end of setup-time); NaN when the migration never got there. */
  readonly sendStartNs: number
  readonly end: Switchover
  readonly book: IterationBook
  readonly sender: Sender
  readonly clock: GuestClock
  readonly throttle?: Throttle
  readonly notes: readonly string[]
  readonly ignoredParams: ReadonlySet<string>
}

const ms = (ns: number): number => ns / 1e6

/** Is the dirty set still shrinking? From the last live iterations' dirty sets at sync. */
export function stallInfo(live: readonly IterationRow[], pageSize: number, rate: number, downtimeLimitMs: number): StallInfo {
  const last = live.at(-1)
  const dirtyBytes = (last?.dirtyPagesAtSync ?? 0) * pageSize
  const tail = live.slice(-4, -1).map((r) => r.dirtyPagesAtSync)
  const stalled = tail.length >= 2 && tail.every((d) => d > 0 && Math.abs((last?.dirtyPagesAtSync ?? 0) - d) / d < 0.05)
  return {
    stalled,
    dirtyBytes,
    needsDowntimeMs: rate > 0 ? (dirtyBytes * 1000) / rate : Infinity,
    needsBandwidthBps: downtimeLimitMs > 0 ? (dirtyBytes * 1000) / downtimeLimitMs : Infinity,
  }
}

export function precopyFigures(d: PrecopyState, ctx: {lastEventNs: number; notReplayed: number}): DriverFigures {
  const s = d.settings
  const e = d.end
  const reason = e.stopReason!
  const traceEndedFirst = e.stopNs > ctx.lastEventNs && ctx.notReplayed === 0
  let verdict: Verdict
  if (reason === 'cancelled') verdict = 'cancelled'
  else if (reason === 'converged') verdict = traceEndedFirst ? 'inconclusive' : 'converged'
  else if (reason === 'postcopy') verdict = 'postcopy'
  else verdict = 'not-converged'
  const notes = [...d.notes]
  if (traceEndedFirst && reason !== 'cancelled')
    notes.push(
      s['trace-end'] === 'idle'
        ? `the trace ended at ${ms(ctx.lastEventNs).toFixed(1)} ms, before the migration; the guest was assumed idle afterwards`
        : `the trace ended at ${ms(ctx.lastEventNs).toFixed(1)} ms, before the migration; the switchover was forced there`,
    )
  if (d.ignoredParams.size > 0) notes.push(`trace parameters not modelled: ${[...d.ignoredParams].join(', ')}`)
  const setupEndNs = Number.isNaN(d.sendStartNs) ? d.startNs : d.sendStartNs
  const f: DriverFigures = {
    verdict,
    stopReason: reason,
    startNs: d.startNs,
    setupEndNs,
    stopNs: e.stopNs,
    endNs: e.endNs,
    traceEndedFirst,
    downtimeMs: reason === 'cancelled' ? 0 : ms(e.endNs - e.stopNs),
    downtime: {
      ramMs: ms(e.ramEndNs - e.stopNs),
      deviceStateMs: ms(e.endNs - e.vfioEndNs),
      vfioStateMs: ms(e.vfioEndNs - e.ramEndNs),
      vfioStateBytes: e.vfioStateBytes,
      ramPages: e.finalPages,
      ramBytes: e.finalBytes,
      deviceStateBytes: reason === 'cancelled' ? 0 : s['device-state-bytes'],
    },
    rows: d.book.rows,
    notes,
    stall: reason === 'converged' || reason === 'cancelled' ? undefined : stallInfo(d.book.live, d.pageSize, linkRate(s), s['downtime-limit']),
    transferredBytes: d.sender.transferred,
    showComponents: true,
    showTransport: true,
  }
  if (d.throttle) f.throttle = d.throttle.result(e.stopNs)
  const post = e.post
  if (post) {
    f.postcopy = post.result(d.startNs, d.clock.offset)
    // The source's downtime ends when the package is sent (migration_downtime_end).
    f.downtimeMs = ms(post.packageEndNs - e.stopNs)
    f.downtime.ramMs = ms(post.discardNs)
    f.downtime.ramPages = 0
    f.downtime.ramBytes = post.discardBytes
    f.downtime.vfioStateMs = ms(post.extraNs)
    f.downtime.deviceStateMs = ms(post.deviceNs)
    f.transferredBytes += post.discardBytes + e.vfioStateBytes + post.deviceStateBytes + post.bytesAfter
    // The precopy part's convergence figures matter only when postcopy rescued a stalled precopy.
    if (!/^(stall|cap:)/.test(f.postcopy.trigger)) f.stall = undefined
  } else if (s['postcopy-after'] !== undefined || s['postcopy-at'] !== undefined || s['postcopy-on-stall'])
    if (reason !== 'cancelled') notes.push('postcopy was asked for, but precopy completed before it was triggered')
  return f
}
