/**
 * The migration stream on the source: where pages and device data leave, and what the sender's
 * time goes on. One channel today (the migration thread's QEMUFile); the byte clock, QEMU's 100 ms
 * rate window and the per-page costs live here so that more channels (multifd) or a new cost are
 * changes in this directory only.
 * - The clocks of a run of back-to-back sends from `t0`: the bytes queued at the link rate
 *   (recomputed from the start of the run, so long runs do not drift), the migration thread's CPU
 *   and the multifd channels' CPU (PageCosts). They overlap (the socket drains while the threads
 *   work), so the run's clock is the longest of the three; MAX_WAIT sees it.
 * - The rate window (migration_rate_limit / migration_update_counters): `max-bandwidth` bytes per
 *   100 ms; the stream sends at link speed until the budget is spent, then the thread sleeps to
 *   the window's end (qemu-semantics.md §3.8).
 * - `transferred` is migration_transferred_bytes(): every byte that went on the wire, RAM records
 *   and device data alike (what the auto-converge trigger and query-migrate's `transferred` count).
 * - The destination's load loop (`dest-record-cost`, or `dest-record-intervals` x the capture's
 *   `trace-page-interval`: costs.ts destRecordMs): ram_load_precopy takes the main stream's
 *   records one after the other on the incoming thread, and the source's writes block once
 *   `precopy-socket-buffer` bytes stand unread in the socket. A record reaches the destination when the
 *   source is through it and is loaded once the loop is through the ones before; the source goes
 *   on past a record only when the loop has read everything but its last
 *   `precopy-socket-buffer` bytes.
 *   The loop keeps working while the source sleeps out a window or syncs. Zero records are where
 *   it shows: the source scans a run of them at save_zero_page's speed, 9 bytes each, then the
 *   pages after the run fill the socket and it waits for the destination (docs/lab.md, "The
 *   destination's load loop").
 * - The destination's multifd section sync (QEMU 7.2, multifd_send_sync_main after every RAM
 *   section): a destination channel thread that reads a section's SYNC packet
 *   (multifd_recv_thread, MULTIFD_FLAG_SYNC) posts multifd_recv_state->sem_sync and waits on its
 *   own p->sem_sync until the main thread, through the section's main-stream records, reads its
 *   RAM_SAVE_FLAG_EOS and calls multifd_recv_sync_main (ram_load_precopy), which waits for every
 *   channel's SYNC and then releases them all. So section k is through at
 *   E_k = max(the load loop's end of its records, the SYNC packets' arrival), the loop loads the
 *   next section's records only after E_k, and the packets the source sends meanwhile wait in the
 *   channels' sockets. The source's channels block (multifd_send_thread in its writev;
 *   multifd_send_pages then finds no free channel) once the bytes sent after the SYNC the
 *   destination is parked at exceed `multifd-socket-buffer` per channel; they go on at E_k, when
 *   the parked channels read their backlog (at memory speed: the lab's multifd-2 read 82 MB in
 *   14 ms). From 8.1 (multifd-flush-after-each-section false) the same barrier is at each round's
 *   RAM_SAVE_FLAG_MULTIFD_FLUSH record instead (ram_load_precopy: multifd_recv_sync_main there,
 *   not at EOS). Modelled where the load loop is (dest-record-cost or dest-record-intervals).
 */
import type {HostModel} from '../host.js'
import type {ReplaySettings} from '../settings.js'
import {popcount32} from '../../model/bitmap.js'
import {destRecordMs, PageCosts} from './costs.js'
import {linkRate, WINDOW_NS, windowBudget} from './link.js'

export {linkRate, sustainedRate, windowBudget, WINDOW_NS} from './link.js'
export {PageCosts} from './costs.js'

/** MAX_WAIT in ram_save_iterate. */
export const MAX_WAIT_NS = 50e6

