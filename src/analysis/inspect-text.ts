/** The human-readable view of an inspection (what `migtrace inspect` prints by default). */
import {formatBytes, formatDurationNs} from '../util/units.js'
import type {InspectResult} from './inspect.js'
import {inspectTable, tableText} from './inspect-tables.js'

const hex = (v: number): string => `0x${v.toString(16)}`
const pct = (part: number, whole: number): string => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-')

export async function inspectText(r: InspectResult): Promise<string> {
  const out: string[] = []
  const add = (label: string, text: string): void => void out.push(`${label.padEnd(12)}${text}`)
  add('trace', `${r.file} (${r.format}${r.gzip ? ', gzip' : ''})${r.headerFile !== r.file ? `, header from ${r.headerFile}` : ''}`)
  add('events', `${r.events} over ${formatDurationNs(r.durationNs)} (t_ns ${r.firstNs} .. ${r.lastNs})`)
  add('vCPUs', String(r.vcpus))
  const dt = r.memory.dirtyTracking
  add('memory', `${formatBytes(r.guestMemoryBytes)} guest RAM, ${formatBytes(r.pageSize)} pages (${r.totalPages} page numbers), dirty tracking: ${dt.mode}${dt.ringSize !== undefined ? ` (${dt.ringSize} entries per vCPU)` : ''}`)
  for (const b of r.memory.ramBlocks) out.push(`  block ${b.name}: ${formatBytes(b.size)}, ${b.backing}`)
  for (const s of r.memory.memslots)
    out.push(`  slot ${s.id}: gpa ${hex(s.gpa)}..${hex(s.gpa + s.size)} -> ${s.ramBlock}+${hex(s.offset)}, ${s.pagesWritten} of ${s.pages} pages written (${pct(s.pagesWritten, s.pages)})`)
  const populated = r.memory.populated
  add('populated', typeof populated === 'string' ? populated : populated.map((p) => `${hex(p.gpa)}+${formatBytes(p.len)}`).join(', ') || 'none')
  const w = r.writes
  add('written', `${r.distinctPagesWritten} distinct pages (${formatBytes(r.distinctBytesWritten)}, ${pct(r.distinctPagesWritten, r.guestMemoryBytes / r.pageSize)} of RAM) by ${w.events} writes of ${formatBytes(w.bytes)}`)
  out.push(`  write ${w.byKind.write.events} (${formatBytes(w.byKind.write.bytes)}), dma_write ${w.byKind.dma_write.events} (${formatBytes(w.byKind.dma_write.bytes)}), vhost_write ${w.byKind.vhost_write.events} (${formatBytes(w.byKind.vhost_write.bytes)})`)
  if (w.byKind.write.events > 0 || r.eventsByKind.read) out.push(`  per vCPU (writes/reads): ${w.byVcpu.map((n, i) => `${i}:${n}/${w.readsByVcpu[i]}`).join(' ')}`)

  out.push('', 'events by kind')
  out.push(tableText(await inspectTable(r, 'kinds')))

  if (r.writeRate.buckets.length > 0 && w.events > 0) {
    out.push('', `write rate over time (buckets of ${formatDurationNs(r.writeRate.bucketNs)})`)
    out.push(
      tableText(await inspectTable(r, 'rate'), '  ', (c, v) => {
        if (c === 'bytes') return formatBytes(v as number)
        if (c === 'bytes_per_s') return `${formatBytes(v as number)}/s`
        return String(v)
      }),
    )
  }

  if (r.virtioMem.length > 0) {
    out.push('', 'virtio-mem')
    for (const v of r.virtioMem)
      out.push(
        `  ${v.id}: region ${hex(v.base)}+${formatBytes(v.regionSize)}, blocks of ${formatBytes(v.blockSize)}, ${formatBytes(v.pluggedAtStart)} plugged at start; ` +
          `plug ${v.plugRequests} (${v.blocksPlugRequested} blocks), unplug ${v.unplugRequests} (${v.blocksUnplugRequested} blocks), unplug-all ${v.unplugAllRequests}, state ${v.stateRequests}, ` +
          `resize ${v.resizes} (requested size ${formatBytes(v.requestedSizeAtStart)} -> ${formatBytes(v.requestedSizeAtEnd)})` +
          (v.resets > 0 ? `, system reset ${v.resets}` : ''),
      )
  }
  if (r.vfio.length > 0) {
    out.push('', 'VFIO')
    for (const c of r.vfio) {
      out.push(
        `  container ${c.id} (IOMMU pages ${formatBytes(c.iommuPageSize)}, dirty tracking ${c.dirtyTracking}): map ${c.maps} (${formatBytes(c.bytesMapped)}), unmap ${c.unmaps} (${formatBytes(c.bytesUnmapped)}), ` +
          `pin ${c.pins} (${c.pagesPinned} pages), unpin ${c.unpins} (${c.pagesUnpinned} pages), dirty-pages start ${c.dirtyPages.start} get ${c.dirtyPages.get} stop ${c.dirtyPages.stop}`,
      )
      for (const d of c.devices)
        out.push(
          `    device ${d.id}${d.dmaLogging ? ' (DMA logging)' : ''}: ${d.dmaWrites} DMA writes (${formatBytes(d.dmaBytes)}), ${d.stateReports} state reports` +
            (d.stateReports > 0 ? ` (last: precopy ${d.lastPrecopyBytes === null ? '-' : formatBytes(d.lastPrecopyBytes)}, stop-copy ${d.lastStopCopyBytes === null ? '-' : formatBytes(d.lastStopCopyBytes)})` : ''),
        )
    }
  }
  const k = r.kvm
  if (k.getDirtyLog + k.clearDirtyLog + k.resetDirtyRings + k.setUserMemoryRegion + k.dirtyRingPages > 0) {
    out.push('', 'KVM')
    out.push(
      `  GET_DIRTY_LOG ${k.getDirtyLog}, CLEAR_DIRTY_LOG ${k.clearDirtyLog} (${k.pagesCleared} pages), RESET_DIRTY_RINGS ${k.resetDirtyRings} (${k.ringEntriesReset} entries), ` +
        `SET_USER_MEMORY_REGION ${k.setUserMemoryRegion}, dirty-ring entries ${k.dirtyRingPages}`,
    )
  }
  const m = r.migration
  const sent = m.pagesSent
  if (m.events.length > 0 || m.syncs > 0 || sent.normal + sent.zero + sent.xbzrle > 0) {
    out.push('', 'migration')
    for (const e of m.events) out.push(`  ${String(e.t_ns).padStart(14)} ns  ${e.kind}${e.params !== undefined ? ` ${e.params}` : ''}`)
    out.push(`  bitmap syncs ${m.syncs}; pages sent: ${sent.normal} normal, ${sent.zero} zero, ${sent.xbzrle} xbzrle`)
  }
  return out.join('\n')
}
