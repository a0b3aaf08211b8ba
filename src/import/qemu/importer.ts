/**
 * `migtrace import qemu`: a QEMU log-backend trace -> a migtrace trace. Two streaming passes over
 * the log: the first validates every used line and learns the layout (RAM blocks, host bases,
 * memslots) and the bulk-stage sends; the second emits events in columnar batches through
 * TraceWriter, so a failure at any point leaves no output file.
 */
import {resolve} from 'node:path'
import {versionOf} from '../../replay/qemu-version.js'
import {K, Op, createBatch, resetBatch, type EventBatch} from '../../trace/events.js'
import type {HeaderInput, TraceHeader} from '../../trace/header.js'
import {parseHeader} from '../../trace/header.js'
import {OUTPUT_NAMES, TraceWriter, formatFromPath} from '../../trace/write/writer.js'
import {checkOutputFile} from '../../io/output-path.js'
import {UserError} from '../../util/errors.js'
import {readJsonFile} from '../../util/json-file.js'
import {COMPILED_EVENTS, type CompiledEvent} from './formats.js'
import {createArgs, parseArgs, parsePrefix, type LinePrefix, type ParsedArgs} from './line.js'
import {readLines} from './read-lines.js'
import {
  OffsetMapper,
  blockNamesForHeader,
  layoutFromLabConfig,
  layoutFromOffsets,
  layoutFromSlots,
  type BlockSeen,
  type LabConfig,
  type SlotSeen,
} from './layout.js'
import {readQueryMigrate} from './stats.js'
import {PostcopyPauseTracker, ResetVerdict, VmemResetTracker} from './interruptions.js'
import {loadWorkload, type Workload, type WriteCursor} from './dirtier.js'
import {FirstRound} from './first-round.js'
import {populatedLessZeros, readFirstRoundZeros} from './dst-zero-pages.js'
import {RecordedWriteCursor, readRecordingInfo, type RecordingInfo} from './recorded-writes.js'
import {latencySummary, readDestinationStats, requestBacklogBytes, readDestinationTrace, type DestinationTrace} from './destination.js'

export interface ImportOptions {
  trace: string
  out: string
  layout?: string
  stats?: string
  /** The lab run's config.json. */
  workload?: string
  /** The lab run's source console (src-serial.log). */
  console?: string
  /**
   * A postcopy run's destination console (the lab's host-stamped dst-console.log): the dirtier goes
   * on there after the switchover; its writes are re-created after the source's stop. Needs console.
   */
  dstConsole?: string
  /**
   * The destination's trace. A postcopy run's: the guest's resume time and the observed faults
   * (observation only). A multifd run's (with ram_load_loop): the first round's zero pages, so the
   * populated map is exact (./dst-zero-pages.ts).
   */
  dstTrace?: string
  /** The destination's final query-migrate (the lab's final-dst.json): postcopy-blocktime into the observed figures. */
  dstStats?: string
  /**
   * A host-clock recording of the source guest's stores (a lab run's recording.csv.gz): the writes
   * come from it, aligned to the log by host wall-clock, instead of being re-created from the
   * console (which still places the destination's writes after a postcopy switchover, and the
   * dirtier's when the kept recording had them taken out). src/import/qemu/recorded-writes.ts.
   */
  recording?: string
  /** Observer of every written batch (tests, progress). */
  onBatch?: (b: EventBatch) => void
}

export interface ImportSummary {
  lines: number
  events: number
  used: Record<string, number>
  unknown: Record<string, number>
  otherLines: number
  header: TraceHeader
}

const PAGE = 4096

interface ScanState {
  firstUs?: number
  lines: number
  otherLines: number
  originUs: number
  lastUs: number
  used: Map<string, number>
  unknown: Map<string, number>
  blocks: Map<string, BlockSeen>
  slots: Map<number, SlotSeen>
  slotsAtStart?: SlotSeen[]
  /** Time of `migrate_set_state new state setup` (µs), or -1. */
  setupUs: number
  /** Per block, page indices sent by ram_save_page in the first round over RAM (./first-round.ts). */
  bulk: Map<string, number[]>
  firstRound: FirstRound
  vfioSeen: boolean
  /** kvm_dirty_ring_page / _reap lines: QEMU ran with -accel kvm,dirty-ring-size=N. */
  ringSeen: boolean
  /** Highest vCPU index an event names. */
  maxVcpu: number
  /** The switchover: time the source stopped the guest for good (µs), or -1. */
  stopUs: number
  /** Time of postcopy_start (µs), or -1: the run switched to postcopy. */
  postcopyUs: number
  /** ram_save_page lines after the stop, and the time of the last one (µs). */
  stopPages: number
  stopLastUs: number
  /**
   * The first round's back-to-back normal pages (a ram_save_page of the next page of the same
   * block right after the last, no other event between), gaps under PAGE_GAP_MAX_US: their count
   * and summed gaps (µs), for trace-page-interval; and the last page line seen (block, offset, µs),
   * unset after any other event that EVENT_SPECS recognises (an unrecognised line between two page
   * lines does not break the pair; the gap cap bounds its effect).
   */
  pageGaps: number
  pageGapUs: number
  lastPage?: {block: string; off: number; tUs: number}
  /** multifd_send: normal pages in the bulk stage (before the second sync), and after the stop with their packets. */
  multifdBulkPages: number
  stopMultifdPages: number
  stopMultifdPackets: number
  /** Live rate windows before the stop (migrate_transferred): (bytes, ms) pairs, flat. */
  liveWindows: number[]
  /** virtio-mem requests before the migration's setup, in order (folded into the header). */
  vmemBefore: {role: 'vmem_plug' | 'vmem_unplug' | 'vmem_unplug_all'; gpa: number; count: number; response?: number}[]
  /** Postcopy network failures and their recoveries (./interruptions.ts). */
  pauses: PostcopyPauseTracker
}

function blockSeen(s: ScanState, name: string): BlockSeen {
  let b = s.blocks.get(name)
  if (!b) s.blocks.set(name, (b = {name, extent: 0, hostBase: -1}))
  return b
}

const bump = (m: Map<string, number>, k: string): void => {
  m.set(k, (m.get(k) ?? 0) + 1)
}

/** Walk the log once, calling `onEvent` for every used event line (arguments already parsed). */
async function walk(
  file: string,
  onEvent: (ev: CompiledEvent, args: ParsedArgs, tUs: number, lineNo: number) => void | Promise<void>,
  counts: {lines: number; otherLines: number; unknown: Map<string, number>; used: Map<string, number>; firstUs?: number},
): Promise<void> {
  const pre: LinePrefix = {tUs: -1, nameStart: 0, nameEnd: 0}
  const args = createArgs()
  let lineNo = 0
  for await (const line of readLines(file)) {
    lineNo++
    if (line.length === 0) continue
    if (!parsePrefix(line, pre)) {
      counts.otherLines++
      continue
    }
    // The time base starts at the first line of the log, whatever its event.
    if (pre.tUs >= 0 && (counts.firstUs === undefined || counts.firstUs < 0)) counts.firstUs = pre.tUs
    const name = line.slice(pre.nameStart, pre.nameEnd)
    const ev = COMPILED_EVENTS.get(name)
    if (ev === undefined) {
      bump(counts.unknown, name)
      continue
    }
    bump(counts.used, name)
    parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, lineNo)
    const r = onEvent(ev, args, pre.tUs, lineNo)
    if (r !== undefined) await r
  }
  counts.lines = lineNo
}

/**
 * A file with no QEMU trace-event line is not a QEMU log (a README, JSON, a migtrace trace, an
 * empty file): refused, instead of written out as a trace of 0 events. A line counts when it names
 * an event migtrace reads, or has the log backend's `TID@SECONDS.MICROS:` prefix (any event).
 */
function checkIsQemuLog(file: string, s: ScanState): void {
  if (s.used.size > 0 || (s.firstUs !== undefined && s.firstUs >= 0)) return
  const example = "lines such as '1234@1700000000.123456:migrate_set_state new state active', from -trace ... -D FILE"
  if (s.lines === 0) throw new UserError('empty file: no QEMU trace-event line', {file, expected: example})
  throw new UserError(`no QEMU trace-event line in ${s.lines} line${s.lines === 1 ? '' : 's'}`, {file, expected: example})
}

