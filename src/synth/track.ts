/**
 * A track is one time-ordered source of generated events: one workload on one vCPU, one device,
 * or the migration-control track. Tracks write straight into the typed-array columns of a batch
 * (only the columns their kinds use; the batch comes reset, so the others read as unset).
 */
import {FIELD_INDEX, FIELDS, type EventBatch, type OptionalField} from '../trace/events.js'

/** Every column of a batch: what a track that does not say which it sets may set. */
export const ANY_FIELD = (1 << (FIELDS.length + 1)) - 1

/** The bit set of Track.fields for these fields. */
export function fieldBits(...fields: OptionalField[]): number {
  return fields.reduce((m, f) => m | (1 << FIELD_INDEX[f]), 0)
}

export interface Track {
  /**
   * The fields this track may set besides t_ns and kind, as bits by FIELDS position (fieldBits());
   * the merger resets and copies only those columns (params excepted: their entries are always
   * carried). Absent: any column, the batch's `line` included.
   */
  readonly fields?: number
  /**
   * Append events to `out` from `out.length` until it holds `limit` events or the track has no
   * more; set `out.length`. Times never decrease. Returns false once the track is exhausted.
   */
  fill(out: EventBatch, limit: number): boolean
}

/** A track that never produces anything (an idle workload with rate 0, an empty window). */
export class EmptyTrack implements Track {
  readonly fields = 0
  fill(): boolean {
    return false
  }
}
