/**
 * VFIO in the replay model: containers and devices from the trace header, their events
 * (vfio_map / unmap / pin / unpin / dma_write / state / dirty_pages), the dirty bits each tracking
 * behaviour contributes at a sync (merged into the migration bitmap like KVM's, as
 * physical_memory_set_dirty_lebitmap does), and the device migration data that enters the pending
 * size (vfio_state_pending_estimate / _exact), the live iterations (vfio_save_iterate) and the
 * downtime (vfio_save_complete_precopy).
 */
import type {EventBatch} from '../../trace/events.js'
import {K} from '../../trace/events.js'
import type {TraceLayout} from '../../trace/layout.js'
import {Bitmap, popcount32} from '../bitmap.js'
import type {DirtySink, MigratableState, ModelComponent} from '../component.js'
import type {CauseCodes} from '../causes.js'
import type {GuestMemory} from '../memory.js'
import type {MigrationBitmap} from '../qemu/migration-bitmap.js'
import {VfioContainer, countAndNot, type VfioDeviceState} from './container.js'
import {UserError} from '../../util/errors.js'
import {DEFAULT_QEMU_VERSION, hasRule, missingAt, type QemuVersion} from '../../replay/qemu-version.js'
import {resolveTracking, VFIO_CAUSES, VFIO_MIG_STOP_COPY_SIZE, VFIO_SAVE_CHUNK, type VfioTracking, type VfioTrackingSetting} from './tracking.js'

export interface VfioDeps {
  layout: TraceLayout
  memory: GuestMemory
  mb: MigrationBitmap
  tracking: VfioTrackingSetting
  /** The QEMU version's rules (a container without dirty tracking: refused before 8.0, not synced from 10.0). */
  qemuVersion?: QemuVersion
  /** VFIO_DEVICE_FEATURE_MIG_DATA_SIZE fails: exact pending counts VFIO_MIG_STOP_COPY_SIZE. */
  stopCopyQueryFails: boolean
  /** Pages that exist but are not populated (unplugged virtio-mem blocks): never mapped. */
  hidden?: Bitmap
  causes: CauseCodes
}

/** One sync as VFIO saw it (per container). */
export interface VfioSyncRecord {
  sync: number
  tNs: number
  lastStage: boolean
  pinnedPages: number
  mappedPages: number
  /** Pages VFIO reported dirty at this sync (set bits it handed over, new or not). */
  reportedDirtyPages: number
  /** deferred-pinned: pages held back for stop-and-copy. */
  deferredPages: number
}

export interface VfioContainerData {
  id: string
  capability: 'none' | 'type1' | 'device'
  mode: VfioTracking
  pinnedScope: boolean
  iommuPageSize: number
  mappings: number
  mappedPages: number
  pinnedPages: number
  pinEvents: number
  unpinEvents: number
  pinFaults: number
  unpinUnderflow: number
  maps: number
  unmaps: number
  recordedDirtyPagesIoctls: number
  deferredAtSetupPages: number
  deferredAtSetupBytes: number
  perSync: VfioSyncRecord[]
  devices: (VfioDeviceState & {stateBytes: number})[]
}

/** What the VFIO model reports (docs/vfio-virtio-mem.md). */
export interface VfioData {
  tracking: VfioTrackingSetting
  stopCopyQueryFails: boolean
  unknownDeviceEvents: number
  pinnedOverTime: {tNs: number; pinnedPages: number}[]
  containers: VfioContainerData[]
}

const MS = 1e6

export class VfioModel implements ModelComponent<VfioData>, MigratableState {
  readonly id = 'vfio'
  readonly kinds = [K.vfio_map, K.vfio_unmap, K.vfio_pin, K.vfio_unpin, K.vfio_dma_write, K.vfio_state, K.vfio_dirty_pages]
  readonly containers: VfioContainer[]
  /** layout device index -> [container, device or -1]. */
  private readonly byDev = new Map<number, [number, number]>()
  private syncs: VfioSyncRecord[][] = []
  private pinnedOverTime: {tNs: number; pinnedPages: number}[] = []
  private syncCount = 0
  private setupDone = false
  private running = false
  /** deferred-pinned: pages held for stop-and-copy not already pending in bmap. */
  private deferred: number[] = []
  private deferredAtSetup: number[] = []
  private unknownDevice = 0
  private readonly scratch: Bitmap
  /** This run's codes of VFIO_CAUSES. */
  private readonly cause: {[K in keyof typeof VFIO_CAUSES]: number}
  /** QEMU 10.0+: the sync of a container without dirty tracking is skipped (qemu-version.ts). */
  private readonly noTrackingSkipsSync: boolean

