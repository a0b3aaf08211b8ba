/**
 * The `qemu` driver's part of the result: the verdict, the downtime and its parts, the notes that
 * explain them, and the postcopy and throttle figures when the run had them.
 */
import type {DriverFigures} from '../driver.js'
import type {IterationBook} from '../iterations.js'
import type {IterationRow, StallInfo, TransferTimeline, Verdict} from '../result.js'
import {linkRate, type Sender} from '../sender/index.js'
import type {ReplaySettings} from '../settings.js'
import type {GuestClock} from '../throttle-clock.js'
import type {Throttle} from '../throttle.js'
import {postcopyAsked} from '../postcopy-trigger.js'
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
  /** Time the thread had nothing to send yet could not switch over (device data pending). */
  readonly idleNs: number
}

const ms = (ns: number): number => ns / 1e6

/**
 * Is the dirty set still shrinking? From the last live iterations' dirty sets at sync.
 * `pendingBytes` is what a switchover at the end had (or would have) to send: the final dirty set
 * and device data; by default the last live sync's dirty set.
 */
export function stallInfo(live: readonly IterationRow[], pageSize: number, rate: number, downtimeLimitMs: number, pendingBytes?: number): StallInfo {
  const last = live.at(-1)
  const dirtyBytes = pendingBytes ?? (last?.dirtyPagesAtSync ?? 0) * pageSize
  const tail = live.slice(-4, -1).map((r) => r.dirtyPagesAtSync)
  const stalled = tail.length >= 2 && tail.every((d) => d > 0 && Math.abs((last?.dirtyPagesAtSync ?? 0) - d) / d < 0.05)
  return {
    stalled,
    dirtyBytes,
    needsDowntimeMs: rate > 0 ? (dirtyBytes * 1000) / rate : Infinity,
    needsBandwidthBps: downtimeLimitMs > 0 ? (dirtyBytes * 1000) / downtimeLimitMs : Infinity,
  }
}

/**
 * The verdict. A trace that ends before the migration does is judged on what the trace showed:
 * while it ran, was the dirty set stuck above what the downtime limit allows (not converging), or
 * was there not enough of it to tell (inconclusive)? The switchover the model then made with an
 * idle guest is what happens if the guest stops writing, not a convergence.
 */
