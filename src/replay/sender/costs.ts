/**
 * What one page costs the sender beyond its bytes on the link, in one place for every phase
 * (precopy, the switchover, postcopy, a snapshot):
 * - a normal page: `sender-page-cost`, the sender thread's CPU time for it (the copy into the
 *   stream, ram_save_page -> save_normal_page, or a multifd channel's packet work), shared with
 *   the guest's vCPUs per `host-cpus` (./cpu.ts). The thread hands a page to the socket while
 *   the link carries the previous one, so a page takes the slower of its link time and its CPU
 *   time: the stream runs at min(link, what the threads produce);
 * - a zero page: `zero-page-cost` on top of its record (save_zero_page's buffer_is_zero and the
 *   record's way through the stream; the destination's load loop keeping up);
 * - transport=local-remap: the page-table work of handing a page with data over
 *   (Transport.handoverNs: a huge page moves whole for one operation).
 */
import type {ReplaySettings} from '../settings.js'
import type {Transport} from '../transport/index.js'
import {coreShare} from './cpu.js'

export class PageCosts {
  private zeroNs = 0
  /** CPU time of one normal page on the sender's threads, wall time (ns): cost / core share. */
  private pageNs = 0
  /** Some page costs more than its bytes (else callers skip extraNs: it is on the per-page path). */
  any = false

  constructor(
    private readonly transport: Transport,
    settings: ReplaySettings,
    private readonly vcpus = 1,
  ) {
    this.updateSettings(settings)
  }

  /** Live parameters (a trace's mig_set) may change the costs. */
  updateSettings(s: ReplaySettings): void {
    // One migration thread does the page work (save_zero_page, save_normal_page).
    const share = coreShare(s, 1, this.vcpus)
    this.zeroNs = (s['zero-page-cost'] * 1e6) / share
    this.pageNs = (s['sender-page-cost'] * 1e6) / share
    this.any = this.zeroNs > 0 || this.pageNs > 0 || this.transport.remapNs > 0
  }

  /**
   * Sender time (ns) of page p beyond its `linkNs` on the link, sent with data (`nonzero`) or as a
   * zero record.
   */
  extraNs(p: number, nonzero: boolean, linkNs: number): number {
    if (!nonzero) return this.zeroNs
    const cpu = this.pageNs > linkNs ? this.pageNs - linkNs : 0
    return this.transport.remapNs > 0 ? cpu + this.transport.handoverNs(p, 1) : cpu
  }
}
