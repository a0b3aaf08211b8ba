/**
 * The VFIO and virtio-mem parts of a replay report: text and Markdown sections, CSV tables and the
 * JSON objects. Input is result.components['vfio'] and
 * result.components['virtio-mem'] (shapes in docs/vfio-virtio-mem.md); nothing here when the
 * trace has no such device.
 */
import type {ReplayResult} from '../replay/result.js'
import {formatBytes} from '../util/units.js'
import {VFIO_CAUSES, vfioData, vmemData, type VfioContainerData, type VmemDeviceData} from '../analysis/device-tables.js'

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const hex = (n: number): string => `0x${n.toString(16)}`
const r3 = (v: number): number => Math.round(v * 1000) / 1000

function vfioRedundant(r: ReplayResult): [string, number][] {
  return VFIO_CAUSES.map((c) => [c, r.totals.redundantByCause[c] ?? 0] as [string, number]).filter(([, n]) => n > 0)
}

function trackingText(c: VfioContainerData): string {
  const scope =
    c.mode === 'none' || c.mode === 'device'
      ? ''
      : c.pinnedScope
        ? ', pinned-page scope'
        : ', IOMMU-backed group (never pinned): the whole mapping reads dirty'
  return `tracking ${c.mode} (header: ${c.capability}${scope})`
}

function requestSummary(d: VmemDeviceData): string {
  const parts: string[] = []
  for (const [req, byResp] of Object.entries(d.requests)) {
    const resp = Object.entries(byResp).filter(([, n]) => n > 0)
    if (resp.length > 0) parts.push(`${req} ${resp.map(([k, n]) => `${k} ${int(n)}`).join(', ')}`)
  }
  return parts.length > 0 ? parts.join('; ') : 'none'
}

/** Text lines of the VFIO and virtio-mem sections (empty when there is neither). */
export function deviceSectionsText(r: ReplayResult): string[] {
  const out: string[] = []
  const ps = r.guest.pageSize
  const normal = ps + 8
  const v = vfioData(r)
  if (v) {
    out.push('')
    out.push(`VFIO${v.stopCopyQueryFails ? ' (stop-copy size query fails: exact pending counts 100 GiB per device)' : ''}`)
    for (const c of v.containers) {
      out.push(`  container ${c.id}: ${trackingText(c)}`)
      const maxPinned = Math.max(0, ...c.perSync.map((s) => s.pinnedPages))
      out.push(`    mapped ${int(c.mappedPages)} pages, pinned ${int(c.pinnedPages)} at the end (${int(maxPinned)} at most at a sync), ${int(c.pinEvents)} pin / ${int(c.unpinEvents)} unpin events`)
      if (c.deferredAtSetupPages > 0) out.push(`    deferred to stop-copy at setup: ${int(c.deferredAtSetupPages)} pages`)
      for (const d of c.devices)
        out.push(
          `    device ${d.id}: ${int(d.dmaWrites)} DMA writes (${int(d.dmaPages)} pages, ${int(d.dmaFaults)} faults); state ${formatBytes(d.stateBytes)} = precopy ${formatBytes(d.precopySent)} + stop-copy ${formatBytes(d.stopCopySent)}`,
        )
      const syncs = c.perSync.map((s) => `${s.lastStage ? 'last' : s.sync}:${int(s.reportedDirtyPages)}`)
      if (syncs.length > 0) out.push(`    reported dirty pages per sync: ${syncs.slice(0, 12).join(' ')}${syncs.length > 12 ? ` ... (${syncs.length} syncs)` : ''}`)
    }
    const red = vfioRedundant(r)
    out.push(`  redundant sends VFIO caused: ${red.length > 0 ? red.map(([c, n]) => `${c} ${int(n)} pages (${formatBytes(n * normal)})`).join(', ') : 'none'}`)
  }
  const m = vmemData(r)
  if (m) {
    out.push('')
    out.push(`virtio-mem (${m.discardAware ? 'discard-aware' : 'not discard-aware: unplugged memory is migrated'}; writes to unplugged memory: ${m.unpluggedWrite})`)
    for (const d of m.devices) {
      const first = d.pluggedOverTime[0]?.pluggedBytes ?? d.pluggedBytes
      out.push(`  ${d.id}: region ${formatBytes(d.regionSize)} at ${hex(d.base)}, blocks of ${formatBytes(d.blockSize)}; plugged ${formatBytes(first)} -> ${formatBytes(d.pluggedBytes)} (requested ${formatBytes(d.requestedSize)}, usable ${formatBytes(d.usableRegionSize)})`)
      out.push(`    requests: ${requestSummary(d)}`)
      if (d.resets > 0)
        out.push(`    system resets: ${int(d.resets)}${d.resetsRefused > 0 ? `, ${int(d.resetsRefused)} during the migration (-EBUSY: nothing unplugged)` : ''}${d.resetsWakeup > 0 ? `, ${int(d.resetsWakeup)} wake-ups (memory kept)` : ''}`)
      out.push(`    skipped because unplugged: ${int(d.pagesSkippedUnplugged)} pages (${formatBytes(d.bytesSkippedUnplugged)}); waste (unplugged memory sent): ${int(d.wastePages)} pages (${formatBytes(d.wasteBytes)})`)
      if (d.unpluggedWriteEvents > 0)
        out.push(
          `    guest wrote unplugged memory: ${int(d.unpluggedWriteEvents)} writes to ${int(d.unpluggedWritePages)} pages${d.refusedWrites > 0 ? ` (${int(d.refusedWrites)} refused)` : ''}` +
            `${d.unpluggedNotMigratedPages > 0 ? `; ${int(d.unpluggedNotMigratedPages)} of them not migrated (the destination discards unplugged memory: not lost writes)` : ''}`,
        )
      const anomalies = m.anomalies.filter((a) => a.device === d.id)
      if (anomalies.length > 0) {
        out.push(`    anomalies: ${anomalies.length} syncs re-marked ${int(d.anomalyPages)} discarded pages dirty`)
        for (const a of anomalies.slice(0, 8))
          out.push(`      sync ${a.sync} at ${r3((a.tNs - r.startNs) / 1e6)} ms: ${int(a.pages)} pages, from ${a.ranges.slice(0, 4).map((x) => `${hex(x.gpa)}+${x.pages}`).join(', ')}${a.ranges.length > 4 ? ', ...' : ''}`)
      }
      const pts = d.pluggedOverTime
      if (pts.length > 1)
        out.push(`    plugged over time: ${pts.slice(0, 10).map((p) => `${r3(p.tNs / 1e6)} ms ${formatBytes(p.pluggedBytes)}`).join(', ')}${pts.length > 10 ? ', ...' : ''}`)
    }
  }
  return out
}