export function precopyFigures(d: PrecopyState, ctx: {lastEventNs: number; notReplayed: number}): DriverFigures {
  const s = d.settings
  const e = d.end
  const reason = e.stopReason!
  const traceEndedFirst = e.stopNs > ctx.lastEventNs && ctx.notReplayed === 0
  const rate = linkRate(s)
  const ps = d.pageSize
  const endAt = `the trace ended at ${ms(ctx.lastEventNs).toFixed(1)} ms, before the migration`
  const notes = [...d.notes]
  let verdict: Verdict
  let stall: StallInfo | undefined
  if (reason === 'cancelled') verdict = 'cancelled'
  else if (reason === 'postcopy') verdict = 'postcopy'
  else if (traceEndedFirst && (reason === 'converged' || (reason === 'trace-end' && s['trace-end'] === 'switchover'))) {
    // Judge the iterations that began while the trace ran.
    const traced = d.book.live.filter((r) => r.startNs <= ctx.lastEventNs)
    const last = traced.at(-1)
    stall = stallInfo(traced, ps, rate, s['downtime-limit'])
    const stuck = stall.stalled && last !== undefined && last.thresholdBytes > 0 && stall.dirtyBytes > last.thresholdBytes
    verdict = stuck ? 'not-converged' : 'inconclusive'
    if (stuck)
      notes.push(
        `not converging while the trace ran: the dirty set stayed at ${(stall.dirtyBytes / 2 ** 20).toFixed(1)} MiB over the last syncs, above the ${(last!.thresholdBytes / 2 ** 20).toFixed(1)} MiB the downtime limit allows; ${endAt}`,
      )
    else stall = undefined
    if (reason === 'converged')
      notes.push(
        `${stuck ? 'the switchover' : `${endAt}; the switchover`} at ${ms(e.stopNs - d.startNs).toFixed(1)} ms (of the migration) assumes the guest idle after the trace${stuck ? '' : ': whether it converges with the guest still writing is not known'} (--set trace-end=switchover forces it at the trace's end)`,
      )
    else if (s['trace-end'] === 'switchover') notes.push(`${endAt}; the switchover was forced there (trace-end=switchover)`)
  } else {
    verdict = reason === 'converged' ? 'converged' : 'not-converged'
    // What the forced switchover had to send: the final dirty set and the device data.
    if (reason !== 'converged') stall = stallInfo(d.book.live, ps, rate, s['downtime-limit'], e.finalPages * ps + e.vfioStateBytes)
  }
  if (d.idleNs > 1e9)
    notes.push(
      `the migration thread had nothing to send for ${(d.idleNs / 1e9).toFixed(1)} s: device data (VFIO) kept the pending size above the switchover threshold while RAM was clean`,
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
    stall,
    transferredBytes: d.sender.transferred,
    ramRecordBytes: {precopy: e.precopyRamBytes, downtime: e.downtimeRamBytes},
    showComponents: true,
    showTransport: true,
  }
  if (d.throttle) f.throttle = d.throttle.result(e.stopNs)
  if (streamShown(s)) f.stream = d.sender.costs.figures()
  const post = e.post
  if (post) {
    f.postcopy = post.result(d.startNs, d.clock.offset)
    notes.push(...post.notes)
    // The source's downtime ends when the package is sent (migration_downtime_end).
    f.downtimeMs = ms(post.packageEndNs - e.stopNs)
    // The RAM part: the switchover sync, then the discard messages (ram_postcopy_send_discard_bitmap).
    f.downtime.ramMs = ms(post.syncNs + post.discardNs)
    f.downtime.ramPages = 0
    f.downtime.ramBytes = post.discardBytes
    f.downtime.vfioStateMs = ms(post.extraNs)
    f.downtime.deviceStateMs = ms(post.deviceNs)
    f.transferredBytes += post.discardBytes + e.vfioStateBytes + post.deviceStateBytes + post.bytesAfter
    // The precopy part's convergence figures matter only when postcopy rescued a stalled precopy.
    if (/^(stall|cap:)/.test(f.postcopy.trigger)) f.stall = stallInfo(d.book.live, ps, rate, s['downtime-limit'])
  } else if (postcopyAsked(s))
    if (reason !== 'cancelled') notes.push('postcopy was asked for, but precopy completed before it was triggered')
  if (!post && s['postcopy-fail-at'] !== undefined) notes.push('postcopy-fail-at: the run never switched to postcopy, so no failure was modelled')
  f.transferTimeline = transferTimeline(d.sender.timeline, d.startNs, e.endNs, f.transferredBytes)
  return f
}

/**
 * The sender's timeline points as ms since the migration start, closed by the end of the
 * migration with every byte transferred (the downtime's pass, device data, the postcopy phase).
 */
function transferTimeline(points: readonly number[], startNs: number, endNs: number, total: number): TransferTimeline {
  const tMs: number[] = []
  const bytes: number[] = []
  for (let i = 0; i < points.length; i += 2) {
    tMs.push((points[i]! - startNs) / 1e6)
    bytes.push(points[i + 1]!)
  }
  if (Number.isFinite(endNs) && (tMs.length === 0 || tMs[tMs.length - 1]! < (endNs - startNs) / 1e6 || bytes[bytes.length - 1] !== total)) {
    tMs.push((endNs - startNs) / 1e6)
    bytes.push(total)
  }
  return {tMs, bytes}
}

/** The result has a stream section when a stream feature is on (docs/stream.md). */
function streamShown(s: ReplaySettings): boolean {
  return s.multifd || s.xbzrle || s['sender-page-cost'] > 0 || s['multifd-page-cost'] > 0 || s['host-cpus'] > 0
}
