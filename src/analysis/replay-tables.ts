/**
 * Replay conclusions as tables (arquero, imported lazily): per-iteration rows, double-copies by
 * cause, pages by send count, and the headline. Everything derives from the ledger figures in the
 * ReplayResult; reports only format these.
 */
import type {ColumnTable} from 'arquero'
import type {ReplayResult} from '../replay/result.js'
import {deviceIterationColumns} from './device-tables.js'

export interface ReplayHeadline {
  verdict: string
  stopReason: string
  driver: string
  stopPolicy: string
  iterations: number
  dirtySyncCount: number
  totalTimeMs: number
  setupTimeMs: number
  downtimeMs: number
  downtimeRamMs: number
  downtimeDeviceStateMs: number
  downtimeLimitMs: number
  pagesSent: number
  bytesSent: number
  /** bytesSent / guest RAM bytes. */
  ratioToRam: number
  firstPages: number
  redirtiedPages: number
  redundantPages: number
  redundantBytes: number
  zeroPages: number
  lostWrites: number
  guestBytes: number
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000

export function replayHeadline(r: ReplayResult): ReplayHeadline {
  const t = r.totals
  return {
    verdict: r.verdict,
    stopReason: r.stopReason,
    driver: r.driver,
    stopPolicy: r.driver === 'qemu' ? r.settings['stop-policy'] : 'recorded',
    iterations: r.iterations,
    dirtySyncCount: r.dirtySyncCount,
    totalTimeMs: r3(r.totalTimeMs),
    setupTimeMs: r3(r.setupTimeMs),
    downtimeMs: r3(r.downtimeMs),
    downtimeRamMs: r3(r.downtime.ramMs),
    downtimeDeviceStateMs: r3(r.downtime.deviceStateMs),
    downtimeLimitMs: r.settings['downtime-limit'],
    pagesSent: t.pagesSent,
    bytesSent: t.bytesSent,
    ratioToRam: r.guest.bytes > 0 ? Math.round((t.bytesSent / r.guest.bytes) * 10000) / 10000 : 0,
    firstPages: t.firstPages,
    redirtiedPages: t.redirtiedPages,
    redundantPages: t.redundantPages,
    redundantBytes: t.redundantBytes,
    zeroPages: t.zeroPages,
    lostWrites: r.lostWrites,
    guestBytes: r.guest.bytes,
  }
}

/** Per-iteration rows as plain columns (also the JSON perIteration source). */
export function iterationColumns(r: ReplayResult): Record<string, (number | string)[]> {
  const ms = (ns: number): number => r3((ns - r.startNs) / 1e6)
  const ps = r.guest.pageSize
  return {
    iteration: r.rows.map((x) => x.iteration),
    phase: r.rows.map((x) => x.phase),
    start_ms: r.rows.map((x) => ms(x.startNs)),
    end_ms: r.rows.map((x) => ms(x.endNs)),
    dirty_pages_at_sync: r.rows.map((x) => x.dirtyPagesAtSync),
    new_dirty_pages: r.rows.map((x) => x.newDirtyPages),
    pages_sent: r.rows.map((x) => x.pagesSent),
    bytes_sent: r.rows.map((x) => x.bytesSent),
    first: r.rows.map((x) => x.first),
    redirtied: r.rows.map((x) => x.redirtied),
    redundant: r.rows.map((x) => x.redundant),
    zero: r.rows.map((x) => x.zero),
    dirty_rate_pps: r.rows.map((x) => Math.round(x.dirtyRatePps)),
    dirty_rate_bps: r.rows.map((x) => Math.round(x.dirtyRatePps * ps)),
    expected_downtime_ms: r.rows.map((x) => r3(x.expectedDowntimeMs)),
    threshold_bytes: r.rows.map((x) => x.thresholdBytes),
    bandwidth_bps: r.rows.map((x) => Math.round(x.bandwidthBps)),
    throttle_pct: r.rows.map((x) => x.throttlePct ?? 0),
    // VFIO: pinned pages and VFIO-reported dirty pages at the iteration's sync (only with VFIO).
    ...deviceIterationColumns(r),
  }
}

export function causeColumns(r: ReplayResult): Record<string, (number | string)[]> {
  const causes = r.causes
  // A double-copy is always a page with data: every one costs the run's page-record size.
  const perPage = r.totals.redundantPages > 0 ? r.totals.redundantBytes / r.totals.redundantPages : r.guest.pageSize + 8
  return {
    cause: causes.map((c) => c.id),
    pages: causes.map((c) => r.totals.redundantByCause[c.id] ?? 0),
    bytes: causes.map((c) => (r.totals.redundantByCause[c.id] ?? 0) * perPage),
    meaning: causes.map((c) => c.label),
  }
}

export function sendCountColumns(r: ReplayResult): Record<string, (number | string)[]> {
  return {sends: r.sendHistogram.map((_, i) => (i === 15 ? '15+' : String(i))), pages: r.sendHistogram}
}

export interface ReplayTables {
  headline: ColumnTable
  iterations: ColumnTable
  causes: ColumnTable
  sendCounts: ColumnTable
}

export async function replayTables(r: ReplayResult): Promise<ReplayTables> {
  const aq = await import('arquero')
  return {
    headline: aq.from([replayHeadline(r)]),
    iterations: aq.table(iterationColumns(r)),
    causes: aq.table(causeColumns(r)),
    sendCounts: aq.table(sendCountColumns(r)),
  }
}
