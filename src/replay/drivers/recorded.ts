/**
 * The `recorded` driver: follow what a real run did, as its trace records it (KVM ioctls,
 * mig_sync, page_sent, vm_stop, mig_complete), and account every recorded send with the ledger.
 * The model still holds the ground truth (guest writes, KVM's bits, the migration bitmap), so each
 * send is classified (first / redirtied / redundant with its cause / zero) and writes the real run
 * never re-sent show up as lost writes.
 * KVM_GET_DIRTY_LOG has no QEMU trace point, so when a mig_sync comes with no recorded GET (or ring
 * reset) since the previous one, the model performs the GET (or reap) itself.
 */
import type {EventBatch} from '../../trace/events.js'
import {K, Op} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {UserError} from '../../util/errors.js'
import {PAGE_HEADER_BYTES, ZERO_PAGE_BYTES} from '../../ledger/ledger.js'
import {dirtyLogMode, KvmIoctlError} from '../../model/kvm/index.js'
import type {ReplaySettings} from '../settings.js'
import {REPLAY_CAUSES, type HostModel} from '../host.js'
import type {StopReason} from '../policies.js'
import {APPLY, Taken, type DriverFigures, type ReplayDriver} from '../driver.js'
import {IterationBook, emptyRow} from '../iterations.js'
import {linkRate} from '../sender/index.js'
import type {Verdict} from '../result.js'
import {stallInfo} from './precopy-figures.js'

/** The causes this driver gives: register them when building the host for it. */
export const RECORDED_CAUSES = [REPLAY_CAUSES.notDirtyInModel]

export class RecordedDriver implements ReplayDriver {
  readonly name = 'recorded' as const
  readonly due = Infinity
  readonly hostTimers = false
  readonly slow = false
  readonly wantsEventsAfter = false
  readonly book: IterationBook
  private readonly layout: TraceLayout
  private readonly notDirtyCause: number
  private started = false
  done = false
  private startNs = Number.NaN
  private stopNs = Number.NaN
  endNs = Number.NaN
  private stopReason: StopReason = 'trace-end'
  private kvmIoctlSinceSync = false
  private unmapped = 0
  private ringPagesRecorded = 0
  private clearsRecorded = 0
  private stopCopyPages = 0
  private stopCopyBytes = 0
  private readonly notes: string[] = []

  constructor(
    readonly host: HostModel,
    readonly settings: ReplaySettings,
    readonly opts: {file?: string} = {},
  ) {
    this.layout = host.layout
    // A row's bandwidth is what the real run sent in it.
    this.book = new IterationBook(host.ledger, (row) => {
      const dur = (row.endNs - row.startNs) / 1e9
      row.bandwidthBps = dur > 0 ? row.bytesSent / dur : 0
    })
    this.notDirtyCause = host.causes.code(REPLAY_CAUSES.notDirtyInModel)
  }

  act(): void {}

  access(): number {
    return APPLY
  }

  private slotIndex(b: EventBatch, i: number): number {
    const id = b.slot[i]!
    const idx = this.layout.slots.findIndex((s) => s.id === id)
    if (idx < 0) throw new UserError('unknown memslot', {file: this.opts.file, line: b.line[i] || undefined, field: 'slot', found: String(id)})
    return idx
  }

  private start(t: number): void {
    if (this.started) return
    this.started = true
    this.startNs = t
    this.host.setup(t)
  }

  control(b: EventBatch, i: number, t: number): Taken {
    const host = this.host
    const k = b.kind[i]!
    try {
      switch (k) {
        case K.mig_start:
          this.start(t)
          return Taken.Yes
        case K.kvm_set_user_memory_region: {
          const s = this.slotIndex(b, i)
          if ((b.value[i]! & 1) === 1) host.kvm.kvm.startLogging(s)
          else host.kvm.kvm.stopLogging(s)
          return Taken.Yes
        }
        case K.kvm_get_dirty_log:
          this.kvmIoctlSinceSync = true
          host.kvm.getSlot(this.slotIndex(b, i))
          return Taken.Yes
        case K.kvm_clear_dirty_log:
          this.clearsRecorded++
          host.kvm.clearRecorded(this.slotIndex(b, i), b.page[i]!, b.count[i]!)
          return Taken.Yes
        case K.kvm_reset_dirty_rings:
          this.kvmIoctlSinceSync = true
          host.kvm.reapRecorded()
          return Taken.Yes
        case K.kvm_dirty_ring_page:
          this.ringPagesRecorded++
          return Taken.Yes
        case K.mig_sync:
          this.start(t)
          this.sync(t)
          return Taken.Yes
        case K.page_sent:
          this.start(t)
          this.pageSent(b, i)
          return Taken.Yes
        case K.vm_stop:
          if (this.started && Number.isNaN(this.stopNs)) this.stopNs = t
          return Taken.Yes
        case K.vm_start:
        case K.mig_complete:
          if (this.started && !Number.isNaN(this.stopNs)) this.finish(t, 'converged')
          else if (k === K.mig_complete && this.started) {
            this.stopNs = t
            this.finish(t, 'converged')
          }
          return Taken.Yes
        case K.mig_cancel:
          if (this.started) {
            if (Number.isNaN(this.stopNs)) this.stopNs = t
            this.finish(t, 'cancelled')
          }
          return Taken.Yes
        default:
          return Taken.No
      }
    } catch (e) {
      if (e instanceof KvmIoctlError) throw new UserError(`the recorded ${e.message}`, {file: this.opts.file, line: b.line[i] || undefined, field: 'page'})
      throw e
    }
  }

