/**
 * The postcopy stream under the phase (./postcopy.ts): the switchover package, the source's
 * background stream and urgent pages, and the destination's receivedmap. PostcopyPhase adds the
 * guest's accesses and faults, events, the network failure and recovery, and the result.
 */
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap} from '../../model/bitmap.js'
import type {ReplaySettings} from '../settings.js'
import type {HostModel} from '../host.js'
import {linkRate, type PageCosts} from '../sender/index.js'
import type {GuestClock} from '../throttle-clock.js'
import {FaultLatency} from '../postcopy-latency.js'
import {InFlight} from './postcopy-inflight.js'
import {PostcopyRecovery} from './postcopy-recovery.js'
import {chunkHostPages, discardMessageBytes, discardRanges, receivedAtSwitchover} from './postcopy-package.js'


export interface PostcopyOptions {
  host: HostModel
  costs: PageCosts
  layout: TraceLayout
  settings: ReplaySettings
  clock: GuestClock
  vcpus: number
  /** Migration start (ns), for report times. */
  startNs: number
  trigger: string
  precopyIterations: number
  /** Non-postcopiable device data completed at the switchover (VFIO stop-copy), in the package. */
  extraPackageBytes?: number
  /**
   * Time the switchover's sync takes the migration thread (settings sync-cost / sync-page-cost):
   * postcopy_start stops the VM first and ram_postcopy_send_discard_bitmap syncs before it sends the
   * discards, so it is inside the source's downtime (ms->downtime is taken after the package).
   */
  syncNs?: number
}

export class PostcopyStream {
  readonly host: HostModel
  readonly switchNs: number
  /** Package sent: the source's downtime ends (migration_downtime_end). */
  readonly packageEndNs: number
  readonly resumeNs: number
  readonly discardRanges: number
  readonly discardBytes: number
  readonly hugePagesRedirtied: number
  readonly bytesBefore: number
  readonly deviceStateBytes: number
  /**
   * The VM stop and the switchover sync (ns), then the package's parts on the wire: discard
   * messages, VFIO stop-copy, device state (with the package's host time, postcopy-package-cost).
   */
  readonly syncNs: number
  readonly discardNs: number
  /** The destination applying the discard ranges before it reads the package (postcopy-discard-page-cost). */
  readonly discardApplyNs: number
  readonly extraNs: number
  readonly deviceNs: number
  /** receivedmap on the destination. */
  protected readonly received: Bitmap
  /** Host pages with a request in flight (the destination's page_requested tree). */
  protected readonly requested: Bitmap
  protected readonly sentAfter: Bitmap
  protected readonly inflight = new InFlight()
  protected readonly rate: number
  protected readonly perByteNs: number
  protected readonly leadNs: number
  protected readonly oneWayNs: number
  protected readonly preempt: boolean
  /** The main channel is busy until this time (last byte scheduled). */
  protected wire: number
  protected preemptFree: number
  protected sourceDone = false
  /** The source may send from here: the package's end, or the last resume after a failure. */
  protected sourceStartNs: number
  /** Requests reaching the source by this time (the ones re-sent at a resume) go before the background. */
  protected requestsFirstNs = -Infinity
  /** postcopy-fail-at: when the network fails (Infinity: no such setting, or done). */
  protected failAtNs = Infinity
  /** The last page received (what the run's end is once nothing more is in flight). */
  protected lastReceivedNs: number
  /** Pages lost in flight at a failure and not sent again yet. */
  protected lostPending: Bitmap | undefined
  readonly recovery: PostcopyRecovery
  /** Why a failure did not happen or was ignored, for the report's notes. */
  readonly notes: string[] = []
  lastArrivalNs: number
  endNs = Number.NaN
  done = false
  readonly latency: FaultLatency
  requests = 0
  duplicateRequests = 0
  requestsSkipped = 0
  faults = 0
  urgentPages = 0
  pagesAfter = 0
  bytesAfter = 0
  sentTwice = 0
  /** Guest writes done on the destination after the switchover. */
  destinationWrites = 0
  /** Non-vCPU faults (emulated-device DMA on the destination). */
  deviceFaults = 0
  lastGuestNs = 0
  protected readonly pageSize: number
  protected readonly layout: TraceLayout

