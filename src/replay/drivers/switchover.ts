/**
 * The end of a precopy migration, and what it leaves: the switchover to the destination
 * (migration_completion_precopy), a cancel, or the switch to postcopy (postcopy_start), with the
 * times and sizes of the downtime's parts.
 */
import type {TraceLayout} from '../../trace/layout.js'
import type {HostModel} from '../host.js'
import type {IterationBook} from '../iterations.js'
import type {StopReason} from '../policies.js'
import type {Sender} from '../sender/index.js'
import type {ReplaySettings} from '../settings.js'
import type {GuestClock} from '../throttle-clock.js'
import {PostcopyPhase} from './postcopy.js'

export interface SwitchoverDeps {
  host: HostModel
  sender: Sender
  book: IterationBook
  clock: GuestClock
  layout: TraceLayout
  /** migration_bitmap_sync at `now` (last stage, or the postcopy switchover's plain sync). */
  sync(lastStage: boolean, now: number, postcopy: boolean): void
  /** Time the migration thread still owes to syncs (sync-cost), taken once. */
  takeSyncDebt(): number
}

export class Switchover {
  stopReason: StopReason | undefined
  /** vm_stop: the downtime clock starts. */
  stopNs = Number.NaN
  endNs = Number.NaN
  ramEndNs = Number.NaN
  vfioEndNs = Number.NaN
  vfioStateBytes = 0
  finalPages = 0
  finalBytes = 0
  /**
   * The RAM records' wire bytes (Sender.ramRecordBytes) by run state, as ram_transferred_add()
   * files them: while the guest ran (precopy-bytes), and with the VM stopped (downtime-bytes).
   */
  precopyRamBytes = 0
  downtimeRamBytes = 0
  post?: PostcopyPhase

  constructor(private readonly deps: SwitchoverDeps) {}

  /**
   * migration_completion_precopy at `now`: the VM stops, the last-stage sync, ram_save_complete
   * sends everything left at the link rate (no limit, no lazy clear), then VFIO's device state
   * (vfio_save_complete_precopy) and the non-iterable device state. Returns the migration's end.
   */
  complete(reason: StopReason, now: number, settings: ReplaySettings): number {
    const {host, sender} = this.deps
    this.stopReason = reason
    this.stopNs = now
    sender.mark(now)
    this.precopyRamBytes = sender.ramRecordBytes
    this.deps.sync(true, now, false)
    // migration_completion: vm_stop_force_state (vm-stop-cost), then the last-stage sync, whose
    // time is part of the downtime too; ram_save_complete sends after both. No page is dirtied
    // after `now` (the guest is stopped), so the sync's set is the one at `now`.
    const ramStart = now + settings['vm-stop-cost'] * 1e6 + this.deps.takeSyncDebt()
    const ram = sender.sendRemaining(ramStart)
    this.finalPages = ram.pages
    this.finalBytes = ram.bytes
    this.downtimeRamBytes = sender.ramRecordBytes - this.precopyRamBytes
    this.ramEndNs = ramStart + ram.ns
    this.vfioStateBytes = host.stopCopyDevices()
    this.vfioEndNs = this.ramEndNs + sender.sendUnlimited(this.vfioStateBytes)
    // qemu_savevm_state_complete_precopy_non_iterable (vmstate_save of each device), then
    // QEMU_VM_EOF, the vmdesc JSON and qemu_fflush: host time (device-state-cost) besides the
    // bytes at the link rate (device-state-bytes).
    this.endNs = this.vfioEndNs + settings['device-state-cost'] * 1e6 + sender.sendUnlimited(settings['device-state-bytes'])
    this.end(this.endNs)
    return this.endNs
  }

  /** migrate_cancel at `now`: nothing more is sent, the source keeps running. */
  cancel(now: number): void {
    this.stopReason = 'cancelled'
    this.stopNs = now
    this.deps.sender.mark(now)
    this.precopyRamBytes = this.deps.sender.ramRecordBytes
    this.ramEndNs = now
    this.vfioEndNs = now
    this.endNs = now
    this.end(now)
  }

  /**
   * postcopy_start at `now`: the plain switchover sync (ram_postcopy_send_discard_bitmap:
   * migration_bitmap_sync(rs, false)), the non-postcopiable devices' data, then the phase on the
   * destination.
   */
  startPostcopy(now: number, trigger: string, settings: ReplaySettings, startNs: number): PostcopyPhase {
    const {host, sender, book, clock, layout} = this.deps
    this.stopReason = 'postcopy'
    this.stopNs = now
    sender.mark(now)
    this.precopyRamBytes = sender.ramRecordBytes
    // Iterations completed before the switch (the one under way, cut short, is not counted).
    const precopyIterations = book.live.length - (host.mb.dirtyPages > 0 ? 1 : 0)
    this.deps.sync(false, now, true)
    // That sync re-marks pages the guest wrote while unplugged, and nothing clears discarded
    // ranges again before the discard bitmap goes out (they are cleared only at setup and on
    // resume): the "final-sync hole". Closing it clears them as ramblock_dirty_bitmap_clear_discarded_pages.
    if (!settings['virtio-mem-postcopy-hole']) host.discard?.clearDiscardedAgain()
    // Non-postcopiable iterables complete first (VFIO stop-copy) and go in the package.
    this.vfioStateBytes = host.stopCopyDevices()
    // The sync's time (sync-cost, sync-page-cost) is spent with the VM stopped, before the discards.
    // postcopy_start stopped the VM first (vm_stop_force_state: postcopy-stop-cost), before it.
    const syncNs = settings['postcopy-stop-cost'] * 1e6 + this.deps.takeSyncDebt()
    // postcopy_start stopped the source's vCPUs for good (the guest runs on the destination): from
    // now on the sender threads share the source host with no busy vCPU (host-cpus).
    sender.costs.setVmStopped(true)
    this.post = new PostcopyPhase(
      {host, costs: sender.costs, layout, settings, clock, vcpus: clock.vcpus, startNs, trigger, precopyIterations, extraPackageBytes: this.vfioStateBytes, syncNs},
      now,
    )
    return this.post
  }

  /** The postcopy phase is over (or the trace is, and the guest is idle from then on). */
  finishPostcopy(traceOver: boolean): number {
    const post = this.post!
    if (traceOver) post.endOfTrace()
    this.endNs = post.endNs
    this.end(this.endNs)
    return this.endNs
  }

  private end(now: number): void {
    this.deps.host.logStop(now)
    this.deps.book.close(now)
  }
}
