/**
 * The first round's zero pages of a multifd run, read from the destination's trace: what gives
 * the importer the populated map (pages holding data when the migration started) where the
 * source's trace cannot.
 *
 * QEMU 7.2 to 8.x (migration/ram.c ram_save_target_page): `save_zero_page` runs on the migration
 * thread for every page before the multifd hand-off, and a zero page goes down the main channel as
 * a RAM_SAVE_FLAG_ZERO record (`save_zero_page_to_file`); only the pages that are not zero go to
 * the channels (`ram_save_multifd_page`), whose source trace line (`multifd_send`) has a page count
 * and no offsets, and `ram_save_page` never fires. The destination's `ram_load_precopy` traces
 * every main-channel record with its block and offset (`ram_load_loop`, flags 0x2 = ZERO, 0x20 =
 * CONTINUE). The first round over RAM visits every page once, in RAMBlock list order and page order
 * (./first-round.ts), so its pages minus its zero records are the pages that held data: the
 * populated map. Checked on lab run multifd-2 (2026-12-02 12:43): 175 222 `ram_load_loop` lines,
 * every one ZERO, = query-migrate's `duplicate` 175 222; pc.ram's in ascending order, then the ROM
 * blocks, then one record back in pc.ram (the wrap).
 *
 * From QEMU 9.0, with `zero-page-detection=multifd` (the default), the channels find the zero
 * pages and the main channel carries none: this does not apply (the importer says so).
 */
import {COMPILED_EVENTS} from './formats.js'
import {createArgs, parseArgs, parsePrefix, type LinePrefix} from './line.js'
import {readLines} from './read-lines.js'
import {FirstRound} from './first-round.js'
import {UserError} from '../../util/errors.js'

/** migration/ram.c RAM_SAVE_FLAG_ZERO (was RAM_SAVE_FLAG_COMPRESS). */
export const RAM_SAVE_FLAG_ZERO = 0x02

export interface FirstRoundZeros {
  file: string
  /** Per block (the trace's name), the byte offsets of the first round's zero records, ascending. */
  zeros: Map<string, number[]>
  /** Zero records in the first round, and in the whole log. */
  firstRound: number
  total: number
  /** Main-channel records of the first round that were not zero pages (0 in a 7.2 multifd run). */
  otherRecords: number
  /** A record went back (the scan's cursor wrapped): the round is complete in the log. */
  wrapped: boolean
  /**
   * When the destination's main thread released the multifd channels at each section's EOS
   * (`multifd_recv_sync_main` lines, µs on the log's clock, in order): where that came during the
   * source's stop-copy, the stop-copy waited for it (migrationParams).
   */
  syncMainUs: number[]
  lines: number
}

/** One main-channel record of the destination's load loop (a `ram_load_loop` line). */
export interface RamLoadRecord {
  block: string
  /** Byte offset in the block. */
  offset: number
  /** RAM_SAVE_FLAG_* of the record. */
  flags: number
}

/** What a destination trace line is (readRamLoadLoop). */
export const enum DstLine {
  /** Not a QEMU trace-event line. */
  Other,
  /** A trace-event line of another event. */
  Event,
  /** A `ram_load_loop` record. */
  RamLoad,
}

const scratchPrefix: LinePrefix = {tUs: -1, nameStart: 0, nameEnd: 0}
const scratchArgs = createArgs()

/**
 * The one reader of a destination trace's `ram_load_loop` lines (the importer's and the lab's
 * keep, src/lab/keep.ts): what the line is and, for a record, its block, offset and flags in
 * `out`. A `ram_load_loop` line of a shape no known format has is the user's error (parseArgs:
 * `file`, `lineNo`).
 */