export class Sender {
  readonly costs: PageCosts
  private rate: number
  private perByte: number
  private budget: number
  /**
   * Start of the current run of back-to-back sends, and what was queued since: bytes for the link,
   * CPU ns of the migration thread and of the channel threads, ns in series with all of them.
   */
  private t0 = 0
  private queued = 0
  private migCpu = 0
  private chanCpu = 0
  private serial = 0
  /** The current 100 ms window: its start and the bytes sent in it. */
  windowStart = 0
  windowBytes = 0
  /** migration_transferred_bytes(): everything put on the wire so far. */
  transferred = 0
  /**
   * Bytes of the RAM page records on the main stream so far, as they went on the wire: what QEMU
   * 7.2's ram_transferred_add() files under precopy-bytes / downtime-bytes by the run state
   * (save_zero_page's record, save_normal_page's header and page, save_xbzrle_page's encoded
   * record, nothing for a page skipped as unchanged). Not the multifd channels' packets:
   * multifd_send_pages adds those to ram_counters.transferred directly. Not device data.
   */
  ramRecordBytes = 0
  /** ram_save_iterate's loop: when it began and its ram_find_and_save_block calls. */
  private iterateStart = 0
  private iterateCalls = 0
  /** The last sendPages() ended the loop turn (clean, budget spent or MAX_WAIT): back to the thread's loop. */
  turnOver = false
  /** When the last page of the last sendPages() started (NaN: it sent none). */
  lastPageAt = Number.NaN
  /**
   * The transfer timeline: (wall ns, bytes transferred by then) pairs, flat, one at every rate
   * window boundary and at the phase changes the drivers mark (a few per second of migration).
   */
  readonly timeline: number[] = []
  /** destRecordMs (ns) and precopy-socket-buffer (bytes): the destination's load loop, 0 = it keeps up. */
  private destNs = 0
  private sockBytes = 0
  /** Bytes the main stream has carried (RAM records, device data; not the multifd channels'). */
  private mainBytes = 0
  /** When the destination's load loop is through every record handed to it so far. */
  private dstFree = 0
  /**
   * The records the source may still have to wait for, oldest first: a ring of (main-stream bytes
   * after the record, when the loop is through it) pairs, interleaved, `dqLen` of them from pair
   * `dqHead` on. Its capacity (pairs) is a power of two, doubled when full: 4 MiB of 9-byte zero
   * records is ~466 000 pairs.
   */
  private dq = new Float64Array(2 * 1024)
  private dqHead = 0
  private dqLen = 0
  /** multifd-socket-buffer x channels (bytes); 0 = the destination's section sync is not modelled. */
  private mfSockBytes = 0
  /** Bytes handed to the multifd channels so far (packets and SYNC packets). */
  private mfBytes = 0
  /**
   * The sections whose SYNC the destination's channels may still be parked at, oldest first:
   * (multifd bytes up to and with the section's SYNC packets, E_k: when multifd_recv_sync_main
   * releases them) pairs, flat. A short list: one entry per RAM section still unreleased.
   */
  private parked: number[] = []

  constructor(
    private readonly host: HostModel,
    settings: ReplaySettings,
  ) {
    this.costs = new PageCosts(host, settings, true)
    this.rate = linkRate(settings)
    this.perByte = 1e9 / this.rate
    this.budget = windowBudget(settings)
    this.destNs = destRecordMs(settings) * 1e6
    this.sockBytes = settings['precopy-socket-buffer']
    this.mfSockBytes = this.sectionSyncBytes(settings)
    // ram_save_setup's multifd_send_sync_main (its time is in setup-time).
    this.transferred += this.costs.setup()
    if (this.costs.xbzrle) host.byteWrites = this.costs.xbzrle
  }

  /** Live parameters (a trace's mig_set): a new rate takes effect from the next page. */
  updateSettings(s: ReplaySettings, now: number): void {
    this.rate = linkRate(s)
    this.perByte = 1e9 / this.rate
    this.budget = windowBudget(s)
    this.destNs = destRecordMs(s) * 1e6
    this.sockBytes = s['precopy-socket-buffer']
    this.mfSockBytes = this.sectionSyncBytes(s)
    this.costs.updateSettings(s)
    this.startRun(now)
  }

  /**
   * The channels' socket bytes where the destination's multifd sync holds the source
   * (multifd-socket-buffer a channel), or 0 where it is not modelled: no multifd, or no load loop
   * (destRecordMs 0: neither dest-record-cost nor dest-record-intervals x trace-page-interval).
   * The sync is at each section's end (7.2, multifd-flush-after-each-section) or at each round's
   * RAM_SAVE_FLAG_MULTIFD_FLUSH record (8.1+), and at the completion's.
   */
  private sectionSyncBytes(s: ReplaySettings): number {
    const mf = this.costs.multifd
    if (mf === undefined || destRecordMs(s) <= 0) return 0
    return s['multifd-socket-buffer'] * mf.channels
  }