  constructor(
    readonly opts: PostcopyOptions,
    now: number,
  ) {
    const {host, layout, settings, clock} = opts
    this.host = host
    this.layout = layout
    this.pageSize = layout.pageSize
    this.switchNs = now
    this.bytesBefore = host.ledger.totals().bytesSent
    const mb = host.mb
    // ram_postcopy_send_discard_bitmap: the scan restarts from the first block.
    mb.cursor = 0
    this.hugePagesRedirtied = chunkHostPages(mb, layout)
    this.discardRanges = discardRanges(mb.bmap, layout)
    this.discardBytes = discardMessageBytes(this.discardRanges, layout)
    this.deviceStateBytes = settings['device-state-bytes']
    const link = linkRate(settings)
    this.rate = settings['max-postcopy-bandwidth'] > 0 ? Math.min(settings['max-postcopy-bandwidth'], link) : link
    this.perByteNs = 1e9 / this.rate
    const tp = host.transport
    this.oneWayNs = tp.oneWayNs
    this.leadNs = tp.queueBytes * this.perByteNs
    this.preempt = settings['postcopy-preempt']
    // The package goes at the link rate (the rate limit is lifted at switchover start).
    this.syncNs = opts.syncNs ?? 0
    // The discard commands: their bytes at the link rate, and the source's time to find and send
    // each range (postcopy_each_send_discard -> postcopy_discard_send_range, a flushed
    // CMD_POSTCOPY_RAM_DISCARD every 12): postcopy-discard-range-cost.
    this.discardNs = (this.discardBytes * 1e9) / link + this.discardRanges * settings['postcopy-discard-range-cost'] * 1e6
    this.extraNs = ((opts.extraPackageBytes ?? 0) * 1e9) / link
    // qemu_savevm_send_packaged: the host time to build and send the package (postcopy-package-cost)
    // besides its device state's bytes at the link rate.
    this.deviceNs = (this.deviceStateBytes * 1e9) / link + settings['postcopy-package-cost'] * 1e6
    this.packageEndNs = now + this.syncNs + this.discardNs + this.extraNs + this.deviceNs
    // The destination's incoming thread handles commands in stream order: each discard command as
    // it arrives (loadvm_postcopy_ram_handle_discard: one madvise per range, ram_discard_range),
    // then the package, whose LISTEN starts the thread that reads the postcopy pages and whose RUN
    // resumes the guest. So the guest runs once the package has arrived and the discards are done.
    this.discardApplyNs = mb.dirtyPages * settings['postcopy-discard-page-cost'] * 1e6
    const discardsDoneNs = now + this.syncNs + this.oneWayNs + this.discardApplyNs
    this.resumeNs = Math.max(this.packageEndNs + this.oneWayNs, discardsDoneNs)
    // The source goes on after the package, but its first postcopy page is read at the LISTEN: until
    // then only the socket's backlog fills (the take rule in advanceSource: wire - socket backlog).
    this.wire = this.resumeNs - this.oneWayNs
    this.preemptFree = this.wire
    this.sourceStartNs = this.packageEndNs
    this.lastArrivalNs = this.resumeNs
    this.lastReceivedNs = this.resumeNs
    const failAt = settings['postcopy-fail-at']
    if (failAt !== undefined) this.failAtNs = now + failAt * 1e6
    this.recovery = new PostcopyRecovery(opts.vcpus)
    this.received = receivedAtSwitchover(mb.bmap, layout)
    this.requested = new Bitmap(layout.totalPages)
    this.sentAfter = new Bitmap(layout.totalPages)
    this.latency = new FaultLatency(opts.vcpus)
    // The guest is paused from the stop until it runs on the destination; not throttled there.
    if (clock.throttlePct > 0) clock.setThrottle(0, now)
    clock.pause(now, this.resumeNs)
  }



