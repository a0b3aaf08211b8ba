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
import {Bitmap} from '../../model/bitmap.js'
import {linkRate} from '../sender/index.js'
import type {GuestClock} from '../throttle-clock.js'
import type {PostcopyResult} from '../result.js'
import {Taken} from '../driver.js'
import {RECOVERY_CAUSE, reloadDirtyBitmap, resumeHandshake} from './postcopy-recovery.js'
import {postcopyResult} from './postcopy-result.js'

import {PostcopyStream} from './postcopy-stream.js'
export {MAX_DISCARDS_PER_COMMAND} from './postcopy-package.js'
export type {PostcopyOptions} from './postcopy-stream.js'

export class PostcopyPhase extends PostcopyStream {
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
    // postcopy_pause / postcopy_pause_incoming: what is in flight never arrives.
    this.inflight.clear()
    this.lastArrivalNs = this.lastReceivedNs
    // ram_dirty_bitmap_reload: bmap = ~receivedmap (./postcopy-recovery.ts).
    this.lostPending ??= new Bitmap(layout.totalPages)
    // Unplugged virtio-mem pages leave bmap right after (below): they are not sent again.
    const dw = settings['virtio-mem-discard-aware'] ? host.discard?.discardedWords : undefined
    const lost = reloadDirtyBitmap(mb, layout, this.received, dw, host.causes.code(RECOVERY_CAUSE), (p) => {
      this.sentAfter.clear(p)
      this.lostPending!.set(p)
    })
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

  protected finish(): void {
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
  protected fault(p: number, vcpu: number, now: number): number {
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
  protected stillBlocked(p: number, vcpu: number, now: number): number {
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
    return postcopyResult(this, startNs, offsetsNs)
  }
}