async function scan(file: string): Promise<ScanState> {
  const s: ScanState = {
    lines: 0,
    otherLines: 0,
    originUs: -1,
    lastUs: -1,
    used: new Map(),
    unknown: new Map(),
    blocks: new Map(),
    slots: new Map(),
    setupUs: -1,
    bulk: new Map(),
    firstRound: new FirstRound(),
    vfioSeen: false,
    ringSeen: false,
    maxVcpu: 0,
    stopUs: -1,
    postcopyUs: -1,
    stopPages: 0,
    stopLastUs: -1,
    pageGaps: 0,
    pageGapUs: 0,
    multifdBulkPages: 0,
    stopMultifdPages: 0,
    stopMultifdPackets: 0,
    liveWindows: [],
    vmemBefore: [],
    pauses: new PostcopyPauseTracker(),
  }
  const resets = new VmemResetTracker()
  await walk(
    file,
    (ev, a, tUs, lineNo) => {
      if (tUs >= 0) s.lastUs = Math.max(s.lastUs, tUs)
      const lastPage = s.lastPage
      s.lastPage = undefined
      if (ev.spec.role.startsWith('vmem_') && ev.spec.role !== 'vmem_unplugged_all') resets.observe(ev.spec.name, tUs)
      switch (ev.spec.role) {
        case 'ram_save_page': {
          const name = a.str[0]!
          const b = blockSeen(s, name)
          const off = a.num[1]!
          b.extent = Math.max(b.extent, off + PAGE)
          if (b.hostBase < 0 && a.num[2]! > 0) b.hostBase = a.num[2]! - off
          if (s.firstRound.page(name, off)) {
            let l = s.bulk.get(name)
            if (!l) s.bulk.set(name, (l = []))
            l.push(off / PAGE)
          }
          if (tUs >= 0 && s.firstRound.beforeSecondSync) {
            if (lastPage !== undefined && lastPage.block === name && lastPage.off + PAGE === off && tUs - lastPage.tUs < PAGE_GAP_MAX_US) {
              s.pageGaps++
              s.pageGapUs += tUs - lastPage.tUs
            }
            s.lastPage = {block: name, off, tUs}
          }
          if (s.stopUs >= 0 && tUs >= 0) {
            s.stopPages++
            s.stopLastUs = tUs
          }
          break
        }
        case 'rate_window':
          if (s.stopUs < 0) s.liveWindows.push(a.num[0]!, a.num[1]!)
          break
        case 'multifd_send': {
          // The packet's normal pages: offsets are not in the event, only the count.
          const n = a.num[2]!
          if (s.firstRound.beforeSecondSync) s.multifdBulkPages += n
          if (s.stopUs >= 0 && tUs >= 0) {
            s.stopMultifdPages += n
            s.stopMultifdPackets++
            s.stopLastUs = tUs
          }
          break
        }
        case 'vm_stop':
        case 'postcopy_start':
          if (s.stopUs < 0) s.stopUs = tUs
          s.firstRound.stop(ev.spec.role === 'postcopy_start')
          if (ev.spec.role === 'postcopy_start' && s.postcopyUs < 0) s.postcopyUs = tUs
          break
        case 'postcopy_fault': {
          const b = blockSeen(s, a.str[1]!)
          b.extent = Math.max(b.extent, a.num[2]! + PAGE)
          break
        }
        case 'ram_load': {
          const b = blockSeen(s, a.str[0]!)
          b.extent = Math.max(b.extent, a.num[1]! + PAGE)
          if (b.hostBase < 0 && a.num[3]! > 0) b.hostBase = a.num[3]! - a.num[1]!
          break
        }
        case 'sync_start':
          s.firstRound.syncStart()
          break
        case 'sync_end':
          s.firstRound.syncEnd()
          break
        case 'postcopy_pause':
          s.pauses.returnPathPause(tUs, lineNo)
          break
        case 'vmem_unplugged_all':
          // A system reset before the migration unplugs everything, as an UNPLUG_ALL would.
          if (resets.observe(ev.spec.name, tUs) === ResetVerdict.Reset && s.setupUs < 0) s.vmemBefore.push({role: 'vmem_unplug_all', gpa: 0, count: 0, response: 0})
          break
        case 'set_state':
          s.pauses.state(a.str[0]!, tUs, lineNo)
          if (a.str[0] === 'setup' && s.setupUs < 0) s.setupUs = tUs
          if (a.str[0] === 'setup' && s.slotsAtStart === undefined) s.slotsAtStart = [...s.slots.values()].map((x) => ({...x}))
          break
        case 'kvm_set_user_memory': {
          const {as, slot} = slotId(a)
          if (as !== 0) break
          s.slots.set(slot, {slot, gpa: a.num[3]!, size: a.num[4]!, ua: a.num[5]!, flags: a.num[2]!})
          break
        }
        case 'vmem_plug':
        case 'vmem_unplug':
          if (s.setupUs < 0) s.vmemBefore.push({role: ev.spec.role, gpa: a.num[0]!, count: a.num[1]!})
          break
        case 'vmem_unplug_all':
          if (s.setupUs < 0) s.vmemBefore.push({role: 'vmem_unplug_all', gpa: 0, count: 0})
          break
        case 'vmem_other': {
          // virtio_mem_send_response type=N answers the request just before it (requests are
          // handled synchronously: virtio_mem_handle_request).
          const last = s.vmemBefore.at(-1)
          if (s.setupUs < 0 && ev.spec.name === 'virtio_mem_send_response' && last && last.response === undefined) last.response = a.num[0]!
          break
        }
        case 'vfio_dirty_bitmap':
          s.vfioSeen = true
          break
        case 'kvm_ring_page':
          s.ringSeen = true
          s.maxVcpu = Math.max(s.maxVcpu, a.num[0]!)
          break
        case 'kvm_ring_reap':
          s.ringSeen = true
          break
        default:
      }
    },
    s,
  )
  s.originUs = s.firstUs ?? -1
  return s
}

/** 7.2 prints `as_id << 16 | slot` as the slot; 9.1+ prints them apart. */
export function slotId(a: ParsedArgs): {as: number; slot: number} {
  const raw = a.num[1]!
  if (!Number.isNaN(a.num[0]!)) return {as: a.num[0]!, slot: raw}
  return {as: raw >>> 16, slot: raw & 0xffff}
}

/**
 * The parameters the migration ran with, as mig_start params (QEMU's migrate-set-parameters
 * names): max-bandwidth and downtime-limit from the lab config (migrate.py sets exactly these),
 * and the rate pages moved at once QEMU lifted the limit (migration_completion() sets the rate
 * limit to INT64_MAX), measured on the trace's own stop-copy sends: migtrace's link-bandwidth.
 * A multifd stop-copy that waited for the destination is not the link's rate: in QEMU 7.2 a
 * destination channel parks at each section's SYNC (multifd_recv_thread, p->sem_sync) until the
 * destination's main thread reaches that section's EOS (ram_load_precopy -> multifd_recv_sync_main),
 * and the source's channels block once their sockets are full. `dstSyncMainUs` (the destination
 * trace's multifd_recv_sync_main times, taken as the source's clock: true when both ran on one host,
 * as in the lab, not for a two-host capture) and the rate tell it: a release between
 * the stop and the last packet says the stop-copy ran behind a parked destination, and a rate below
 * max-bandwidth (which the live windows carried: the rate limit is lifted at the stop) says it
 * waited for it (lab run multifd-zstd: 111.5 MB/s against 134.2, releases 260-277 ms into a 291 ms
 * stop-copy). Then the rate is the destination's pace, not the link's; link-bandwidth is then the
 * median rate of the live windows that spent their budget within LIVE_WINDOW_MAX_MS (migrate_transferred:
 * bytes / time_spent; the channels took at least that: multifd-zstd 136.7 MB/s, 26 of its
 * 27 such windows within 110 ms, 19 of them 100 ms), or is left unset (max-bandwidth) with fewer than 3 such windows. The test needs
 * a known max-bandwidth (the lab config): without one the stop-copy rate is kept, and its note
 * says the test could not be made. A release alone is not enough:
 * multifd-4's destination released a section 59 ms into its 121 ms stop-copy, which ran at 281
 * MB/s, its sockets not full.
 */
