/**
 * Guest vCPU workloads over ordinary RAM: each access is one page-aligned write (or read) of one
 * guest page, at the workload's rate exactly.
 */
import {K, type EventBatch} from '../../trace/events.js'
import {RateClock} from '../clock.js'
import {Permutation} from '../permutation.js'
import {ZipfSampler} from '../zipf.js'
import type {Track} from '../track.js'
import {ACCESS_FIELDS, AccessTrack, READ_RATIO, REGION_PARAMS, paramError} from './common.js'
import type {WorkloadContext, WorkloadDef} from './types.js'

class UniformTrack extends AccessTrack {
  protected pick(): number {
    return this.first + this.rng.below(this.pages)
  }
}

class SequentialTrack extends AccessTrack {
  private cur = 0
  constructor(ctx: WorkloadContext, rate: number, private readonly stride: number) {
    super(ctx, rate, 0)
  }
  protected pick(): number {
    const p = this.first + this.cur
    this.cur = (this.cur + this.stride) % this.pages
    return p
  }
}

class OnceTrack extends AccessTrack {
  private i = 0
  constructor(ctx: WorkloadContext, rate: number, private readonly perm: Permutation | undefined) {
    super(ctx, rate, 0)
  }
  protected pick(): number {
    if (this.i >= this.pages) return -1
    const k = this.i++
    return this.first + (this.perm ? this.perm.at(k) : k)
  }
}

class HotsetTrack extends AccessTrack {
  constructor(
    ctx: WorkloadContext,
    rate: number,
    readRatio: number,
    private readonly hotOffset: number,
    private readonly hot: number,
    private readonly hotShare: number,
  ) {
    super(ctx, rate, readRatio)
  }
  protected pick(): number {
    const cold = this.pages - this.hot
    if (cold === 0 || (this.hot > 0 && this.rng.nextFloat() < this.hotShare)) return this.first + this.hotOffset + this.rng.below(this.hot)
    const c = this.rng.below(cold)
    return this.first + (c < this.hotOffset ? c : c + this.hot)
  }
}

class ZipfTrack extends AccessTrack {
  private readonly zipf: ZipfSampler
  constructor(ctx: WorkloadContext, rate: number, readRatio: number, exponent: number, private readonly perm: Permutation | undefined) {
    super(ctx, rate, readRatio)
    this.zipf = new ZipfSampler(this.pages, exponent)
  }
  protected pick(): number {
    const rank = this.zipf.sample(this.rng) - 1
    return this.first + (this.perm ? this.perm.at(rank) : rank)
  }
}

class PhasesTrack extends AccessTrack {
  private phase = -1
  private windowStart = 0
  constructor(
    ctx: WorkloadContext,
    rate: number,
    readRatio: number,
    private readonly wss: number,
    private readonly period: number,
    private readonly drift: boolean,
    private readonly origin: number,
  ) {
    super(ctx, rate, readRatio)
  }
  protected pick(t: number): number {
    const elapsed = t - this.origin
    if (this.drift) {
      // The window slides by one working set per period, wrapping around the region.
      this.windowStart = Math.floor((elapsed / this.period) * this.wss) % this.pages
    } else {
      const phase = Math.floor(elapsed / this.period)
      if (phase !== this.phase) {
        this.phase = phase
        this.windowStart = this.rng.below(this.pages - this.wss + 1)
      }
    }
    return this.first + ((this.windowStart + this.rng.below(this.wss)) % this.pages)
  }
}

/** Hot index pages (reads and writes), a sequential log (writes, wrapping), random heap pages. */
class DatabaseTrack implements Track {
  readonly fields = ACCESS_FIELDS
  private readonly clock: RateClock
  private logCur = 0
  constructor(
    private readonly ctx: WorkloadContext,
    rate: number,
    private readonly readRatio: number,
    private readonly indexPages: number,
    private readonly logPages: number,
    private readonly indexShare: number,
    private readonly logShare: number,
  ) {
    this.clock = new RateClock(ctx.start, rate)
  }
  fill(out: EventBatch, limit: number): boolean {
    const {rng, space, vcpu, end, region} = this.ctx
    const c = this.clock
    const ps = space.pageSize
    const heapFirst = region.first + this.indexPages + this.logPages
    const heapPages = region.pages - this.indexPages - this.logPages
    const logEnd = this.indexShare + this.logShare
    let n = out.length
    while (n < limit && c.t < end) {
      const u = rng.nextFloat()
      let page: number
      let canRead = true
      if (u < this.indexShare || (heapPages === 0 && u >= logEnd)) page = region.first + rng.below(this.indexPages)
      else if (u < logEnd) {
        page = region.first + this.indexPages + this.logCur
        this.logCur = (this.logCur + 1) % this.logPages
        canRead = false
      } else page = heapFirst + rng.below(heapPages)
      out.t[n] = c.t
      out.kind[n] = canRead && this.readRatio > 0 && rng.nextFloat() < this.readRatio ? K.read : K.write
      out.vcpu[n] = vcpu
      out.gpa[n] = space.gpaOf(page)
      out.len[n] = ps
      n++
      c.advance()
    }
    out.length = n
    return c.t < end
  }
}

