/**
 * The host a replay runs against, wired once per run: guest memory, the send ledger, QEMU's
 * migration bitmap, the dirty sources (KVM listener, emulated DMA, vhost, VFIO, virtio-mem), the
 * devices with migration data of their own, how pages travel, and the run's cause codes. Every
 * driver uses it; the model parts never see the ledger or the replay (they report through the
 * PageCauseSink and DirtySink ports of src/model/component.ts).
 */
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {GuestMemory} from '../model/memory.js'
import {MAX_CAUSES, PAGE_HEADER_BYTES, SendLedger, ZERO_PAGE_BYTES} from '../ledger/ledger.js'
import {CauseTable, MODEL_CAUSES, type CauseSpec} from '../model/causes.js'
import {MigrationBitmap} from '../model/qemu/migration-bitmap.js'
import {KvmListener, type KvmData} from '../model/qemu/kvm-listener.js'
import {QemuSideDirtySource, type QemuSideData} from '../model/qemu/qemu-side.js'
import {dirtyLogMode} from '../model/kvm/modes.js'
import type {DiscardManager, MigratableState, ModelComponent} from '../model/component.js'
import {VfioModel, type VfioData} from '../model/vfio/component.js'
import {VFIO_CAUSES} from '../model/vfio/tracking.js'
import {UNPLUGGED_CAUSE, VirtioMemModel, type VirtioMemData} from '../model/virtio-mem/component.js'
import type {ReplaySettings} from './settings.js'
import {Transport} from './transport/index.js'

/** What every model part reports, by part id (ReplayResult.components). */
export interface ComponentData {
  kvm?: KvmData
  dma?: QemuSideData
  vhost?: QemuSideData
  vfio?: VfioData
  'virtio-mem'?: VirtioMemData
}

/** Causes the replay's drivers give themselves (not a model part's). */
export const REPLAY_CAUSES = {
  notDirtyInModel: {id: 'not-dirty-in-model', label: 'recorded driver: the real run sent a page the model did not hold dirty'},
} as const satisfies Record<string, CauseSpec>

/** Every cause a run can have, in their fixed order (compare's metric names, stable chart colours). */
export const KNOWN_CAUSES: readonly CauseSpec[] = [...Object.values(MODEL_CAUSES), ...Object.values(REPLAY_CAUSES), ...Object.values(VFIO_CAUSES), UNPLUGGED_CAUSE]

export interface HostOptions {
  /** Causes the driver gives (registered after the core ones, before the devices'). */
  driverCauses?: readonly CauseSpec[]
}

export class HostModel {
  readonly memory: GuestMemory
  readonly causes: CauseTable
  readonly ledger: SendLedger
  readonly mb: MigrationBitmap
  readonly kvm: KvmListener
  readonly dma: QemuSideDirtySource
  readonly vhost: QemuSideDirtySource
  readonly vfio?: VfioModel
  readonly virtioMem?: VirtioMemModel
  /** Every dirty source, in sync order (KVM first, as the memory listeners are registered). */
  readonly components: ModelComponent[]
  /** Component by event kind code, for events no driver takes. */
  readonly byKind: (ModelComponent | undefined)[] = []
  /** Devices with migration data of their own (SaveVMHandlers: VFIO). */
  readonly states: MigratableState[] = []
  /** The RamDiscardManager of discarded memory (virtio-mem), if any. */
  readonly discard?: DiscardManager
  /** How pages travel (network, local-remap, shared): src/replay/transport/. */
  readonly transport: Transport
  syncCount = 0
  /** Told the bytes of each guest write (gpa, len, pages [p0, p1)): XBZRLE's cache, when it is on. */
  byteWrites?: {write(gpa: number, len: number, p0: number, p1: number): void}
  lazyClears = 0
  /** transport=shared: dirty pages the syncs found and dropped (x-ignore-shared: RAM is not sent). */
  sharedDirtyPages = 0
  /**
   * Dirty pages the last sync handled one by one (MigrationBitmap.perPagePath: test, clear and a
   * TCG TLB reset each); what `sync-page-cost` charges. Sync #1 finds every such page dirty:
   * ram_block_add set each block's pages dirty for every client (DIRTY_CLIENTS_ALL) and nothing
   * clears the migration client's bits before the first migration_bitmap_sync.
   */
  lastSyncPerPageDirty = 0

