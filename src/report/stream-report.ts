/**
 * The report section of the migration stream (docs/stream.md): the sender's CPU, multifd,
 * compression and XBZRLE (query-migrate's xbzrle-cache). replay-report.ts places it.
 */
import type {ReplayResult} from '../replay/result.js'
import {formatBytes} from '../util/units.js'

const r3 = (v: number): number => Math.round(v * 1000) / 1000
const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const pct = (v: number): string => `${(v * 100).toFixed(1)} %`

/** The JSON field (absent when no stream feature was on). */
export function streamJson(r: ReplayResult): Record<string, unknown> {
  const s = r.stream
  if (!s) return {}
  return {stream: {...s, coreShare: r3(s.coreShare), cpuMs: r3(s.cpuMs), ...(s.compression ? {compression: {...s.compression, cpuMs: r3(s.compression.cpuMs)}} : {}), ...(s.xbzrle ? {xbzrle: {...s.xbzrle, cacheMissRate: r3(s.xbzrle.cacheMissRate)}} : {})}}
}

/** Key/value lines for the text headline. */
export function streamTextLines(r: ReplayResult): [string, string][] {
  const s = r.stream
  if (!s) return []
  const out: [string, string][] = []
  out.push(['sender', `${s.threads} thread${s.threads === 1 ? '' : 's'} (${r3(s.coreShare)} cores' worth), CPU ${r3(s.cpuMs)} ms, ${int(s.cpuBoundPages)} pages CPU-bound`])
  const m = s.multifd
  if (m) out.push(['  multifd', `${m.channels} channels: ${int(m.packets)} packets + ${int(m.syncPackets)} sync packets (${int(m.syncs)} syncs), ${formatBytes(m.headerBytes)} of headers, ${formatBytes(m.bytes)} multifd bytes`])
  const c = s.compression
  if (c) out.push(['  compression', `${c.method} level ${c.level}: ${int(c.pages)} pages, ${formatBytes(c.rawBytes)} -> ${formatBytes(c.compressedBytes)}, CPU ${r3(c.cpuMs)} ms`])
  const x = s.xbzrle
  if (x)
    out.push([
      '  xbzrle',
      `cache ${formatBytes(x.cacheSize)}: ${int(x.pages)} pages encoded (${int(x.skipped)} unchanged), ${int(x.cacheHits)} hits, ${int(x.cacheMiss)} misses (${pct(x.cacheMissRate)}), ${int(x.overflow)} overflows, ${formatBytes(x.bytes)} xbzrle bytes, ${formatBytes(x.savedBytes)} saved`,
    ])
  return out
}