  /** Link rate (bytes/s). */
  get linkRate(): number {
    return this.rate
  }

  /** A run of back-to-back sends starts at `t`. */
  startRun(t: number): void {
    this.t0 = t
    this.queued = 0
    this.migCpu = 0
    this.chanCpu = 0
    this.serial = 0
  }

  /** When this run's work is done: the last byte queued has left and every thread is through its pages. */
  get clock(): number {
    const link = this.queued * this.perByte
    const cpu = this.migCpu > this.chanCpu ? this.migCpu : this.chanCpu
    return this.t0 + (link > cpu ? link : cpu) + this.serial
  }

  /** Device data handed to the stream (vfio_save_iterate), at the start of a run. */
  sendDeviceData(bytes: number): void {
    this.queued += bytes
    this.windowBytes += bytes
    this.transferred += bytes
    this.mainBytes += bytes
  }

  /**
   * The record just queued (its `wire` bytes on the main stream) goes to the destination's load
   * loop: it arrives when the source is through it (the run's clock) and is loaded after the loop's
   * earlier records, dest-record-cost each (plus `extraNs`: dest-first-touch-cost on a cold page). The source's write of it returns only once the loop
   * has read all but the last precopy-socket-buffer bytes: where the loop is behind, the source waits (in
   * series with the run, as the thread blocked in its writev).
   */
  private toDestination(wire: number, extraNs: number): void {
    this.mainBytes += wire
    const arrive = this.clock
    const done = (this.dstFree > arrive ? this.dstFree : arrive) + this.destNs + extraNs
    this.dstFree = done
    if (this.dqLen * 2 === this.dq.length) this.growQueue()
    const dq = this.dq
    const mask = (dq.length >>> 1) - 1
    const at = ((this.dqHead + this.dqLen) & mask) * 2
    dq[at] = this.mainBytes
    dq[at + 1] = done
    let n = this.dqLen + 1
    // The newest record that must have been read for this one to fit in the socket.
    const limit = this.mainBytes - this.sockBytes
    let h = this.dqHead
    let need = Number.NaN
    while (n > 0 && dq[h * 2]! <= limit) {
      need = dq[h * 2 + 1]!
      h = (h + 1) & mask
      n--
    }
    this.dqHead = h
    this.dqLen = n
    if (need > arrive) this.serial += need - arrive
  }

  /** The destination queue is full: twice the capacity, its pairs in order from index 0. */
  private growQueue(): void {
    const old = this.dq
    const cap = old.length >>> 1
    const next = new Float64Array(old.length * 2)
    const first = (cap - this.dqHead) * 2
    next.set(old.subarray(this.dqHead * 2), 0)
    next.set(old.subarray(0, old.length - first), first)
    this.dq = next
    this.dqHead = 0
  }


  /**
   * The last PageCosts.page() into the current run: its link bytes and each thread's time queued,
   * and its main-stream record to the destination's load loop (`toDestination`) or, where the
   * loop is not modelled (or the page put no record there but a multifd FLUSH), its main-channel
   * bytes to the main stream's byte count. The rate window and `transferred` are
   * the callers'.
   */
  private accumulate(toDestination: boolean): void {
    const costs = this.costs
    this.queued += costs.overlapWire
    this.migCpu += costs.migNs
    this.chanCpu += costs.chanNs
    this.serial += costs.serialNs
    // 8.1+: the page came after a round's flush; the destination's loop stops at its
    // RAM_SAVE_FLAG_MULTIFD_FLUSH record until the channels' SYNC packets are in, before the
    // page's own record. (Its time is taken after the page's: one page's link time late.)
    const flush = this.mfSockBytes > 0 ? costs.flushSyncBytes : 0
    if (flush > 0) this.sectionSynced(flush)
    // Only the main channel's bytes (mainWire): on an 8.1+ round wrap `wire` also holds the
    // multifd channels' packets of multifd_send_sync_main, which do not queue before the loop.
    if (costs.mainRecord && toDestination) this.toDestination(costs.mainWire, costs.destExtraNs)
    else this.mainBytes += costs.mainWire
    this.ramRecordBytes += costs.mainWire
    const mf = costs.wire - costs.mainWire - flush
    if (mf > 0 && this.mfSockBytes > 0) this.toChannels(mf)
  }

