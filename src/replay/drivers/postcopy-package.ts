/**
 * The postcopy package's RAM part (postcopy_start -> ram_postcopy_send_discard_bitmap): host pages
 * made whole, and the discard messages for the pages still dirty, whose size is part of the
 * downtime (./postcopy.ts).
 */
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap} from '../../model/bitmap.js'
import type {HostModel} from '../host.js'

/** MAX_DISCARDS_PER_COMMAND (migration/savevm.c). */
export const MAX_DISCARDS_PER_COMMAND = 12
/** A CMD_POSTCOPY_RAM_DISCARD: be16 cmd + be16 len + version byte + idstr length byte + idstr. */
const DISCARD_CMD_BYTES = 4 + 1 + 1
/** Each discard range: be64 start + be64 length. */
const DISCARD_RANGE_BYTES = 16

/**
 * postcopy_chunk_hostpages_pass: in blocks whose host page is larger than the target page, a
 * host page with any dirty page becomes wholly dirty. Returns the host pages changed.
 */
export function chunkHostPages(mb: HostModel['mb'], layout: TraceLayout): number {
  const words = mb.bmap.words
  const pageSize = layout.pageSize
  let changed = 0
  for (const b of layout.blocks) {
    const h = b.hostPageSize / pageSize
    if (h <= 1) continue
    for (let a = b.firstPage; a < b.firstPage + b.pages; a += h) {
      const e = Math.min(a + h, b.firstPage + b.pages)
      const n = mb.bmap.count(a, e)
      if (n === 0 || n === e - a) continue
      changed++
      for (let p = a; p < e; p++) {
        const w = p >>> 5
        const m = 1 << (p & 31)
        // mergeWord keeps migration_dirty_pages and the ledger's cause in step
        if ((words[w]! & m) === 0) mb.markPage(p, 0 /* unattributed */)
      }
    }
  }
  mb.takeNewPages()
  return changed
}

/** postcopy_send_discard_bm_ram: the runs of dirty pages, per block. */
export function discardRanges(bmap: Bitmap, layout: TraceLayout): number {
  let ranges = 0
  for (const b of layout.blocks) {
    const end = b.firstPage + b.pages
    let p = bmap.nextSet(b.firstPage, end)
    while (p >= 0) {
      ranges++
      let q = p + 1
      while (q < end && bmap.get(q)) q++
      p = q < end ? bmap.nextSet(q, end) : -1
    }
  }
  return ranges
}

/** The bytes of the CMD_POSTCOPY_RAM_DISCARD messages for `ranges` ranges (postcopy_discard_send_range/_finish). */
export function discardMessageBytes(ranges: number, layout: TraceLayout): number {
  const cmds = Math.ceil(ranges / MAX_DISCARDS_PER_COMMAND)
  const idBytes = layout.blocks.reduce((s, b) => s + b.name.length, 0)
  return ranges * DISCARD_RANGE_BYTES + cmds * DISCARD_CMD_BYTES + (cmds > 0 ? idBytes : 0)
}

/** The destination's receivedmap at the switchover: every page precopy delivered that nobody re-dirtied. */
export function receivedAtSwitchover(bmap: Bitmap, layout: TraceLayout): Bitmap {
  const received = new Bitmap(layout.totalPages)
  for (const b of layout.blocks) received.setRange(b.firstPage, b.firstPage + b.pages)
  const rw = received.words
  const bw = bmap.words
  for (let w = 0; w < rw.length; w++) rw[w] = rw[w]! & ~bw[w]!
  return received
}
