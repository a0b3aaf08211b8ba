/**
 * A track is one time-ordered source of generated events: one workload on one vCPU, one device,
 * or the migration-control track. Tracks write straight into the typed-array columns of a batch
 * (only the columns their kinds use; the batch comes reset, so the others read as unset).
 */
import type {EventBatch} from '../trace/events.js'

export interface Track {
  /**
   * Append events to `out` from `out.length` until it holds `limit` events or the track has no
   * more; set `out.length`. Times never decrease. Returns false once the track is exhausted.
   */
  fill(out: EventBatch, limit: number): boolean
}

/** A track that never produces anything (an idle workload with rate 0, an empty window). */
export class EmptyTrack implements Track {
  fill(): boolean {
    return false
  }
}