  /**
   * `bytes` handed to the multifd channels (a packet, when it filled): they reach the destination's
   * channels at the run's clock. Where those are parked at a section's SYNC (multifd_recv_thread
   * waiting on p->sem_sync), the bytes after it stand in the sockets; the source waits (in series
   * with the run) until the main thread's multifd_recv_sync_main releases enough of them for the
   * rest to fit in multifd-socket-buffer a channel.
   */
  private toChannels(bytes: number): void {
    this.mfBytes += bytes
    const parked = this.parked
    let t = this.clock
    let i = 0
    // Sections released by `t` are read to their SYNC; the first one not released holds the rest.
    while (i < parked.length && parked[i + 1]! <= t) i += 2
    while (i < parked.length && this.mfBytes - parked[i]! > this.mfSockBytes) {
      const release = parked[i + 1]!
      this.serial += release - t
      t = release
      i += 2
    }
    if (i > 0) parked.splice(0, i)
  }

  /**
   * The source's multifd_send_sync_main of a RAM section (7.2) or round (8.1+) just sent its SYNC
   * packets (`bytes` of them and of the open packet handed over): the destination releases the
   * channels at E_k = max(when the load loop is through the earlier records and reads the
   * section's EOS or the round's RAM_SAVE_FLAG_MULTIFD_FLUSH, when the SYNC packets arrive), and
   * its loop takes the next records only after multifd_recv_sync_main returns.
   */
  private sectionSynced(bytes: number): void {
    if (this.mfSockBytes === 0) return
    this.mfBytes += bytes
    const arrive = this.clock
    const release = this.dstFree > arrive ? this.dstFree : arrive
    this.dstFree = release
    this.parked.push(this.mfBytes, release)
  }

  /** A page whose cost is more than its bytes (PageCosts.page): its wire bytes and each thread's time queued. */
  private queueCosted(p: number, bytes: number): number {
    const costs = this.costs
    costs.page(p, this.host.memory.nonzero.get(p), bytes, this.perByte, this.host.syncCount, false)
    const wire = costs.wire
    this.windowBytes += wire
    this.transferred += wire
    this.accumulate(this.destNs > 0 || costs.destExtraNs > 0)
    return wire
  }

  /** ram_save_iterate's end at `now`: multifd_send_sync_main when it runs per section. Returns the thread's next time. */
  private endSection(now: number): number {
    const b = this.costs.sectionEnd(false)
    if (b === 0) return now
    this.windowBytes += b
    this.transferred += b
    this.queued += b
    this.sectionSynced(b)
    // The migration thread waits for the channels' SYNC packets: the run's clock.
    return Math.max(now, this.clock)
  }

  /** qemu_savevm_state_iterate starts at `t`: device data first (vfio_save_iterate), then RAM. */
  beginIterate(t: number, deviceBytes: number): void {
    this.iterateStart = t
    this.iterateCalls = 0
    this.startRun(t)
    this.sendDeviceData(deviceBytes)
  }

  /**
   * ram_save_iterate's loop from `now`: pages back to back until RAM is clean, the window's budget
   * is spent, MAX_WAIT has passed (checked every 64 calls, as ram_save_iterate does) or the next
   * send would fall after `until` (a guest event or timer comes first: the loop goes on after it).
   * Returns the time of the thread's next action; `turnOver` says whether the loop turn ended.
   */
  sendPages(now: number, until: number): number {
    if (!this.costs.any) return this.sendPagesByWord(now, until)
    const host = this.host
    const costs = this.costs
    const mb = host.mb
    this.lastPageAt = Number.NaN
    for (;;) {
      const p = mb.findNext()
      if (p < 0) {
        // ram_save_iterate: pages == 0, RAM clean.
        this.turnOver = true
        return this.endSection(now)
      }
      const bytes = host.sendPage(p, false)
      if (bytes > 0) this.queueCosted(p, bytes)
      this.lastPageAt = now
      const next = this.clock
      if (this.windowBytes > this.budget || ((++this.iterateCalls & 63) === 0 && next - this.iterateStart > MAX_WAIT_NS)) {
        this.turnOver = true
        return this.endSection(next)
      }
      if (next > until) {
        this.turnOver = false
        return next
      }
      now = next
    }
  }