export function readRamLoadLoop(line: string, out: RamLoadRecord, file: string, lineNo: number): DstLine {
  const pre = scratchPrefix
  if (line.length === 0 || !parsePrefix(line, pre)) return DstLine.Other
  const ev = COMPILED_EVENTS.get(line.slice(pre.nameStart, pre.nameEnd))
  if (ev === undefined || ev.spec.role !== 'ram_load') return DstLine.Event
  const args = scratchArgs
  parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, lineNo)
  out.block = args.str[0]!
  out.offset = args.num[1]!
  out.flags = args.num[2]!
  return DstLine.RamLoad
}

/** Read a destination trace log (plain or gzip): the first round's zero records, up to the scan's wrap. */
export async function readFirstRoundZeros(file: string): Promise<FirstRoundZeros> {
  const r: FirstRoundZeros = {file, zeros: new Map(), firstRound: 0, total: 0, otherRecords: 0, wrapped: false, lines: 0, syncMainUs: []}
  const round = new FirstRound()
  const rec: RamLoadRecord = {block: '', offset: 0, flags: 0}
  let traceLines = 0
  for await (const line of readLines(file)) {
    r.lines++
    const kind = readRamLoadLoop(line, rec, file, r.lines)
    if (kind === DstLine.Other) continue
    traceLines++
    if (kind !== DstLine.RamLoad) {
      // readRamLoadLoop left the line's prefix in scratchPrefix.
      const pre = scratchPrefix
      if (pre.tUs >= 0 && line.slice(pre.nameStart, pre.nameEnd) === 'multifd_recv_sync_main') r.syncMainUs.push(pre.tUs)
      continue
    }
    const zero = (rec.flags & RAM_SAVE_FLAG_ZERO) !== 0
    if (zero) r.total++
    if (r.wrapped) continue
    const block = rec.block
    const offset = rec.offset
    if (!round.page(block, offset)) {
      r.wrapped = true
      continue
    }
    if (!zero) {
      r.otherRecords++
      continue
    }
    r.firstRound++
    let l = r.zeros.get(block)
    if (!l) r.zeros.set(block, (l = []))
    l.push(offset)
  }
  if (traceLines === 0) throw new UserError('no QEMU trace-event line in the destination trace', {file, expected: "the destination QEMU's -trace ... -D log (the lab's trace-dst.log.gz)"})
  if (r.total === 0)
    throw new UserError('the destination trace has no zero-page record (ram_load_loop with flag 0x2)', {file, expected: "a destination traced with ram_load_loop (the lab's --trace pages) of a QEMU that sends zero pages on the main channel (before 9.0, or zero-page-detection=legacy)"})
  return r
}

/**
 * The populated map of a multifd run: every page the first round visited (the memslots' pages;
 * a virtio-mem device's plugged blocks only: unplugged memory is cleared from the bitmap at setup,
 * ramblock_dirty_bitmap_clear_discarded_pages) less the round's zero pages, as guest-physical ranges.
 * `gpaOf` maps a trace block name and byte offset to a guest-physical address, or -1.
 */
export function populatedLessZeros(
  visited: readonly {gpa: number; len: number}[],
  zeros: FirstRoundZeros['zeros'],
  gpaOf: (block: string, offset: number) => number,
  pageSize = 4096,
): {gpa: number; len: number}[] {
  const z: number[] = []
  for (const [block, offs] of zeros)
    for (const o of offs) {
      const g = gpaOf(block, o)
      if (g >= 0) z.push(g)
    }
  z.sort((a, b) => a - b)
  const out: {gpa: number; len: number}[] = []
  const push = (from: number, to: number): void => {
    if (to <= from) return
    const last = out[out.length - 1]
    if (last && last.gpa + last.len === from) last.len += to - from
    else out.push({gpa: from, len: to - from})
  }
  let k = 0
  for (const v of [...visited].sort((a, b) => a.gpa - b.gpa)) {
    const end = v.gpa + v.len
    let at = v.gpa
    while (k < z.length && z[k]! < v.gpa) k++
    while (k < z.length && z[k]! < end) {
      push(at, z[k]!)
      at = Math.max(at, z[k]! + pageSize)
      k++
    }
    push(at, end)
  }
  return out
}
