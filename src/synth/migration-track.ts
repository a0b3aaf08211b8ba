/**
 * The migration-control track: mig_start (with its parameters in QEMU's migrate-set-parameters
 * names), optional mig_set changes, and an optional switch to postcopy (migrate-start-postcopy).
 */
import {K, type EventBatch} from '../trace/events.js'
import {fieldBits, type Track} from './track.js'

export interface ControlEvent {
  t: number
  kind: 'mig_start' | 'mig_set' | 'mig_postcopy'
  params?: string
}

export class MigrationTrack implements Track {
  readonly fields = fieldBits('params')
  private next = 0
  private readonly events: ControlEvent[]

  constructor(events: readonly ControlEvent[]) {
    // Stable sort: equal times keep the spec's order.
    this.events = [...events].sort((a, b) => a.t - b.t)
  }

  fill(out: EventBatch, limit: number): boolean {
    let n = out.length
    while (n < limit && this.next < this.events.length) {
      const e = this.events[this.next++]!
      out.t[n] = e.t
      out.kind[n] = K[e.kind]
      if (e.params !== undefined) out.params.set(n, e.params)
      n++
    }
    out.length = n
    return this.next < this.events.length
  }
}
