/**
 * Postcopy: the switchover (postcopy_start, ram_postcopy_send_discard_bitmap) and the phase after
 * it, in which the guest runs on the destination while the source sends the rest of RAM.
 *
 * Switchover at `now` (the engine has already done the plain, not last-stage, sync; its time,
 * `syncNs`, is the first part of the downtime):
 *  1. the cursor goes back to the start of RAM;
 *  2. postcopy_chunk_hostpages_pass: a host page (hugetlbfs, THP: layout.blocks[].hostPageSize)
 *     that is partly dirty becomes wholly dirty, as the destination places whole host pages;
 *  3. postcopy_send_discard_bm_ram: the runs of still-dirty pages go out as
 *     CMD_POSTCOPY_RAM_DISCARD messages (MAX_DISCARDS_PER_COMMAND ranges each);
 *  4. the package (LISTEN, device state, RUN) is sent; the source's downtime ends when it has
 *     been sent (migration_downtime_end), the guest runs on the destination one latency later.
 * After it:
 *  - the background stream sends the dirty host pages in scan order at max-postcopy-bandwidth
 *    (0 = the link), each host page whole (ram_save_host_page);
 *  - a vCPU access to a page the destination has not received faults: the fault thread sends
 *    MIG_RP_MSG_REQ_PAGES for the host page (every fault, duplicates included:
 *    migrate_send_rp_req_pages); the source counts every request (ram_save_queue_pages ->
 *    postcopy_requests), skips pages already sent (get_queued_page_not_dirty: a page is never
 *    sent twice), sends the page next and moves its scan cursor there;
 *  - without preempt the requested page queues behind the socket's backlog of background pages;
 *    with postcopy-preempt it goes on its own channel at once (ram_save_host_page_urgent);
 *  - the page arrives after one-way latency + queueing + transfer; UFFDIO_COPY wakes the vCPU,
 *    which ran that much later from then on (the GuestClock's per-vCPU offset).
 * The destination's receivedmap is a bitmap; pages in flight sit in small typed-array lists.
 * The precopy driver hands its due/act, accesses and events to this phase after the switchover.
 * A network failure (`postcopy-fail-at`, a `mig_net_fail` event) pauses both sides until the
 * user's recovery and the resume handshake (./postcopy-recovery.ts): pages in flight are lost and
 * sent again, faulting vCPUs wait through the pause.
 */
import type {EventBatch} from '../../trace/events.js'
import {K} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap} from '../../model/bitmap.js'
import type {ReplaySettings} from '../settings.js'
import type {HostModel} from '../host.js'
import {linkRate, type PageCosts} from '../sender/index.js'
import type {GuestClock} from '../throttle-clock.js'
import {FaultLatency} from '../postcopy-latency.js'
import type {PostcopyResult} from '../result.js'
import {Taken} from '../driver.js'
import {InFlight} from './postcopy-inflight.js'
import {PostcopyRecovery, RECOVERY_CAUSE, resumeHandshake} from './postcopy-recovery.js'

/** MAX_DISCARDS_PER_COMMAND (migration/savevm.c). */
export const MAX_DISCARDS_PER_COMMAND = 12
/** A CMD_POSTCOPY_RAM_DISCARD: be16 cmd + be16 len + version byte + idstr length byte + idstr. */
const DISCARD_CMD_BYTES = 4 + 1 + 1
/** Each discard range: be64 start + be64 length. */
const DISCARD_RANGE_BYTES = 16

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