const rate = (d: number) => ({type: 'rate', default: d, doc: 'accesses per second (split evenly between the vCPUs of the entry)'}) as const

export const idle: WorkloadDef = {
  name: 'idle',
  summary: 'an idle guest: a trickle of writes to a few kernel pages (timers, RCU, page tables); rate=0 for a silent guest',
  placement: 'per-vcpu',
  params: {rate: rate(20), ...REGION_PARAMS, span: {type: 'extent', default: '1M', doc: 'size of the pages it touches'}},
  create: (ctx, p) => new UniformTrack(ctx, p.num('rate'), 0),
}

export const uniform: WorkloadDef = {
  name: 'uniform',
  summary: 'uniformly random page writes over the region',
  placement: 'per-vcpu',
  params: {rate: rate(10000), ...REGION_PARAMS, readRatio: READ_RATIO},
  create: (ctx, p) => new UniformTrack(ctx, p.num('rate'), p.num('readRatio')),
}

export const sequential: WorkloadDef = {
  name: 'sequential',
  summary: 'a scan over the region, stride pages at a time, wrapping at its end (each vCPU scans its own slice)',
  placement: 'per-vcpu',
  partition: true,
  params: {rate: rate(10000), ...REGION_PARAMS, stride: {type: 'int', min: 1, default: 1, doc: 'pages between consecutive writes'}},
  create: (ctx, p) => new SequentialTrack(ctx, p.num('rate'), p.num('stride')),
}

export const onceWorkload: WorkloadDef = {
  name: 'once',
  summary: "every page of the region written exactly once, then nothing (mig_mon's 'once'); each vCPU takes its own slice",
  placement: 'per-vcpu',
  partition: true,
  params: {
    rate: rate(100000),
    ...REGION_PARAMS,
    order: {type: 'enum', values: ['sequential', 'random'], default: 'sequential', doc: 'page order: ascending, or a seeded random permutation'},
  },
  create: (ctx, p) => new OnceTrack(ctx, p.num('rate'), p.str('order') === 'random' ? new Permutation(ctx.region.pages, ctx.rng) : undefined),
}

function hotsetFactory(ctx: WorkloadContext, p: import('../params.js').Params): Track {
  const ps = ctx.space.pageSize
  const hot = p.pages('hotSize', ctx.region.pages, ps)
  const hotOffset = p.pages('hotOffset', ctx.region.pages, ps)
  if (hotOffset + hot > ctx.region.pages)
    throw paramError(ctx, 'hotSize', 'the hot set does not fit in the region', `hotOffset+hotSize <= ${ctx.region.pages} pages`, `${hotOffset + hot} pages`)
  return new HotsetTrack(ctx, p.num('rate'), p.num('readRatio'), hotOffset, hot, p.num('hotShare'))
}

const hotParams = (hotSize: string, hotShare: number, readRatio: number) =>
  ({
    hotSize: {type: 'extent', default: hotSize, doc: 'size of the hot set (a percentage is of the region)'},
    hotOffset: {type: 'extent', default: 0, doc: 'where the hot set starts inside the region'},
    hotShare: {type: 'fraction', default: hotShare, doc: 'share of accesses that go to the hot set; the rest go uniformly to the cold pages'},
    readRatio: {...READ_RATIO, default: readRatio},
  }) as const

export const hotset: WorkloadDef = {
  name: 'hotset',
  summary: 'a hot set written at hotShare of the rate, the cold rest of the region at the remainder',
  placement: 'per-vcpu',
  params: {rate: rate(20000), ...REGION_PARAMS, ...hotParams('10%', 0.9, 0)},
  create: hotsetFactory,
}

