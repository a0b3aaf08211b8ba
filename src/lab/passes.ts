/**
 * passes.csv: one row per dirty-sync pass, from the 100 ms query-migrate timeline: the first sample
 * that shows each (dirty-sync-count, status). QEMU's MigrationInfo fields (qapi/migration.json).
 */
export interface TimelineSample {
  /** Seconds since the migrate command. */
  t: number
  /** Host time (s since the epoch) of the reply. */
  host_time: number
  r: Record<string, unknown>
  requery?: boolean
}

const COLUMNS = ['t_s', 'status', 'dirty_sync_count', 'transferred', 'remaining', 'duplicate', 'normal', 'dirty_pages_rate', 'expected_downtime_ms', 'postcopy_requests', 'mbps', 'cpu_throttle_percentage', 'xbzrle_cache_miss', 'xbzrle_pages'] as const

export function passesCsv(samples: readonly TimelineSample[]): string {
  const seen = new Set<string>()
  const rows: string[] = [COLUMNS.join(',')]
  for (const s of samples) {
    const ram = s.r.ram as Record<string, unknown> | undefined
    if (ram === undefined) continue
    const key = `${String(ram['dirty-sync-count'])}/${String(s.r.status)}`
    if (seen.has(key)) continue
    seen.add(key)
    const xb = s.r['xbzrle-cache'] as Record<string, unknown> | undefined
    const v = [s.t, s.r.status, ram['dirty-sync-count'], ram.transferred, ram.remaining, ram.duplicate, ram.normal, ram['dirty-pages-rate'], s.r['expected-downtime'], ram['postcopy-requests'], ram.mbps, s.r['cpu-throttle-percentage'], xb?.['cache-miss'], xb?.pages]
    rows.push(v.map((x) => (x === undefined || x === null ? '' : String(x))).join(','))
  }
  return `${rows.join('\n')}\n`
}
