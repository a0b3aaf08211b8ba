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
 * Every page is saved exactly once; nothing is ever re-dirtied. Reads never fault. The snapshot
 * keeps the content of the stop, so guest writes never reach the snapshot's memory model.
 */
import type {EventBatch} from '../../trace/events.js'
import {K} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {UserError} from '../../util/errors.js'
import type {ReplaySettings} from '../settings.js'
import type {HostModel} from '../host.js'
import {Taken, type DriverFigures, type ReplayDriver} from '../driver.js'
import {emptyRow} from '../iterations.js'
import {linkRate, PageCosts} from '../sender/index.js'
import type {GuestClock} from '../throttle-clock.js'
import {FaultLatency} from '../postcopy-latency.js'

export interface SnapshotOptions {
  noStartEvent?: boolean
  file?: string
}

export class SnapshotDriver implements ReplayDriver {
  readonly name = 'qemu' as const
  readonly hostTimers = false
  readonly slow = true
  readonly wantsEventsAfter = false
  private readonly layout: TraceLayout
  private readonly rate: number
  private readonly costs: PageCosts
  private startNs = Number.NaN
  private started = false
  private resumeNs = Number.NaN
  /** The stream is busy until then (last byte of the last saved page). */
  private wire = 0
  endNs = Number.NaN
  done = false
  private readonly latency: FaultLatency
  private faults = 0
  private pagesByFault = 0
  private pagesByStream = 0
  private saved = 0
  private bytes = 0

  constructor(
    readonly host: HostModel,
    readonly clock: GuestClock,
    readonly settings: ReplaySettings,
    readonly opts: SnapshotOptions = {},
  ) {
    this.layout = host.layout
    this.rate = linkRate(settings)
    this.costs = new PageCosts(host, settings)
    this.latency = new FaultLatency(clock.vcpus)
    const at = settings['start-at']
    if (at !== undefined) this.startNs = at * 1e6
    else if (opts.noStartEvent) this.startNs = 0
  }

  get due(): number {
    if (this.done) return Infinity
    return this.started ? this.wire : this.startNs
  }

  private begin(now: number): void {
    this.started = true
    this.startNs = now
    const host = this.host
    // ram_save_setup for a snapshot: bmap all ones, no dirty logging.
    host.mb.setAll()
    host.mb.cursor = 0
    // ram_write_tracking_start while the VM is stopped: write-protect every host page.
    let hostPages = 0
    for (const b of this.layout.blocks) hostPages += Math.ceil(b.pages / Math.max(1, b.hostPageSize / this.layout.pageSize))
    const wpNs = host.transport.chargeOps(hostPages, this.settings['wp-cost'] * 1e6)
    this.resumeNs = now + wpNs
    this.wire = this.resumeNs
    this.clock.pause(now, this.resumeNs)
  }

  /** ram_save_host_page for the host page holding p, starting at `start`: returns its end. */
  private saveHostPage(p: number, start: number): number {
    const host = this.host
    const tp = host.transport
    const nonzero = host.memory.nonzero
    const a = tp.hostPageStart(p)
    const e = tp.hostPageEnd(p)
    let bytes = 0
    let extraNs = 0
    for (let q = a; q < e; q++) {
      const b = host.sendPage(q, true)
      if (b > 0) {
        this.saved++
        extraNs += this.costs.extraNs(q, nonzero.get(q), (b * 1e9) / this.rate)
      }
      bytes += b
    }
    this.bytes += bytes
    // The scan goes on after the saved page (last_seen_block / last_page).
    host.mb.cursor = e < this.layout.totalPages ? e : 0
    return start + (bytes * 1e9) / this.rate + extraNs
  }

  /** The stream's pages due by `until`, in scan order (the snapshot begins at its start time). */
  act(until: number): void {
    if (!this.started) {
      this.begin(this.startNs)
      return
    }
    const mb = this.host.mb
    while (this.wire <= until) {
      const p = mb.findNext()
      if (p < 0) return this.finish()
      const before = this.saved
      this.wire = this.saveHostPage(p, this.wire)
      this.pagesByStream += this.saved - before
    }
  }

  private finish(): void {
    this.done = true
    // The device state saved at the stop is appended once RAM is clean.
    this.endNs = this.wire + (this.settings['device-state-bytes'] * 1e9) / this.rate
  }

  access(kind: number, vcpu: number, p0: number, p1: number, now: number): number {
    if (kind !== K.write || !this.started || p0 < 0) return 0
    const bmap = this.host.mb.bmap
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
    return 0
  }

  control(b: EventBatch, i: number, now: number): Taken {
    if (b.kind[i] === K.mig_start && !this.started && Number.isNaN(this.startNs) && this.settings['start-at'] === undefined) {
      this.startNs = now
      return Taken.Yes
    }
    return Taken.Ignored
  }

  endOfTrace(): void {
    if (this.done) return
    if (Number.isNaN(this.startNs))
      throw new UserError('the trace has no mig_start event, so the snapshot never started', {
        file: this.opts.file,
        field: 'start-at',
        expected: 'a mig_start event, or --set start-at=<ms of trace time>',
      })
    while (!this.done) this.act(Infinity)
  }

  figures(ctx: {lastEventNs: number; notReplayed: number}): DriverFigures {
    if (!this.done) throw new Error('bug: figures() before the snapshot ended')
    const ms = (ns: number): number => ns / 1e6
    const ledger = this.host.ledger
    const hist = ledger.sendCountHistogram()
    let twice = 0
    for (let k = 2; k < hist.length; k++) twice += hist[k]!
    let notSaved = 0
    for (const b of this.layout.blocks) notSaved += ledger.unsentPages(b.firstPage, b.firstPage + b.pages)
    const row = emptyRow({iteration: 0, phase: 'live', startNs: this.startNs, dirtyPagesAtSync: this.layout.guestPages, syncs: 0, bandwidthBps: this.rate, throttlePct: 0})
    const c = ledger.takeIteration()
    row.endNs = this.endNs
    Object.assign(row, {pagesSent: c.pagesSent, bytesSent: c.bytesSent, first: c.first, redirtied: c.redirtied, redundant: c.redundant, zero: c.zero, redundantByCause: c.redundantByCause})
    const lat = this.latency.stats()
    const stall = this.latency.blocktimeMs()
    const downtimeMs = ms(this.resumeNs - this.startNs)
    return {
      verdict: 'converged',
      stopReason: 'converged',
      startNs: this.startNs,
      setupEndNs: this.startNs,
      stopNs: this.startNs,
      endNs: this.endNs,
      traceEndedFirst: ctx.lastEventNs < this.endNs && ctx.notReplayed === 0,
      downtimeMs,
      downtime: {ramMs: 0, deviceStateMs: 0, ramPages: 0, ramBytes: 0, deviceStateBytes: this.settings['device-state-bytes']},
      rows: [row],
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
      transferredBytes: this.bytes + this.settings['device-state-bytes'],
      showComponents: false,
      showTransport: true,
    }
  }
}