  /**
   * sendPages when a page costs its bytes alone (no multifd, XBZRLE or CPU costs): the scan takes a
   * bitmap word at a time and the ledger records the pages of a word together. The clock, the
   * budget and MAX_WAIT are still checked after every page, in page order, with the same
   * arithmetic (whole byte counts, so the sums are exact in any grouping): the figures are those
   * of the page-by-page loop.
   */
  private sendPagesByWord(now: number, until: number): number {
    const host = this.host
    const mb = host.mb
    const ledger = host.ledger
    const words = mb.bmap.words
    const nzw = host.memory.nonzero.words
    const {nonzero: nzB, zero: zB} = host.pageBytes
    const lazy = host.settings['lazy-clear']
    const t0 = this.t0
    const perByte = this.perByte
    const budget = this.budget
    const iterateStart = this.iterateStart
    let queued = this.queued
    let windowBytes = this.windowBytes
    let calls = this.iterateCalls
    let sent = 0
    let lastPageAt = Number.NaN
    let next = now
    // 0: go on; 1: the loop turn is over (budget or MAX_WAIT); 2: the next send falls after `until`.
    let stop = 0
    while (stop === 0) {
      const p0 = mb.findNext()
      if (p0 < 0) {
        // ram_save_iterate: pages == 0, RAM clean.
        stop = 1
        next = now
        break
      }
      const w = p0 >>> 5
      const base = w * 32
      const nz = nzw[w]!
      let v = (words[w]! & (0xffffffff << (p0 & 31))) >>> 0
      // The whole rest of the word at once when no check can stop inside it: the budget, the
      // clock and MAX_WAIT only grow page by page, so if none trips after its last page none
      // trips before (and the lazy CLEAR is done when its first and last page share the chunk
      // seen last).
      const last = base + 31 - Math.clz32(v)
      if (!lazy || (mb.inSeenChunk(p0) && mb.inSeenChunk(last))) {
        const n = popcount32(v)
        const nn = popcount32((nz & v) >>> 0)
        const bytes = nn * nzB + (n - nn) * zB
        const end = t0 + (queued + bytes) * perByte
        const c = calls + n
        // (c & ~63) > calls: a multiple of 64 falls in (calls, c], so MAX_WAIT is looked at.
        if (windowBytes + bytes <= budget && end <= until && ((c & ~63) <= calls || end - iterateStart <= MAX_WAIT_NS)) {
          const lastBytes = (nz & (1 << (last & 31))) !== 0 ? nzB : zB
          lastPageAt = n === 1 ? now : t0 + (queued + bytes - lastBytes) * perByte
          windowBytes += bytes
          queued += bytes
          sent += bytes
          calls = c
          next = now = end
          mb.takeBits(w, v)
          ledger.recordWord(w, v, nzB, zB)
          continue
        }
      }
      let taken = 0
      while (v !== 0) {
        const bit = v & -v
        v = (v ^ bit) >>> 0
        if (lazy) {
          const p = base + 31 - Math.clz32(bit)
          if (!mb.inSeenChunk(p)) host.lazyClearAt(p)
        }
        taken |= bit
        const b = (nz & bit) !== 0 ? nzB : zB
        windowBytes += b
        queued += b
        sent += b
        lastPageAt = now
        next = t0 + queued * perByte
        if (windowBytes > budget || ((++calls & 63) === 0 && next - iterateStart > MAX_WAIT_NS)) {
          stop = 1
          break
        }
        if (next > until) {
          stop = 2
          break
        }
        now = next
      }
      taken >>>= 0
      mb.takeBits(w, taken)
      ledger.recordWord(w, taken, nzB, zB)
    }
    this.queued = queued
    this.windowBytes = windowBytes
    this.transferred += sent
    this.ramRecordBytes += sent
    this.iterateCalls = calls
    this.lastPageAt = lastPageAt
    this.turnOver = stop === 1
    return next
  }

