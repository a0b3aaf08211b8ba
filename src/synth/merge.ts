/**
 * Merges tracks into one time-ordered stream of batches: a k-way merge on timestamps, copying runs
 * of events from the earliest track while they stay ahead of the next one. Ties are broken by track order (the migration-control track first, then the
 * workloads in spec order), so the output depends only on the spec and seed. Batches are reused:
 * memory stays bounded however many events are generated.
 */
import {createBatch, resetBatch, type EventBatch} from '../trace/events.js'
import type {Track} from './track.js'

const TRACK_BUFFER = 4096

/** Runs at least this long are copied column by column with TypedArray.set. */
const BULK_RUN = 16

/** Copy events [i, e) of src to position j of dst, column by column (every column). */
function copyRun(src: EventBatch, i: number, e: number, dst: EventBatch, j: number): void {
  dst.t.set(src.t.subarray(i, e), j)
  dst.kind.set(src.kind.subarray(i, e), j)
  dst.vcpu.set(src.vcpu.subarray(i, e), j)
  dst.dev.set(src.dev.subarray(i, e), j)
  dst.slot.set(src.slot.subarray(i, e), j)
  dst.gpa.set(src.gpa.subarray(i, e), j)
  dst.iova.set(src.iova.subarray(i, e), j)
  dst.len.set(src.len.subarray(i, e), j)
  dst.page.set(src.page.subarray(i, e), j)
  dst.count.set(src.count.subarray(i, e), j)
  dst.value.set(src.value.subarray(i, e), j)
  dst.op.set(src.op.subarray(i, e), j)
  dst.line.set(src.line.subarray(i, e), j)
  if (src.params.size > 0) for (const [k, p] of src.params) if (k >= i && k < e) dst.params.set(j + k - i, p)
}

export class TrackMerger {
  private readonly bufs: EventBatch[]
  private readonly pos: Int32Array
  private readonly live: Uint8Array
  /** Time of each track's next event; Infinity once it is exhausted. */
  private readonly headT: Float64Array
  private readonly out: EventBatch

  constructor(
    private readonly tracks: readonly Track[],
    batchSize: number,
  ) {
    this.out = createBatch(batchSize)
    this.bufs = tracks.length === 1 ? [] : tracks.map(() => createBatch(TRACK_BUFFER))
    this.pos = new Int32Array(tracks.length)
    this.live = new Uint8Array(tracks.length).fill(1)
    this.headT = new Float64Array(tracks.length).fill(Infinity)
    if (tracks.length > 1) for (let i = 0; i < tracks.length; i++) this.refill(i)
  }

  /** Refill track i's buffer and its head time (Infinity when it has nothing more). */
  private refill(i: number): void {
    const b = this.bufs[i]!
    resetBatch(b)
    this.pos[i] = 0
    while (this.live[i] && b.length === 0) {
      if (!this.tracks[i]!.fill(b, TRACK_BUFFER)) this.live[i] = 0
    }
    this.headT[i] = b.length > 0 ? b.t[0]! : Infinity
  }

  /** The next batch of merged events (reused between calls), or undefined at the end. */
  next(): EventBatch | undefined {
    const out = this.out
    if (this.tracks.length === 1) return this.nextSingle()
    out.params.clear()
    out.length = 0
    const cap = out.t.length
    const heads = this.headT
    const k = heads.length
    // The output's columns, for the one-event runs of interleaved tracks (copied event by event,
    // with the destination columns loaded once per batch rather than once per event).
    const oT = out.t
    const oKind = out.kind
    const oVcpu = out.vcpu
    const oDev = out.dev
    const oSlot = out.slot
    const oGpa = out.gpa
    const oIova = out.iova
    const oLen = out.len
    const oPage = out.page
    const oCount = out.count
    const oValue = out.value
    const oOp = out.op
    const oLine = out.line
    let j = 0
    while (j < cap) {
      // The earliest head, and the one after it (ties go to the lower track index). Tracks are
      // few (vCPUs and devices), so a scan beats a heap here.
      let m = -1
      let mt = Infinity
      let bi = 0x7fffffff
      let bt = Infinity
      for (let x = 0; x < k; x++) {
        const t = heads[x]!
        if (t < mt) {
          bt = mt
          bi = m < 0 ? 0x7fffffff : m
          mt = t
          m = x
        } else if (t < bt) {
          bt = t
          bi = x
        }
      }
      if (m < 0) break
      // Copy m's events while they stay ahead of every other track's head.
      const src = this.bufs[m]!
      const t = src.t
      const n = src.length
      let i = this.pos[m]!
      const tieOk = m < bi
      // The run of m's events that stay ahead of every other head (and fit in the output).
      let e = i
      const eMax = Math.min(n, i + (cap - j))
      while (e < eMax && (t[e]! < bt || (tieOk && t[e] === bt))) e++
      if (e - i >= BULK_RUN) {
        copyRun(src, i, e, out, j)
        j += e - i
        i = e
      } else {
        const params = src.params.size > 0 ? src.params : undefined
        for (; i < e; i++, j++) {
          oT[j] = t[i]!
          oKind[j] = src.kind[i]!
          oVcpu[j] = src.vcpu[i]!
          oDev[j] = src.dev[i]!
          oSlot[j] = src.slot[i]!
          oGpa[j] = src.gpa[i]!
          oIova[j] = src.iova[i]!
          oLen[j] = src.len[i]!
          oPage[j] = src.page[i]!
          oCount[j] = src.count[i]!
          oValue[j] = src.value[i]!
          oOp[j] = src.op[i]!
          oLine[j] = src.line[i]!
          if (params !== undefined) {
            const p = params.get(i)
            if (p !== undefined) out.params.set(j, p)
          }
        }
      }
      this.pos[m] = i
      if (i >= n) this.refill(m)
      else heads[m] = t[i]!
    }
    out.length = j
    return j > 0 ? out : undefined
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
