/**
 * What one page costs the sender, on the wire and in CPU time, in one place for every phase
 * (precopy, the switchover, postcopy, a snapshot); docs/stream.md.
 * Who pays (QEMU 7.2 to 8.x, migration/ram.c ram_save_target_page): the migration thread runs
 * save_zero_page (buffer_is_zero) on every page first, with or without multifd; a page that is not
 * zero then goes either through ram_save_page -> save_normal_page on the migration thread (one
 * record per page down the main QEMUFile, loaded one by one by ram_load_precopy) or, with multifd,
 * through ram_save_multifd_page -> multifd_queue_page to the channel threads (multifd_send_thread:
 * one writev per packet of 128 pages, read straight into place by multifd_recv_thread).
 * - A normal page: `sender-page-cost` on the migration thread without multifd, `multifd-page-cost`
 *   on the channel threads with it (the two paths' per-page work differ), shared with the guest's
 *   vCPUs per `host-cpus` (./cpu.ts); compression (./compression.ts) on the channels too.
 * - A zero page: `zero-page-cost` on the migration thread (on the channels with
 *   zero-page-detection=multifd, 9.0+).
 * - XBZRLE (./xbzrle.ts): `xbzrle-page-cost` on the migration thread; a re-sent page found in the
 *   cache goes as its delta, a record that pays sender-page-cost whole (the cost is per record), and
 *   a page found unchanged (skipped, 0 bytes) pays it too (the page's work is done before the skip).
 * - Without multifd every record takes one path, in series: the migration thread, the main
 *   socket, the destination's one load thread (ram_load_precopy: a zero record is
 *   ram_handle_compressed's buffer_is_zero of the destination page). A normal page takes the
 *   slower of its link time (on the lab's localhost, link-bandwidth is that path's rate measured
 *   at the switchover) and sender-page-cost; a zero page its 9 bytes plus zero-page-cost.
 * - With multifd the paths are apart and work at the same time: the migration thread's
 *   save_zero_page records go down the main channel while the channel threads send the packets
 *   (multifd_send_pages waits only for a free channel; multifd_recv_thread reads them into
 *   place). So a page adds to three clocks, the link's bytes, the migration thread's CPU and the
 *   channels' CPU, and a run of sends takes the longest of them (the Sender's clock):
 *   max(link, zero detection, channels' pages / their share).
 * - In the downtime the VM is stopped (migration_completion: vm_stop_force_state before
 *   qemu_savevm_state_complete_precopy), so the sender threads share the host with no busy vCPU.
 * - transport=local-remap: the page-table work of handing a page with data over
 *   (Transport.handoverNs: a huge page moves whole for one operation), in series with the rest.
 * `extraNs` is the single-channel cost (postcopy's pages, a snapshot's); `page` is the precopy
 * stream's, with multifd and XBZRLE.
 */
import type {TraceHeader} from '../../trace/header.js'
import type {TraceLayout} from '../../trace/layout.js'
import type {ReplaySettings} from '../settings.js'
import type {Transport} from '../transport/index.js'
import {Compressor, type CompressionFigures} from './compression.js'
import {coreShare} from './cpu.js'
import {MULTIFD_FLUSH_RECORD_BYTES, MultifdStream, type MultifdFigures} from './multifd.js'
import {XbzrleCache, XbzrleOutcome, XBZRLE_RECORD_BYTES, type XbzrleFigures} from './xbzrle.js'
import {hasRule} from '../qemu-version.js'
import {postcopyAsked} from '../postcopy-trigger.js'

/**
 * The destination's load-loop time a main-stream record (ms): ram_load_precopy's record (its
 * header, the block lookup, a zero record's buffer_is_zero or a page's copy) and, on a traced
 * destination, the flushed ram_load_loop line it writes for each (trace_ram_load_loop: the log
 * backend's fprintf + fflush, a write() a line). That line is what varies from one capture to the next on
 * a host (docs/lab.md, "The destination's load loop"), and the source trace shows the host's
 * figure at that capture: its page interval (trace-page-interval, `import qemu`), whose ram_save_page
 * line is written the same way. Where the trace measured it and dest-record-intervals is set, a
 * record costs that many intervals; otherwise dest-record-cost.
 */
export function destRecordMs(s: ReplaySettings): number {
  const k = s['dest-record-intervals']
  const interval = s['trace-page-interval']
  return k > 0 && interval > 0 ? k * interval : s['dest-record-cost']
}

