/**
 * Merges tracks into one time-ordered stream of batches: a k-way merge on timestamps. Ties are
 * broken by track order (the migration-control track first, then the workloads in spec order), so
 * the output depends only on the spec and seed. Batches are reused: memory stays bounded however
 * many events are generated.
 *
 * Every track fills its own region of one shared source batch, so the merge works in two passes
 * per output batch: the order (an index into the source per output event, from the time column
 * alone, emitting runs of one track while its times stay below the other heads), then a gather
 * of each column through that index. Neither pass reloads a track's columns per run, which is
 * what the event-by-event copy did when tracks interleave one event at a time (4 vCPUs of equal
 * rates: every run is one event). Only the columns some track may set are reset and gathered
 * (Track.fields); the output's other columns keep their unset values from its creation.
 */
import {FIELD_INDEX, FIELDS, createBatch, resetBatch, type EventBatch} from '../trace/events.js'
import {ANY_FIELD, type Track} from './track.js'

/** Events a track fills at a time (its region of the shared source batch). */
const TRACK_BUFFER = 4096

const B_VCPU = 1 << FIELD_INDEX.vcpu
const B_DEV = 1 << FIELD_INDEX.dev
const B_SLOT = 1 << FIELD_INDEX.slot
const B_GPA = 1 << FIELD_INDEX.gpa
const B_IOVA = 1 << FIELD_INDEX.iova
const B_LEN = 1 << FIELD_INDEX.len
const B_PAGE = 1 << FIELD_INDEX.page
const B_COUNT = 1 << FIELD_INDEX.count
const B_VALUE = 1 << FIELD_INDEX.value
const B_OP = 1 << FIELD_INDEX.op
const B_PARAMS = 1 << FIELD_INDEX.params
/** The batch's `line` column, which is no event field (a track that does not say what it sets may set it). */
const B_LINE = 1 << FIELDS.length

/** dst[j] = src[at[j]] for j in [from, to). */
function gatherF64(dst: Float64Array, src: Float64Array, at: Int32Array, from: number, to: number): void {
  for (let j = from; j < to; j++) dst[j] = src[at[j]!]!
}
function gatherI32(dst: Int32Array, src: Int32Array, at: Int32Array, from: number, to: number): void {
  for (let j = from; j < to; j++) dst[j] = src[at[j]!]!
}
function gatherU8(dst: Uint8Array, src: Uint8Array, at: Int32Array, from: number, to: number): void {
  for (let j = from; j < to; j++) dst[j] = src[at[j]!]!
}

export class TrackMerger {
  /** The tracks' regions: track x fills [x * TRACK_BUFFER, x * TRACK_BUFFER + TRACK_BUFFER). */
  private readonly src: EventBatch
  /** Next unmerged event of each track, and the end of what it filled (indices into src). */
  private readonly pos: Int32Array
  private readonly end: Int32Array
  /** Params entries in each track's filled region (only control tracks have any). */
  private readonly paramsIn: Int32Array
  private readonly live: Uint8Array
  /** Each track's Track.fields, and their union. */
  private readonly fields: Int32Array
  private readonly anyFields: number
  /** Time of each track's next event; Infinity once it is exhausted. */
  private readonly headT: Float64Array
  /** Source index of each output event. */
  private readonly order: Int32Array
  /** The track whose region mergeOrder used up (to refill before merging on), or -1. */
  private drained = -1
  private readonly out: EventBatch

  /**
   * @param everyColumn reset and copy every column whatever the tracks declare (Track.fields): the
   *   reference the tests compare the declared merge with
   */
  constructor(
    private readonly tracks: readonly Track[],
    batchSize: number,
    everyColumn = false,
  ) {
    const k = tracks.length
    this.out = createBatch(batchSize)
    this.src = createBatch(k === 1 ? 0 : k * TRACK_BUFFER)
    this.order = new Int32Array(k === 1 ? 0 : batchSize)
    this.pos = new Int32Array(k)
    this.end = new Int32Array(k)
    this.paramsIn = new Int32Array(k)
    this.live = new Uint8Array(k).fill(1)
    this.fields = Int32Array.from(tracks, (tr) => (everyColumn ? ANY_FIELD : (tr.fields ?? ANY_FIELD)))
    this.anyFields = this.fields.reduce((a, f) => a | f, 0)
    // The output's columns no track declares are never written (gather skips them): say so to the
    // writers (EventBatch.unset). One track fills the output itself, so then nothing is promised.
    // (t_ns, kind and params are always carried.)
    if (k > 1) this.out.unset = ANY_FIELD & ~this.anyFields & ~(B_LINE | B_PARAMS | 0b11)
    this.headT = new Float64Array(k).fill(Infinity)
    if (k > 1) for (let i = 0; i < k; i++) this.refill(i)
  }