/**
 * Longest live window (migrate_transferred's time_spent, ms) whose rate counts for a held-back
 * multifd stop-copy's link-bandwidth: BUFFER_DELAY (100 ms) plus 10 %.
 */
export const LIVE_WINDOW_MAX_MS = 110

export function migrationParams(
  lab: LabConfig | undefined,
  s: Pick<ScanState, 'stopUs' | 'stopPages' | 'stopLastUs'> & Partial<Pick<ScanState, 'stopMultifdPages' | 'stopMultifdPackets' | 'liveWindows' | 'pageGaps' | 'pageGapUs'>>,
  dstSyncMainUs: readonly number[] = [],
): {params: string; switchover?: Record<string, unknown>; pageInterval?: Record<string, unknown>} {
  const kv: string[] = []
  const a = lab?.args
  if (a !== undefined && typeof a.bandwidth === 'number') kv.push(`max-bandwidth=${Math.round(a.bandwidth * 1024 * 1024)}`)
  if (a !== undefined && typeof a.downtime === 'number') kv.push(`downtime-limit=${a.downtime}`)
  let switchover: Record<string, unknown> | undefined
  // Enough pages for a rate: at least 256 pages over at least 1 ms (the log has µs stamps).
  if (s.stopUs >= 0 && s.stopPages >= 256 && s.stopLastUs - s.stopUs >= 1000) {
    const bytes = s.stopPages * (PAGE + 8)
    const rate = Math.round((bytes * 1e6) / (s.stopLastUs - s.stopUs))
    switchover = {pages: s.stopPages, ms: (s.stopLastUs - s.stopUs) / 1000, bytesPerSecond: rate, note: 'ram_save_page lines from the stop to the last send: normal pages x (4096 + 8 header bytes) / time; becomes link-bandwidth'}
    kv.push(`link-bandwidth=${rate}`)
  } else if (s.stopUs >= 0 && (s.stopMultifdPages ?? 0) >= 256 && s.stopLastUs - s.stopUs >= 1000) {
    // multifd: the channels' packets after the stop, 4096 bytes a page and packet_len (320 +
    // 8 x 128 offsets) a packet (sender/multifd.ts).
    const bytes = s.stopMultifdPages! * PAGE + s.stopMultifdPackets! * (320 + 8 * (MULTIFD_PACKET_BYTES / PAGE))
    const rate = Math.round((bytes * 1e6) / (s.stopLastUs - s.stopUs))
    const base = {pages: s.stopMultifdPages, packets: s.stopMultifdPackets, ms: (s.stopLastUs - s.stopUs) / 1000, bytesPerSecond: rate}
    const releases = dstSyncMainUs.filter((t) => t > s.stopUs && t <= s.stopLastUs)
    // The rate limit the live windows ran under (the lab config's max-bandwidth); without a known
    // finite one the held-back test ("slower than the limit") cannot be made.
    const limit = a !== undefined && typeof a.bandwidth === 'number' && a.bandwidth > 0 && Number.isFinite(a.bandwidth) ? a.bandwidth * 1024 * 1024 : undefined
    if (limit === undefined && releases.length > 0) {
      switchover = {
        ...base,
        note: 'multifd_send lines from the stop to the last packet: pages x 4096 + packets x 1344 header bytes / time; becomes link-bandwidth. The destination released parked channels during the stop-copy, but with no known max-bandwidth (no lab config) whether the stop-copy waited for it cannot be told: this rate may be the destination\'s pace rather than the link\'s',
      }
      kv.push(`link-bandwidth=${rate}`)
    } else if (limit !== undefined && releases.length > 0 && rate < limit) {
      // The live windows that spent their budget (max-bandwidth / 10 bytes) within about one
      // rate-limit period: QEMU closes a window (migration_update_counters, called from
      // migration_rate_limit) at the first check at least BUFFER_DELAY (100 ms) after it opened, so
      // time_spent is 100 ms or more; one that closed later than 110 ms (the first window after
      // setup, or a source blocked behind full channel sockets: the case this rule is for) spread
      // its budget over a longer time, and its rate is not the link's.
      const w = s.liveWindows ?? []
      const full: number[] = []
      for (let i = 0; i + 1 < w.length; i += 2) if (w[i]! >= limit / 10 && w[i + 1]! > 0 && w[i + 1]! <= LIVE_WINDOW_MAX_MS) full.push((w[i]! * 1000) / w[i + 1]!)
      full.sort((x, y) => x - y)
      const live = full.length >= 3 ? Math.round(full.length % 2 === 1 ? full[(full.length - 1) / 2]! : (full[full.length / 2 - 1]! + full[full.length / 2]!) / 2) : undefined
      switchover = {
        ...base,
        heldBack: {releases: releases.length, msAfterStop: releases.map((t) => (t - s.stopUs) / 1000)},
        ...(live !== undefined ? {liveWindows: full.length, liveBytesPerSecond: live} : {}),
        note: `multifd_send lines from the stop to the last packet: pages x 4096 + packets x 1344 header bytes / time. Not used as link-bandwidth: the destination's multifd_recv_sync_main released parked channels during the stop-copy (msAfterStop) and the stop-copy ran slower than max-bandwidth, the live windows' rate: it waited for the destination's main thread, and its rate is that thread's pace, not the link's. ${
          live !== undefined
            ? `link-bandwidth is the median rate of the live windows that spent their budget within ${LIVE_WINDOW_MAX_MS} ms (migrate_transferred bytes / time_spent): the channels took at least that`
            : `Fewer than 3 live windows spent their budget within ${LIVE_WINDOW_MAX_MS} ms: link-bandwidth is left to max-bandwidth`
        }`,
      }
      if (live !== undefined) kv.push(`link-bandwidth=${live}`)
    } else {
      switchover = {...base, note: 'multifd_send lines from the stop to the last packet: pages x 4096 + packets x 1344 header bytes / time; becomes link-bandwidth'}
      kv.push(`link-bandwidth=${rate}`)
    }
  }
  // The host's time per traced page at this capture (trace-page-interval): the first round's
  // back-to-back normal pages, enough of them for a mean (the log's stamps are whole µs).
  let pageInterval: Record<string, unknown> | undefined
  if ((s.pageGaps ?? 0) >= PAGE_GAPS_MIN) {
    const us = s.pageGapUs! / s.pageGaps!
    pageInterval = {gaps: s.pageGaps, meanUs: Math.round(us * 1000) / 1000, note: `first round: ram_save_page of the next page right after the last, gaps under ${PAGE_GAP_MAX_US} us (no writev, no preemption); becomes trace-page-interval`}
    kv.push(`trace-page-interval=${(Math.round(us * 1000) / 1e6).toString()}`)
  }
  return {params: kv.join(';'), ...(switchover !== undefined ? {switchover} : {}), ...(pageInterval !== undefined ? {pageInterval} : {})}
}

/**
 * trace-page-interval's sample: gaps between back-to-back page lines under 20 µs, the line and
 * the page's bookkeeping (3-5 µs on the lab's host), leave out the QEMUFile's writev of its
 * queued pages (every ~64 pages, 40-100 µs) and the thread's preemptions; at least 1 000 of them.
 */
const PAGE_GAP_MAX_US = 20
const PAGE_GAPS_MIN = 1000

/** MULTIFD_PACKET_SIZE: 128 pages of 4 KiB a packet. */
const MULTIFD_PACKET_BYTES = 512 * 1024

/** The QEMU version of a lab run as [major, minor] ("QEMU emulator version 7.2.22 (...)"), or undefined. */
function qemuVersionOf(lab: LabConfig | undefined): [number, number] | undefined {
  const m = /version (\d+)\.(\d+)/.exec(lab?.qemu_version ?? '')
  return m ? [Number(m[1]), Number(m[2])] : undefined
}

/**
 * The capabilities and parameters a lab run migrated with that shape the model (fixed settings:
 * they must be given before the replay starts, so they are not mig_start params): the run's QEMU
 * version (qemu-version: its rules, e.g. 7.2 finds zero pages in the migration thread and flushes
 * multifd after every RAM section, and has no 5 s dirty-sync timer under auto-converge), multifd
 * with its channels and compression, XBZRLE and its cache, auto-converge and its first level and step. A version the replay does not know
 * (before 7.2) gets the two multifd rules as explicit settings instead. They go into
 * header.source.settings, which every replay of the trace applies under the user's --config and
 * --set (resolveSettings in src/replay/config.ts).
 */