/** Markdown sections. */
export function deviceSectionsMarkdown(r: ReplayResult): string[] {
  const out: string[] = []
  const normal = r.guest.pageSize + 8
  const v = vfioData(r)
  if (v) {
    out.push('### VFIO', '')
    out.push('|container|tracking|mapped pages|pinned pages|device|DMA pages|state bytes|precopy bytes|stop-copy bytes|')
    out.push('|:-|:-|-:|-:|:-|-:|-:|-:|-:|')
    for (const c of v.containers)
      for (const d of c.devices.length > 0 ? c.devices : [undefined])
        out.push(`|${c.id}|${c.mode}|${c.mappedPages}|${c.pinnedPages}|${d?.id ?? ''}|${d?.dmaPages ?? 0}|${d?.stateBytes ?? 0}|${d?.precopySent ?? 0}|${d?.stopCopySent ?? 0}|`)
    out.push('')
    const red = vfioRedundant(r)
    out.push(`Redundant sends VFIO caused: ${red.length > 0 ? red.map(([c, n]) => `\`${c}\` ${n} pages (${formatBytes(n * normal)})`).join(', ') : 'none'}`, '')
  }
  const m = vmemData(r)
  if (m) {
    out.push(`### virtio-mem (${m.discardAware ? 'discard-aware' : 'not discard-aware'})`, '')
    out.push('|device|region|block|plugged|requested|requests|skipped pages|waste pages|unplugged writes|anomaly pages|')
    out.push('|:-|-:|-:|-:|-:|:-|-:|-:|-:|-:|')
    for (const d of m.devices)
      out.push(
        `|${d.id}|${formatBytes(d.regionSize)}|${formatBytes(d.blockSize)}|${formatBytes(d.pluggedBytes)}|${formatBytes(d.requestedSize)}|${requestSummary(d)}|${d.pagesSkippedUnplugged}|${d.wastePages}|${d.unpluggedWritePages}|${d.anomalyPages}|`,
      )
    out.push('')
  }
  return out
}