export const reads: WorkloadDef = {
  name: 'reads',
  summary: 'a read-mostly mix over a hot set (what postcopy faults on): hotset with readRatio 0.75',
  placement: 'per-vcpu',
  params: {rate: rate(20000), ...REGION_PARAMS, ...hotParams('20%', 0.8, 0.75)},
  create: hotsetFactory,
}

export const zipf: WorkloadDef = {
  name: 'zipf',
  summary: 'skewed popularity: page rank k is accessed with probability proportional to 1/k^exponent',
  placement: 'per-vcpu',
  params: {
    rate: rate(20000),
    ...REGION_PARAMS,
    exponent: {type: 'number', min: 0, exclusiveMin: true, default: 1, doc: 'Zipf exponent s (larger = more skewed)'},
    scatter: {type: 'bool', default: true, doc: 'scatter popular pages over the region with a seeded permutation (false: rank 1 is the first page)'},
    readRatio: READ_RATIO,
  },
  create: (ctx, p) =>
    new ZipfTrack(ctx, p.num('rate'), p.num('readRatio'), p.num('exponent'), p.bool('scatter') ? new Permutation(ctx.region.pages, ctx.rng) : undefined),
}

export const phases: WorkloadDef = {
  name: 'phases',
  summary: 'a working set of wss pages, written uniformly, that jumps to a new random place every period (switch) or slides one working set per period (drift)',
  placement: 'per-vcpu',
  params: {
    rate: rate(20000),
    ...REGION_PARAMS,
    wss: {type: 'extent', default: '10%', doc: 'working-set size (a percentage is of the region)'},
    period: {type: 'duration', default: '1s', doc: 'length of a phase'},
    mode: {type: 'enum', values: ['switch', 'drift'], default: 'switch', doc: 'how the working set moves'},
    readRatio: READ_RATIO,
  },
  create: (ctx, p) => {
    const wss = p.pages('wss', ctx.region.pages, ctx.space.pageSize)
    if (wss < 1 || wss > ctx.region.pages) throw paramError(ctx, 'wss', 'the working set must hold at least one page and fit in the region', `1 .. ${ctx.region.pages} pages`, `${wss} pages`)
    const period = p.num('period')
    if (period <= 0) throw paramError(ctx, 'period', 'the phase length must be positive', 'a time such as 500ms or 2s', '0')
    return new PhasesTrack(ctx, p.num('rate'), p.num('readRatio'), wss, period, p.str('mode') === 'drift', ctx.start)
  },
}

export const database: WorkloadDef = {
  name: 'database',
  summary: 'a database-like mix: hot index pages (indexShare of accesses), a sequential log that wraps (logShare, writes only), random heap pages (the rest)',
  placement: 'per-vcpu',
  params: {
    rate: rate(20000),
    ...REGION_PARAMS,
    indexSize: {type: 'extent', default: '2%', doc: 'index size, at the start of the region'},
    logSize: {type: 'extent', default: '64M', doc: 'log size, after the index'},
    indexShare: {type: 'fraction', default: 0.6, doc: 'share of accesses to the index'},
    logShare: {type: 'fraction', default: 0.2, doc: 'share of accesses that append to the log'},
    readRatio: {...READ_RATIO, doc: 'share of index and heap accesses that are reads'},
  },
  create: (ctx, p) => {
    const ps = ctx.space.pageSize
    const index = p.pages('indexSize', ctx.region.pages, ps)
    const log = p.pages('logSize', ctx.region.pages, ps)
    const iShare = p.num('indexShare')
    const lShare = p.num('logShare')
    if (index < 1) throw paramError(ctx, 'indexSize', 'the index must hold at least one page', '>= 1 page', `${index} pages`)
    if (log < 1) throw paramError(ctx, 'logSize', 'the log must hold at least one page', '>= 1 page', `${log} pages`)
    if (index + log > ctx.region.pages) throw paramError(ctx, 'logSize', 'index and log do not fit in the region', `indexSize+logSize <= ${ctx.region.pages} pages`, `${index + log} pages`)
    if (iShare + lShare > 1) throw paramError(ctx, 'logShare', 'indexShare + logShare must not exceed 1', '<= 1', String(iShare + lShare))
    return new DatabaseTrack(ctx, p.num('rate'), p.num('readRatio'), index, log, iShare, lShare)
  },
}