export function labSettings(lab: LabConfig | undefined): string[] {
  const a = lab?.args
  if (a === undefined) return []
  const out: string[] = []
  const v = qemuVersionOf(lab)
  const known = versionOf(lab?.qemu_version ?? '')
  if (known !== undefined) out.push(`qemu-version=${known}`)
  const before = (major: number, minor: number): boolean => known === undefined && v !== undefined && (v[0] < major || (v[0] === major && v[1] < minor))
  if (typeof a.multifd_channels === 'number' && a.multifd_channels > 0) {
    out.push('multifd=on', `multifd-channels=${a.multifd_channels}`)
    if (typeof a.multifd_compression === 'string' && a.multifd_compression !== 'none') out.push(`multifd-compression=${a.multifd_compression}`)
    if (before(9, 0)) out.push('zero-page-detection=legacy')
    if (before(8, 1)) out.push('multifd-flush-after-each-section=on')
  }
  if (a.auto_converge === true) {
    out.push('auto-converge=on')
    if (typeof a.throttle_initial === 'number') out.push(`cpu-throttle-initial=${a.throttle_initial}`)
    if (typeof a.throttle_increment === 'number') out.push(`cpu-throttle-increment=${a.throttle_increment}`)
  }
  // The lab sends migrate-start-postcopy once query-migrate's dirty-sync-count reaches
  // --postcopy-after (src/lab/driver.ts): a rule on syncs, not a time, so the replay follows the
  // rule (the recorded switchover time falls elsewhere in the model's own passes).
  const afterSyncs = labPostcopyAfterSyncs(lab)
  if (afterSyncs !== undefined) out.push(`postcopy-after-syncs=${afterSyncs}`)
  // lab run --prealloc (config.json args.prealloc): the guest's RAM was populated before the
  // migration, so first-touch-cost (a host's page allocation on the first send) does not apply.
  // Runs without it (older lab runs, migrate.py's) keep QEMU's default, not preallocated.
  if (a.prealloc === true) out.push('guest-ram-prealloc=on')
  if (a.xbzrle === true) {
    out.push('xbzrle=on')
    // config.json keeps the lab's --xbzrle-cache-size in MiB (src/lab/options.ts: xbzrle_cache_size).
    if (typeof a.xbzrle_cache_size === 'number') out.push(`xbzrle-cache-size=${a.xbzrle_cache_size}MiB`)
  }
  return out
}

/** A lab postcopy run's --postcopy-after (switch once dirty-sync-count reaches it), or undefined. */
export function labPostcopyAfterSyncs(lab: LabConfig | undefined): number | undefined {
  const a = lab?.args
  return a?.mode === 'postcopy' && typeof a.postcopy_after === 'number' && a.postcopy_after >= 1 ? a.postcopy_after : undefined
}

/**
 * How the lab's dirtier answers auto-converge: at a set rate it paces its writes by the clock
 * (lab.pace sleep or spin: it catches up after a throttle sleep), so `wall`; at -1 (as fast as it
 * can) it is CPU-bound, so `cpu`.
 */
function labPacing(lab: LabConfig | undefined): {workloadPacing?: 'cpu' | 'wall'} {
  const rate = lab?.args.rate
  if (typeof rate !== 'number' || rate === 0) return {}
  return {workloadPacing: rate > 0 ? 'wall' : 'cpu'}
}

interface Resolved {
  header: TraceHeader
  blockNames: Map<string, string>
  from: string
  notes: string[]
}

function readJson(path: string, what: string): unknown {
  return readJsonFile(path, {what: `the ${what}`, expected: 'one JSON object'})
}

function resolveLayout(opts: ImportOptions, s: ScanState, lab: LabConfig | undefined): Resolved {
  if (opts.layout !== undefined) {
    const raw = readJson(opts.layout, 'layout header')
    const header = parseHeader(raw, opts.layout)
    return {header, blockNames: blockNamesForHeader(header, s.blocks), from: 'header', notes: []}
  }
  const slots = s.slotsAtStart ?? [...s.slots.values()]
  let r
  let from: string
  if (slots.some((x) => x.size > 0)) {
    r = layoutFromSlots(slots, s.blocks)
    from = 'kvm_set_user_memory'
  } else if (lab !== undefined) {
    r = layoutFromLabConfig(lab, s.blocks)
    from = 'lab-config'
  } else {
    r = layoutFromOffsets(s.blocks)
    from = 'trace-offsets'
  }
  const input = r.input as HeaderInput & {vfio?: unknown[]}
  if (s.vfioSeen) input.vfio = [{id: 'vfio0', dirtyTracking: 'type1'}]
  const header = parseHeader(input, opts.layout ?? opts.trace)
  return {header, blockNames: r.blockNames, from, notes: r.notes}
}

/**
 * multifd runs: the bulk stage's normal pages are known only as a count (multifd_send), so the
 * first `pages` pages of the RAM memslots (in address order) hold data at the start. The figures
 * that depend only on the count (bytes of the first pass) are exact; which pages they are is not.
 */
function populatedFirst(h: TraceHeader, pages: number): {gpa: number; len: number}[] {
  const out: {gpa: number; len: number}[] = []
  let left = pages * PAGE
  const vmem = new Set(h.virtioMem.map((d) => d.ramBlock))
  for (const m of [...h.memslots].filter((x) => !vmem.has(x.ramBlock)).sort((x, y) => x.base - y.base)) {
    if (left <= 0) break
    const len = Math.min(left, m.size)
    out.push({gpa: m.base, len})
    left -= len
  }
  return out
}

/**
 * The guest-physical ranges the first round over RAM visits: every RAM memslot, and of a virtio-mem
 * device only its plugged blocks (QEMU clears the unplugged ones from the bitmap at setup:
 * ramblock_dirty_bitmap_clear_discarded_pages).
 */
function visitedRanges(h: TraceHeader, virtioMem: TraceHeader['virtioMem']): {gpa: number; len: number}[] {
  const vmem = new Set(virtioMem.map((d) => d.ramBlock))
  const out = h.memslots.filter((m) => !vmem.has(m.ramBlock)).map((m) => ({gpa: m.base, len: m.size}))
  for (const d of virtioMem) for (const r of d.plugged) out.push({gpa: r.gpa, len: r.blocks * d.blockSize})
  return out
}

/**
 * Ranges of guest-physical memory holding data at the start: the pages QEMU sent as normal pages
 * on its first round over RAM (ram_save_page fires for non-zero pages only; zero pages go as
 * `duplicate`), up to the cursor's wrap, not just before the second sync (./first-round.ts).
 */
function populatedFromBulk(s: ScanState, names: Map<string, string>, mapper: OffsetMapper): {gpa: number; len: number}[] {
  const gpas: number[] = []
  for (const [name, pages] of s.bulk) {
    const block = names.get(name)
    if (block === undefined) continue
    for (const p of pages) {
      const g = mapper.gpa(block, p * PAGE)
      if (g >= 0) gpas.push(g)
    }
  }
  gpas.sort((x, y) => x - y)
  const out: {gpa: number; len: number}[] = []
  for (const g of gpas) {
    const last = out[out.length - 1]
    if (last && last.gpa + last.len === g) last.len += PAGE
    else if (!last || last.gpa + last.len < g) out.push({gpa: g, len: PAGE})
  }
  return out
}

/**
 * The plug state of each virtio-mem device after the requests seen before the migration's setup,
 * each applied as virtio_mem_handle_request would when its response was ACK (0) or not recorded.
 * The requested size becomes the plugged size: the guest had reached it when the migration began.
 */
