/**
 * The `recorded` driver: follow what a real run did, as its trace records it (KVM ioctls,
 * mig_sync, page_sent, vm_stop, mig_complete), and account every recorded send with the ledger.
 * The model still holds the ground truth (guest writes, KVM's bits, the migration bitmap), so each
 * send is classified (first / redirtied / redundant with its cause / zero) and writes the real run
 * never re-sent show up as lost writes.
 * KVM_GET_DIRTY_LOG has no QEMU trace point, so when a mig_sync comes with no recorded GET (or ring
 * reset) since the previous one, the model performs the GET (or reap) itself.
 */
import type {EventBatch} from '../trace/events.js'
import {K, Op} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {UserError} from '../util/errors.js'
import {Cause} from '../ledger/causes.js'
import {addIterationCounts, PAGE_HEADER_BYTES, ZERO_PAGE_BYTES} from '../ledger/ledger.js'
import {KvmIoctlError} from '../model/kvm/types.js'
import {switchoverRate, type ReplaySettings, type SettingKey} from './config.js'
import {stallInfo} from './engine.js'
import {ReplayModel} from './model.js'
import type {StopReason} from './policies.js'
import type {IterationRow, ReplayResult, Verdict} from './result.js'
import {countsByKindName} from './result.js'

export class RecordedReplay {
  readonly model: ReplayModel
  private started = false
  private done = false
  private startNs = Number.NaN
  private stopNs = Number.NaN
  private endNs = Number.NaN
  private stopReason: StopReason = 'trace-end'
  private kvmIoctlSinceSync = false
  private lastEventNs = 0
  private readonly rows: IterationRow[] = []
  private current?: IterationRow
  private replayed = 0
  private writes = 0
  private unmapped = 0
  private notReplayed = 0
  private ringPagesRecorded = 0
  private clearsRecorded = 0
  private stopCopyPages = 0
  private stopCopyBytes = 0
  private readonly ignored = new Map<number, number>()
  private readonly notes: string[] = []

  constructor(
    readonly header: TraceHeader,
    readonly layout: TraceLayout,
    readonly settings: ReplaySettings,
    readonly opts: {file?: string; pinned?: ReadonlySet<SettingKey>} = {},
  ) {
    this.model = new ReplayModel(header, layout, settings)
  }

  feed(b: EventBatch): boolean {
    const memory = this.model.memory
    const kvm = this.model.kvm
    const ps = this.layout.pageSize
    for (let i = 0; i < b.length; i++) {
      const t = b.t[i]!
      if (this.done) {
        this.notReplayed += b.length - i
        return true
      }
      this.lastEventNs = t
      this.replayed++
      const k = b.kind[i]!
      if (k === K.write) {
        const g = b.gpa[i]!
        const p0 = this.layout.gpaToPage(g)
        if (p0 < 0) {
          this.unmapped++
          continue
        }
        this.writes++
        const l = b.len[i]!
        const p1 = l > 0 ? p0 + Math.floor(((g % ps) + l - 1) / ps) + 1 : p0 + 1
        for (let p = p0; p < p1; p++) {
          memory.write(p)
          kvm.write(p, b.vcpu[i]!)
        }
        continue
      }
      this.other(b, i, t, k)
    }
    return this.done
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
    this.model.setup(t)
  }

  private other(b: EventBatch, i: number, t: number, k: number): void {
    const model = this.model
    const line = b.line[i] || undefined
    try {
      switch (k) {
        case K.read:
          return
        case K.mig_start:
          return this.start(t)
        case K.kvm_set_user_memory_region: {
          const s = this.slotIndex(b, i)
          if ((b.value[i]! & 1) === 1) model.kvm.kvm.startLogging(s)
          else model.kvm.kvm.stopLogging(s)
          return
        }
        case K.kvm_get_dirty_log:
          this.kvmIoctlSinceSync = true
          model.kvm.getSlot(this.slotIndex(b, i))
          return
        case K.kvm_clear_dirty_log:
          this.clearsRecorded++
          model.kvm.clearRecorded(this.slotIndex(b, i), b.page[i]!, b.count[i]!)
          return
        case K.kvm_reset_dirty_rings:
          this.kvmIoctlSinceSync = true
          model.kvm.reapRecorded()
          return
        case K.kvm_dirty_ring_page:
          this.ringPagesRecorded++
          return
        case K.mig_sync:
          this.start(t)
          return this.sync(t)
        case K.page_sent:
          this.start(t)
          return this.pageSent(b, i)
        case K.vm_stop:
          if (this.started && Number.isNaN(this.stopNs)) this.stopNs = t
          return
        case K.vm_start:
        case K.mig_complete:
          if (this.started && !Number.isNaN(this.stopNs)) this.finish_(t, 'converged')
          else if (k === K.mig_complete && this.started) {
            this.stopNs = t
            this.finish_(t, 'converged')
          }
          return
        case K.mig_cancel:
          if (this.started) {
            if (Number.isNaN(this.stopNs)) this.stopNs = t
            this.finish_(t, 'cancelled')
          }
          return
        default: {
          const c = model.byKind[k]
          if (c?.handleEvent) c.handleEvent(b, i, t)
          else this.ignored.set(k, (this.ignored.get(k) ?? 0) + 1)
        }
      }
    } catch (e) {
      if (e instanceof KvmIoctlError) throw new UserError(`the recorded ${e.message}`, {file: this.opts.file, line, field: 'page'})
      throw e
    }
  }

