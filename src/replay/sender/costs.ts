/**
 * What one page costs the sender beyond its bytes on the link, in one place for every phase
 * (precopy, the switchover, postcopy, a snapshot):
 * - a zero page: `zero-page-cost` (save_zero_page's buffer_is_zero and the record's way through
 *   the stream; the destination's load loop keeping up);
 * - transport=local-remap: the page-table work of handing a page with data over
 *   (Transport.handoverNs: a huge page moves whole for one operation).
 * A new cost (compression, XBZRLE encoding) is one more term here.
 */
import type {ReplaySettings} from '../settings.js'
import type {Transport} from '../transport/index.js'

export class PageCosts {
  private zeroNs: number
  /** Some page costs more than its bytes (else callers skip extraNs: it is on the per-page path). */
  any: boolean

  constructor(
    private readonly transport: Transport,
    settings: ReplaySettings,
  ) {
    this.zeroNs = settings['zero-page-cost'] * 1e6
    this.any = this.zeroNs > 0 || transport.remapNs > 0
  }

  /** Live parameters (a trace's mig_set) may change the costs. */
  updateSettings(s: ReplaySettings): void {
    this.zeroNs = s['zero-page-cost'] * 1e6
    this.any = this.zeroNs > 0 || this.transport.remapNs > 0
  }

  /** Sender time (ns) of page p, sent with data (`nonzero`) or as a zero record, beyond the link. */
  extraNs(p: number, nonzero: boolean): number {
    if (nonzero) return this.transport.remapNs > 0 ? this.transport.handoverNs(p, 1) : 0
    return this.zeroNs
  }
}
