/**
 * One replay session: the event loop every driver runs in, written once.
 * - The guest's clock: trace time is the guest's own; the session maps it to wall time through the
 *   GuestClock (auto-converge dilation, pauses) and, while some vCPU runs late (postcopy and
 *   snapshot faults, dirty-limit sleeps), feeds accesses through the clock's per-vCPU queues.
 * - Before each event, every driver action and host timer due at or before its wall time runs
 *   first, in time order (a send at the same instant as a write reads the old content).
 * - Guest writes: the address-and-length to page span (TraceLayout.pageSpanEnd), the guard of
 *   discarded (unplugged virtio-mem) pages, guest memory and KVM's dirty log; a tight loop with no
 *   allocation on the fast path.
 * - Other events: the driver's control kinds first, then the model part that consumes the kind;
 *   anything nobody takes is counted by kind and named in the report.
 * - The counters (replayed, writes, unmapped, not replayed, ignored).
 * After the migration, a driver that still wants the guest's events (virtio-mem requests keep
 * being answered) gets them; the result is built once, at the very end.
 */
import type {EventBatch} from '../trace/events.js'
import {K} from '../trace/events.js'
import type {TraceLayout} from '../trace/layout.js'
import {APPLY, Taken, type ReplayDriver} from './driver.js'
import type {HostModel} from './host.js'
import {GuestClock, type GuestSink} from './throttle-clock.js'

export class ReplaySession implements GuestSink {
  readonly clock: GuestClock
  driver!: ReplayDriver
  private readonly layout: TraceLayout
  // counters
  lastEventNs = 0
  replayed = 0
  writes = 0
  unmapped = 0
  notReplayed = 0
  readonly ignored = new Map<number, number>()
  /** Dirty-ring records replayed as guest writes (a trace with no write events). */
  ringWrites = 0
  /** Set once the migration is over and the driver still wants the guest's events. */
  private after = false
  /** When the next driver action or host timer is due, as catchUp's advance left it. */
  private nextAt = 0
  /** Lost writes when the migration ended (later guest events must not change them). */
  lostWritesAtEnd?: number

  constructor(
    readonly host: HostModel,
    vcpus: number,
  ) {
    this.layout = host.layout
    this.clock = new GuestClock(vcpus, host.settings['workload-pacing'])
  }

  /** Apply one batch; true once the rest of the trace is not needed. */
  feed(b: EventBatch): boolean {
    if (this.after) {
      this.feedAfter(b, 0)
      return false
    }
    const stop = this.driver.slow ? this.feedSlow(b, 0) : this.feedFast(b)
    if (stop < 0) return false
    this.notReplayed += b.length - stop
    if (!this.driver.wantsEventsAfter) return true
    this.lostWritesAtEnd = this.host.lostWrites()
    this.after = true
    this.feedAfter(b, stop)
    return false
  }

  /** The trace is over. */
  endOfTrace(): void {
    if (this.after || this.driver.done) return
    // Accesses still waiting behind a delayed vCPU run now (postcopy faults, dirty-limit sleeps).
    if (this.clock.queued > 0 && this.clock.drain(Infinity, this)) return
    this.driver.endOfTrace(this.lastEventNs)
  }

  private nextDue(): number {
    const d = this.driver
    return d.hostTimers ? Math.min(d.due, this.host.nextTimer()) : d.due
  }

  /**
   * Run every driver action and host timer due at or before `until`, in time order. Returns when
   * the next one is due (Infinity once the driver is done).
   */
  advance(until: number): number {
    const d = this.driver
    const host = this.host
    while (!d.done) {
      const timer = d.hostTimers ? host.nextTimer() : Infinity
      const due = d.due
      if (timer < due) {
        if (timer > until) return timer
        host.onTimer(timer)
      } else {
        if (due > until) return due
        d.act(timer < until ? timer : until)
      }
    }
    return Infinity
  }