function foldVirtioMemRequests(devices: TraceHeader['virtioMem'], requests: ScanState['vmemBefore']): TraceHeader['virtioMem'] {
  return devices.map((d) => {
    const blocks = d.regionSize / d.blockSize
    const plugged = new Uint8Array(blocks)
    for (const r of d.plugged) plugged.fill(1, (r.gpa - d.base) / d.blockSize, (r.gpa - d.base) / d.blockSize + r.blocks)
    for (const r of requests) {
      if (r.response !== undefined && r.response !== 0) continue
      if (r.role === 'vmem_unplug_all') {
        plugged.fill(0)
        continue
      }
      if (r.gpa < d.base || r.gpa >= d.base + d.regionSize) continue
      const b0 = Math.floor((r.gpa - d.base) / d.blockSize)
      plugged.fill(r.role === 'vmem_plug' ? 1 : 0, b0, Math.min(blocks, b0 + r.count))
    }
    const ranges: {gpa: number; blocks: number}[] = []
    for (let b = 0; b < blocks; ) {
      if (!plugged[b]) {
        b++
        continue
      }
      let e = b
      while (e < blocks && plugged[e]) e++
      ranges.push({gpa: d.base + b * d.blockSize, blocks: e - b})
      b = e
    }
    const pluggedBytes = ranges.reduce((n, r) => n + r.blocks * d.blockSize, 0)
    return {...d, plugged: ranges, requestedSize: requests.length > 0 ? pluggedBytes : d.requestedSize}
  })
}

const STATE_KIND: Record<string, number | undefined> = {
  setup: K.mig_start,
  'postcopy-active': K.mig_postcopy,
  completed: K.mig_complete,
  cancelled: K.mig_cancel,
  failed: K.mig_cancel,
}