  constructor(
    readonly header: TraceHeader,
    readonly layout: TraceLayout,
    readonly settings: ReplaySettings,
    opts: HostOptions = {},
  ) {
    this.memory = new GuestMemory(layout)
    // The core causes first, in a fixed order, so every run lists them alike.
    this.causes = new CauseTable(MAX_CAUSES)
    for (const c of Object.values(MODEL_CAUSES)) this.causes.code(c)
    for (const c of opts.driverCauses ?? []) this.causes.code(c)
    // Device causes in a fixed order too (VFIO, then virtio-mem), though virtio-mem is built first.
    if (header.vfio.length > 0) for (const c of Object.values(VFIO_CAUSES)) this.causes.code(c)
    this.ledger = new SendLedger(this.memory, layout.totalPages, layout.pageSize, this.causes.list, settings['zero-page-detection'] !== 'none')
    this.mb = new MigrationBitmap(layout, this.ledger, settings['x-clear-bitmap-shift'])
    this.kvm = new KvmListener(layout, {
      mode: dirtyLogMode(settings['dirty-log']),
      clearPolicy: settings['clear-policy'],
      vcpus: header.vcpus,
      ringSize: settings['ring-size'],
      pml: settings.pml,
      lazyClear: settings['lazy-clear'],
      causes: this.causes,
    })
    this.transport = new Transport(layout, settings)
    this.pageBytes =
      this.transport.kind === 'network'
        ? {nonzero: this.ledger.normalBytes, zero: this.ledger.zeroBytes}
        : {nonzero: this.transport.wireBytes(true), zero: this.transport.wireBytes(false)}
    this.dma = new QemuSideDirtySource('dma', layout, this.memory, this.causes)
    this.vhost = new QemuSideDirtySource('vhost', layout, this.memory, this.causes)
    const logClear = (a: number, b: number): void => this.logClear(a, b)
    if (header.virtioMem.length > 0) {
      this.virtioMem = new VirtioMemModel({
        layout,
        memory: this.memory,
        pageCauses: this.ledger,
        causes: this.causes,
        wire: {normalBytes: PAGE_HEADER_BYTES + layout.pageSize, zeroBytes: this.ledger.zeroPageDetection ? ZERO_PAGE_BYTES : PAGE_HEADER_BYTES + layout.pageSize},
        mb: this.mb,
        logClear,
        lazyClear: settings['lazy-clear'],
        clearBitmapShift: settings['x-clear-bitmap-shift'],
        discardAware: settings['virtio-mem-discard-aware'],
        unpluggedWrite: settings['virtio-mem-unplugged-write'],
      })
      this.discard = this.virtioMem
    }
    if (header.vfio.length > 0) {
      this.vfio = new VfioModel({
        layout,
        memory: this.memory,
        mb: this.mb,
        tracking: settings['vfio-tracking'],
        qemuVersion: settings['qemu-version'],
        stopCopyQueryFails: settings['vfio-stop-copy-query-fails'],
        hidden: this.virtioMem?.unplugged,
        causes: this.causes,
      })
      this.states.push(this.vfio)
      // vfio_register_ram_discard_listener: VFIO maps only plugged blocks and follows changes.
      if (this.virtioMem) this.virtioMem.listeners.push(this.vfio)
    }
    // Sync order. The bits OR into one bitmap whatever the order; the order decides which cause a
    // page dirty in several sources gets (the first to set it). Sources that re-send a page
    // whatever KVM's clearing does (QEMU-side DMA and vhost, VFIO) come before KVM, so a double
    // copy is blamed on the lazy-clear or sync window only when nothing else would have re-sent
    // the page. virtio-mem is last: its after-sync checks see every source's bits.
    this.components = [this.dma, this.vhost]
    if (this.vfio) this.components.push(this.vfio)
    this.components.push(this.kvm)
    if (this.virtioMem) this.components.push(this.virtioMem)
    for (const c of this.components) for (const k of c.kinds) this.byKind[k] = c
    this.reset(true)
  }

  /** Back to the start state; `fresh` (from the constructor): the bitmaps are still zero. */
  reset(fresh = false): void {
    this.memory.reset(undefined, fresh)
    this.ledger.reset(fresh)
    this.mb.reset(fresh)
    for (const c of this.components) c.reset(fresh)
    this.syncCount = 0
    this.lazyClears = 0
    this.sharedDirtyPages = 0
    this.lastSyncPerPageDirty = 0
    this.transport.reset()
  }

  /** ram_save_setup: bmap all ones, dirty logging on. */
  setup(now: number): void {
    this.mb.setAll()
    for (const c of this.components) c.logStart?.(now)
    if (this.transport.ramShared) this.dropShared()
  }

  /** memory_global_dirty_log_stop: the migration is over; tracking stops, virtio-mem is no longer busy. */
  logStop(now: number): void {
    this.vfio?.logStop()
    this.virtioMem?.logStop(now)
  }