  /**
   * The fast path: no vCPU runs late. Returns -1 when the batch is consumed, else the index of the
   * first event not replayed because the driver is done.
   */
  private feedFast(b: EventBatch): number {
    const n = b.length
    const t = b.t
    const kind = b.kind
    const gpa = b.gpa
    const len = b.len
    const vcpu = b.vcpu
    const layout = this.layout
    const clock = this.clock
    const d = this.driver
    const memory = this.host.memory
    const kvm = this.host.kvm
    const discard = this.host.discard
    // Unplugged virtio-mem pages: a guest write there is counted and may be refused.
    const guard = discard?.discardedWords
    // XBZRLE's cache wants the bytes each write changed (sender/xbzrle.ts); undefined otherwise.
    const bytes = this.host.byteWrites
    const KW = K.write
    const ps = layout.pageSize
    // The page size is a power of two (header check), so x * (1 / ps) is exactly x / ps: a
    // multiplication instead of a division per write.
    const inv = 1 / ps
    // The guest clock's line (GuestClock.linear, w0, g0), reloaded whenever driver actions or a
    // control event ran: only they move it.
    let linear = clock.linear
    let w0 = clock.w0
    let g0 = clock.g0
    // TraceLayout.gpaToPage inlined as its granule table (TraceLayout.granulePage): the page of
    // the granule's first byte plus the pages into it; no comparison with memslot bounds, so no
    // mispredicted branch when random writes hop between a large guest's two RAM slots. Granules
    // are page-aligned, so the offset in the page comes from the offset in the granule, without a
    // floating-point modulo (`%` on doubles is a C call, fmod, in V8's optimised code). A granule
    // holding a memslot edge (GRANULE_MIXED, where the bounds' alignment would need more than
    // GRANULE_TABLE_MAX granules) falls back to gpaToPage.
    const granule = layout.granule
    const ginv = 1 / granule
    const gpage = layout.granulePage
    const gn = gpage.length
    // dma_write and vhost_write rows the driver leaves to the model (control's Taken.No: the
    // QEMU-side sources' handleEvent) are applied here too, without leaving the loop. Reloaded with
    // the driver's state.
    const KD = K.dma_write
    const KV = K.vhost_write
    const dma = this.host.dma
    const vhost = this.host.vhost
    let devWrites = d.deviceWritesToModel === true
    // The common configuration, specialised: no discarded pages to guard and a KVM bitmap log that
    // takes a write as one bit (KvmListener.writeWords): a write is then guest memory's two words
    // (GuestMemory.write) and the dirty log's (KvmBitmapLog.write), set here on local arrays with
    // their counters in locals. Only driver actions and control events start or stop the log.
    const modW = memory.modified.words
    const nzW = memory.nonzero.words
    let dirtyW = guard === undefined ? kvm.writeWords : undefined
    let newly = 0
    let logged = 0
    // The counters live in locals and are stored back before anything else runs.
    let replayed = this.replayed
    let writes = this.writes
    let lastEventNs = this.lastEventNs
    let due = this.nextDue()
    for (let i = 0; i < n; i++) {
      // Guest time -> wall time: a shift unless auto-converge's slices are in force (GuestClock).
      let ti = linear ? w0 + (t[i]! - g0) : clock.toWall(t[i]!)
      if (ti >= due) {
        this.replayed = replayed
        this.writes = writes
        this.lastEventNs = lastEventNs
        memory.newlyModified += newly
        kvm.kvm.stats.loggedWrites += logged
        newly = logged = 0
        ti = this.catchUp(t[i]!, ti)
        if (d.done) return i
        if (d.slow) return this.feedSlow(b, i)
        due = this.nextAt
        linear = clock.linear
        w0 = clock.w0
        g0 = clock.g0
        if (guard === undefined) dirtyW = kvm.writeWords
        devWrites = d.deviceWritesToModel === true
      }
      lastEventNs = ti
      replayed++
      const k = kind[i]!
      if (k === KW || ((k === KD || k === KV) && devWrites)) {
        const g = gpa[i]!
        let p0: number
        let off: number
        const j = Math.floor(g * ginv)
        const base = j >= 0 && j < gn ? gpage[j]! : -1
        if (base >= 0) {
          const rel = g - j * granule
          const q = Math.floor(rel * inv)
          p0 = base + q
          off = rel - q * ps
        } else {
          // A granule holding a memslot edge (GRANULE_MIXED: a few a layout, e.g. pc.ram's slot end
          // at 1 GiB + 8 KiB and the 4 KiB ROM slots of a QEMU capture): the slot lookup.
          p0 = base === -1 ? -1 : layout.gpaToPage(g)
          if (p0 < 0) {
            if (k === KW) this.unmapped++
            else (k === KD ? dma : vhost).unmapped++
            continue
          }
          off = g - Math.floor(g * inv) * ps
        }
        // TraceLayout.pageSpanEnd, inlined: as a call here it cost ~10 % of the replay's throughput
        // (npm run bench -- replay); test/replay/session.test.ts holds the two to the same pages.
        const l = len[i]!
        const p1 = l > 0 ? (off + l <= ps ? p0 + 1 : p0 + Math.floor((off + l - 1) * inv) + 1) : p0 + 1
        if (k !== KW) {
          // QemuSideDirtySource.handleEvent with the pages found.
          ;(k === KD ? dma : vhost).write(p0, p1)
          continue
        }
        writes++
        if (bytes !== undefined) bytes.write(g, l, p0, p1)
        if (dirtyW !== undefined) {
          for (let p = p0; p < p1; p++) {
            const w = p >>> 5
            const m = 1 << (p & 31)
            // GuestMemory.write: modified is a subset of nonzero, so a page already modified
            // stores nothing.
            const mv = modW[w]!
            if ((mv & m) === 0) {
              modW[w] = mv | m
              newly++
              nzW[w]! |= m
            }
            // KvmBitmapLog.write (mark_page_dirty_in_slot): only a protected page faults.
            const dv = dirtyW[w]!
            if ((dv & m) === 0) {
              dirtyW[w] = dv | m
              logged++
            }
          }
          continue
        }
        // The write path of applyWrite, inlined: this loop runs once per guest write.
        const v = vcpu[i]!
        for (let p = p0; p < p1; p++) {
          if (guard !== undefined && (guard[p >>> 5]! & (1 << (p & 31))) !== 0 && !discard!.guestWrite(p)) continue
          memory.write(p)
          kvm.write(p, v)
        }
      } else {
        this.replayed = replayed
        this.writes = writes
        this.lastEventNs = lastEventNs
        memory.newlyModified += newly
        kvm.kvm.stats.loggedWrites += logged
        newly = logged = 0
        const stop = this.otherFast(b, i, ti)
        replayed = this.replayed
        writes = this.writes
        lastEventNs = this.lastEventNs
        if (stop !== -1) return stop
        due = this.nextDue()
        linear = clock.linear
        w0 = clock.w0
        g0 = clock.g0
        if (guard === undefined) dirtyW = kvm.writeWords
        devWrites = d.deviceWritesToModel === true
      }
    }
    this.replayed = replayed
    this.writes = writes
    this.lastEventNs = lastEventNs
    memory.newlyModified += newly
    kvm.kvm.stats.loggedWrites += logged
    return -1
  }