/** The stream figures of a run (the result's `stream`). */
export interface StreamFigures {
  /** Sender threads doing the page work: 1 (the migration thread) or the multifd channels. */
  threads: number
  /** Cores' worth of work those threads get beside the busy vCPUs (host-cpus). */
  coreShare: number
  /** Sender CPU time spent on pages (ms, summed over the threads). */
  cpuMs: number
  /** Pages whose CPU time was longer than their link time (the sender, not the link, was the bound). */
  cpuBoundPages: number
  multifd?: MultifdFigures
  compression?: CompressionFigures
  xbzrle?: XbzrleFigures
}

export interface PageCostsContext {
  transport: Transport
  header: TraceHeader
  layout: TraceLayout
}

export class PageCosts {
  private readonly transport: Transport
  private zeroNs = 0
  /** CPU time of one normal page on the migration thread, wall time (ns): cost / core share. */
  private pageNs = 0
  /** The same on the multifd channel threads (cost / their share). */
  private mfPageNs = 0
  private mfZeroNs = 0
  private mfShare = 1
  private share = 1
  private xbzrleNs = 0
  private readonly pageSize: number
  /** Some page costs more than its bytes (else callers skip the cost: it is on the per-page path). */
  any = false
  readonly multifd?: MultifdStream
  readonly compressor?: Compressor
  readonly xbzrle?: XbzrleCache
  /**
   * What the last page() cost (fields, not a returned object: this is the per-page path): its wire
   * bytes, the migration thread's CPU (ns), the channel threads' CPU (ns, already divided by their
   * share) and the time in series with everything (ns: a single stream's zero page, local-remap's
   * handover).
   */
  wire = 0
  /** Of `wire`, the bytes on the link's clock, which overlaps the threads' (the rest is in serialNs). */
  overlapWire = 0
  migNs = 0
  chanNs = 0
  serialNs = 0
  /**
   * The last page put a record on the main stream, which the destination's one load loop takes
   * (ram_load_precopy): a zero record, or without multifd a normal page or an XBZRLE delta.
   */
  mainRecord = false
  /**
   * Of `wire`, the bytes on the main channel: the whole of it without multifd; with multifd a
   * legacy zero record and, on an 8.1+ round wrap, the RAM_SAVE_FLAG_MULTIFD_FLUSH record (the
   * channels' packets that multifd_send_sync_main sends are not in it).
   */
  mainWire = 0
  /**
   * Of `wire`, the channels' SYNC packets (and the open packet) of an 8.1+ round flush the last
   * page came after (multifd_send_sync_main, then RAM_SAVE_FLAG_MULTIFD_FLUSH on the main channel),
   * or 0: the destination's load loop stops at that record (ram_load_precopy:
   * multifd_recv_sync_main) as 7.2's does at each section's end.
   */
  flushSyncBytes = 0
  /** The destination's extra time (ns) for the last page's record: dest-first-touch-cost on its first load, or 0. */
  destExtraNs = 0
  /** Some record pays dest-first-touch-cost on the destination (a cold virtio-mem device's pages). */
  get destTouch(): boolean {
    return this.destTouchNs > 0
  }
  /** The VM is stopped (the downtime's last pass): no busy vCPU shares the host. */
  private stopped = false
  private settings: ReplaySettings
  /** The last page the precopy stream took: a smaller one means the scan wrapped (a full round). */
  private lastPage = -1
  /** first-touch-cost (ns) while guest RAM is not preallocated, and the pages the stream has sent once (a bitset). */
  private firstTouchNs = 0
  private touched?: Uint32Array
  private readonly precopy: boolean
  private readonly totalPages: number
  /**
   * dest-first-touch-cost (ns) where the destination loads into memory it has not populated: [p0,
   * p1) page ranges of the virtio-mem devices' memory (QEMU < 8.0 with guest-ram-prealloc), and the
   * pages it has loaded once (a bitset).
   */
  private destTouchNs = 0
  private readonly coldDest: number[] = []
  /** The whole of RAM is cold on the destination (postcopy-ram's advise discard). */
  private coldAll = false
  /** The virtio-mem ranges in coldDest are cold there (QEMU < 8.0). */
  private coldVmem = false
  private destTouched?: Uint32Array
  private cpuNs = 0
  private cpuBound = 0