export async function importQemuTrace(opts: ImportOptions): Promise<ImportSummary> {
  // The output is checked before the log is read twice, not after.
  if (formatFromPath(opts.out) === undefined) throw new UserError('cannot tell the trace format from the file name', {file: opts.out, field: '--out', expected: OUTPUT_NAMES})
  if (resolve(opts.out) === resolve(opts.trace)) throw new UserError('the output would overwrite the QEMU log', {file: opts.out, field: '--out', expected: 'another file name'})
  checkOutputFile(opts.out, {what: 'the trace', field: '--out'})
  const lab = opts.workload !== undefined ? (readJson(opts.workload, 'lab config') as LabConfig) : undefined
  if (lab !== undefined && (typeof lab !== 'object' || lab === null || typeof lab.args !== 'object' || lab.args === null))
    throw new UserError('not a qemu-lab config.json', {file: opts.workload, field: 'args', expected: 'an object of migrate.py options', found: 'nothing'})
  const observed = opts.stats !== undefined ? readQueryMigrate(opts.stats) : undefined
  if (opts.dstConsole !== undefined && opts.console === undefined)
    throw new UserError("--dst-console needs --console (the source's console: the destination's dirtier continues it)", {field: 'dst-console'})
  const dstStats = opts.dstStats !== undefined ? readDestinationStats(opts.dstStats) : undefined

  const recording = opts.recording !== undefined ? await readRecordingInfo(opts.recording) : undefined
  const s = await scan(opts.trace)
  checkIsQemuLog(opts.trace, s)
  if (recording !== undefined && s.originUs < 0) throw new UserError('the QEMU log has no timestamps, so a recording cannot be aligned with it', {file: opts.trace, expected: 'a log written with -msg timestamp=on'})
  // multifd: the first round's normal pages went to the channels, so the source trace has only
  // their count (multifd_send) and no ram_save_page of the round.
  const multifdRound = s.bulk.size === 0 && s.multifdBulkPages > 0
  if (opts.dstConsole !== undefined && s.postcopyUs < 0)
    throw new UserError('the trace has no postcopy switchover (postcopy_start), so there are no destination accesses to add', {file: opts.trace, field: 'dst-console', expected: "a postcopy run's source trace with postcopy_start traced"})
  if (opts.dstTrace !== undefined && s.postcopyUs < 0 && !multifdRound)
    throw new UserError('the trace has no postcopy switchover (postcopy_start) and is not a multifd run, so the destination trace adds nothing', {
      file: opts.trace,
      field: 'dst-trace',
      expected: "a postcopy run's source trace with postcopy_start traced, or a multifd run's (multifd_send lines, no ram_save_page in the first round)",
    })
  const dst = opts.dstTrace !== undefined && s.postcopyUs >= 0 ? await readDestinationTrace(opts.dstTrace) : undefined
  // From 9.0 (zero-page-detection=multifd) the channels find the zero pages: none on the main channel.
  const zeroDetectionOnChannels = (qemuVersionOf(lab)?.[0] ?? 0) >= 9
  // A postcopy run's kept destination trace lacks its precopy loads (src/lab/matrix.ts
  // keepPostcopyDstTrace drops every ram_load_loop line): then the map stays the count's, and the
  // note says why (`dstZerosUnread`).
  let dstZerosUnread = false
  const dstZeros =
    opts.dstTrace !== undefined && multifdRound && !zeroDetectionOnChannels
      ? await readFirstRoundZeros(opts.dstTrace).catch((e: unknown) => {
          if (s.postcopyUs >= 0 && e instanceof UserError) {
            dstZerosUnread = true
            return undefined
          }
          throw e
        })
      : undefined
  const res = resolveLayout(opts, s, lab)
  const mapper = new OffsetMapper(res.header)

  // Workload: verify the console against the dirtier's PRNG; writes only with PFNRUN lines.
  let workload: Workload | undefined
  if (opts.console !== undefined) {
    if (lab === undefined) throw new UserError('--console needs --workload (the run\'s config.json)', {field: 'console'})
    workload = loadWorkload(lab, opts.console, opts.workload!, opts.dstConsole)
  }

  const settings = labSettings(lab)
  // The populated map is memory as the migration found it, so the virtio-mem plug state must be
  // that of the same moment: requests before the setup are folded into the header's initial state.
  const virtioMem = res.from === 'header' ? res.header.virtioMem : foldVirtioMemRequests(res.header.virtioMem, s.vmemBefore)
  // A multifd run's first round is complete in the destination's log when its records wrapped, or
  // when the source stopped (the stop-copy sends what the round had not reached).
  const zerosUsable = dstZeros !== undefined && (dstZeros.wrapped || s.stopUs >= 0)
  const populated =
    res.from === 'header'
      ? res.header.populated
      : multifdRound && zerosUsable
        ? populatedLessZeros(visitedRanges(res.header, virtioMem), dstZeros!.zeros, (rb, off) => {
            const block = res.blockNames.get(rb)
            return block === undefined ? -1 : mapper.gpa(block, off)
          })
        : multifdRound
          ? populatedFirst(res.header, s.multifdBulkPages)
          : populatedFromBulk(s, res.blockNames, mapper)
  const folded = res.from === 'header' ? 0 : s.vmemBefore.length
  const mig = migrationParams(lab, s, dstZeros?.syncMainUs)
  // Under TCG (the lab's --accel tcg) there is no KVM dirty log: cpu_physical_memory_sync_dirty_bitmap()
  // takes and clears DIRTY_MEMORY_MIGRATION at each sync, and no listener has log_clear, so lazy
  // clear does nothing. The closest KVM mode is the legacy get-and-clear bitmap (no manual protect);
  // replay it with --set lazy-clear=false.
  const tcg = lab?.args.accel === 'tcg' && res.from !== 'header'
  const dirtyTracking = s.ringSeen
    ? {...res.header.dirtyTracking, mode: 'ring' as const}
    : tcg
      ? {...res.header.dirtyTracking, mode: 'bitmap' as const, manualProtect: false, initiallySet: false}
      : res.header.dirtyTracking
  const source: Record<string, unknown> = {
    importer: 'qemu-log',
    file: opts.trace,
    timeOrigin: s.originUs >= 0 ? `${Math.floor(s.originUs / 1e6)}.${String(s.originUs % 1e6).padStart(6, '0')}` : null,
    timeOriginNote: s.originUs >= 0 ? 'unix seconds.micros of the first line (log backend gettimeofday); t_ns counts from it' : 'the log has no timestamps (-msg timestamp=off): every event is at t_ns 0',
    layoutFrom: res.from,
    ...(res.notes.length > 0 ? {layoutNotes: res.notes} : {}),
    ...(lab?.qemu_version !== undefined ? {qemuVersion: lab.qemu_version} : {}),
    ...(lab !== undefined ? {labRun: lab.name ?? null, labArgs: lab.args} : {}),
    qemuBlockNames: Object.fromEntries(res.blockNames),
    ...(mig.params !== '' ? {migrationParams: mig.params} : {}),
    ...(settings.length > 0 ? {settings, settingsNote: "the run's capabilities and QEMU-version rules: replay with --set for each (lab analyze does)"} : {}),
    ...(multifdRound && res.from !== 'header'
      ? zerosUsable
        ? {
            populatedFrom: {
              file: dstZeros!.file,
              zeroRecords: dstZeros!.firstRound,
              zeroRecordsInLog: dstZeros!.total,
              otherRecords: dstZeros!.otherRecords,
              wrapped: dstZeros!.wrapped,
              pages: Array.isArray(populated) ? populated.reduce((n, r) => n + r.len / PAGE, 0) : populated,
            },
            populatedNote: "multifd: the first round's pages less its zero pages, from the destination trace's ram_load_loop ZERO records up to the scan's wrap (QEMU before 9.0 finds zero pages on the migration thread and sends them on the main channel)",
          }
        : {
            populatedNote: `multifd_send gives page counts, not offsets: the ${s.multifdBulkPages} normal pages of the bulk stage are taken as the first ones of guest RAM${
              opts.dstTrace === undefined
                ? ' (give --dst-trace, the destination trace with ram_load_loop, for the exact map)'
                : zeroDetectionOnChannels
                  ? ' (QEMU 9.0+ finds zero pages on the channels: the destination trace has no zero records)'
                  : dstZerosUnread
                    ? " (the destination trace has no first round to read: no ram_load_loop zero record; a postcopy run's kept trace-dst.postcopy.log.gz has none, lab matrix drops those lines)"
                    : " (the destination trace's first round is incomplete: no wrap and no stop)"
            }`,
          }
      : {}),
    ...(tcg ? {accel: 'tcg', dirtyTrackingNote: 'TCG dirty bitmap: modelled as the legacy KVM bitmap (get-and-clear at sync); replay with --set lazy-clear=false'} : {}),
    ...(mig.switchover !== undefined ? {switchoverMeasured: mig.switchover} : {}),
    ...(mig.pageInterval !== undefined ? {pageIntervalMeasured: mig.pageInterval} : {}),
  }
  // Dirty-ring events mean QEMU ran with the ring (kvm_dirty_ring_enabled()), whatever the layout says.
  const headerOut: TraceHeader = {
    ...res.header,
    vcpus: Math.max(res.header.vcpus, s.maxVcpu + 1, typeof lab?.args.smp === 'number' && res.from === 'lab-config' ? lab.args.smp : 1),
    dirtyTracking,
    populated,
    virtioMem,
    ...labPacing(lab),
    source: {...(res.header.source ?? {}), ...source, ...(folded > 0 ? {virtioMemRequestsFolded: folded, virtioMemNote: 'virtio-mem requests before the migration setup are folded into virtioMem[].plugged (the state at setup, matching the populated map)'} : {})},
    ...(observed !== undefined ? {observed} : res.header.observed !== undefined ? {observed: res.header.observed} : {}),
  }

  const devNames = (() => {
    const names: string[] = []
    headerOut.virtioMem.forEach((d) => names.push(d.id))
    headerOut.vfio.forEach((c) => {
      names.push(c.id)
      c.devices.forEach((d) => names.push(d.id))
    })
    return names
  })()
  const devIndex = new Map(devNames.map((n, i) => [n, i]))

  // Pass 2 runs twice: dry, to learn the tallies the header carries (unmapped sends, skipped and
  // summarized events), then for real, writing through TraceWriter (temp file + rename).
  const dry = await emit(opts, s, res, mapper, headerOut, devNames, devIndex, workload, mig.params, dst, recording, undefined, labPostcopyAfterSyncs(lab))
  const src = headerOut.source as Record<string, unknown>
  src.lines = s.lines
  src.eventsUsed = Object.fromEntries([...s.used].sort())
  src.unknownEvents = Object.fromEntries([...s.unknown].sort())
  if (s.otherLines > 0) src.otherLines = s.otherLines
  if (dry.clampedLines > 0) src.outOfOrderLines = dry.clampedLines
  if (dry.unmapped.size > 0) src.unmappedPagesSent = Object.fromEntries(dry.unmapped)
  if (dry.skipped.size > 0) src.skippedEvents = Object.fromEntries(dry.skipped)
  if (dry.faultCount > 0) src.postcopyFaults = {count: dry.faultCount, first: dry.faults}
  if (dst !== undefined) {
    // The destination's faults are what QEMU did, kept beside query-migrate's postcopy-requests: the
    // replay never reads them (it predicts its own from the guest's accesses).
    src.postcopyFaults = {
      count: dst.faults,
      from: dst.file,
      note: 'postcopy_ram_fault_thread_request lines of the destination trace (observation: not replayed)',
      first: dst.first.map((f) => {
        const block = res.blockNames.get(f.rb)
        const g = block === undefined ? -1 : mapper.gpa(block, f.offset)
        return {t_ns: s.originUs >= 0 ? (f.tUs - s.originUs) * 1000 : 0, rb: f.rb, offset: `0x${f.offset.toString(16)}`, ...(g >= 0 ? {gpa: `0x${g.toString(16)}`} : {})}
      }),
    }
    src.destinationTrace = {file: dst.file, lines: dst.lines, postcopyActiveNs: s.originUs >= 0 ? (dst.postcopyActiveUs - s.originUs) * 1000 : null}
  }
  const obsExtra = observedFromDestination(dst, dstStats)
  if (Object.keys(obsExtra).length > 0) headerOut.observed = {...(headerOut.observed ?? {}), ...obsExtra}
  if (dry.vfioStates.length > 0) src.vfioMigrationStates = dry.vfioStates
  if (s.pauses.pauses.length > 0) {
    // Each failure as the log shows it: the mig_net_fail events carry failNs and recoverNs - failNs.
    const ns = (us: number): number | null => (us >= 0 && s.originUs >= 0 ? (us - s.originUs) * 1000 : null)
    src.postcopyPauses = s.pauses.pauses.map((p) => ({failNs: ns(p.failUs), recoverNs: ns(p.recoverUs), resumeNs: ns(p.resumeUs)}))
  }
  if (recording !== undefined) {
    const rs = (recording.header.source ?? {}) as Record<string, unknown>
    src.recordedWrites = {
      file: opts.recording,
      timeOrigin: (rs.recording as Record<string, unknown> | undefined)?.timeOrigin,
      epochNs: recording.epochNs,
      emitted: dry.recorded,
      beforeFirstLine: dry.recordedBefore,
      whileStopped: dry.recordedStopped,
      afterLastLine: dry.recordedAfter,
      outsideLayout: dry.recordedUnmapped,
      dirtierRecreated: recording.dirtierRemoved,
      note: recording.dirtierRemoved
        ? "the recording's writes outside the dirtier's working set (the kernel's, busybox's), at timeOrigin + t_ns on the host clock, plus the dirtier's writes re-created from its seed"
        : "every guest store the recording holds (first per page per epoch), at timeOrigin + t_ns on the host clock; the dirtier's writes are not re-created",
    }
  }
  if (workload !== undefined)
    src.workload = {
      ...workload.describe(),
      ...(dry.writes > 0 ? {writesEmitted: dry.writes, writeIndexFirst: dry.firstWrite, writeIndexLast: dry.lastWrite} : {}),
      ...(dry.dstWrites > 0
        ? {
            destinationWrites: {
              emitted: dry.dstWrites,
              writeIndexFirst: dry.dstFirstWrite,
              writeIndexLast: dry.dstLastWrite,
              resumeFrom: dst !== undefined ? "the destination trace's postcopy-active" : "the source's postcopy_start (no --dst-trace)",
              note: "write k after the source's stop at the destination console's host-stamped (time, total) points; those stamps are wall time, so the guest's waits on faults are inside them",
            },
          }
        : {}),
    }
  const writer = await TraceWriter.open(opts.out, headerOut, devNames)
  let done: EmitResult
  try {
    done = await emit(opts, s, res, mapper, headerOut, devNames, devIndex, workload, mig.params, dst, recording, writer, labPostcopyAfterSyncs(lab))
    await writer.close()
  } catch (e) {
    await writer.abort()
    throw e
  }
  const summary: ImportSummary = {
    lines: s.lines,
    events: done.events,
    used: Object.fromEntries(s.used),
    unknown: Object.fromEntries(s.unknown),
    otherLines: s.otherLines,
    header: headerOut,
  }
  return summary
}