  constructor(private readonly deps: VfioDeps) {
    const {layout} = deps
    const c = deps.causes
    this.cause = {pinned: c.code(VFIO_CAUSES.pinned), cumulative: c.code(VFIO_CAUSES.cumulative), noTracking: c.code(VFIO_CAUSES.noTracking), dmaLogged: c.code(VFIO_CAUSES.dmaLogged)}
    this.containers = layout.header.vfio.map(
      (c) => new VfioContainer(c, layout, resolveTracking(deps.tracking, c.dirtyTracking, c.devices.length > 0 && c.devices.every((d) => d.dmaLogging))),
    )
    const v = deps.qemuVersion ?? DEFAULT_QEMU_VERSION
    this.noTrackingSkipsSync = hasRule(v, 'vfio-no-tracking-skips-sync')
    for (const c of this.containers) {
      // vfio_migration_realize before 8.0: a device whose IOMMU cannot track blocks migration.
      const r = missingAt(v, 'vfio-tracking', c.mode)
      if (r && c.devices.length > 0)
        throw new UserError(`QEMU ${v} cannot migrate a VFIO device without dirty tracking`, {
          field: 'qemu-version',
          expected: `qemu-version=${r.since} or later (${r.cite}), or a container that tracks (vfio-tracking)`,
          found: `container ${c.id}: vfio-tracking ${c.mode}`,
        })
    }
    layout.devices.forEach((d, i) => {
      if (d.kind === 'vfio-container') this.byDev.set(i, [d.index, -1])
      else if (d.kind === 'vfio-device') this.byDev.set(i, [d.index, d.subIndex])
    })
    this.scratch = new Bitmap(layout.totalPages)
  }

  reset(): void {
    for (const c of this.containers) c.reset()
    this.syncs = this.containers.map(() => [])
    this.pinnedOverTime = [{tNs: 0, pinnedPages: 0}]
    this.syncCount = 0
    this.setupDone = false
    this.running = false
    this.deferred = this.containers.map(() => 0)
    this.deferredAtSetup = this.containers.map(() => 0)
    this.unknownDevice = 0
  }

  get totalPinned(): number {
    let n = 0
    for (const c of this.containers) n += c.pinnedPages
    return n
  }

  private notePinned(now: number): void {
    const n = this.totalPinned
    const last = this.pinnedOverTime.at(-1)!
    // One point per ms at most: a burst of pin events at one instant is one step.
    if (last.pinnedPages === n) return
    if (now - last.tNs < MS && this.pinnedOverTime.length > 1) last.pinnedPages = n
    else this.pinnedOverTime.push({tNs: now, pinnedPages: n})
  }

  // --- events ----------------------------------------------------------------------------------
  handleEvent(b: EventBatch, i: number, now: number): void {
    const d = this.byDev.get(b.dev[i]!)
    if (!d) {
      this.unknownDevice++
      return
    }
    const c = this.containers[d[0]]!
    const k = b.kind[i]!
    switch (k) {
      case K.vfio_map:
        c.map(b.iova[i]!, b.len[i]!, b.gpa[i]!, this.deps.hidden)
        return
      case K.vfio_unmap:
        c.unmap(b.iova[i]!, b.len[i]!, true)
        this.notePinned(now)
        return
      case K.vfio_pin:
      case K.vfio_unpin:
        if (c.pin(b.iova[i]!, b.count[i]!, k === K.vfio_pin ? 1 : -1) > 0) this.notePinned(now)
        return
      case K.vfio_dma_write:
        return this.dmaWrite(c, d[1], b.iova[i]!, Math.max(1, b.len[i]!))
      case K.vfio_state: {
        const dev = c.devices[d[1]]
        if (!dev) {
          this.unknownDevice++
          return
        }
        dev.stateReports++
        if (b.len[i]! >= 0) dev.precopyRemaining = b.len[i]!
        dev.stopCopyBytes = b.value[i]!
        return
      }
      case K.vfio_dirty_pages:
        // A recorded VFIO_IOMMU_DIRTY_PAGES ioctl: the model decides when to read (qemu driver).
        c.dirtyPagesIoctls++
        return
    }
  }

  /** A device writes guest memory by DMA: the content changes, KVM never sees it. */
  private dmaWrite(c: VfioContainer, devIdx: number, iova: number, len: number): void {
    const dev = devIdx >= 0 ? c.devices[devIdx] : undefined
    if (dev) dev.dmaWrites++
    const {layout, memory} = this.deps
    const ps = layout.pageSize
    const end = iova + len
    for (let a = iova; a < end; a = (Math.floor(a / ps) + 1) * ps) {
      const gpa = c.translate(a)
      const p = gpa < 0 ? -1 : layout.gpaToPage(gpa)
      if (p < 0 || !c.mapped.get(p)) {
        if (dev) dev.dmaFaults++
        continue
      }
      if (dev) dev.dmaPages++
      memory.write(p)
      if (!c.tracking) continue
      // type1: vfio_dma_rw marks what it wrote; device logging logs DMA writes (not reads).
      if (c.mode !== 'none') c.dirty.set(p)
    }
  }