  constructor(
    ctx: PageCostsContext,
    settings: ReplaySettings,
    /** The precopy stream (multifd, XBZRLE); false for postcopy's and a snapshot's costs. */
    precopy = false,
  ) {
    this.transport = ctx.transport
    this.pageSize = ctx.layout.pageSize
    if (precopy && settings.multifd) {
      this.multifd = new MultifdStream(settings, ctx.layout.pageSize)
      if (settings['multifd-compression'] !== 'none') this.compressor = new Compressor(settings, ctx.header, ctx.layout)
    } else if (precopy && settings.xbzrle) this.xbzrle = new XbzrleCache(ctx.layout, settings['xbzrle-cache-size'])
    this.vcpus = ctx.header.vcpus
    this.precopy = precopy
    this.totalPages = ctx.layout.totalPages
    // A virtio-mem device's memory: the memslots inside its region (the device's RAM block).
    for (const d of ctx.header.virtioMem) {
      for (const sl of ctx.layout.slots) {
        const a = Math.max(sl.gpaStart, d.base)
        const b = Math.min(sl.gpaEnd, d.base + d.regionSize)
        if (b > a) this.coldDest.push(sl.firstPage + (a - sl.gpaStart) / ctx.layout.pageSize, sl.firstPage + (b - sl.gpaStart) / ctx.layout.pageSize)
      }
    }
    this.settings = settings
    this.updateSettings(settings)
  }

  private readonly vcpus: number

  /** Live parameters (a trace's mig_set) may change the costs. */
  updateSettings(s: ReplaySettings): void {
    this.settings = s
    // The migration thread does save_zero_page and save_normal_page; multifd's channel threads
    // the packets' pages. With the VM stopped no vCPU competes for the cores.
    const vcpus = this.stopped ? 0 : this.vcpus
    this.share = coreShare(s, 1, vcpus)
    this.zeroNs = (s['zero-page-cost'] * 1e6) / this.share
    this.pageNs = (s['sender-page-cost'] * 1e6) / this.share
    this.xbzrleNs = (s['xbzrle-page-cost'] * 1e6) / this.share
    // Host time (page-fault allocation on either side), not the thread's CPU: not shared out.
    this.firstTouchNs = this.precopy && !s['guest-ram-prealloc'] ? s['first-touch-cost'] * 1e6 : 0
    // Before 8.0 the destination populates a virtio-mem device's blocks only once its state arrives,
    // after RAM (rule virtio-mem-early-prealloc): with guest-ram-prealloc the device's pages are
    // still cold there. Without it first-touch-cost covers the destination too.
    // With postcopy-ram (any version) the whole of RAM is: migration_thread sends
    // MIG_CMD_POSTCOPY_ADVISE before qemu_savevm_state_setup, and the destination's
    // loadvm_postcopy_handle_advise -> ram_postcopy_incoming_init -> postcopy_ram_incoming_init
    // runs init_range on every RAM block, ram_discard_range of all of it ("We need the whole of RAM
    // to be truly empty for postcopy"), which undoes -mem-prealloc before the first precopy record
    // arrives (lab/runs/postcopy: trace-dst's ram_discard_range pc.ram 0..0x40002000 at the
    // start; its first-pass section of ~75 000 zero records took the destination 1 002 ms).
    this.coldAll = this.precopy && postcopyAsked(s)
    this.coldVmem = this.coldDest.length > 0 && !hasRule(s['qemu-version'], 'virtio-mem-early-prealloc')
    this.destTouchNs = this.precopy && s['guest-ram-prealloc'] && (this.coldAll || this.coldVmem) ? s['dest-first-touch-cost'] * 1e6 : 0
    if (this.destTouchNs > 0 && this.destTouched === undefined) this.destTouched = new Uint32Array(Math.ceil(this.totalPages / 32))
    if (this.firstTouchNs > 0 && this.touched === undefined) this.touched = new Uint32Array(Math.ceil(this.totalPages / 32))
    if (this.multifd) {
      this.mfShare = coreShare(s, this.multifd.channels, vcpus)
      this.mfPageNs = (s['multifd-page-cost'] * 1e6) / this.mfShare
      this.mfZeroNs = (s['zero-page-cost'] * 1e6) / (this.multifd.zeroInChannels ? this.mfShare : this.share)
    }
    this.any = this.zeroNs > 0 || this.pageNs > 0 || destRecordMs(s) > 0 || this.destTouchNs > 0 || this.firstTouchNs > 0 || this.transport.remapNs > 0 || this.multifd !== undefined || this.xbzrle !== undefined
  }

  /** The VM stops (the downtime) or runs again: the threads' share of the host changes (host-cpus). */
  setVmStopped(stopped: boolean): void {
    if (stopped === this.stopped) return
    this.stopped = stopped
    this.updateSettings(this.settings)
  }

