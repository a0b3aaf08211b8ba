/**
 * Stop policies: when the migration thread syncs the dirty bitmap and when it switches over.
 * - qemu (migration_iteration_run): sync when the pending estimate is under the threshold
 *   (bandwidth of the last 100 ms window x downtime-limit), complete when the exact pending is
 *   at most the threshold. Syncs happen as the remainder shrinks, not at the end of a pass.
 * - rounds (the textbook geometric model): sync after each full pass over the dirty set, stop when
 *   the new dirty set is at most rate x downtime-limit, or after max-iterations (default 30).
 * - xen (xc_domain_save): after each pass stop when fewer than 50 pages are dirty, after
 *   iteration index 29, or when more than 3x guest RAM was sent.
 * A policy sees the engine through PrecopyControl and never touches model state directly.
 */
import type {ReplaySettings, StopPolicyName} from './settings.js'

/** `postcopy`: the run switched to postcopy (result.postcopy.trigger says why). */
export type StopReason = 'converged' | 'max-iterations' | 'data-cap' | 'time-cap' | 'trace-end' | 'cancelled' | 'postcopy'

export interface PrecopyControl {
  readonly settings: ReplaySettings
  readonly pageSize: number
  /** Pages set in the migration bitmap (migration_dirty_pages). */
  readonly dirtyPages: number
  /** threshold_size of the last migration_update_counters (bytes). */
  readonly thresholdBytes: number
  /** Syncs so far (dirty_sync_count; 1 after setup). */
  readonly syncCount: number
  readonly pagesSent: number
  readonly guestPages: number
  /** Bytes the policy's rate allows in downtime-limit (the textbook V_th). */
  readonly roundsThresholdBytes: number
  /**
   * Pending bytes: RAM dirty pages plus device data (qemu_savevm_state_pending_estimate, or
   * _exact: VFIO adds stop_copy_size).
   */
  pendingBytes(exact: boolean): number
  sync(): void
  /** migration_can_switchover: false while switchover-ack waits for the destination. */
  canSwitchover(): boolean
  complete(reason: StopReason): void
}

export interface StopPolicy {
  readonly name: StopPolicyName
  /** Called at each turn of the migration thread's loop, before it sends more. */
  decide(m: PrecopyControl): void
}

/** Live iterations completed so far: each sync after the setup one closes one. */
const liveDone = (m: PrecopyControl): number => m.syncCount - 1

export const qemuPolicy: StopPolicy = {
  name: 'qemu',
  decide(m) {
    // migration_iteration_run: est = dirty_pages * TPS (+ VFIO precopy bytes); exact (a sync, and
    // VFIO's stop_copy_size) only when the estimate is below the threshold.
    let pending = m.pendingBytes(false)
    if (pending < m.thresholdBytes) {
      m.sync()
      pending = m.pendingBytes(true)
    }
    // complete_ready = can_switchover && pending <= threshold_size
    if (pending <= m.thresholdBytes && m.canSwitchover()) return m.complete('converged')
    const max = m.settings['max-iterations']
    if (max > 0 && liveDone(m) >= max) m.complete('max-iterations')
  },
}

export const roundsPolicy: StopPolicy = {
  name: 'rounds',
  decide(m) {
    if (m.dirtyPages > 0) return
    m.sync()
    if (m.pendingBytes(true) <= m.roundsThresholdBytes && m.canSwitchover()) return m.complete('converged')
    const max = m.settings['max-iterations'] || 30
    if (liveDone(m) >= max) m.complete('max-iterations')
  },
}

export const xenPolicy: StopPolicy = {
  name: 'xen',
  decide(m) {
    if (m.dirtyPages > 0) return
    m.sync()
    const it = liveDone(m) - 1 // index of the pass just finished
    if (m.dirtyPages < m.settings['xen-min-pages'] && m.canSwitchover()) return m.complete('converged')
    if (it >= (m.settings['max-iterations'] || 29)) return m.complete('max-iterations')
    if (m.pagesSent > m.guestPages * m.settings['xen-max-factor']) m.complete('data-cap')
  },
}

export const POLICIES: Record<StopPolicyName, StopPolicy> = {qemu: qemuPolicy, rounds: roundsPolicy, xen: xenPolicy}
