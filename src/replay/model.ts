/**
 * The host model a replay runs against, wired once: guest memory, the send ledger, QEMU's
 * migration bitmap, and the dirty sources (KVM listener, emulated DMA, vhost). Both drivers use it.
 * More sources (VFIO, virtio-mem) plug in through `components`.
 */
import type {TraceHeader} from '../trace/header.js'
import type {TraceLayout} from '../trace/layout.js'
import {GuestMemory} from '../model/memory.js'
import {SendLedger} from '../ledger/ledger.js'
import {MigrationBitmap} from '../model/qemu/migration-bitmap.js'
import {KvmListener} from '../model/qemu/kvm-listener.js'
import {QemuSideDirtySource} from '../model/qemu/qemu-side.js'
import type {ModelComponent} from '../model/component.js'
import type {ReplaySettings} from './config.js'
import {Transport} from './transport/index.js'
import {DeviceModels} from './vfio-virtio-mem.js'

export class ReplayModel {
  readonly memory: GuestMemory
  readonly ledger: SendLedger
  readonly mb: MigrationBitmap
  readonly kvm: KvmListener
  readonly dma: QemuSideDirtySource
  readonly vhost: QemuSideDirtySource
  /** Every dirty source, in sync order (KVM first, as the memory listeners are registered). */
  readonly components: ModelComponent[]
  /** Component by event kind code, for events the engine does not handle itself. */
  readonly byKind: (ModelComponent | undefined)[] = []
  syncCount = 0
  lazyClears = 0
  /** How pages travel (network, local-remap, shared): src/replay/transport/. */
  readonly transport: Transport
  /** VFIO containers and virtio-mem devices of the header (src/replay/vfio-virtio-mem.ts). */
  readonly devices: DeviceModels
  /** transport=shared: dirty pages the syncs found and dropped (x-ignore-shared: RAM is not sent). */
  sharedDirtyPages = 0

  constructor(
    readonly header: TraceHeader,
    readonly layout: TraceLayout,
    readonly settings: ReplaySettings,
    extra: ModelComponent[] = [],
  ) {
    this.memory = new GuestMemory(layout)
    this.ledger = new SendLedger(this.memory, layout.pageSize, settings['zero-page-detection'] !== 'none')
    this.mb = new MigrationBitmap(layout, this.ledger, settings['x-clear-bitmap-shift'])
    this.kvm = new KvmListener(layout, {
      mode: settings['dirty-log'],
      clearPolicy: settings['clear-policy'],
      vcpus: header.vcpus,
      ringSize: settings['ring-size'],
      pml: settings.pml,
      lazyClear: settings['lazy-clear'],
    })
    this.transport = new Transport(layout, settings)
    this.dma = new QemuSideDirtySource('dma', layout, this.memory)
    this.vhost = new QemuSideDirtySource('vhost', layout, this.memory)
    this.devices = new DeviceModels({layout, memory: this.memory, ledger: this.ledger, mb: this.mb, settings, logClear: (a, b) => this.logClear(a, b)})
    this.components = [this.kvm, this.dma, this.vhost, ...this.devices.components, ...extra]
    for (const c of this.components) for (const k of c.kinds) this.byKind[k] = c
    this.reset()
  }

  reset(): void {
    this.memory.reset()
    this.ledger.reset()
    this.mb.reset()
    for (const c of this.components) c.reset()
    this.syncCount = 0
    this.lazyClears = 0
    this.sharedDirtyPages = 0
    this.transport.reset()
  }

  /** ram_save_setup: bmap all ones, dirty logging on. */
  setup(now: number): void {
    this.mb.setAll()
    for (const c of this.components) c.logStart?.(now)
    if (this.transport.ramShared) this.dropShared()
  }

  /**
   * migration_bitmap_sync: every listener contributes (memory_global_dirty_log_sync), the bits
   * move into bmap, and (physical_memory_sync_dirty_bitmap) each block's chunks are marked for a
   * lazy CLEAR, or cleared at once when lazy clear is off. Returns the newly dirty pages.
   */
  sync(lastStage: boolean, now: number): number {
    this.syncCount++
    this.mb.newPages = 0
    for (const c of this.components) c.logSync?.(this.mb, lastStage, now)
    if (this.settings['lazy-clear']) this.mb.markAllChunks()
    else for (const [a, b] of this.mb.blockRanges()) this.logClear(a, b)
    const fresh = this.mb.takeNewPages()
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

  /**
   * One page leaves: migration_bitmap_clear_dirty (lazy CLEAR of its chunk unless last stage),
   * then the ledger reads and classifies the page. Returns bytes on the wire, 0 if it was clean.
   */
  sendPage(p: number, lastStage: boolean): number {
    if (!lastStage && this.settings['lazy-clear']) {
      const a = this.mb.takeChunk(p)
      if (a >= 0) {
        this.lazyClears++
        this.logClear(a, this.mb.pendingChunkEnd)
      }
    }
    if (!this.mb.takePage(p)) return 0
    if (this.transport.kind === 'network') return this.ledger.recordSend(p)
    return this.ledger.recordSend(p, this.transport.wireBytes(this.memory.nonzero.get(p)))
  }

  /**
   * Pages whose destination copy differs from the source at the end, leaving out unplugged
   * virtio-mem memory: the destination discards it (virtio_mem_post_load ->
   * virtio_mem_restore_unplugged) and the guest must not use it, so what a guest wrote there is
   * not a lost write; the virtio-mem section counts it apart.
   */
  lostWrites(): number {
    return this.ledger.lostWrites() - this.devices.unpluggedStalePages(this.memory.modified)
  }

  componentData(): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {}
    for (const c of this.components) out[c.id] = c.data()
    return out
  }
}
