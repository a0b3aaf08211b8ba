/**
 * When precopy hands over to postcopy. QEMU switches when the user has asked for it
 * (migrate-start-postcopy sets start_postcopy) at the next migration_iteration_run; migtrace asks
 * on the user's behalf:
 * - `postcopy-after=N`: after N precopy iterations (a pass over the dirty set ends with a sync);
 *   0 switches at the first turn of the migration thread (pure postcopy);
 * - `postcopy-after-syncs=K`: once dirty_sync_count has reached K. A user who polls
 *   query-migrate and sends migrate-start-postcopy when dirty-sync-count says K does this: the
 *   count goes up at the start of migration_bitmap_sync, and QEMU's ram_save_pending() syncs
 *   before migration_iteration_run() tests start_postcopy, so the switch comes in the turn of sync
 *   K, when that sync is done (the engine re-tests after its policy's sync), and postcopy_start's
 *   own sync (in ram_postcopy_send_discard_bitmap) finds only what was dirtied since;
 * - `postcopy-at=T`: T ms after the migration start;
 * - a `mig_postcopy` event in the trace (a recorded migrate-start-postcopy);
 * - `postcopy-on-stall=true`: when the dirty set at the last syncs stopped shrinking (the
 *   report's "stalled" rule), or when a cap (max-iterations, time-cap, data-cap, trace end) would
 *   force a stop-and-copy switchover (the engine asks `onForcedStop`).
 * Like QEMU the check comes before the convergence check of the stop policy (postcopy_start is
 * tested before complete_ready in migration_iteration_run).
 */
import type {ReplaySettings} from './settings.js'
import type {IterationRow} from './result.js'

/**
 * The settings ask for a switch to postcopy, so the postcopy-ram capability is on from the start
 * (a trace's mig_postcopy event alone is known only when it comes, so it does not count: such a
 * trace gets the advise discard only with a setting, e.g. postcopy-at at or after the event;
 * docs/stream.md, "Postcopy's advise discard").
 */
export function postcopyAsked(s: ReplaySettings): boolean {
  return s['postcopy-after'] !== undefined || s['postcopy-after-syncs'] !== undefined || s['postcopy-at'] !== undefined || s['postcopy-on-stall']
}

export class PostcopyTrigger {
  /** A mig_postcopy event arrived (migrate-start-postcopy). */
  requested = false

  constructor(private settings: ReplaySettings) {}

  updateSettings(s: ReplaySettings): void {
    this.settings = s
  }

  /**
   * At a turn of the migration thread: the reason to start postcopy now, or undefined.
   * `syncs` is dirty_sync_count, `dirtyPages` the bits left in bmap (0: a pass just ended).
   */
  check(syncs: number, dirtyPages: number, now: number, startNs: number, rows: readonly IterationRow[]): string | undefined {
    const s = this.settings
    if (this.requested) return 'trace-event'
    const after = s['postcopy-after']
    if (after !== undefined) {
      const passes = syncs - 1 + (dirtyPages === 0 ? 1 : 0)
      if (passes >= after) return 'after-iterations'
    }
    const afterSyncs = s['postcopy-after-syncs']
    if (afterSyncs !== undefined && syncs >= afterSyncs) return 'after-syncs'
    const at = s['postcopy-at']
    if (at !== undefined && now - startNs >= at * 1e6) return 'at-time'
    if (s['postcopy-on-stall'] && stalled(rows)) return 'stall'
    return undefined
  }

  /** A cap would force the switchover: with postcopy-on-stall, postcopy takes over. */
  onForcedStop(reason: string): string | undefined {
    return this.settings['postcopy-on-stall'] ? `cap:${reason}` : undefined
  }
}

/** The dirty set at the last 3 live syncs within 5 % of the latest (as stallInfo judges it). */
export function stalled(rows: readonly IterationRow[]): boolean {
  const live = rows.filter((r) => r.phase === 'live')
  if (live.length < 3) return false
  const last = live.at(-1)!.dirtyPagesAtSync
  const tail = live.slice(-4, -1).map((r) => r.dirtyPagesAtSync)
  return tail.every((d) => d > 0 && Math.abs(last - d) / d < 0.05)
}