  /**
   * Single-channel sender time (ns) of page p beyond its `linkNs` on the link, sent with data
   * (`nonzero`) or as a zero record: postcopy's pages and a snapshot's.
   */
  extraNs(p: number, nonzero: boolean, linkNs: number): number {
    if (!nonzero) return this.zeroNs
    const cpu = this.pageNs > linkNs ? this.pageNs - linkNs : 0
    return this.transport.remapNs > 0 ? cpu + this.transport.handoverNs(p, 1) : cpu
  }

  /**
   * Page p of the precopy stream, whose record the ledger counted as `bytes` (a normal page's
   * header and data, or a zero page's record): its bytes on the wire and its CPU time on each
   * thread, left in `wire`, `migNs`, `chanNs` and `serialNs`. `syncCount` is dirty_sync_count
   * (XBZRLE's cache age).
   */
  page(p: number, nonzero: boolean, bytes: number, perByteNs: number, syncCount: number, lastStage: boolean): void {
    const wrapped = p < this.lastPage
    this.lastPage = p
    this.chanNs = 0
    this.serialNs = 0
    this.flushSyncBytes = 0
    this.destExtraNs = this.destTouchNs > 0 ? this.destFirstTouch(p) : 0
    const touch = this.firstTouch(p)
    const mf = this.multifd
    if (mf !== undefined) {
      this.multifdPage(mf, p, nonzero, bytes, perByteNs, wrapped, touch)
      return
    }
    let wire = bytes
    let cpu = 0
    if (!nonzero) {
      this.wire = wire
      this.mainWire = wire
      this.mainRecord = true
      cpu = this.zeroNs + touch
      this.cpuNs += cpu
      // In series with the single stream's records (above): its bytes and its cost.
      this.migNs = 0
      this.serialNs = wire * perByteNs + cpu
      this.overlapWire = 0
      // xbzrle_cache_zero_page (not in the last stage: ram_save_complete has no round left).
      if (this.xbzrle !== undefined && !lastStage) this.xbzrle.zeroPage(p, syncCount)
      return
    }
    cpu = this.pageNs
    const xb = this.xbzrle
    if (xb !== undefined) {
      // find_dirty_block: XBZRLE starts once the first full round is done.
      if (wrapped) xb.enabled = true
      const o = xb.send(p, syncCount, lastStage)
      if (o === XbzrleOutcome.Sent) {
        wire = XBZRLE_RECORD_BYTES + xb.encodedLen
        xb.savedBytes += bytes - wire
        // A delta record costs the record path whole, as a full page does (cpu stays
        // sender-page-cost): the save loop (ram_find_and_save_block -> find_dirty_block,
        // migration_bitmap_clear_dirty, save_zero_page's buffer_is_zero, ram_save_page's trace
        // and XBZRLE_cache_lock), the record's save_page_header and qemu_put_byte/_be16/_buffer,
        // and on the destination ram_load_precopy's header and block lookup per record, then
        // load_xbzrle (qemu_get_buffer, xbzrle_decode_buffer into the page). Its few bytes do not
        // set its cost: in lab/runs/xbzrle-hot's downtime pass a delta record (~36 bytes) took a
        // median 6.0 us and a full page 5.0 (scripts/measure-xbzrle-records.ts).
      } else if (o === XbzrleOutcome.Skipped) {
        // Nothing goes on the wire, but the migration thread did the page's whole work first: QEMU
        // 7.2's save_xbzrle_page copies the page into XBZRLE.current_buf and runs
        // xbzrle_encode_buffer over all of it before it finds 0 bytes changed
        // (trace_save_xbzrle_page_skipping), after ram_find_and_save_block's loop, save_zero_page's
        // buffer_is_zero and ram_save_page's trace line; ram_find_and_save_block then loops on to
        // the next dirty page. So a skip costs what a record does (cpu stays sender-page-cost):
        // in lab/runs/xbzrle-hot a skipped page took a median 9.1 us in the downtime and 10.0
        // live, a delta record 6.0 (scripts/measure-xbzrle-records.ts).
        wire = 0
        xb.savedBytes += bytes
      }
      // save_xbzrle_page: the cache lookup and xbzrle_encode_buffer, on a hit.
      if (o !== XbzrleOutcome.Off && o !== XbzrleOutcome.Miss) cpu += this.xbzrleNs
    }
    cpu += touch
    this.wire = wire
    this.mainWire = wire
    this.mainRecord = wire > 0
    this.overlapWire = wire
    this.cpuNs += cpu
    this.migNs = cpu
    if (cpu > wire * perByteNs) this.cpuBound++
    if (this.transport.remapNs > 0) this.serialNs = this.transport.handoverNs(p, 1)
  }