  private sync(t: number): void {
    const host = this.host
    const lastStage = !Number.isNaN(this.stopNs)
    host.syncCount++
    host.mb.newPages = 0
    for (const c of host.components) {
      if (c === host.kvm && this.kvmIoctlSinceSync) {
        host.kvm.mergeCache(host.mb)
        if (host.kvm.kvm.family === 'ring') host.kvm.cache.fill(false)
      } else c.logSync?.(host.mb, lastStage, t)
    }
    this.kvmIoctlSinceSync = false
    const newPages = host.mb.takeNewPages()
    this.book.open(emptyRow({iteration: this.book.rows.length, phase: lastStage ? 'stop-copy' : 'live', startNs: t, dirtyPagesAtSync: host.mb.dirtyPages, newDirtyPages: newPages}), t, newPages)
  }

  private pageSent(b: EventBatch, i: number): void {
    const g = b.gpa[i]!
    const count = b.count[i]! > 0 ? b.count[i]! : 1
    const p0 = this.layout.gpaToPage(g)
    if (p0 < 0) {
      this.unmapped++
      return
    }
    const wire = b.op[i]! === Op.zero ? ZERO_PAGE_BYTES : PAGE_HEADER_BYTES + this.layout.pageSize
    const {mb, ledger} = this.host
    const stopped = !Number.isNaN(this.stopNs)
    for (let p = p0; p < p0 + count; p++) {
      if (!mb.takePage(p)) ledger.setCause(p, this.notDirtyCause)
      const bytes = ledger.recordSend(p, wire)
      if (stopped) {
        this.stopCopyPages++
        this.stopCopyBytes += bytes
      }
    }
  }

  private finish(t: number, reason: StopReason): void {
    this.endNs = t
    this.stopReason = reason
    this.book.close(t)
    this.done = true
  }

  endOfTrace(lastEventNs: number): void {
    if (!this.started) throw new UserError('the trace records no migration (no mig_start, mig_sync or page_sent)', {file: this.opts.file, expected: 'a trace of a real run for --driver recorded'})
    if (this.done) return
    if (Number.isNaN(this.stopNs)) this.stopNs = lastEventNs
    this.finish(lastEventNs, 'trace-end')
    this.notes.push('the trace ended before the migration completed (no mig_complete)')
  }

  figures(): DriverFigures {
    if (this.clearsRecorded === 0 && dirtyLogMode(this.settings['dirty-log']).manualProtect)
      this.notes.push('no kvm_clear_dirty_log in the trace: in manual-protect mode nothing was re-protected, so KVM bits stay set')
    const verdict: Verdict = this.stopReason === 'cancelled' ? 'cancelled' : this.stopReason === 'converged' ? 'converged' : 'inconclusive'
    const ms = (ns: number): number => ns / 1e6
    const s = this.settings
    return {
      verdict,
      stopReason: this.stopReason,
      startNs: this.startNs,
      setupEndNs: this.startNs,
      stopNs: this.stopNs,
      endNs: this.endNs,
      traceEndedFirst: this.stopReason === 'trace-end',
      downtimeMs: this.stopReason === 'cancelled' ? 0 : ms(this.endNs - this.stopNs),
      downtime: {ramMs: ms(this.endNs - this.stopNs), deviceStateMs: 0, ramPages: this.stopCopyPages, ramBytes: this.stopCopyBytes, deviceStateBytes: 0},
      rows: this.book.rows,
      notes: this.notes,
      stall: this.stopReason === 'converged' || this.stopReason === 'cancelled' ? undefined : stallInfo(this.book.live, this.layout.pageSize, linkRate(s), s['downtime-limit']),
      transferredBytes: this.host.ledger.bytesSent,
      unmapped: this.unmapped,
      components: {recorded: {ringPagesRecorded: this.ringPagesRecorded, clearsRecorded: this.clearsRecorded}},
      showComponents: true,
      showTransport: false,
    }
  }
}