  // --- RamDiscardManager listener (virtio-mem) --------------------------------------------------
  /** vfio_ram_discard_notify_populate: map the plugged block range again. */
  populate(p0: number, p1: number): boolean {
    for (const c of this.containers) c.repopulate(p0, p1)
    return true
  }

  /** vfio_ram_discard_notify_discard: unmap with no dirty sync (refused while migrating anyway). */
  discard(p0: number, p1: number): void {
    for (const c of this.containers) c.dropPages(p0, p1, false)
  }

  // --- migration ------------------------------------------------------------------------------
  /** vfio_listener_log_global_start: tracking starts; type1 populates pinned pages. */
  logStart(): void {
    this.running = true
    for (const c of this.containers) {
      c.tracking = true
      c.dirty.fill(false)
      c.fetched.fill(false)
      // vfio_dma_populate_bitmap at VFIO_IOMMU_DIRTY_PAGES_FLAG_START.
      if (c.mode !== 'none' && c.mode !== 'device') c.dirty.words.set(c.pinned.words)
    }
  }

  logStop(): void {
    this.running = false
    for (const c of this.containers) c.tracking = false
  }

  /** Pages a deferred-pinned container holds back: pinned (or, IOMMU-backed, mapped). */
  private deferSet(c: VfioContainer): Bitmap {
    return c.pinnedScope ? c.pinned : c.mapped
  }

  logSync(sink: DirtySink, lastStage: boolean, now: number): void {
    this.syncCount++
    this.containers.forEach((c, ci) => {
      if (!c.tracking) return
      // QEMU 10.0+ (vfio_log_sync_needed): nothing started tracking, so no bit is reported.
      if (c.mode === 'none' && this.noTrackingSkipsSync) {
        this.syncs[ci]!.push({sync: this.syncCount, tNs: now, lastStage, pinnedPages: c.pinnedPages, mappedPages: c.mappedPages(), reportedDirtyPages: 0, deferredPages: 0})
        return
      }
      const mapped = c.mapped.words
      const dirty = c.dirty.words
      const pinned = c.pinned.words
      const fetched = c.fetched.words
      const nonPinnedScope = !c.pinnedScope
      let reported = 0
      const mode = c.mode
      const defer = mode === 'deferred-pinned' ? this.deferSet(c).words : undefined
      for (let w = 0; w < dirty.length; w++) {
        let out: number
        let fromPinned = 0
        let cause: number
        const f = fetched[w]!
        if (mode === 'none') {
          out = mapped[w]! | f
          cause = this.cause.noTracking
        } else if (mode === 'device') {
          out = dirty[w]! | f
          dirty[w] = 0
          cause = this.cause.dmaLogged
        } else {
          // update_user_bitmap: an IOMMU-backed group marks its whole mapping.
          let d = dirty[w]!
          if (nonPinnedScope) d |= mapped[w]!
          d |= f
          if (defer) {
            const held = defer[w]!
            out = lastStage ? d | held : d & ~held
            dirty[w] = held
          } else {
            out = d
            // reset-readd-pinned: bitmap_clear + vfio_dma_populate_bitmap; cumulative: no clear.
            dirty[w] = mode === 'cumulative' ? d | pinned[w]! : pinned[w]!
          }
          cause = nonPinnedScope ? this.cause.noTracking : this.cause.pinned
          fromPinned = mode === 'cumulative' && !nonPinnedScope ? out & ~pinned[w]! : 0
        }
        fetched[w] = 0
        out >>>= 0
        if (out === 0) continue
        reported += popcount32(out)
        if (fromPinned !== 0) {
          // Bits a reset would have dropped: only the cumulative bitmap still holds them.
          sink.mergeWord(w, (out & ~fromPinned) >>> 0, cause)
          sink.mergeWord(w, fromPinned >>> 0, this.cause.cumulative)
        } else sink.mergeWord(w, out, cause)
      }
      if (defer) this.deferred[ci] = lastStage ? 0 : this.countDeferred(c)
      this.syncs[ci]!.push({
        sync: this.syncCount,
        tNs: now,
        lastStage,
        pinnedPages: c.pinnedPages,
        mappedPages: c.mappedPages(),
        reportedDirtyPages: reported,
        deferredPages: this.deferred[ci]!,
      })
    })
  }

  /** Deferred pages not already pending in bmap (what stop-and-copy still owes for them). */
  private countDeferred(c: VfioContainer): number {
    const s = this.scratch.words
    const d = c.dirty.words
    const held = this.deferSet(c).words
    for (let w = 0; w < s.length; w++) s[w] = d[w]! | held[w]!
    return countAndNot(this.scratch, this.deps.mb.bmap)
  }