  /**
   * migration_bitmap_sync: every listener contributes (memory_global_dirty_log_sync), the bits
   * move into bmap, and (physical_memory_sync_dirty_bitmap) each block's chunks are marked for a
   * lazy CLEAR, or cleared at once when lazy clear is off. Returns the newly dirty pages.
   * `devicesFinal`: the devices that cannot be postcopied complete here (the postcopy switchover
   * sync), so for them it is the last stage even when it is not for RAM.
   */
  sync(lastStage: boolean, now: number, devicesFinal = lastStage): number {
    this.syncCount++
    this.mb.newPages = 0
    this.mb.beginSync()
    const states = this.states as readonly unknown[]
    for (const c of this.components) c.logSync?.(this.mb, lastStage || (devicesFinal && states.includes(c)), now)
    if (this.settings['lazy-clear']) this.mb.markAllChunks()
    else for (const [a, b] of this.mb.blockRanges()) this.logClear(a, b)
    const fresh = this.mb.takeNewPages()
    this.lastSyncPerPageDirty = this.syncCount === 1 ? this.mb.perPagePathPages : this.mb.perPageDirty
    if (this.transport.ramShared) {
      this.sharedDirtyPages += fresh
      this.dropShared()
      // Both sides map the same memory: the destination can never hold a stale page.
      if (lastStage) this.memory.modified.fill(false)
    }
    for (const c of this.components) c.afterSync?.(lastStage, now)
    return fresh
  }

  /** x-ignore-shared: the blocks are skipped by the RAM stream (migrate_ram_is_ignored). */
  private dropShared(): void {
    this.mb.bmap.fill(false)
    this.mb.dirtyPages = 0
  }

  /** memory_region_clear_dirty_bitmap over global pages [a, b). */
  logClear(a: number, b: number): void {
    for (const c of this.components) c.logClear?.(a, b)
  }

  /** Wire bytes of a page with data and of a zero page when only the transport decides (sendWord). */
  readonly pageBytes: {readonly nonzero: number; readonly zero: number}

  /** sendPage's lazy CLEAR of page p's chunk (migration_clear_memory_region_dirty_bitmap). */
  lazyClearAt(p: number): void {
    const a = this.mb.takeChunk(p)
    if (a >= 0) {
      this.lazyClears++
      this.logClear(a, this.mb.pendingChunkEnd)
    }
  }

  /**
   * sendPage of every dirty page of word w from bit `from` up, for the last stage (no lazy CLEAR):
   * the same figures page by page would give. Returns the bits sent (0: none) and adds their
   * bytes to `out.bytes`.
   */
  sendWordLastStage(w: number, from: number, nzBytes: number, zBytes: number, out: {bytes: number}): number {
    const v = this.mb.takeWordFrom(w, from)
    if (v !== 0) out.bytes += this.ledger.recordWord(w, v, nzBytes, zBytes)
    return v
  }

  /**
   * One page leaves: migration_bitmap_clear_dirty (lazy CLEAR of its chunk unless last stage),
   * then the ledger reads and classifies the page. Returns bytes on the wire, 0 if it was clean.
   */
  sendPage(p: number, lastStage: boolean): number {
    if (!lastStage && this.settings['lazy-clear']) this.lazyClearAt(p)
    if (!this.mb.takePage(p)) return 0
    if (this.transport.kind === 'network') return this.ledger.recordSend(p)
    return this.ledger.recordSend(p, this.transport.wireBytes(this.memory.nonzero.get(p)))
  }

  /** Device data in the pending size (state_pending_estimate, or _exact after a sync). */
  pendingDeviceBytes(exact: boolean): number {
    let n = 0
    for (const s of this.states) n += s.pendingBytes(exact)
    return n
  }

  /** must_precopy: device data that cannot wait for postcopy (the estimate minus RAM held by devices). */
  mustPrecopyBytes(): number {
    let n = 0
    for (const s of this.states) n += s.pendingBytes(false) - s.postcopiableBytes()
    return n
  }

  /** Device data handed to the stream in one turn of the migration loop. */
  iterateDevices(): number {
    let n = 0
    for (const s of this.states) n += s.iterate()
    return n
  }

  /** Device data sent during the downtime (save_live_complete_precopy). */
  stopCopyDevices(): number {
    let n = 0
    for (const s of this.states) n += s.stopCopy()
    return n
  }

  /** Time (ns) of the next host timer (the KVM dirty-ring reaper), or Infinity. */
  nextTimer(): number {
    return this.kvm.nextTimer()
  }

  onTimer(now: number): void {
    this.kvm.onTimer(now)
  }

  /**
   * Pages whose destination copy differs from the source at the end, leaving out discarded
   * (unplugged virtio-mem) memory: the destination discards it (virtio_mem_post_load ->
   * virtio_mem_restore_unplugged) and the guest must not use it, so what a guest wrote there is
   * not a lost write; the virtio-mem section counts it apart.
   */
  lostWrites(): number {
    return this.ledger.lostWrites() - (this.discard ? this.discard.discardedStalePages(this.memory.modified) : 0)
  }

  componentData(): ComponentData {
    const out: Record<string, unknown> = {}
    for (const c of this.components) out[c.id] = c.data()
    return out as ComponentData
  }
}