  // --- the source ------------------------------------------------------------------------------

  /** Send host page [a, e) on the wire starting at `start`; returns the arrival time. */
  protected sendHostPage(a: number, e: number, start: number): {end: number; arrival: number} {
    const host = this.host
    const nonzero = host.memory.nonzero
    let bytes = 0
    let pages = 0
    let extraNs = 0
    for (let p = a; p < e; p++) {
      if (!host.mb.bmap.get(p)) continue
      if (!this.sentAfter.testAndSet(p)) this.sentTwice++
      if (this.lostPending?.get(p)) {
        this.lostPending.clear(p)
        this.recovery.pagesResent++
      }
      const b = host.sendPage(p, true)
      if (b > 0) extraNs += this.opts.costs.extraNs(p, nonzero.get(p), b * this.perByteNs)
      bytes += b
      pages++
    }
    this.pagesAfter += pages
    this.bytesAfter += bytes
    const end = start + bytes * this.perByteNs + extraNs
    const arrival = end + this.oneWayNs
    this.inflight.push(a, e, arrival)
    if (arrival > this.lastArrivalNs) this.lastArrivalNs = arrival
    return {end, arrival}
  }

  /** The background stream: every page whose take time (wire - socket backlog) is <= until. */
  protected advanceSource(until: number): void {
    if (this.sourceDone) return
    const mb = this.host.mb
    const tp = this.host.transport
    while (Math.max(this.sourceStartNs, this.wire - this.leadNs) <= until) {
      const p = mb.findNext()
      if (p < 0) {
        this.sourceDone = true
        return
      }
      const a = tp.hostPageStart(p)
      const r = this.sendHostPage(a, tp.hostPageEnd(p), this.wire)
      this.wire = r.end
    }
  }

  /** A request for host page [a, e) reaches the source at s: returns when the page arrives. */
  protected request(a: number, e: number, s: number): number {
    // Requests queued during a pause reach the source with the resume ack, on a fresh socket.
    if (s > this.requestsFirstNs) this.advanceSource(s)
    return this.serve(a, e, s)
  }

  /** The source takes a request for host page [a, e) at s: returns when the page arrives. */
  protected serve(a: number, e: number, s: number): number {
    const mb = this.host.mb
    if (mb.bmap.count(a, e) === 0) {
      // get_queued_page_not_dirty: already sent (in flight or arrived): skipped.
      this.requestsSkipped++
      return this.inflight.arrivalOf(a)
    }
    this.urgentPages++
    let r: {end: number; arrival: number}
    if (this.preempt) {
      // ram_save_host_page_urgent on the preempt channel: ahead of the background backlog.
      const start = Math.max(s, this.preemptFree)
      r = this.sendHostPage(a, e, start)
      this.preemptFree = r.end
      // One link: the background stream loses the time the urgent page took.
      if (this.wire > s) this.wire += r.end - start
    } else {
      // Queued (src_page_requests) and sent by the migration thread after what the socket holds.
      const start = Math.max(this.wire, s)
      r = this.sendHostPage(a, e, start)
      this.wire = r.end
    }
    // The scan goes on from the faulting page (last_seen_block / page hint).
    mb.cursor = a
    return r.arrival
  }

  // --- the destination -------------------------------------------------------------------------

  protected receiveUntil(now: number): void {
    const f = this.inflight
    const n = () => f.start.length
    while (f.size > 0 && f.arrival[f.head]! <= now) {
      const k = f.head
      const a = f.start[k]!
      const e = f.end[k]!
      this.received.setRange(a, e)
      this.requested.clearRange(a, e)
      if (f.arrival[k]! > this.lastReceivedNs) this.lastReceivedNs = f.arrival[k]!
      f.head = (f.head + 1) % n()
      f.size--
    }
  }
}
