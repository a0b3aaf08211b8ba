/**
 * Background snapshot (`mode=background-snapshot`, bg_migration_thread, capability
 * background-snapshot): a userfaultfd write-protect snapshot of the guest as it was when it
 * stopped.
 *  1. ram_write_tracking_prepare populates every page (not modelled: it only reads);
 *  2. setup: bmap all ones, no dirty logging, no sync;
 *  3. the VM stops (downtime starts), the device state goes into a buffer, and
 *     ram_write_tracking_start write-protects RAM (wp-cost per host page); the VM runs again;
 *  4. ram_save_iterate with no rate limit sends the pages in scan order at the link rate; a
 *     vCPU writing a page not yet saved blocks in the kernel; poll_fault_page makes that host
 *     page the next one saved (the scan goes on from there), ram_save_release_protection
 *     un-protects it after the save and the vCPU goes on;
 *  5. when RAM is clean the buffered device state is appended.
 * Every page is saved exactly once; nothing is ever re-dirtied. Reads never fault.
 */
import type {EventBatch} from '../trace/events.js'
import {K} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {UserError} from '../util/errors.js'
import {addIterationCounts} from '../ledger/ledger.js'
import {switchoverRate, type ReplaySettings} from './config.js'
import {ReplayModel} from './model.js'
import {GuestClock, type GuestSink} from './throttle-clock.js'
import {FaultLatency} from './postcopy-latency.js'
import type {IterationRow, ReplayResult} from './result.js'
import {countsByKindName} from './result.js'
import {transportResult} from './transport/result.js'

export interface SnapshotOptions {
  noStartEvent?: boolean
  file?: string
}

export class SnapshotEngine implements GuestSink {
  readonly model: ReplayModel
  readonly clock: GuestClock
  private readonly rate: number
  private startNs = Number.NaN
  private started = false
  private resumeNs = Number.NaN
  private wire = 0
  private endNs = Number.NaN
  private done = false
  private readonly latency: FaultLatency
  private faults = 0
  private pagesByFault = 0
  private pagesByStream = 0
  private saved = 0
  private bytes = 0
  private lastEventNs = 0
  private replayed = 0
  private writes = 0
  private notReplayed = 0
  private unmapped = 0
  private readonly ignored = new Map<number, number>()

  constructor(
    readonly header: TraceHeader,
    readonly layout: TraceLayout,
    readonly settings: ReplaySettings,
    readonly opts: SnapshotOptions = {},
  ) {
    this.model = new ReplayModel(header, layout, settings)
    this.clock = new GuestClock(header.vcpus)
    this.rate = switchoverRate(settings)
    this.latency = new FaultLatency(header.vcpus)
    const at = settings['start-at']
    if (at !== undefined) this.startNs = at * 1e6
    else if (opts.noStartEvent) this.startNs = 0
  }

  /** Apply one batch; true once the snapshot is complete. */
  feed(b: EventBatch): boolean {
    const stop = this.clock.feed(b, 0, this)
    if (stop < 0) return false
    this.notReplayed += b.length - stop
    return true
  }

  private begin(now: number): void {
    this.started = true
    this.startNs = now
    const model = this.model
    // ram_save_setup for a snapshot: bmap all ones, no dirty logging.
    model.mb.setAll()
    model.mb.cursor = 0
    // ram_write_tracking_start while the VM is stopped: write-protect every host page.
    let hostPages = 0
    for (const b of this.layout.blocks) hostPages += Math.ceil(b.pages / Math.max(1, b.hostPageSize / this.layout.pageSize))
    const wpNs = model.transport.chargeOps(hostPages, this.settings['wp-cost'] * 1e6)
    this.resumeNs = now + wpNs
    this.wire = this.resumeNs
    this.clock.pause(now, this.resumeNs)
  }

  /** ram_save_host_page for the host page holding p, starting at `start`: returns its end. */
  private saveHostPage(p: number, start: number): number {
    const model = this.model
    const tp = model.transport
    const a = tp.hostPageStart(p)
    const e = tp.hostPageEnd(p)
    let bytes = 0
    for (let q = a; q < e; q++) {
      const b = model.sendPage(q, true)
      if (b > 0) this.saved++
      bytes += b
    }
    this.bytes += bytes
    // The scan goes on after the saved page (last_seen_block / last_page).
    model.mb.cursor = e < this.layout.totalPages ? e : 0
    return start + (bytes * 1e9) / this.rate
  }

  advanceTo(now: number): boolean {
    if (this.done) return true
    if (!this.started) {
      if (Number.isNaN(this.startNs) || now < this.startNs) return false
      this.begin(this.startNs)
    }
    const mb = this.model.mb
    while (this.wire <= now) {
      const p = mb.findNext()
      if (p < 0) {
        this.finish()
        return true
      }
      const before = this.saved
      this.wire = this.saveHostPage(p, this.wire)
      this.pagesByStream += this.saved - before
    }
    return false
  }

  private finish(): void {
    this.done = true
    // The device state saved at the stop is appended once RAM is clean.
    this.endNs = this.wire + (this.settings['device-state-bytes'] * 1e9) / this.rate
  }