  /** Refill track x's region and its head time (Infinity when it has nothing more). */
  private refill(x: number): void {
    const s = this.src
    const base = x * TRACK_BUFFER
    const e = this.end[x]!
    // Unset fields back to their unset values (as resetBatch does), over what the track filled.
    const f = this.fields[x]!
    if (e > base) {
      if (f & B_VCPU) s.vcpu.fill(-1, base, e)
      if (f & B_DEV) s.dev.fill(-1, base, e)
      if (f & B_SLOT) s.slot.fill(-1, base, e)
      if (f & B_GPA) s.gpa.fill(-1, base, e)
      if (f & B_IOVA) s.iova.fill(-1, base, e)
      if (f & B_LEN) s.len.fill(-1, base, e)
      if (f & B_PAGE) s.page.fill(-1, base, e)
      if (f & B_COUNT) s.count.fill(-1, base, e)
      if (f & B_VALUE) s.value.fill(-1, base, e)
      if (f & B_OP) s.op.fill(0, base, e)
      if (f & B_LINE) s.line.fill(0, base, e)
    }
    if (this.paramsIn[x]! > 0) for (const key of [...s.params.keys()]) if (key >= base && key < e) s.params.delete(key)
    s.length = base
    while (this.live[x] && s.length === base) {
      if (!this.tracks[x]!.fill(s, base + TRACK_BUFFER)) this.live[x] = 0
    }
    const filled = s.length
    let withParams = 0
    if (s.params.size > 0) for (const key of s.params.keys()) if (key >= base && key < filled) withParams++
    this.paramsIn[x] = withParams
    this.pos[x] = base
    this.end[x] = filled
    this.headT[x] = filled > base ? s.t[base]! : Infinity
  }

  /** The next batch of merged events (reused between calls), or undefined at the end. */
  next(): EventBatch | undefined {
    if (this.tracks.length === 1) return this.nextSingle()
    const out = this.out
    out.params.clear()
    let j = 0
    for (;;) {
      // The order as far as the output's end or a track's region's end; its events are copied
      // before that region is refilled (which overwrites them).
      const to = this.mergeOrder(j)
      this.gather(j, to)
      j = to
      if (this.drained < 0) break
      this.refill(this.drained)
    }
    out.length = j
    return j > 0 ? out : undefined
  }

  /** Copy the events of order[from, to) from the source to the output, column by column. */
  private gather(from: number, to: number): void {
    const o = this.out
    const s = this.src
    const at = this.order
    const f = this.anyFields
    gatherF64(o.t, s.t, at, from, to)
    gatherU8(o.kind, s.kind, at, from, to)
    if (f & B_VCPU) gatherI32(o.vcpu, s.vcpu, at, from, to)
    if (f & B_DEV) gatherI32(o.dev, s.dev, at, from, to)
    if (f & B_SLOT) gatherI32(o.slot, s.slot, at, from, to)
    if (f & B_GPA) gatherF64(o.gpa, s.gpa, at, from, to)
    if (f & B_IOVA) gatherF64(o.iova, s.iova, at, from, to)
    if (f & B_LEN) gatherF64(o.len, s.len, at, from, to)
    if (f & B_PAGE) gatherF64(o.page, s.page, at, from, to)
    if (f & B_COUNT) gatherF64(o.count, s.count, at, from, to)
    if (f & B_VALUE) gatherF64(o.value, s.value, at, from, to)
    if (f & B_OP) gatherU8(o.op, s.op, at, from, to)
    if (f & B_LINE) gatherF64(o.line, s.line, at, from, to)
  }

  /**
   * Fill `order` from index j with the source indices of the next events in time order (and copy
   * their params entries to the output), until the output is full, every track is exhausted, or
   * one track's region has been used up: then `drained` is that track (to refill), else -1.
   * Returns the end of what it filled.
   */
  private mergeOrder(j: number): number {
    const heads = this.headT
    const k = heads.length
    const order = this.order
    const cap = order.length
    const t = this.src.t
    const pos = this.pos
    const end = this.end
    this.drained = -1
    while (j < cap) {
      // The earliest head, and the one after it (ties go to the lower track index). Tracks are
      // few (vCPUs and devices), so a scan beats a heap here.
      let m = -1
      let mt = Infinity
      let bi = 0x7fffffff
      let bt = Infinity
      for (let x = 0; x < k; x++) {
        const h = heads[x]!
        if (h < mt) {
          bt = mt
          bi = m < 0 ? 0x7fffffff : m
          mt = h
          m = x
        } else if (h < bt) {
          bt = h
          bi = x
        }
      }
      if (m < 0) break
      // m's events while they stay ahead of every other head (on a tie, while m's index is the
      // lower), as far as the output has room.
      let i = pos[m]!
      const from = i
      const eMax = Math.min(end[m]!, i + (cap - j))
      if (m < bi) while (i < eMax && t[i]! <= bt) order[j++] = i++
      else while (i < eMax && t[i]! < bt) order[j++] = i++
      if (this.paramsIn[m]! > 0) this.copyParams(from, i, j - (i - from))
      pos[m] = i
      if (i >= end[m]!) {
        this.drained = m
        break
      }
      heads[m] = t[i]!
    }
    return j
  }

  /** The params entries of source events [from, to), which went to the output from index j. */
  private copyParams(from: number, to: number, j: number): void {
    const sp = this.src.params
    const op = this.out.params
    for (let i = from; i < to; i++) {
      const p = sp.get(i)
      if (p !== undefined) op.set(j + i - from, p)
    }
  }

  /** One track: it fills the output batch itself, with no copy. */
  private nextSingle(): EventBatch | undefined {
    const out = this.out
    resetBatch(out)
    const cap = out.t.length
    while (this.live[0] && out.length < cap) {
      if (!this.tracks[0]!.fill(out, cap)) this.live[0] = 0
    }
    return out.length > 0 ? out : undefined
  }
}
