/**
 * Per transport, what the guest paid (downtime, fault latency, blocked time) and what the host
 * paid (bytes on the stream, RAM bytes copied, page-table operations).
 */
import type {HostModel} from '../host.js'
import type {ReplayResult, TransportResult} from '../result.js'

export function transportResult(host: HostModel, r: ReplayResult): TransportResult {
  const tp = host.transport
  const t = host.ledger.totals()
  const normalPages = t.pagesSent - t.zeroPages
  // Only the network copies page contents through the stream; remapping moves them.
  const ramBytes = tp.kind === 'network' ? normalPages * r.guest.pageSize : 0
  const lat = r.postcopy?.latencyNs ?? r.snapshot?.latencyNs
  return {
    kind: tp.kind,
    rttMs: (tp.oneWayNs * 2) / 1e6,
    guest: {
      downtimeMs: r.downtimeMs,
      faultLatencyP50Ms: (lat?.p50 ?? 0) / 1e6,
      faultLatencyP99Ms: (lat?.p99 ?? 0) / 1e6,
      blocktimeMs: r.postcopy?.blocktimeMs ?? r.snapshot?.stallMs ?? 0,
    },
    host: {
      bytes: t.bytesSent,
      ramBytes,
      pageTableOps: Math.round(tp.stats.pageTableOps),
      pageTableMs: tp.stats.pageTableNs / 1e6,
      pagesNotSent: host.sharedDirtyPages + (tp.ramShared ? r.guest.pages : 0),
    },
  }
}