  /**
   * migration_update_counters at `now`: once the 100 ms window is over, its bandwidth (bytes/s)
   * and a new window; NaN while the window runs.
   */
  updateCounters(now: number): number {
    // Compared with windowEnd, the time a thread over budget sleeps to, not `now - windowStart`:
    // with fractional ns times the subtraction can fall short of WINDOW_NS by a rounding error,
    // and the thread would wake at windowEnd forever.
    if (now < this.windowEnd) return Number.NaN
    const spent = now - this.windowStart
    const bw = (this.windowBytes * 1e9) / spent
    this.resetWindow(now)
    return bw
  }

  /** migration_rate_exceeded: the window's budget is spent. */
  get rateExceeded(): boolean {
    return this.windowBytes > this.budget
  }

  /** The window's end: where a thread over its budget sleeps to. */
  get windowEnd(): number {
    return this.windowStart + WINDOW_NS
  }

  /** A point of the transfer timeline at `t`: everything transferred so far. */
  mark(t: number): void {
    const tl = this.timeline
    // Two points at the same instant: the later total wins (a window reset right after a mark).
    if (tl.length > 0 && tl[tl.length - 2] === t) tl[tl.length - 1] = this.transferred
    else tl.push(t, this.transferred)
  }

  /** A new window starts at `t` (migration_rate_reset). */
  resetWindow(t: number): void {
    this.mark(t)
    this.windowStart = t
    this.windowBytes = 0
  }

  /**
   * ram_save_complete after the VM stopped, from `startNs` (ns since the trace's start, as the
   * destination loop's times are: with dest-record-cost the pass is a run of sends from there, and
   * a wrong start would count the gap to it as a stall): every dirty page at the link rate, no
   * rate limit, no lazy clear. Returns the pages, their bytes and the time they took (ns).
   */
  sendRemaining(startNs: number): {pages: number; bytes: number; ns: number} {
    const host = this.host
    const mb = host.mb
    const costs = this.costs
    let bytes = 0
    let pages = 0
    if (!costs.any) {
      // Word at a time: no clock to check between pages, no lazy CLEAR at the last stage.
      const {nonzero: nzB, zero: zB} = host.pageBytes
      const out = {bytes: 0}
      for (let p = mb.findNext(); p >= 0; p = mb.findNext()) pages += popcount32(host.sendWordLastStage(p >>> 5, p & 31, nzB, zB, out))
      bytes = out.bytes
      this.transferred += bytes
      this.ramRecordBytes += bytes
      return {pages, bytes, ns: (bytes * 1e9) / this.rate}
    }
    // The VM is stopped: the threads have the host's cores to themselves (host-cpus).
    costs.setVmStopped(true)
    // Behind the destination's load loop (dest-record-cost) the pass is a run of sends from
    // `startNs` whose records go to the loop as the live ones do, so a backlog the loop still has
    // when the VM stops (a run of zero records sent just before the switchover), or one the pass's
    // own records make, holds the source's writes: qemu_savevm_state_complete_precopy ends with
    // qemu_fflush of the main stream, and migration_completion marks the migration completed (the
    // downtime's end) only after it, while the destination may still hold up to
    // precopy-socket-buffer bytes unread.
    const dest = this.destNs > 0 || costs.destTouch
    this.startRun(startNs)
    for (let p = mb.findNext(); p >= 0; p = mb.findNext()) {
      const b = host.sendPage(p, true)
      pages++
      if (b === 0) continue
      costs.page(p, host.memory.nonzero.get(p), b, this.perByte, host.syncCount, true)
      bytes += costs.wire
      this.accumulate(dest)
    }
    costs.setVmStopped(false)
    // ram_save_complete: multifd_send_sync_main, the channels' last packets; the pass takes the
    // longest of the link and the threads, as a live run of sends does.
    const flush = costs.sectionEnd(true)
    bytes += flush
    this.queued += flush
    this.sectionSynced(flush)
    this.transferred += bytes
    const ns = dest ? this.clock - startNs : Math.max(this.queued * this.perByte, this.migCpu, this.chanCpu) + this.serial
    return {pages, bytes, ns}
  }

  /** Bytes sent at the link rate outside a run (device state during the downtime): their time (ns). */
  sendUnlimited(bytes: number): number {
    this.transferred += bytes
    return (bytes * 1e9) / this.rate
  }
}
