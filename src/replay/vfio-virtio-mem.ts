/**
 * The VFIO and virtio-mem parts of the replay model, wired once per replay: which components
 * exist (only when the trace header has the devices), how VFIO follows virtio-mem's plug and
 * unplug (RamDiscardManager listeners), and the few questions the engine asks them: may this guest
 * write happen (unplugged memory), how much device data is pending, what the device sends in a live
 * iteration and at stop-copy.
 */
import type {TraceLayout} from '../trace/layout.js'
import type {GuestMemory} from '../model/memory.js'
import type {SendLedger} from '../ledger/ledger.js'
import type {MigrationBitmap} from '../model/qemu/migration-bitmap.js'
import type {ModelComponent} from '../model/component.js'
import type {Bitmap} from '../model/bitmap.js'
import {VfioModel} from '../model/vfio/component.js'
import {VirtioMemModel} from '../model/virtio-mem/component.js'
import type {ReplaySettings} from './config.js'

export interface DeviceModelDeps {
  layout: TraceLayout
  memory: GuestMemory
  ledger: SendLedger
  mb: MigrationBitmap
  settings: ReplaySettings
  logClear(a: number, b: number): void
}

export class DeviceModels {
  readonly vfio?: VfioModel
  readonly virtioMem?: VirtioMemModel
  /** In sync order: VFIO, then virtio-mem (whose after-sync checks see every source's bits). */
  readonly components: ModelComponent[] = []
  /**
   * Pages whose guest writes the engine must hand to guestWrite() first (unplugged virtio-mem
   * blocks), as the words of a page bitmap; undefined when there is no virtio-mem device.
   */
  readonly writeGuard?: Uint32Array

  constructor(deps: DeviceModelDeps) {
    const {layout, settings} = deps
    if (layout.header.virtioMem.length > 0) {
      this.virtioMem = new VirtioMemModel({
        layout,
        memory: deps.memory,
        ledger: deps.ledger,
        mb: deps.mb,
        logClear: (a, b) => deps.logClear(a, b),
        lazyClear: settings['lazy-clear'],
        clearBitmapShift: settings['x-clear-bitmap-shift'],
        discardAware: settings['virtio-mem-discard-aware'],
        unpluggedWrite: settings['virtio-mem-unplugged-write'],
      })
      this.writeGuard = this.virtioMem.unplugged.words
    }
    if (layout.header.vfio.length > 0) {
      this.vfio = new VfioModel({
        layout,
        memory: deps.memory,
        mb: deps.mb,
        tracking: settings['vfio-tracking'],
        stopCopyQueryFails: settings['vfio-stop-copy-query-fails'],
        hidden: this.virtioMem?.unplugged,
      })
      this.components.push(this.vfio)
      // vfio_register_ram_discard_listener: VFIO maps only plugged blocks and follows changes.
      if (this.virtioMem) this.virtioMem.listeners.push(this.vfio)
    }
    if (this.virtioMem) this.components.push(this.virtioMem)
  }

  /** Pages set in `modified` that lie in unplugged virtio-mem blocks (0 without virtio-mem). */
  unpluggedStalePages(modified: Bitmap): number {
    return this.virtioMem ? this.virtioMem.unpluggedStalePages(modified) : 0
  }

  /** A guest write to a guarded page (unplugged): counted; false = refused, do not apply it. */
  guestWrite(p: number): boolean {
    return this.virtioMem ? this.virtioMem.guestWrite(p) : true
  }

  /** Device data in the pending size (estimate, or exact after a sync). */
  pendingBytes(exact: boolean): number {
    return this.vfio ? this.vfio.pendingBytes(exact) : 0
  }

  /** Device precopy data sent in this loop turn (vfio_save_iterate). */
  iterate(): number {
    return this.vfio ? this.vfio.iterate() : 0
  }

  /** Device data sent during the downtime (vfio_save_complete_precopy). */
  stopCopy(): number {
    return this.vfio ? this.vfio.stopCopy() : 0
  }

  /** The migration is over: tracking stops, virtio-mem stops answering BUSY. */
  migrationEnded(now: number): void {
    this.vfio?.logStop()
    this.virtioMem?.logStop(now)
  }

  /** The postcopy switchover with the final-sync hole closed: discarded ranges leave the bitmap. */
  clearDiscardedAtSwitchover(): number {
    return this.virtioMem ? this.virtioMem.clearDiscardedOnResume() : 0
  }

  /** Postcopy recovery: discarded ranges leave the reloaded bitmap again. */
  postcopyResume(): number {
    return this.virtioMem ? this.virtioMem.clearDiscardedOnResume() : 0
  }
}