/** CSV tables: vfio.csv, vfio-syncs.csv, virtio-mem.csv, virtio-mem-requests.csv, virtio-mem-anomalies.csv. */
export function deviceCsvTables(r: ReplayResult): [string, Record<string, (number | string | boolean | null)[]>][] {
  const out: [string, Record<string, (number | string | boolean | null)[]>][] = []
  const v = vfioData(r)
  if (v) {
    const rows = v.containers.flatMap((c) => c.devices.map((d) => ({c, d})))
    out.push([
      'vfio.csv',
      {
        container: rows.map((x) => x.c.id),
        tracking: rows.map((x) => x.c.mode),
        mapped_pages: rows.map((x) => x.c.mappedPages),
        pinned_pages: rows.map((x) => x.c.pinnedPages),
        device: rows.map((x) => x.d.id),
        dma_writes: rows.map((x) => x.d.dmaWrites),
        dma_pages: rows.map((x) => x.d.dmaPages),
        state_bytes: rows.map((x) => x.d.stateBytes),
        precopy_bytes: rows.map((x) => x.d.precopySent),
        stop_copy_bytes: rows.map((x) => x.d.stopCopySent),
      },
    ])
    const syncs = v.containers.flatMap((c) => c.perSync.map((s) => ({c, s})))
    out.push([
      'vfio-syncs.csv',
      {
        container: syncs.map((x) => x.c.id),
        sync: syncs.map((x) => x.s.sync),
        t_ms: syncs.map((x) => r3((x.s.tNs - r.startNs) / 1e6)),
        last_stage: syncs.map((x) => x.s.lastStage),
        pinned_pages: syncs.map((x) => x.s.pinnedPages),
        mapped_pages: syncs.map((x) => x.s.mappedPages),
        reported_dirty_pages: syncs.map((x) => x.s.reportedDirtyPages),
        deferred_pages: syncs.map((x) => x.s.deferredPages),
      },
    ])
  }
  const m = vmemData(r)
  if (m) {
    const d = m.devices
    out.push([
      'virtio-mem.csv',
      {
        device: d.map((x) => x.id),
        region_bytes: d.map((x) => x.regionSize),
        block_bytes: d.map((x) => x.blockSize),
        plugged_bytes: d.map((x) => x.pluggedBytes),
        requested_bytes: d.map((x) => x.requestedSize),
        usable_bytes: d.map((x) => x.usableRegionSize),
        skipped_pages: d.map((x) => x.pagesSkippedUnplugged),
        waste_pages: d.map((x) => x.wastePages),
        waste_bytes: d.map((x) => x.wasteBytes),
        unplugged_write_events: d.map((x) => x.unpluggedWriteEvents),
        unplugged_write_pages: d.map((x) => x.unpluggedWritePages),
        unplugged_not_migrated_pages: d.map((x) => x.unpluggedNotMigratedPages),
        refused_writes: d.map((x) => x.refusedWrites),
        anomaly_pages: d.map((x) => x.anomalyPages),
        resets: d.map((x) => x.resets),
        resets_refused: d.map((x) => x.resetsRefused),
        resets_wakeup: d.map((x) => x.resetsWakeup),
      },
    ])
    const q = m.requestLog
    out.push([
      'virtio-mem-requests.csv',
      {
        t_ms: q.map((x) => r3(x.tNs / 1e6)),
        device: q.map((x) => x.device),
        request: q.map((x) => x.request),
        gpa: q.map((x) => x.gpa),
        blocks: q.map((x) => x.blocks),
        response: q.map((x) => x.response),
        state: q.map((x) => x.state),
        during_migration: q.map((x) => x.duringMigration),
      },
    ])
    const a = m.anomalies
    out.push([
      'virtio-mem-anomalies.csv',
      {
        sync: a.map((x) => x.sync),
        t_ms: a.map((x) => r3((x.tNs - r.startNs) / 1e6)),
        device: a.map((x) => x.device),
        pages: a.map((x) => x.pages),
        first_gpa: a.map((x) => (x.ranges[0] ? hex(x.ranges[0].gpa) : null)),
      },
    ])
  }
  return out
}

/** JSON: `vfio` and `virtioMem` keys (absent without such devices). */
export function deviceJson(r: ReplayResult): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const v = vfioData(r)
  if (v) out.vfio = {...v, redundantByCause: Object.fromEntries(VFIO_CAUSES.map((c) => [c, r.totals.redundantByCause[c] ?? 0]))}
  const m = vmemData(r)
  if (m) out.virtioMem = m
  return out
}