interface EmitResult {
  events: number
  clampedLines: number
  unmapped: Map<string, number>
  skipped: Map<string, number>
  faultCount: number
  faults: {t_ns: number; rb: string; offset: string; gpa?: string}[]
  vfioStates: {t_ns: number; device: string; state: string}[]
  /** Re-created guest writes emitted: count, and the dirtier's write indices (0-based) of the first and last. */
  writes: number
  firstWrite: number
  lastWrite: number
  /** Writes from a recording: emitted, and left out (before the log's first line, while the guest was stopped, after the last line, outside the layout). */
  recorded: number
  recordedBefore: number
  recordedStopped: number
  recordedAfter: number
  recordedUnmapped: number
  /** Of those, written on the destination after a postcopy switchover, with their dirtier indices. */
  dstWrites: number
  dstFirstWrite: number
  dstLastWrite: number
}

/** Second pass: every used line to migtrace events; `writer` undefined = dry run (tallies only). */
async function emit(
  opts: ImportOptions,
  s: ScanState,
  res: Resolved,
  mapper: OffsetMapper,
  header: TraceHeader,
  devNames: readonly string[],
  devIndex: Map<string, number>,
  workload: Workload | undefined,
  migParams: string,
  dst: DestinationTrace | undefined,
  recording: RecordingInfo | undefined,
  writer: TraceWriter | undefined,
  labAfterSyncs: number | undefined,
): Promise<EmitResult> {
  const r: EmitResult = {events: 0, clampedLines: 0, unmapped: new Map(), skipped: new Map(), faultCount: 0, faults: [], vfioStates: [], writes: 0, firstWrite: -1, lastWrite: -1, recorded: 0, recordedBefore: 0, recordedStopped: 0, recordedAfter: 0, recordedUnmapped: 0, dstWrites: 0, dstFirstWrite: -1, dstLastWrite: -1}
  const slotById = new Map(header.memslots.map((x) => [x.id, x]))
  const vmem = header.virtioMem
  const dev0 = vmem.length > 0 ? devIndex.get(vmem[0]!.id)! : -1
  const ringSlots = header.memslots.map((x) => ({id: x.id, pages: x.size / header.pageSize}))
  let stopped = false
  const batch = createBatch()
  let lastT = 0
  const push = (kind: number, t: number, lineNo: number): number => {
    const i = batch.length++
    batch.t[i] = t
    batch.kind[i] = kind
    batch.line[i] = lineNo
    return i
  }
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    if (writer !== undefined) {
      opts.onBatch?.(batch)
      await writer.writeBatch(batch)
    }
    r.events += batch.length
    resetBatch(batch)
  }
  const cur = workload?.cursor(s.originUs, s.setupUs >= 0 ? (s.setupUs - s.originUs) * 1000 : 0)
  let have = cur?.advance() ?? false
  let writeIndex = 0
  // A recording's writes replace the re-created ones (unless it holds only the non-dirtier writes);
  // the re-created cursor still runs, to count the dirtier's writes for the destination's.
  const rcur = recording !== undefined ? new RecordedWriteCursor(opts.recording!, recording.originUs, s.originUs) : undefined
  let rhave = rcur !== undefined ? await rcur.advance() : false
  const recreate = recording === undefined || recording.dirtierRemoved
  const inLayout = memslotTest(header)
  // The destination's writes after a postcopy switchover (--dst-console), from the source's stop on.
  let dcur: WriteCursor | undefined
  let dhave = false
  const pushWrite = async (t: number, gpa: number, len = 8, vcpu = 0): Promise<void> => {
    const i = push(K.write, t, 0)
    batch.vcpu[i] = vcpu
    batch.gpa[i] = gpa
    batch.len[i] = len
    r.writes++
    if (batch.length === batch.t.length) await flush()
  }
  const drainDestination = async (upTo: number): Promise<void> => {
    while (dhave && dcur!.t <= upTo) {
      if (r.dstFirstWrite < 0) r.dstFirstWrite = writeIndex
      r.dstLastWrite = writeIndex
      r.dstWrites++
      if (r.firstWrite < 0) r.firstWrite = writeIndex
      r.lastWrite = writeIndex
      await pushWrite(dcur!.t, dcur!.gpa)
      writeIndex++
      dhave = dcur!.advance()
    }
  }
  const counts = {lines: 0, otherLines: 0, unknown: new Map<string, number>(), used: new Map<string, number>()}
  void devNames
  // Requests before the setup are already in the header (foldVirtioMemRequests).
  const beforeSetup = (tUs: number): boolean => res.from !== 'header' && s.setupUs >= 0 && tUs >= 0 && tUs < s.setupUs
  // A postcopy failure's mig_net_fail sits on the line that showed it first (./interruptions.ts).
  const pauseAt = new Map(s.pauses.pauses.map((p) => [p.line, p]))
  let postcopyStarted = false
  // Syncs so far: a lab switch that came after its --postcopy-after-th sync is the setting's
  // (labSettings), not an event; one before it (--on-timeout postcopy) stays an event.
  let syncsSeen = 0
  const resets = new VmemResetTracker()
  await walk(
    opts.trace,
    async (ev, a, tUs, lineNo) => {
      let t = tUs >= 0 && s.originUs >= 0 ? (tUs - s.originUs) * 1000 : lastT
      if (t < lastT) {
        r.clampedLines++
        t = lastT
      }
      // Guest writes, re-created from the workload and/or from a recording, interleaved in time
      // order (only while the trace runs: writes before the first line are not in its window).
      for (;;) {
        const wt = have ? cur!.t : Infinity
        const rt = rhave ? rcur!.t : Infinity
        if (wt > t && rt > t) break
        if (wt <= rt) {
          if (recreate && cur!.t >= lastT && !stopped) {
            if (r.firstWrite < 0) r.firstWrite = writeIndex
            r.lastWrite = writeIndex
            await pushWrite(cur!.t, cur!.gpa)
          }
          writeIndex++
          have = cur!.advance()
        } else {
          if (rcur!.t < lastT || rcur!.t < 0) r.recordedBefore++
          else if (stopped) r.recordedStopped++
          else if (!inLayout(rcur!.gpa)) r.recordedUnmapped++
          else {
            r.recorded++
            await pushWrite(rcur!.t, rcur!.gpa, rcur!.len, rcur!.vcpu)
          }
          rhave = await rcur!.advance()
        }
      }
      await drainDestination(t)
      lastT = t
      const pause = pauseAt.get(lineNo)
      if (pause !== undefined) {
        // value = the user's recovery (migrate resume=true), ms after the failure; the model adds
        // the resume handshake itself. No recovery in the log: the replay's postcopy-recover-after.
        const i = push(K.mig_net_fail, t, lineNo)
        if (pause.failUs >= 0 && pause.recoverUs >= 0) batch.value[i] = (pause.recoverUs - pause.failUs) / 1000
        if (batch.length === batch.t.length) await flush()
      }
      const reset = ev.spec.role.startsWith('vmem_') ? resets.observe(ev.spec.name, tUs) : ResetVerdict.None
      switch (ev.spec.role) {
        case 'ram_save_page': {
          const block = res.blockNames.get(a.str[0]!)
          const g = block === undefined ? -1 : mapper.gpa(block, a.num[1]!)
          if (g < 0) {
            bump(r.unmapped, a.str[0]!)
            return
          }
          const i = push(K.page_sent, t, lineNo)
          batch.gpa[i] = g
          batch.op[i] = Op.normal
          break
        }
        case 'sync_end': {
          // mirrors migration_bitmap_sync(): the value is rs->num_dirty_pages_period.
          const i = push(K.mig_sync, t, lineNo)
          batch.value[i] = a.num[0]!
          syncsSeen++
          break
        }
        case 'set_state': {
          const k = STATE_KIND[a.str[0]!]
          if (k === undefined) return
          if (k === K.mig_postcopy) {
            // postcopy-active again after postcopy-recover: the resume, which the mig_net_fail carries.
            if (postcopyStarted) return
            postcopyStarted = true
            if (labAfterSyncs !== undefined && syncsSeen >= labAfterSyncs) return
          }
          const i = push(k, t, lineNo)
          if (k === K.mig_start && migParams !== '') batch.params.set(i, migParams)
          break
        }
        case 'vm_stop':
        case 'postcopy_start':
          // migration_completion() / postcopy_start(): the source stops the guest for good.
          if (ev.spec.role === 'postcopy_start' && dcur === undefined && workload !== undefined) {
            // The dirtier goes on on the destination from the first write the source did not make
            // (writeIndex: the source's writes up to this line are out), once the guest runs there.
            const resumeUs = dst !== undefined ? Math.max(dst.postcopyActiveUs, tUs) : tUs
            dcur = workload.destinationCursor(s.originUs, writeIndex, resumeUs)
            if (dcur !== undefined) {
              have = false
              dhave = dcur.advance()
            }
          }
          if (stopped) return
          stopped = true
          push(K.vm_stop, t, lineNo)
          break
        case 'vm_state': {
          const running = a.num[0]! !== 0
          if (running === !stopped) return
          stopped = !running
          push(running ? K.vm_start : K.vm_stop, t, lineNo)
          break
        }
        case 'postcopy_fault': {
          r.faultCount++
          if (r.faults.length < 1000) {
            const block = res.blockNames.get(a.str[1]!)
            const g = block === undefined ? -1 : mapper.gpa(block, a.num[2]!)
            r.faults.push({t_ns: t, rb: a.str[1]!, offset: `0x${a.num[2]!.toString(16)}`, ...(g >= 0 ? {gpa: `0x${g.toString(16)}`} : {})})
          }
          return
        }
        case 'kvm_set_user_memory': {
          const {as, slot} = slotId(a)
          if (as !== 0 || !slotById.has(slot)) {
            bump(r.skipped, `${ev.spec.name} (slot not in the layout)`)
            return
          }
          const i = push(K.kvm_set_user_memory_region, t, lineNo)
          batch.slot[i] = slot
          batch.value[i] = a.num[2]!
          break
        }
        case 'kvm_clear_dirty_log': {
          // kvm_log_clear_one_slot(): slot = as_id << 16 | slot; start and size in pages.
          const raw = a.num[0]!
          const slot = raw & 0xffff
          if (raw >>> 16 !== 0 || !slotById.has(slot)) {
            bump(r.skipped, `${ev.spec.name} (slot not in the layout)`)
            return
          }
          const i = push(K.kvm_clear_dirty_log, t, lineNo)
          batch.slot[i] = slot
          batch.page[i] = a.num[1]!
          batch.count[i] = a.num[2]!
          break
        }
        case 'kvm_ring_page': {
          // kvm_dirty_ring_reap_one() traces cur->offset but not cur->slot: the slot is known
          // only when exactly one memslot is large enough to hold the offset.
          const off = a.num[2]!
          let found = -1
          let n = 0
          for (const sl of ringSlots)
            if (off < sl.pages) {
              found = sl.id
              n++
            }
          if (n !== 1) {
            bump(r.skipped, `${ev.spec.name} (slot ambiguous: the event has no slot id)`)
            return
          }
          const i = push(K.kvm_dirty_ring_page, t, lineNo)
          batch.vcpu[i] = a.num[0]!
          batch.slot[i] = found
          batch.page[i] = off
          break
        }
        case 'kvm_ring_reap': {
          // mirrors kvm_dirty_ring_reap_locked(): KVM_RESET_DIRTY_RINGS once all rings are reaped.
          const i = push(K.kvm_reset_dirty_rings, t, lineNo)
          batch.count[i] = a.num[0]!
          break
        }
        case 'vmem_plug':
        case 'vmem_unplug':
        case 'vmem_state':
        case 'vmem_unplug_all': {
          const skip = dev0 < 0 ? 'no virtio-mem device in the layout' : beforeSetup(tUs) ? "before the migration: folded into the header's plug state" : undefined
          if (skip !== undefined) {
            bump(r.skipped, `${ev.spec.name} (${skip})`)
            return
          }
          if (ev.spec.role === 'vmem_unplug_all') {
            const i = push(K.vmem_unplug_all, t, lineNo)
            batch.dev[i] = dev0
            break
          }
          const kind = ev.spec.role === 'vmem_plug' ? K.vmem_plug : ev.spec.role === 'vmem_unplug' ? K.vmem_unplug : K.vmem_state
          const i = push(kind, t, lineNo)
          batch.dev[i] = deviceFor(header, devIndex, a.num[0]!)
          batch.gpa[i] = a.num[0]!
          batch.count[i] = a.num[1]!
          break
        }
        case 'vmem_unplugged_all': {
          // A system reset (./interruptions.ts) reaches every virtio-mem device; 7.2 has no wake-up reset.
          if (reset !== ResetVerdict.Reset) return
          const skip = dev0 < 0 ? 'no virtio-mem device in the layout' : beforeSetup(tUs) ? "before the migration: folded into the header's plug state" : undefined
          if (skip !== undefined) {
            bump(r.skipped, `system reset (${skip})`)
            return
          }
          for (const d of vmem) {
            const i = push(K.vmem_reset, t, lineNo)
            batch.dev[i] = devIndex.get(d.id)!
            batch.value[i] = 0
            if (batch.length === batch.t.length) await flush()
          }
          return
        }
        case 'vfio_dirty_bitmap': {
          const c = header.vfio[0]
          if (c === undefined) {
            bump(r.skipped, `${ev.spec.name} (no VFIO container in the layout)`)
            return
          }
          const i = push(K.vfio_dirty_pages, t, lineNo)
          batch.dev[i] = devIndex.get(c.id)!
          batch.op[i] = Op.get
          batch.iova[i] = a.num[1]!
          batch.len[i] = a.num[2]!
          break
        }
        case 'vfio_migration_state':
          if (r.vfioStates.length < 1000) r.vfioStates.push({t_ns: t, device: a.str[0]!, state: a.str[1] ?? String(a.num[1])})
          return
        default:
          return
      }
      if (batch.length === batch.t.length) await flush()
    },
    counts,
  )
  // Destination writes after the source's last line (the destination guest goes on).
  await drainDestination(Infinity)
  while (rhave) {
    r.recordedAfter++
    rhave = await rcur!.advance()
  }
  await flush()
  return r
}

