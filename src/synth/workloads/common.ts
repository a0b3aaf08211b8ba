/**
 * Building blocks shared by the page-access workloads: the region parameters, and a track that
 * emits one 4 KiB access per tick of a rate clock on a page its subclass picks.
 */
import {K, type EventBatch} from '../../trace/events.js'
import {UserError} from '../../util/errors.js'
import {RateClock} from '../clock.js'
import type {ParamDef} from '../params.js'
import type {PageSpace} from '../page-space.js'
import type {Rng} from '../prng.js'
import {fieldBits, type Track} from '../track.js'
import type {WorkloadContext} from './types.js'

export const REGION_PARAMS = {
  offset: {type: 'extent', default: 0, doc: 'start of the region the workload touches, from the start of guest RAM'},
  span: {type: 'extent', default: '100%', doc: 'size of that region (cut at the end of RAM)'},
} as const satisfies Record<string, ParamDef>

export const READ_RATIO: ParamDef = {type: 'fraction', default: 0, doc: 'share of accesses that are reads (the rest are writes)'}

/** A UserError about one parameter of this workload. */
export function paramError(ctx: WorkloadContext, name: string, reason: string, expected?: string, found?: string): UserError {
  return new UserError(reason, {field: `${ctx.field}.${name}`, expected, found})
}

/** What an access event (a guest read or write) sets besides its time and kind. */
export const ACCESS_FIELDS = fieldBits('vcpu', 'gpa', 'len')

export abstract class AccessTrack implements Track {
  readonly fields = ACCESS_FIELDS
  protected readonly clock: RateClock
  protected readonly rng: Rng
  protected readonly space: PageSpace
  protected readonly first: number
  protected readonly pages: number
  private readonly vcpu: number
  private readonly end: number
  private finished = false

  constructor(
    ctx: WorkloadContext,
    rate: number,
    private readonly readRatio: number,
  ) {
    this.clock = new RateClock(ctx.start, rate)
    this.rng = ctx.rng
    this.space = ctx.space
    this.first = ctx.region.first
    this.pages = ctx.region.pages
    this.vcpu = ctx.vcpu
    this.end = ctx.end
  }

  /** The page (in the page space) of the next access at time t, or -1 when the workload is done. */
  protected abstract pick(t: number): number

  fill(out: EventBatch, limit: number): boolean {
    const c = this.clock
    const end = this.end
    const rr = this.readRatio
    const space = this.space
    const ps = space.pageSize
    const vcpu = this.vcpu
    let n = out.length
    while (n < limit && c.t < end) {
      const page = this.pick(c.t)
      if (page < 0) {
        this.finished = true
        break
      }
      out.t[n] = c.t
      out.kind[n] = rr > 0 && this.rng.nextFloat() < rr ? K.read : K.write
      out.vcpu[n] = vcpu
      out.gpa[n] = space.gpaOf(page)
      out.len[n] = ps
      n++
      c.advance()
    }
    out.length = n
    return !this.finished && c.t < end
  }
}