export class PostcopyPhase {
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
  /** The switchover sync (ns), then the package's parts on the wire: discard messages, VFIO stop-copy, device state. */
  readonly syncNs: number
  readonly discardNs: number
  readonly extraNs: number
  readonly deviceNs: number
  /** receivedmap on the destination. */
  private readonly received: Bitmap
  /** Host pages with a request in flight (the destination's page_requested tree). */
  private readonly requested: Bitmap
  private readonly sentAfter: Bitmap
  private readonly inflight = new InFlight()
  private readonly rate: number
  private readonly perByteNs: number
  private readonly leadNs: number
  private readonly oneWayNs: number
  private readonly preempt: boolean
  /** The main channel is busy until this time (last byte scheduled). */
  private wire: number
  private preemptFree: number
  private sourceDone = false
  /** The source may send from here: the package's end, or the last resume after a failure. */
  private sourceStartNs: number
  /** Requests reaching the source by this time (the ones re-sent at a resume) go before the background. */
  private requestsFirstNs = -Infinity
  /** postcopy-fail-at: when the network fails (Infinity: no such setting, or done). */
  private failAtNs = Infinity
  /** The last page received (what the run's end is once nothing more is in flight). */
  private lastReceivedNs: number
  /** Pages lost in flight at a failure and not sent again yet. */
  private lostPending: Bitmap | undefined
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
  private readonly pageSize: number
  private readonly layout: TraceLayout

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
    this.hugePagesRedirtied = this.chunkHostPages()
    const {ranges} = this.discardRuns()
    this.discardRanges = ranges
    const cmds = Math.ceil(ranges / MAX_DISCARDS_PER_COMMAND)
    const idBytes = layout.blocks.reduce((s, b) => s + b.name.length, 0)
    this.discardBytes = ranges * DISCARD_RANGE_BYTES + cmds * DISCARD_CMD_BYTES + (cmds > 0 ? idBytes : 0)
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
    this.discardNs = (this.discardBytes * 1e9) / link
    this.extraNs = ((opts.extraPackageBytes ?? 0) * 1e9) / link
    this.deviceNs = (this.deviceStateBytes * 1e9) / link
    this.packageEndNs = now + this.syncNs + this.discardNs + this.extraNs + this.deviceNs
    this.resumeNs = this.packageEndNs + this.oneWayNs
    this.wire = this.packageEndNs
    this.preemptFree = this.packageEndNs
    this.sourceStartNs = this.packageEndNs
    this.lastArrivalNs = this.resumeNs
    this.lastReceivedNs = this.resumeNs
    const failAt = settings['postcopy-fail-at']
    if (failAt !== undefined) this.failAtNs = now + failAt * 1e6
    this.recovery = new PostcopyRecovery(opts.vcpus)
    // receivedmap: everything precopy delivered and nobody re-dirtied.
    this.received = new Bitmap(layout.totalPages)
    for (const b of layout.blocks) this.received.setRange(b.firstPage, b.firstPage + b.pages)
    const rw = this.received.words
    const bw = mb.bmap.words
    for (let w = 0; w < rw.length; w++) rw[w] = rw[w]! & ~bw[w]!
    this.requested = new Bitmap(layout.totalPages)
    this.sentAfter = new Bitmap(layout.totalPages)
    this.latency = new FaultLatency(opts.vcpus)
    // The guest is paused from the stop until it runs on the destination; not throttled there.
    if (clock.throttlePct > 0) clock.setThrottle(0, now)
    clock.pause(now, this.resumeNs)
  }

  /**
   * postcopy_chunk_hostpages_pass: in blocks whose host page is larger than the target page, a
   * host page with any dirty page becomes wholly dirty. Returns the host pages changed.
   */
  private chunkHostPages(): number {
    const mb = this.host.mb
    const words = mb.bmap.words
    let changed = 0
    for (const b of this.layout.blocks) {
      const h = b.hostPageSize / this.pageSize
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

  /** postcopy_send_discard_bm_ram: runs of dirty pages, per block. */
  private discardRuns(): {ranges: number} {
    const bmap = this.host.mb.bmap
    let ranges = 0
    for (const b of this.layout.blocks) {
      const end = b.firstPage + b.pages
      let p = bmap.nextSet(b.firstPage, end)
      while (p >= 0) {
        ranges++
        let q = p + 1
        while (q < end && bmap.get(q)) q++
        p = q < end ? bmap.nextSet(q, end) : -1
      }
    }
    return {ranges}
  }

  // --- the source ------------------------------------------------------------------------------

  /** Send host page [a, e) on the wire starting at `start`; returns the arrival time. */
  private sendHostPage(a: number, e: number, start: number): {end: number; arrival: number} {
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
  private advanceSource(until: number): void {
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
  private request(a: number, e: number, s: number): number {
    // Requests queued during a pause reach the source with the resume ack, on a fresh socket.
    if (s > this.requestsFirstNs) this.advanceSource(s)
    return this.serve(a, e, s)
  }

  /** The source takes a request for host page [a, e) at s: returns when the page arrives. */
  private serve(a: number, e: number, s: number): number {
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

  private receiveUntil(now: number): void {
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

  // --- a network failure and the recovery (./postcopy-recovery.ts) ------------------------------

  /**
   * The network fails at `now`; the user recovers `recoverAfterNs` later. Returns false when the
   * failure is ignored (postcopy is over, or the link is already down).
   */
  netFail(now: number, recoverAfterNs: number): boolean {
    const rec = this.recovery
    if (this.done || !rec.accepts(now)) {
      rec.failuresIgnored++
      this.notes.push(`a network failure at ${((now - this.opts.startNs) / 1e6).toFixed(3)} ms was ignored: ${this.done ? 'postcopy was over' : 'the migration was already paused'}`)
      return false
    }
    this.advanceSource(now)
    this.receiveUntil(now)
    const {host, layout, settings} = this.opts
    const mb = host.mb
    const rw = this.received.words
    const bw = mb.bmap.words
    // postcopy_pause / postcopy_pause_incoming: what is in flight never arrives.
    this.inflight.clear()
    this.lastArrivalNs = this.lastReceivedNs
    // ram_dirty_bitmap_reload: bmap = ~receivedmap. The pages neither received nor dirty are the
    // ones sent and lost; they become dirty again with their own cause (the ledger calls their
    // second send redundant) and may be sent once more.
    const cause = host.causes.code(RECOVERY_CAUSE)
    this.lostPending ??= new Bitmap(layout.totalPages)
    // Unplugged virtio-mem pages leave bmap right after (below): they are not sent again.
    const dw = settings['virtio-mem-discard-aware'] ? host.discard?.discardedWords : undefined
    let lost = 0
    for (const b of layout.blocks) {
      for (let p = b.firstPage; p < b.firstPage + b.pages; p++) {
        const w = p >>> 5
        const m = 1 << (p & 31)
        if ((rw[w]! & m) !== 0 || (bw[w]! & m) !== 0 || (dw !== undefined && (dw[w]! & m) !== 0)) continue
        mb.markPage(p, cause)
        this.sentAfter.clear(p)
        this.lostPending.set(p)
        lost++
      }
    }
    mb.takeNewPages()
    // ...then ramblock_dirty_bitmap_clear_discarded_pages: unplugged virtio-mem blocks leave bmap;
    // the destination answers a fault there with a zero page of its own (postcopy_request_page).
    if (dw !== undefined) {
      host.discard!.clearDiscardedAgain()
      for (let w = 0; w < rw.length; w++) rw[w] = (rw[w]! | dw[w]!) >>> 0
    }
    // ram_state_resume_prepare -> ram_state_reset: the scan starts again from the first block.
    mb.cursor = 0
    const hs = resumeHandshake(layout, 2 * this.oneWayNs, linkRate(settings), this.preempt)
    const recoverNs = now + recoverAfterNs
    const resumeNs = recoverNs + hs.totalNs
    rec.begin(now, recoverNs, resumeNs, hs.bitmapBytes)
    rec.lost(lost)
    rec.countWaiting((p) => this.received.get(p))
    // The source sends again once the resume ack is in; nothing before.
    this.wire = resumeNs
    this.preemptFree = resumeNs
    this.sourceStartNs = resumeNs
    this.requestsFirstNs = resumeNs
    this.sourceDone = false
    // migrate_send_rp_req_pages_pending: every page still in page_requested, in address order (a
    // GTree), is requested again; the source counts each (postcopy_requests) and serves it first.
    const tp = host.transport
    for (let p = this.requested.nextSet(0); p >= 0; ) {
      const a = tp.hostPageStart(p)
      const e = tp.hostPageEnd(p)
      this.requests++
      rec.requestResent()
      this.serve(a, e, resumeNs)
      p = e < this.requested.size ? this.requested.nextSet(e) : -1
    }
    return true
  }

  /** When the phase next has something to do: a background send or an arrival (0: it can finish). */
  get due(): number {
    if (this.done) return Infinity
    const f = this.inflight
    const arrival = f.size > 0 ? f.arrival[f.head]! : Infinity
    if (this.sourceDone) return Math.min(f.size > 0 ? arrival : 0, this.failAtNs)
    return Math.min(arrival, Math.max(this.sourceStartNs, this.wire - this.leadNs), this.failAtNs)
  }

  /** Everything due up to `until`: background sends, then arrivals; finishes once all arrived. */
  act(until: number): void {
    if (this.done) return
    if (this.failAtNs <= until) {
      const at = this.failAtNs
      this.advanceSource(at)
      this.receiveUntil(at)
      // Everything arrived before the failure: postcopy is over, the failure never happens.
      if (this.sourceDone && this.inflight.size === 0) return this.finish()
      this.failAtNs = Infinity
      this.netFail(at, this.opts.settings['postcopy-recover-after'] * 1e6)
    }
    this.advanceSource(until)
    this.receiveUntil(until)
    if (this.sourceDone && this.inflight.size === 0) this.finish()
  }

  /** The trace is over: the guest is idle, the stream finishes. */
  endOfTrace(): void {
    if (this.done) return
    // A failure set for later still happens: the guest is idle, the stream is not over.
    if (this.failAtNs < Infinity) this.act(this.failAtNs)
    if (this.done) return
    this.advanceSource(Infinity)
    this.receiveUntil(Infinity)
    this.finish()
  }

  private finish(): void {
    this.done = true
    this.endNs = this.lastArrivalNs
    if (this.failAtNs < Infinity) {
      this.notes.push(`postcopy-fail-at: postcopy was over ${((this.endNs - this.switchNs) / 1e6).toFixed(3)} ms after the switchover, before the failure`)
      this.failAtNs = Infinity
    }
  }

  /**
   * A fault on page p at `now`: the request goes out (one latency to the source); returns when
   * the host page arrives.
   */
  private fault(p: number, vcpu: number, now: number): number {
    const tp = this.host.transport
    const a = tp.hostPageStart(p)
    const e = tp.hostPageEnd(p)
    this.requests++
    if (this.requested.get(a)) this.duplicateRequests++
    else this.requested.setRange(a, e)
    // A fault during a pause: the fault thread sends the request after the resume (it reaches the
    // source with the resume ack).
    let arrival = this.request(a, e, Math.max(now + this.oneWayNs, this.recovery.resumeNs))
    if (arrival < 0) arrival = now // cannot happen: a page not received is dirty or in flight
    if (vcpu >= 0) this.faults++
    else this.deviceFaults++
    this.latency.add(vcpu, arrival - now)
    this.recovery.onFault(vcpu, a, this.latency.count - 1, now, arrival)
    return arrival
  }

  /** A vCPU access over pages [p0, p1) at `now`: 0 once it can go on, else when its page arrives. */
  access(kind: number, vcpu: number, p0: number, p1: number, now: number): number {
    if (now > this.lastGuestNs) this.lastGuestNs = now
    if (p0 < 0) return 0
    const rw = this.received.words
    for (let p = p0; p < p1; p++) {
      if ((rw[p >>> 5]! & (1 << (p & 31))) === 0) return this.stillBlocked(p, vcpu, now) || this.fault(p, vcpu, now)
    }
    // Every page of the access is on the destination: the access goes on there.
    this.recovery.onRun(vcpu)
    if (kind === K.write) this.destinationWrites++
    return 0
  }

  /**
   * A vCPU retrying the access it blocked on finds the page still missing: the page was lost at a
   * failure and requested again at the resume; the vCPU waits on in the same fault (its latency
   * and blocktime grow). 0 when this is not such a retry.
   */
  private stillBlocked(p: number, vcpu: number, now: number): number {
    const a = this.host.transport.hostPageStart(p)
    const sample = this.recovery.stillBlocked(vcpu, a)
    if (sample < 0) return 0
    const at = this.inflight.arrivalOf(a)
    if (at <= now) return 0
    this.latency.extend(sample, vcpu, at - now)
    this.recovery.stretched(at - now)
    return at
  }

  /** Any other event after the switchover: device DMA on the destination may fault; the rest is dropped. */
  control(b: EventBatch, i: number, now: number): Taken {
    const k = b.kind[i]!
    if (k === K.mig_net_fail) {
      const v = b.value[i]!
      return this.netFail(now, (v >= 0 ? v : this.opts.settings['postcopy-recover-after']) * 1e6) ? Taken.Yes : Taken.Ignored
    }
    if (k === K.dma_write || k === K.vhost_write) {
      // A device on the destination touches a missing page: a non-vCPU fault (no vCPU blocks).
      const gpa = b.gpa[i]!
      const p0 = this.layout.gpaToPage(gpa)
      if (p0 >= 0) {
        const p1 = this.layout.pageSpanEnd(gpa, b.len[i]!, p0)
        for (let p = p0; p < p1; p++) if (!this.received.get(p)) this.fault(p, -1, now)
      }
      return Taken.Yes
    }
    return Taken.Dropped
  }

  /**
   * Pages of RAM the destination lacks or holds stale (0 once the run is over): never received, or
   * received while the source's copy was already newer and never sent again (a write the
   * switchover's bitmap did not carry).
   */
  missingPages(): number {
    let n = 0
    for (const b of this.layout.blocks) n += b.pages - this.received.count(b.firstPage, b.firstPage + b.pages)
    return n + this.host.lostWrites()
  }

  result(startNs: number, offsetsNs: Float64Array): PostcopyResult {
    const ms = (ns: number): number => ns / 1e6
    const lat = this.latency.stats()
    const blocktime = this.latency.blocktimeMs()
    return {
      trigger: this.opts.trigger,
      switchoverMs: ms(this.switchNs - startNs),
      guestResumeMs: ms(this.resumeNs - startNs),
      precopyIterations: this.opts.precopyIterations,
      requests: this.requests,
      duplicateRequests: this.duplicateRequests,
      requestsSkipped: this.requestsSkipped,
      faults: this.faults,
      urgentPages: this.urgentPages,
      hugePagesRedirtied: this.hugePagesRedirtied,
      discardRanges: this.discardRanges,
      discardBytes: this.discardBytes,
      blocktimeMsPerVcpu: blocktime,
      blocktimeMs: blocktime.reduce((a, b) => a + b, 0),
      latencyNs: lat,
      latencyHistogram: this.latency.histogram.slice(),
      bytesBeforeSwitchover: this.bytesBefore,
      bytesAfterSwitchover: this.bytesAfter,
      bytes: this.bytesAfter,
      pagesAfterSwitchover: this.pagesAfter,
      pagesSentTwiceAfterSwitchover: this.sentTwice,
      destinationMissingPages: this.missingPages(),
      postcopyMs: ms(this.endNs - this.switchNs),
      guestDelayMsPerVcpu: Array.from(offsetsNs, (o) => ms(o)),
      recovery: this.recovery.failures + this.recovery.failuresIgnored > 0 ? this.recovery.result(startNs) : null,
    }
  }
}