/**
 * Observed figures the destination adds to the header's (query-migrate) ones: its faults (the
 * trace's postcopy_ram_fault_thread_request lines) and its postcopy-blocktime /
 * postcopy-vcpu-blocktime (its final query-migrate).
 */
function observedFromDestination(dst: DestinationTrace | undefined, dstStats: Record<string, unknown> | undefined): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  if (dst !== undefined) {
    o['postcopy-faults'] = dst.faults
    const lat = latencySummary(dst.latencyMs)
    if (lat !== undefined) o['postcopy-fault-latency'] = lat
    const backlog = requestBacklogBytes(dst)
    if (backlog !== undefined) o['postcopy-request-backlog-bytes'] = backlog
    const d = dst.discards
    if (d !== undefined && d.pages > 0) {
      // The switchover's discards as the destination applied them before the package: the host's
      // figure for postcopy-discard-page-cost (ms per page).
      const ms = (d.lastUs - d.firstUs) / 1000
      o['postcopy-discard-apply'] = {ranges: d.ranges, pages: d.pages, ms, msPerPage: ms / d.pages}
    }
  }
  if (dstStats !== undefined) {
    if (typeof dstStats['postcopy-blocktime'] === 'number') o['postcopy-blocktime'] = dstStats['postcopy-blocktime']
    if (Array.isArray(dstStats['postcopy-vcpu-blocktime'])) o['postcopy-vcpu-blocktime'] = dstStats['postcopy-vcpu-blocktime']
  }
  return o
}

/** Whether a guest-physical address lies in one of the header's memslots (a recording may hold stores the layout has no RAM for). */
function memslotTest(h: TraceHeader): (gpa: number) => boolean {
  const slots = [...h.memslots].sort((a, b) => a.base - b.base)
  return (gpa) => {
    for (const m of slots) {
      if (gpa < m.base) return false
      if (gpa < m.base + m.size) return true
    }
    return false
  }
}

function deviceFor(h: TraceHeader, devIndex: Map<string, number>, gpa: number): number {
  for (const d of h.virtioMem) if (gpa >= d.base && gpa < d.base + d.regionSize) return devIndex.get(d.id)!
  return devIndex.get(h.virtioMem[0]!.id)!
}