  private sync(t: number): void {
    const model = this.model
    const lastStage = !Number.isNaN(this.stopNs)
    model.syncCount++
    model.mb.newPages = 0
    for (const c of model.components) {
      if (c === model.kvm && this.kvmIoctlSinceSync) {
        model.kvm.mergeCache(model.mb)
        if (model.kvm.kvm.mode === 'ring') model.kvm.cache.fill(false)
      } else c.logSync?.(model.mb, lastStage, t)
    }
    this.kvmIoctlSinceSync = false
    const newPages = model.mb.takeNewPages()
    const prev = this.current
    if (prev) {
      const dur = (t - prev.startNs) / 1e9
      prev.dirtyRatePps = dur > 0 ? newPages / dur : 0
    }
    this.closeRow(t)
    const row: IterationRow = {
      iteration: this.rows.length,
      phase: lastStage ? 'stop-copy' : 'live',
      startNs: t,
      endNs: t,
      dirtyPagesAtSync: model.mb.dirtyPages,
      newDirtyPages: newPages,
      syncs: 1,
      thresholdBytes: 0,
      bandwidthBps: 0,
      expectedDowntimeMs: 0,
      dirtyRatePps: 0,
      pagesSent: 0,
      bytesSent: 0,
      first: 0,
      redirtied: 0,
      redundant: 0,
      zero: 0,
      redundantByCause: {},
    }
    this.rows.push(row)
    this.current = row
  }

  private closeRow(t: number): void {
    const row = this.current
    if (!row) return
    const c = this.model.ledger.beginIteration()
    row.endNs = t
    addIterationCounts(row, c)
    const dur = (t - row.startNs) / 1e9
    row.bandwidthBps = dur > 0 ? row.bytesSent / dur : 0
    this.current = undefined
  }

  private pageSent(b: EventBatch, i: number): void {
    const g = b.gpa[i]!
    const count = b.count[i]! > 0 ? b.count[i]! : 1
    const p0 = this.layout.gpaToPage(g)
    if (p0 < 0) {
      this.unmapped++
      return
    }
    const op = b.op[i]!
    const wire = op === Op.zero ? ZERO_PAGE_BYTES : PAGE_HEADER_BYTES + this.layout.pageSize
    const {mb, ledger} = this.model
    const stopped = !Number.isNaN(this.stopNs)
    for (let p = p0; p < p0 + count; p++) {
      if (!mb.takePage(p)) ledger.setCause(p, Cause.notDirtyInModel)
      const bytes = ledger.recordSend(p, wire)
      if (stopped) {
        this.stopCopyPages++
        this.stopCopyBytes += bytes
      }
    }
  }

  private finish_(t: number, reason: StopReason): void {
    this.endNs = t
    this.stopReason = reason
    this.closeRow(t)
    this.done = true
  }

  finish(): ReplayResult {
    if (!this.started) throw new UserError('the trace records no migration (no mig_start, mig_sync or page_sent)', {file: this.opts.file, expected: 'a trace of a real run for --driver recorded'})
    if (!this.done) {
      if (Number.isNaN(this.stopNs)) this.stopNs = this.lastEventNs
      this.finish_(this.lastEventNs, 'trace-end')
      this.notes.push('the trace ended before the migration completed (no mig_complete)')
    }
    if (this.clearsRecorded === 0 && this.settings['dirty-log'] !== 'ring' && this.settings['dirty-log'] !== 'bitmap')
      this.notes.push('no kvm_clear_dirty_log in the trace: in manual-protect mode nothing was re-protected, so KVM bits stay set')
    const ledger = this.model.ledger
    const verdict: Verdict = this.stopReason === 'cancelled' ? 'cancelled' : this.stopReason === 'converged' ? 'converged' : 'inconclusive'
    const ms = (ns: number): number => ns / 1e6
    const ignored = countsByKindName(this.ignored)
    const guestPages = this.layout.guestPages
    const live = this.rows.filter((r) => r.phase === 'live')
    const rate = switchoverRate(this.settings)
    return {
      driver: 'recorded',
      settings: this.settings,
      verdict,
      stopReason: this.stopReason,
      startNs: this.startNs,
      setupEndNs: this.startNs,
      stopNs: this.stopNs,
      endNs: this.endNs,
      traceEndNs: this.lastEventNs,
      traceEndedFirst: this.stopReason === 'trace-end',
      totalTimeMs: ms(this.endNs - this.startNs),
      setupTimeMs: 0,
      downtimeMs: this.stopReason === 'cancelled' ? 0 : ms(this.endNs - this.stopNs),
      downtime: {ramMs: ms(this.endNs - this.stopNs), deviceStateMs: 0, ramPages: this.stopCopyPages, ramBytes: this.stopCopyBytes, deviceStateBytes: 0},
      iterations: live.length,
      dirtySyncCount: this.model.syncCount,
      totals: ledger.totals(),
      lostWrites: this.stopReason === 'cancelled' ? 0 : this.model.lostWrites(),
      sendHistogram: ledger.sendCountHistogram(),
      guest: {pages: guestPages, pageSize: this.layout.pageSize, bytes: guestPages * this.layout.pageSize},
      rows: this.rows,
      components: {...this.model.componentData(), recorded: {ringPagesRecorded: this.ringPagesRecorded, clearsRecorded: this.clearsRecorded}},
      events: {replayed: this.replayed, writes: this.writes, notReplayed: this.notReplayed, ignored, unmapped: this.unmapped},
      lazyClears: 0,
      stall: this.stopReason === 'converged' || this.stopReason === 'cancelled' ? undefined : stallInfo(live, this.layout.pageSize, rate, this.settings['downtime-limit']),
      notes: this.notes,
    }
  }
}