  /**
   * Everything due by the event at guest time `t` (wall `ti`); a throttle step or pause the actions
   * make may move the event later, and what falls due by then runs too. Returns its wall time.
   * (Kept out of feedFast, as otherFast is, so that loop stays small enough to inline its callees.)
   */
  private catchUp(t: number, ti: number): number {
    const d = this.driver
    for (;;) {
      this.nextAt = this.advance(ti)
      if (d.done || d.slow) return ti
      const t2 = this.clock.toWall(t)
      if (t2 <= ti) return ti
      ti = t2
    }
  }

  /** A non-write event on the fast path: -1 to go on, else what feedFast returns. */
  private otherFast(b: EventBatch, i: number, ti: number): number {
    this.dispatch(b, i, ti, true)
    const d = this.driver
    if (d.done) return i + 1
    if (d.slow) return this.feedSlow(b, i + 1)
    return -1
  }

  /** The slow path: events in wall-time order, delayed vCPUs queued (GuestClock.feed). */
  private feedSlow(b: EventBatch, from: number): number {
    return this.clock.feed(b, from, this)
  }

  /**
   * A guest write over pages [p0, p1): unplugged virtio-mem pages are handed to the discard
   * manager first (counted; it may refuse the write), then guest memory and KVM's dirty log see
   * it. A `limiter` driver (dirty-limit) is told of each page KVM logged; returns the vCPU's sleep (ns).
   */
  private applyWrite(v: number, p0: number, p1: number, now: number, limiter: ReplayDriver | undefined): number {
    const memory = this.host.memory
    const kvm = this.host.kvm
    const discard = this.host.discard
    const guard = discard?.discardedWords
    let sleep = 0
    for (let p = p0; p < p1; p++) {
      if (guard !== undefined && (guard[p >>> 5]! & (1 << (p & 31))) !== 0 && !discard!.guestWrite(p)) continue
      memory.write(p)
      if (limiter) {
        const before = kvm.kvm.stats.loggedWrites
        kvm.write(p, v)
        if (kvm.kvm.stats.loggedWrites !== before) sleep += limiter.loggedWrite!(v, now)
      } else kvm.write(p, v)
    }
    return sleep
  }