  /** deferred-pinned: the held pages leave the first round too, so they are sent once. */
  afterSync(): void {
    if (this.setupDone) return
    this.setupDone = true
    const {mb} = this.deps
    this.containers.forEach((c, ci) => {
      if (!c.tracking || c.mode !== 'deferred-pinned') return
      const held = this.deferSet(c).words
      const bm = mb.bmap.words
      let n = 0
      for (let w = 0; w < bm.length; w++) {
        const v = (bm[w]! & held[w]!) >>> 0
        if (v === 0) continue
        n += popcount32(v)
        bm[w] = (bm[w]! & ~v) >>> 0
      }
      mb.dirtyPages -= n
      this.deferredAtSetup[ci] = n
      this.deferred[ci] = this.countDeferred(c)
    })
  }

  /**
   * VFIO's part of the pending size: estimate = precopy bytes still to send
   * (vfio_state_pending_estimate); exact adds stop_copy_size, or 100 GiB when the size query fails
   * (vfio_state_pending_exact). Deferred pinned pages count in both.
   */
  pendingBytes(exact: boolean): number {
    let n = 0
    const ps = this.deps.layout.pageSize
    this.containers.forEach((c, ci) => {
      n += this.deferred[ci]! * ps
      for (const d of c.devices) {
        n += d.precopyRemaining
        if (exact) n += this.deps.stopCopyQueryFails ? VFIO_MIG_STOP_COPY_SIZE : d.stopCopyBytes
      }
    })
    return n
  }

  /** deferred-pinned: the held pages are guest RAM, which postcopy can still send. */
  postcopiableBytes(): number {
    let n = 0
    this.containers.forEach((_, ci) => (n += this.deferred[ci]!))
    return n * this.deps.layout.pageSize
  }

  /** vfio_save_iterate: each device hands over one chunk (up to 1 MiB) per call. */
  iterate(): number {
    if (!this.running) return 0
    let n = 0
    for (const c of this.containers)
      for (const d of c.devices) {
        const chunk = Math.min(VFIO_SAVE_CHUNK, d.precopyRemaining)
        if (chunk <= 0) continue
        d.precopyRemaining -= chunk
        d.precopySent += chunk
        n += chunk
      }
    return n
  }

  /** vfio_save_complete_precopy: what is left of each device's state goes during the downtime. */
  stopCopy(): number {
    let n = 0
    for (const c of this.containers)
      for (const d of c.devices) {
        const bytes = d.precopyRemaining + d.stopCopyBytes
        d.stopCopySent += bytes
        d.precopyRemaining = 0
        n += bytes
      }
    return n
  }

  /** Per-sync pinned and reported pages summed over containers (extra iteration columns). */
  syncTotals(): {sync: number; tNs: number; pinnedPages: number; reportedDirtyPages: number}[] {
    const out = new Map<number, {sync: number; tNs: number; pinnedPages: number; reportedDirtyPages: number}>()
    for (const list of this.syncs)
      for (const s of list) {
        const o = out.get(s.sync) ?? {sync: s.sync, tNs: s.tNs, pinnedPages: 0, reportedDirtyPages: 0}
        o.pinnedPages += s.pinnedPages
        o.reportedDirtyPages += s.reportedDirtyPages
        out.set(s.sync, o)
      }
    return [...out.values()]
  }

  data(): VfioData {
    const ps = this.deps.layout.pageSize
    return {
      tracking: this.deps.tracking,
      stopCopyQueryFails: this.deps.stopCopyQueryFails,
      unknownDeviceEvents: this.unknownDevice,
      pinnedOverTime: this.pinnedOverTime,
      containers: this.containers.map((c, ci) => ({
        id: c.id,
        capability: c.spec.dirtyTracking,
        mode: c.mode,
        pinnedScope: c.pinnedScope,
        iommuPageSize: c.spec.iommuPageSize,
        mappings: c.maps.length,
        mappedPages: c.mappedPages(),
        pinnedPages: c.pinnedPages,
        pinEvents: c.pinEvents,
        unpinEvents: c.unpinEvents,
        pinFaults: c.pinFaults,
        unpinUnderflow: c.unpinUnderflow,
        maps: c.mapsDone,
        unmaps: c.unmapsDone,
        recordedDirtyPagesIoctls: c.dirtyPagesIoctls,
        deferredAtSetupPages: this.deferredAtSetup[ci]!,
        deferredAtSetupBytes: this.deferredAtSetup[ci]! * ps,
        perSync: this.syncs[ci]!,
        devices: c.devices.map((d) => ({...d, stateBytes: d.precopySent + d.stopCopySent + d.precopyRemaining})),
      })),
    }
  }
}