  access(kind: number, vcpu: number, gpa: number, len: number, now: number): number {
    this.lastEventNs = now
    if (kind !== K.write || !this.started) {
      this.replayed++
      if (kind === K.write) this.writes++
      return 0
    }
    const p0 = this.layout.gpaToPage(gpa)
    if (p0 < 0) {
      this.unmapped++
      this.replayed++
      return 0
    }
    const ps = this.layout.pageSize
    const p1 = len > 0 ? p0 + Math.floor(((gpa % ps) + len - 1) / ps) + 1 : p0 + 1
    const bmap = this.model.mb.bmap
    for (let p = p0; p < p1; p++) {
      if (!bmap.get(p)) continue
      // A write-protect fault: poll_fault_page makes this host page the next one saved.
      this.faults++
      const before = this.saved
      const end = this.saveHostPage(p, Math.max(this.wire, now))
      this.pagesByFault += this.saved - before
      this.wire = end
      this.latency.add(vcpu, end - now)
      return end
    }
    // Written after its save: the snapshot keeps the content of the stop.
    this.replayed++
    this.writes++
    return 0
  }

  other(b: EventBatch, i: number, now: number): void {
    this.lastEventNs = now
    this.replayed++
    const k = b.kind[i]!
    if (k === K.mig_start && !this.started && Number.isNaN(this.startNs) && this.settings['start-at'] === undefined) {
      this.startNs = now
      this.advanceTo(now)
      return
    }
    this.ignored.set(k, (this.ignored.get(k) ?? 0) + 1)
  }

  endOfTrace(): void {
    if (this.done) return
    if (Number.isNaN(this.startNs))
      throw new UserError('the trace has no mig_start event, so the snapshot never started', {
        file: this.opts.file,
        field: 'start-at',
        expected: 'a mig_start event, or --set start-at=<ms of trace time>',
      })
    if (this.clock.queued > 0 && this.clock.drain(Infinity, this)) return
    this.advanceTo(Infinity)
  }

  result(): ReplayResult {
    if (!this.done) throw new Error('bug: result() before the snapshot ended')
    const ms = (ns: number): number => ns / 1e6
    const ledger = this.model.ledger
    const totals = ledger.totals()
    const s = this.settings
    const hist = ledger.sendCountHistogram()
    let twice = 0
    for (let k = 2; k < hist.length; k++) twice += hist[k]!
    let notSaved = 0
    for (const b of this.layout.blocks) for (let p = b.firstPage; p < b.firstPage + b.pages; p++) if (ledger.sendCount(p) === 0) notSaved++
    const c = ledger.beginIteration()
    const row: IterationRow = {
      iteration: 0,
      phase: 'live',
      startNs: this.startNs,
      endNs: this.endNs,
      dirtyPagesAtSync: this.layout.guestPages,
      newDirtyPages: 0,
      syncs: 0,
      thresholdBytes: 0,
      bandwidthBps: this.rate,
      expectedDowntimeMs: 0,
      dirtyRatePps: 0,
      pagesSent: 0,
      bytesSent: 0,
      first: 0,
      redirtied: 0,
      redundant: 0,
      zero: 0,
      redundantByCause: {},
      throttlePct: 0,
    }
    const ignored = countsByKindName(this.ignored)
    const lat = this.latency.stats()
    const stall = this.latency.blocktimeMs()
    addIterationCounts(row, c)
    const pages = this.layout.guestPages
    const downtimeMs = ms(this.resumeNs - this.startNs)
    const r: ReplayResult = {
      driver: 'qemu',
      settings: s,
      verdict: 'converged',
      stopReason: 'converged',
      startNs: this.startNs,
      setupEndNs: this.startNs,
      stopNs: this.startNs,
      endNs: this.endNs,
      traceEndNs: this.lastEventNs,
      traceEndedFirst: this.lastEventNs < this.endNs && this.notReplayed === 0,
      totalTimeMs: ms(this.endNs - this.startNs),
      setupTimeMs: 0,
      downtimeMs,
      downtime: {ramMs: 0, deviceStateMs: 0, ramPages: 0, ramBytes: 0, deviceStateBytes: s['device-state-bytes']},
      iterations: 1,
      dirtySyncCount: 0,
      totals,
      lostWrites: this.model.lostWrites(),
      sendHistogram: hist,
      guest: {pages, pageSize: this.layout.pageSize, bytes: pages * this.layout.pageSize},
      rows: [row],
      components: {},
      events: {replayed: this.replayed, writes: this.writes, notReplayed: this.notReplayed, ignored, unmapped: this.unmapped},
      lazyClears: 0,
      notes: ['background snapshot: the file holds the guest as it was when the snapshot started; the device state was buffered at the stop and appended at the end'],
      snapshot: {
        durationMs: ms(this.endNs - this.startNs),
        downtimeMs,
        pagesSaved: this.saved,
        pagesByStream: this.pagesByStream,
        pagesByFault: this.pagesByFault,
        faults: this.faults,
        latencyNs: lat,
        latencyHistogram: this.latency.histogram.slice(),
        stallMsPerVcpu: stall,
        stallMs: stall.reduce((a, b) => a + b, 0),
        bytes: this.bytes,
        pagesSavedTwice: twice,
        pagesNotSaved: notSaved,
      },
    }
    r.transport = transportResult(this.model, r)
    return r
  }
}