  /** A non-access event: the driver's if it takes it, else the model part's that consumes the kind. */
  private dispatch(b: EventBatch, i: number, now: number, counted: boolean): void {
    const k = b.kind[i]!
    if (k === K.read) {
      if (!counted) this.replayed++
      return
    }
    const taken = this.driver.control(b, i, now)
    if (taken === Taken.Dropped) {
      if (counted) this.replayed--
      this.notReplayed++
      return
    }
    if (!counted) this.replayed++
    if (taken === Taken.Yes) return
    if (taken === Taken.Ignored) return this.ignore(k)
    const c = this.host.byKind[k]
    if (c?.handleEvent) c.handleEvent(b, i, now)
    else if (k === K.kvm_dirty_ring_page && this.writes === 0) this.ringRecordAsWrite(b, i, now)
    else this.ignore(k)
  }

  /**
   * A trace that holds dirty-ring records instead of writes (a KVM host's own log: QEMU's
   * kvm_dirty_ring_page, perf's kvm_dirty_ring_push): each record is the vCPU's first write to the
   * page since the last harvest, stamped at the harvest (docs/import-kvm.md). A driver that decides
   * itself replays them as those writes.
   */
  private ringRecordAsWrite(b: EventBatch, i: number, now: number): void {
    const slot = this.layout.slotById.get(b.slot[i]!)
    const page = b.page[i]!
    if (!slot || page < 0 || page >= slot.pages) {
      this.unmapped++
      return
    }
    const p = slot.firstPage + page
    const d = this.driver
    this.ringWrites++
    // A ring record says nothing of the bytes: the whole page counts as changed (length 0).
    this.host.byteWrites?.write(0, 0, p, p + 1)
    const sleep = this.applyWrite(b.vcpu[i]!, p, p + 1, now, d.limitingWrites ? d : undefined)
    if (sleep > 0) this.clock.offset[b.vcpu[i]!]! += sleep
  }

  private ignore(k: number): void {
    this.ignored.set(k, (this.ignored.get(k) ?? 0) + 1)
  }

  // --- GuestSink: the clock's slow path ------------------------------------------------------
  advanceTo(now: number): boolean {
    if (now >= this.nextDue()) this.advance(now)
    return this.driver.done
  }

  access(kind: number, vcpu: number, gpa: number, len: number, now: number): number {
    const layout = this.layout
    const p0 = layout.gpaToPage(gpa)
    const p1 = p0 < 0 ? p0 : layout.pageSpanEnd(gpa, len, p0)
    const r = this.driver.access(kind, vcpu, p0, p1, now)
    if (r > 0) return r
    if (now > this.lastEventNs) this.lastEventNs = now
    this.replayed++
    if (kind !== K.write) return 0
    if (p0 < 0) {
      this.unmapped++
      return 0
    }
    this.writes++
    if (r === APPLY) {
      const d = this.driver
      this.host.byteWrites?.write(gpa, len, p0, p1)
      const sleep = this.applyWrite(vcpu, p0, p1, now, d.limitingWrites ? d : undefined)
      // dirtylimit_vcpu_execute: the vCPU sleeps at its ring-full exit; its later events move.
      if (sleep > 0) this.clock.offset[vcpu]! += sleep
    }
    return 0
  }

  other(b: EventBatch, i: number, now: number): void {
    if (now > this.lastEventNs) this.lastEventNs = now
    this.dispatch(b, i, now, false)
  }

  // --- after the migration ---------------------------------------------------------------------
  /**
   * The guest after the migration (running on the destination): only what the driver still wants
   * (virtio-mem requests, no longer BUSY) is replayed, so the request log and the plugged size
   * over time cover the whole trace. Nothing here changes the migration's figures.
   */
  private feedAfter(b: EventBatch, from: number): void {
    const vm = this.host.virtioMem
    if (!vm) return
    const clock = this.clock
    const endNs = this.driver.endNs
    for (let i = from; i < b.length; i++) {
      const k = b.kind[i]!
      // A request timed inside the downtime is made once the guest runs again, at the migration's end.
      if (k === K.vmem_plug || k === K.vmem_unplug || k === K.vmem_unplug_all || k === K.vmem_state || k === K.vmem_resize || k === K.vmem_reset)
        vm.handleEvent(b, i, Math.max(endNs, clock.toWall(b.t[i]!)))
    }
  }
}
