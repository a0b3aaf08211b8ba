/**
 * What one page costs the sender, on the wire and in CPU time, in one place for every phase
 * (precopy, the switchover, postcopy, a snapshot); docs/stream.md.
 * - A normal page: `sender-page-cost`, the sender thread's CPU time for it (the copy into the
 *   stream, ram_save_page -> save_normal_page, or a multifd channel's packet work), shared with
 *   the guest's vCPUs per `host-cpus` (./cpu.ts). The thread hands a page to the socket while
 *   the link carries the previous one, so a page takes the slower of its link time and its CPU
 *   time: the stream runs at min(link, what the threads produce).
 * - A zero page: `zero-page-cost` on top of its record (save_zero_page's buffer_is_zero and the
 *   record's way through the stream; the destination's load loop keeping up).
 * - multifd (./multifd.ts): the precopy stream's pages go in packets over N channel threads
 *   (packet headers, flushes), compressed with multifd-compression (./compression.ts).
 * - XBZRLE (./xbzrle.ts): a re-sent page found in the cache goes as its delta.
 * - transport=local-remap: the page-table work of handing a page with data over
 *   (Transport.handoverNs: a huge page moves whole for one operation).
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
  /** Wire bytes of the last page() (a field, not a returned object: this is the per-page path). */
  wire = 0
  /** The last page the precopy stream took: a smaller one means the scan wrapped (a full round). */
  private lastPage = -1
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
    this.updateSettings(settings)
  }

  private readonly vcpus: number

  /** Live parameters (a trace's mig_set) may change the costs. */
  updateSettings(s: ReplaySettings): void {
    // The migration thread does save_zero_page and save_normal_page; multifd's channel threads
    // the packets' pages.
    this.share = coreShare(s, 1, this.vcpus)
    this.zeroNs = (s['zero-page-cost'] * 1e6) / this.share
    this.pageNs = (s['sender-page-cost'] * 1e6) / this.share
    this.xbzrleNs = (s['xbzrle-page-cost'] * 1e6) / this.share
    if (this.multifd) {
      this.mfShare = coreShare(s, this.multifd.channels, this.vcpus)
      this.mfPageNs = (s['sender-page-cost'] * 1e6) / this.mfShare
      this.mfZeroNs = (s['zero-page-cost'] * 1e6) / (this.multifd.zeroInChannels ? this.mfShare : this.share)
    }
    this.any = this.zeroNs > 0 || this.pageNs > 0 || this.transport.remapNs > 0 || this.multifd !== undefined || this.xbzrle !== undefined
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
   * header and data, or a zero page's record), at `perByteNs` on the link: its bytes on the wire
   * (left in `wire`) and its time on the sender's clock (returned, ns): the slower of the link and
   * the sender's CPU. `syncCount` is dirty_sync_count (XBZRLE's cache age).
   */
  page(p: number, nonzero: boolean, bytes: number, perByteNs: number, syncCount: number, lastStage: boolean): number {
    const wrapped = p < this.lastPage
    this.lastPage = p
    const mf = this.multifd
    if (mf !== undefined) return this.multifdPage(mf, p, nonzero, bytes, perByteNs, wrapped)
    let wire = bytes
    let cpu = 0
    if (!nonzero) {
      this.wire = wire
      cpu = this.zeroNs
      this.cpuNs += cpu
      // xbzrle_cache_zero_page (not in the last stage: ram_save_complete has no round left).
      if (this.xbzrle !== undefined && !lastStage) this.xbzrle.zeroPage(p, syncCount)
      return wire * perByteNs + cpu
    }
    cpu = this.pageNs
    const xb = this.xbzrle
    if (xb !== undefined) {
      // find_dirty_block: XBZRLE starts once the first full round is done.
      if (wrapped) xb.enabled = true
      const o = xb.send(p, syncCount, lastStage)
      if (o !== XbzrleOutcome.Off && o !== XbzrleOutcome.Miss) cpu += this.xbzrleNs
      if (o === XbzrleOutcome.Sent) {
        wire = XBZRLE_RECORD_BYTES + xb.encodedLen
        xb.savedBytes += bytes - wire
      } else if (o === XbzrleOutcome.Skipped) {
        wire = 0
        xb.savedBytes += bytes
      }
    }
    this.wire = wire
    this.cpuNs += cpu
    const link = wire * perByteNs
    let t = link
    if (cpu > link) {
      t = cpu
      this.cpuBound++
    }
    return this.transport.remapNs > 0 ? t + this.transport.handoverNs(p, 1) : t
  }

  private multifdPage(mf: MultifdStream, p: number, nonzero: boolean, bytes: number, perByteNs: number, wrapped: boolean): number {
    // 8.1+: multifd_send_sync_main once per full round (find_dirty_block wrapping around), with
    // RAM_SAVE_FLAG_MULTIFD_FLUSH on the main channel.
    let wire = wrapped && !mf.flushEachSection ? mf.sync() + MULTIFD_FLUSH_RECORD_BYTES : 0
    let cpu: number
    if (!nonzero && bytes < this.pageSize) {
      if (mf.zeroInChannels) {
        // multifd_send_zero_page_detect: an offset in the packet, no data.
        wire += mf.queue(0, true)
        cpu = this.mfZeroNs
      } else {
        // save_zero_page on the migration thread: the record on the main channel.
        wire += bytes
        cpu = this.zeroNs
      }
      this.wire = wire
      this.cpuNs += cpu
      return wire * perByteNs + cpu
    }
    const c = this.compressor
    const data = c !== undefined ? c.page(p) : this.pageSize
    wire += data + mf.queue(data, false)
    cpu = this.mfPageNs + (c !== undefined ? c.lastNs / this.mfShare : 0)
    this.wire = wire
    this.cpuNs += cpu
    const link = wire * perByteNs
    if (cpu > link) {
      this.cpuBound++
      return cpu
    }
    return link
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
      cpuMs: (this.cpuNs + (this.compressor?.cpuNs ?? 0) * 0) / 1e6,
      cpuBoundPages: this.cpuBound,
    }
    if (this.multifd) out.multifd = this.multifd.figures()
    if (this.compressor) out.compression = this.compressor.figures()
    if (this.xbzrle) out.xbzrle = this.xbzrle.figures()
    return out
  }
}
