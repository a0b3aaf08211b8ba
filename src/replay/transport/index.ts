/**
 * How pages travel from the source to the destination, chosen per run (`transport=`):
 * - `network`: QEMU's stream over TCP. A page costs its bytes at the link rate: 8 bytes of record
 *   header (be64 offset | flags, save_normal_page) + the page; a zero page is the header + 1 byte
 *   (save_zero_page). A postcopy request waits one RTT, plus the socket's backlog without preempt.
 * - `local-remap`: a localhost migration whose RAM goes through a side channel (the 2013
 *   "localhost migration with side channel for RAM" proposal that motivated userfaultfd): pages
 *   are handed over by remapping (vmsplice SPLICE_F_GIFT / moving anonymous pages) instead of
 *   being copied, so a page costs page-table work, not bandwidth; a 2 MiB THP or hugetlbfs page
 *   moves whole for one operation, zero copy. The stream still carries the 8-byte headers.
 * - `shared`: memory backends shared by both sides (`x-ignore-shared`): RAM is not sent at all;
 *   only dirty tracking (whose bits are dropped) and the device state remain.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {PAGE_HEADER_BYTES, ZERO_PAGE_BYTES} from '../../ledger/ledger.js'
import type {ReplaySettings, TransportName} from '../settings.js'

export interface TransportStats {
  /** Page-table operations (host pages remapped, or write-protected for a snapshot). */
  pageTableOps: number
  pageTableNs: number
}

export class Transport {
  readonly kind: TransportName
  /** x-ignore-shared: RAM never enters the stream. */
  readonly ramShared: boolean
  /** Half the round-trip time (ns). */
  readonly oneWayNs: number
  /** Bytes queued ahead of a requested page on the main channel (the socket's backlog). */
  readonly queueBytes: number
  /** local-remap: ns per host page handed over. */
  readonly remapNs: number
  readonly stats: TransportStats = {pageTableOps: 0, pageTableNs: 0}
  private readonly blockFirst: Float64Array
  private readonly blockEnd: Float64Array
  /** Target pages per host page, per block. */
  private readonly blockHost: Float64Array
  private last = 0

  constructor(
    readonly layout: TraceLayout,
    settings: ReplaySettings,
  ) {
    this.kind = settings.transport
    this.ramShared = this.kind === 'shared'
    this.oneWayNs = (settings.rtt * 1e6) / 2
    // The side channel carries RAM outside the socket: a request only waits behind headers.
    this.queueBytes = this.kind === 'network' ? settings['socket-buffer'] : 0
    this.remapNs = this.kind === 'local-remap' ? settings['remap-cost'] * 1e6 : 0
    this.blockFirst = Float64Array.from(layout.blocks, (b) => b.firstPage)
    this.blockEnd = Float64Array.from(layout.blocks, (b) => b.firstPage + b.pages)
    this.blockHost = Float64Array.from(layout.blocks, (b) => Math.max(1, b.hostPageSize / layout.pageSize))
  }

  reset(): void {
    this.stats.pageTableOps = 0
    this.stats.pageTableNs = 0
  }

  /** Stream bytes of one target page; -1 = the ledger's own sizes (network). */
  wireBytes(nonzero: boolean): number {
    if (this.kind === 'network') return -1
    return nonzero ? PAGE_HEADER_BYTES : ZERO_PAGE_BYTES
  }

  /** Target pages per host page of the block holding global page p. */
  hostPages(p: number): number {
    return this.blockHost[this.blockOf(p)]!
  }

  /** First target page of the host page holding p. */
  hostPageStart(p: number): number {
    const b = this.blockOf(p)
    const h = this.blockHost[b]!
    const first = this.blockFirst[b]!
    return first + Math.floor((p - first) / h) * h
  }

  /** End (exclusive) of the host page holding p, capped at its block's end. */
  hostPageEnd(p: number): number {
    const b = this.blockOf(p)
    return Math.min(this.hostPageStart(p) + this.blockHost[b]!, this.blockEnd[b]!)
  }

  /**
   * Page-table time (ns) to hand over `pages` non-zero target pages of p's block, counted as
   * operations. Precopy moves target pages one by one: a huge page is charged pro rata (one
   * operation per whole host page moved). Network transfers cost none.
   */
  handoverNs(p: number, pages: number): number {
    if (this.remapNs === 0 || pages === 0) return 0
    const ops = pages / this.hostPages(p)
    const ns = ops * this.remapNs
    this.stats.pageTableOps += ops
    this.stats.pageTableNs += ns
    return ns
  }

  /** A page-table operation of another kind (snapshot write-protect), charged at `nsPerOp`. */
  chargeOps(ops: number, nsPerOp: number): number {
    this.stats.pageTableOps += ops
    this.stats.pageTableNs += ops * nsPerOp
    return ops * nsPerOp
  }

  private blockOf(p: number): number {
    const i = this.last
    if (p >= this.blockFirst[i]! && p < this.blockEnd[i]!) return i
    for (let b = 0; b < this.blockFirst.length; b++)
      if (p >= this.blockFirst[b]! && p < this.blockEnd[b]!) {
        this.last = b
        return b
      }
    return 0
  }
}