  /**
   * first-touch-cost of page p: on its first send by the precopy stream (the bulk stage; a page
   * first sent later, in the downtime, pays then), 0 after, and 0 with guest-ram-prealloc.
   */
  private firstTouch(p: number): number {
    const t = this.touched
    if (t === undefined || this.firstTouchNs === 0) return 0
    const w = p >>> 5
    const m = 1 << (p & 31)
    if ((t[w]! & m) !== 0) return 0
    t[w] = t[w]! | m
    return this.firstTouchNs
  }

  /** dest-first-touch-cost of page p: its first load into cold memory (all of it after postcopy's advise, else a virtio-mem device's), else 0. */
  private destFirstTouch(p: number): number {
    const r = this.coldDest
    let inside = this.coldAll
    if (!inside && this.coldVmem) for (let i = 0; i < r.length; i += 2) if (p >= r[i]! && p < r[i + 1]!) inside = true
    if (!inside) return 0
    const t = this.destTouched!
    const w = p >>> 5
    const m = 1 << (p & 31)
    if ((t[w]! & m) !== 0) return 0
    t[w] = t[w]! | m
    return this.destTouchNs
  }

  private multifdPage(mf: MultifdStream, p: number, nonzero: boolean, bytes: number, perByteNs: number, wrapped: boolean, touch: number): void {
    // 8.1+: multifd_send_sync_main once per full round (find_dirty_block wrapping around), with
    // RAM_SAVE_FLAG_MULTIFD_FLUSH on the main channel.
    const flushRecord = wrapped && !mf.flushEachSection ? MULTIFD_FLUSH_RECORD_BYTES : 0
    this.flushSyncBytes = flushRecord > 0 ? mf.sync() : 0
    let wire = this.flushSyncBytes + flushRecord
    this.mainWire = flushRecord
    this.migNs = 0
    this.mainRecord = false
    if (!nonzero && bytes < this.pageSize) {
      if (mf.zeroInChannels) {
        // multifd_send_zero_page_detect: an offset in the packet, no data, found by a channel.
        wire += mf.queue(0, true)
        this.chanNs = this.mfZeroNs + touch
      } else {
        // save_zero_page on the migration thread: the record on the main channel.
        wire += bytes
        this.mainWire += bytes
        this.migNs = this.zeroNs + touch
        this.mainRecord = true
      }
      this.wire = wire
      this.overlapWire = wire
      this.cpuNs += this.migNs + this.chanNs
      return
    }
    const c = this.compressor
    const data = c !== undefined ? c.page(p) : this.pageSize
    // The page's bytes reach the wire (and the rate window) with its packet (MultifdStream.queue).
    wire += mf.queue(data, false)
    // multifd_send_thread (and the compressor it calls) on the channels, in parallel.
    const cpu = this.mfPageNs + (c !== undefined ? c.lastNs / this.mfShare : 0) + touch
    this.wire = wire
    this.overlapWire = wire
    this.cpuNs += cpu
    this.chanNs = cpu
    if (cpu > data * perByteNs) this.cpuBound++
  }

  /**
   * The end of a RAM section (ram_save_iterate) or of the migration (ram_save_complete, `last`):
   * multifd_send_sync_main where it runs then. Returns the bytes it puts on the wire.
   */
  sectionEnd(last: boolean): number {
    const mf = this.multifd
    if (mf === undefined || !(last || mf.flushEachSection)) return 0
    return mf.sync()
  }

  /** ram_save_setup: multifd_send_sync_main once the channels are up. Returns its bytes. */
  setup(): number {
    return this.multifd !== undefined ? this.multifd.sync() : 0
  }

  figures(): StreamFigures {
    const out: StreamFigures = {
      threads: this.multifd !== undefined ? this.multifd.channels : 1,
      coreShare: this.multifd !== undefined ? this.mfShare : this.share,
      // The compressor's CPU is in cpuNs already (each page's channel time includes it).
      cpuMs: this.cpuNs / 1e6,
      cpuBoundPages: this.cpuBound,
    }
    if (this.multifd) out.multifd = this.multifd.figures()
    if (this.compressor) out.compression = this.compressor.figures()
    if (this.xbzrle) out.xbzrle = this.xbzrle.figures()
    return out
  }
}
