/**
 * The qemu-lab guest workload (qemu-lab/guest/dirtier.c), re-created from its parameters: the same
 * xorshift64 generator, seeded the same way, consumed in the same order (the random fill first,
 * then one or two draws per page write). What is exact and what is not:
 *  - the sequence of working-set pages written is exact (it depends only on seed and parameters);
 *    it is checked against the console: every `DIRTIER t=.. writes=W distinct=D` line must give D
 *    distinct pages among the next W re-created writes;
 *  - guest-physical addresses need the page map the dirtier prints with -m (`DIRTIER PFNMAP` /
 *    `DIRTIER PFNRUN` lines): without it the working set's frames are unknown. The guest kernel
 *    can move pages (a virtio-mem unplug migrates movable pages out of the blocks it returns), so
 *    the dirtier prints the map again in epochs: epoch 0 is the whole map, a later epoch lists the
 *    runs whose frames changed and `total`, the writes made before it; write k (0-based) uses every
 *    epoch with total <= k (lab/guest/dirtier.c);
 *  - times: the dirtier paces writes by the guest clock (write k near START + k/rate, within its
 *    0.5 ms sleep granularity); the console's `t=T ... total=N` lines give (T, N) points, and write
 *    k is placed by interpolating between them. START's host time comes from a host-stamped console
 *    (`[unix.micros] line`, written by the lab's migrate.py as src-console.log: ~2 ms), else it is
 *    estimated from the migration start (migrate.py waits warm-up + 0.2 s + the READY poll: ±0.1 s).
 */
import {readFileSync} from 'node:fs'
import {UserError} from '../../util/errors.js'
import type {LabConfig} from './layout.js'

const PAGE = 4096
const U64_PER_PAGE = PAGE / 8

/** xorshift64 (13, 7, 17) on two 32-bit halves: bit-exact with dirtier.c's xs64(), no BigInt. */
export class Xorshift64 {
  hi: number
  lo: number

  constructor(seed: bigint) {
    this.hi = Number((seed >> 32n) & 0xffffffffn)
    this.lo = Number(seed & 0xffffffffn)
  }

  /** Advance; the new state is in hi/lo. */
  step(): void {
    let hi = this.hi
    let lo = this.lo
    // x ^= x << 13
    hi = (hi ^ ((hi << 13) | (lo >>> 19))) >>> 0
    lo = (lo ^ (lo << 13)) >>> 0
    // x ^= x >> 7
    lo = (lo ^ ((lo >>> 7) | (hi << 25))) >>> 0
    hi = (hi ^ (hi >>> 7)) >>> 0
    // x ^= x << 17
    hi = (hi ^ ((hi << 17) | (lo >>> 15))) >>> 0
    lo = (lo ^ (lo << 17)) >>> 0
    this.hi = hi
    this.lo = lo
  }

  /** Next value modulo n (n < 2^21 keeps every product exact in a double). */
  nextMod(n: number): number {
    this.step()
    return ((this.hi % n) * (4294967296 % n) + (this.lo % n)) % n
  }

  /** The state as a bigint (tests). */
  get value(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo)
  }
}

/** dirtier.c: `-s S` sets rng_state = strtoull(S, NULL, 0) | 1; without -s a fixed constant. */
export function dirtierSeed(seed: number | undefined): bigint {
  return seed === undefined ? 88172645463325252n : BigInt(seed) | 1n
}

export interface DirtierParams {
  wsMib: number
  rate: number
  pattern: 'random' | 'hotspot' | 'seq'
  hotPct: number
  hotProb: number
  fill: 'random' | 'zero'
  seed: number | undefined
}

/** The page-index stream of a dirtier (working-set page of each write, in order). */
export class DirtierPages {
  readonly npages: number
  readonly nhot: number
  private readonly rng: Xorshift64
  private seq = 0
  private readonly pat: number

  constructor(readonly p: DirtierParams) {
    this.npages = (p.wsMib * 1024 * 1024) / PAGE
    this.nhot = Math.max(1, Math.floor((this.npages * p.hotPct) / 100))
    this.rng = new Xorshift64(dirtierSeed(p.seed))
    this.pat = p.pattern === 'seq' ? 2 : p.pattern === 'hotspot' ? 1 : 0
    // The fill draws one value per 8-byte word of the working set before the first write.
    if (p.fill === 'random') for (let i = 0, n = this.npages * U64_PER_PAGE; i < n; i++) this.rng.step()
  }

  /** Working-set page of the next write (mirrors dirtier.c's main loop). */
  next(): number {
    if (this.pat === 2) {
      const pg = this.seq++
      if (this.seq >= this.npages) this.seq = 0
      return pg
    }
    if (this.pat === 1 && this.rng.nextMod(100) < this.p.hotProb) return this.rng.nextMod(this.nhot)
    return this.rng.nextMod(this.npages)
  }
}

export function paramsFromConfig(cfg: LabConfig, file: string): DirtierParams {
  const a = cfg.args
  const need = (k: string, v: unknown): number => {
    if (typeof v !== 'number') throw new UserError('the lab config lacks a dirtier parameter', {file, field: `args.${k}`, expected: 'a number', found: JSON.stringify(v)})
    return v
  }
  const pattern = a.pattern ?? 'random'
  if (pattern !== 'random' && pattern !== 'hotspot' && pattern !== 'seq') throw new UserError('unknown dirtier pattern', {file, field: 'args.pattern', expected: 'random, hotspot or seq', found: JSON.stringify(pattern)})
  const fill = a.fill ?? 'random'
  if (fill !== 'random' && fill !== 'zero') throw new UserError('unknown dirtier fill', {file, field: 'args.fill', expected: 'random or zero', found: JSON.stringify(fill)})
  return {
    wsMib: need('ws', a.ws),
    rate: need('rate', a.rate),
    pattern,
    hotPct: a.hot ?? 10,
    hotProb: a.hotp ?? 90,
    fill,
    seed: typeof a.seed === 'number' ? a.seed : undefined,
  }
}

export interface ConsoleInterval {
  line: number
  /** Guest seconds since the dirtier's start (printed with ms precision). */
  t: number
  writes: number
  distinct: number
  /** Cumulative writes at t. */
  total: number
  /** Host time the line appeared (µs since the epoch), when the console is host-stamped; else -1. */
  hostUs: number
}

export interface PfnRun {
  vpage: number
  pfn: number
  npages: number
}

/** One printing of the page map: epoch 0 whole, later epochs the changed runs only. */
export interface PfnEpoch {
  epoch: number
  /** Writes made before this map took effect: writes k >= total use it. */
  total: number
  runs: PfnRun[]
  /** Console line of its header. */
  line: number
  /** The `DIRTIER PFNMAP epoch=E end` line was seen (a console cut short leaves it false). */
  complete: boolean
}

export interface ConsoleReport {
  intervals: ConsoleInterval[]
  /** The runs of epoch 0 (the whole map at the start). */
  pfnRuns: PfnRun[]
  /** Every epoch in console order; pfnEpochs[0] holds pfnRuns. */
  pfnEpochs: PfnEpoch[]
  configLine?: string
  /** Host time of `DIRTIER READY` (µs), when stamped; else -1. */
  readyHostUs: number
  /** PFNRUN lines of epoch 0 printed after READY (a map printed late does not describe the whole run). */
  lateRuns: number
  /** Line of the first `DIRTIER PFNRUNS` line that does not parse (a console garbled or cut mid-line), or -1. */
  badRunsLine: number
}

const INTERVAL = /^DIRTIER t=([0-9.]+) writes=(\d+) distinct=(\d+) total=(\d+)/
const PFNRUN = /^DIRTIER PFNRUN vpage=(\d+) pfn=0x([0-9a-f]+) npages=(\d+)/
/** `DIRTIER PFNRUNS V@P V+N@P ...`: the dirtier's compact runs (hex; N defaults to 1). */
const PFNRUNS = /^DIRTIER PFNRUNS((?: [0-9a-f]+(?:\+[0-9a-f]+)?@[0-9a-f]+)+)\s*$/
const RUN_TOKEN = /^([0-9a-f]+)(?:\+([0-9a-f]+))?@([0-9a-f]+)$/
/** `DIRTIER PFNMAP epoch=E total=T runs=R` (the first dirtier printed `DIRTIER PFNMAP runs=R`: epoch 0). */
const PFNMAP = /^DIRTIER PFNMAP (?:epoch=(\d+) total=(\d+) )?runs=(\d+)/
const PFNMAP_END = /^DIRTIER PFNMAP epoch=(\d+) end/
/** migrate.py's src-console.log prefix: `[SECONDS.MICROS] ` (host gettimeofday when the line appeared). */
const STAMP = /^\[(\d+)\.(\d{6})\] /

/**
 * A guest console: plain (src-serial.log) or host-stamped (src-console.log); both can be mixed.
 * `continued`: the destination's console after a migration (dst-console.log), where the same dirtier
 * process goes on: it printed READY on the source, so every interval line counts.
 */
export function parseConsole(text: string, opts: {continued?: boolean} = {}): ConsoleReport {
  const r: ConsoleReport = {intervals: [], pfnRuns: [], pfnEpochs: [], readyHostUs: -1, lateRuns: 0, badRunsLine: -1}
  const lines = text.split('\n')
  let ready = opts.continued === true
  let cur: PfnEpoch | undefined
  lines.forEach((raw, i) => {
    let line = raw.replace(/\r$/, '')
    let hostUs = -1
    const st = STAMP.exec(line)
    if (st) {
      hostUs = Number(st[1]) * 1e6 + Number(st[2])
      line = line.slice(st[0].length)
    }
    if (!line.startsWith('DIRTIER ')) return
    if (line.startsWith('DIRTIER CONFIG')) r.configLine = line
    if (line.startsWith('DIRTIER READY') && !ready) {
      ready = true
      r.readyHostUs = hostUs
    }
    let m = INTERVAL.exec(line)
    if (m && ready) r.intervals.push({line: i + 1, t: Number(m[1]), writes: Number(m[2]), distinct: Number(m[3]), total: Number(m[4]), hostUs})
    m = PFNMAP.exec(line)
    if (m) {
      cur = {epoch: m[1] === undefined ? 0 : Number(m[1]), total: m[2] === undefined ? 0 : Number(m[2]), runs: [], line: i + 1, complete: m[1] === undefined}
      r.pfnEpochs.push(cur)
      return
    }
    m = PFNMAP_END.exec(line)
    if (m && cur !== undefined && cur.epoch === Number(m[1])) {
      cur.complete = true
      return
    }
    if (line.startsWith('DIRTIER PFNRUNS')) {
      const ok = PFNRUNS.exec(line)
      if (!ok || cur === undefined) {
        if (r.badRunsLine < 0) r.badRunsLine = i + 1
        return
      }
      for (const tok of ok[1]!.trim().split(' ')) {
        const t = RUN_TOKEN.exec(tok)!
        cur.runs.push({vpage: Number.parseInt(t[1]!, 16), npages: t[2] === undefined ? 1 : Number.parseInt(t[2], 16), pfn: Number.parseInt(t[3]!, 16)})
        if (ready && cur.epoch === 0) r.lateRuns++
      }
      return
    }
    m = PFNRUN.exec(line)
    if (m) {
      // Runs without a header (the first dirtier's -m output) are epoch 0.
      if (cur === undefined) r.pfnEpochs.push((cur = {epoch: 0, total: 0, runs: [], line: i + 1, complete: true}))
      cur.runs.push({vpage: Number(m[1]), pfn: Number.parseInt(m[2]!, 16), npages: Number(m[3])})
      if (ready && cur.epoch === 0) r.lateRuns++
    }
  })
  r.pfnRuns = r.pfnEpochs[0]?.runs ?? []
  return r
}

/**
 * The page map as it changes over the run: `gpaOf` (bytes, per working-set page) for epoch 0, and
 * the later epochs to apply in write order. Checks that epoch 0 covers the working set, that later
 * runs stay inside it, and that epochs come in order.
 */
export function pageMapEpochs(rep: ConsoleReport, npages: number, consoleFile: string): {gpaOf: Float64Array; later: PfnEpoch[]; remapped: number} {
  if (rep.badRunsLine >= 0) throw new UserError('a page-map line does not parse', {file: consoleFile, line: rep.badRunsLine, expected: "'DIRTIER PFNRUNS' and runs V@P or V+N@P (hex), after a DIRTIER PFNMAP header"})
  const gpaOf = new Float64Array(npages).fill(-1)
  const first = rep.pfnEpochs[0]
  if (first === undefined) return {gpaOf, later: [], remapped: 0}
  for (const r of first.runs) for (let k = 0; k < r.npages && r.vpage + k < npages; k++) gpaOf[r.vpage + k] = (r.pfn + k) * PAGE
  let mapped = 0
  for (let i = 0; i < npages; i++) if (gpaOf[i]! >= 0) mapped++
  if (mapped < npages) throw new UserError("the console's DIRTIER PFNRUN lines do not cover the working set", {file: consoleFile, line: first.line, expected: `frames for all ${npages} working-set pages`, found: `${mapped} pages mapped`})
  const later = rep.pfnEpochs.slice(1)
  return {gpaOf, later, remapped: checkLaterEpochs(later, first, npages, consoleFile)}
}

/** Later epochs come in order after `prev` and stay inside the working set; returns the pages they move. */
function checkLaterEpochs(later: readonly PfnEpoch[], prev: Pick<PfnEpoch, 'epoch' | 'total'>, npages: number, consoleFile: string): number {
  let remapped = 0
  for (const e of later) {
    if (e.epoch <= prev.epoch || e.total < prev.total)
      throw new UserError('page map epochs out of order', {file: consoleFile, line: e.line, expected: `an epoch after ${prev.epoch} with total >= ${prev.total}`, found: `epoch=${e.epoch} total=${e.total}`})
    for (const r of e.runs)
      if (r.vpage + r.npages > npages) throw new UserError('a page-map run lies outside the working set', {file: consoleFile, line: e.line, expected: `pages below ${npages}`, found: `vpage=${r.vpage} npages=${r.npages}`})
    remapped += e.runs.reduce((n, r) => n + r.npages, 0)
    prev = e
  }
  return remapped
}

/**
 * Host time (µs) of the dirtier's `start` (taken just before it prints READY, t=0 of its lines):
 * every stamped line arrives after it was printed, so the earliest of READY's stamp and each
 * interval line's stamp minus its t bounds it best. -1 when the console is not stamped.
 */
export function consoleStartHostUs(rep: ConsoleReport): number {
  let best = rep.readyHostUs >= 0 ? rep.readyHostUs : Infinity
  for (const iv of rep.intervals) if (iv.hostUs >= 0) best = Math.min(best, iv.hostUs - Math.round(iv.t * 1e6))
  return Number.isFinite(best) ? best : -1
}

/**
 * Guest time (ns since start) of write k (0-based): linear between the console's (t, total)
 * points, starting at (0, 0); past the last point at the nominal rate.
 */
export class WriteClock {
  private readonly ts: Float64Array
  private readonly ns: Float64Array
  private seg = 0

  constructor(intervals: readonly ConsoleInterval[], private readonly rate: number) {
    const pts = intervals.filter((iv, i) => iv.total > 0 && (i === 0 || iv.total > intervals[i - 1]!.total))
    this.ts = Float64Array.from([0, ...pts.map((p) => p.t * 1e9)])
    this.ns = Float64Array.from([0, ...pts.map((p) => p.total)])
  }

  /** Time of write k; k must not decrease between calls. */
  at(k: number): number {
    const n = this.ns
    const last = n.length - 1
    while (this.seg < last && k >= n[this.seg + 1]!) this.seg++
    if (this.seg === last) return this.ts[last]! + ((k - n[last]!) * 1e9) / this.rate
    const a = this.seg
    return this.ts[a]! + ((this.ts[a + 1]! - this.ts[a]!) * (k - n[a]!)) / (n[a + 1]! - n[a]!)
  }
}

/**
 * Check the re-created page stream against the console's per-interval distinct counts; throws on
 * the first interval that differs. Returns the number of writes checked.
 */
export function verifyAgainstConsole(params: DirtierParams, rep: ConsoleReport, consoleFile: string): number {
  return verifyConsoles(params, [{rep, file: consoleFile}])
}

/** The same over consoles that follow one another (the source's, then the destination's after a migration). */
export function verifyConsoles(params: DirtierParams, consoles: readonly {rep: ConsoleReport; file: string}[]): number {
  const pages = new DirtierPages(params)
  const seen = new Uint8Array(pages.npages)
  let checked = 0
  for (const {rep, file} of consoles) {
    for (const iv of rep.intervals) {
      seen.fill(0)
      let distinct = 0
      for (let k = 0; k < iv.writes; k++) {
        const pg = pages.next()
        if (seen[pg] === 0) {
          seen[pg] = 1
          distinct++
        }
      }
      if (distinct !== iv.distinct)
        throw new UserError("the console's distinct-page count differs from the dirtier re-created from the config (wrong seed or parameters, or another run's console)", {
          file,
          line: iv.line,
          expected: `distinct=${distinct}`,
          found: `distinct=${iv.distinct}`,
        })
      checked += iv.writes
    }
  }
  return checked
}

/** A stream of re-created writes: `advance()` moves to the next; t (ns, trace time) and gpa. */
export interface WriteCursor {
  advance(): boolean
  t: number
  gpa: number
}

/** A (host time, writes done) point of a host-stamped console. */
export interface HostPoint {
  hostUs: number
  total: number
}

/**
 * Host time (µs) of write k >= from on the destination, after a postcopy switchover: the dirtier
 * runs again when the destination guest does (`resumeUs`, with `from` writes done), and each of the
 * destination console's host-stamped `total=` lines is a later (host time, writes done) point; write
 * k sits on the line between the points around it. The stamps are wall time, so the guest's waits on
 * page faults are inside them: the model's blocking moves the writes further (see docs/lab.md).
 * Returns undefined past the last point (the console says nothing about later writes).
 */
export function destinationTimes(resumeUs: number, from: number, points: readonly HostPoint[]): (k: number) => number | undefined {
  const hs = [resumeUs]
  const ns = [from]
  for (const p of points) {
    if (p.total <= ns[ns.length - 1]!) continue
    hs.push(Math.max(p.hostUs, hs[hs.length - 1]!))
    ns.push(p.total)
  }
  let seg = 0
  return (k) => {
    const last = ns.length - 1
    if (k < from || k >= ns[last]!) return undefined
    while (seg < last - 1 && k >= ns[seg + 1]!) seg++
    return hs[seg]! + ((hs[seg + 1]! - hs[seg]!) * (k - ns[seg]!)) / (ns[seg + 1]! - ns[seg]!)
  }
}

export interface Workload {
  params: DirtierParams
  writesVerified: number
  intervals: number
  hasGpas: boolean
  /** The console is host-stamped: write times are anchored to the host clock (~2 ms). */
  stamped: boolean
  /** The destination console's (host time, writes done) points, when one was given (postcopy). */
  destination?: {file: string; points: HostPoint[]; intervals: number; writesVerified: number; epochs: number}
  describe(): Record<string, unknown>
  /** Writes in trace time; undefined when they cannot be placed (no PFNRUN lines or no writes). */
  cursor(originUs: number, migrationStartNs: number): WriteCursor | undefined
  /**
   * The destination's writes after a postcopy switchover: write `from` (the first the source did
   * not make before it stopped) on, the guest running again at `resumeUs` (host µs), up to the
   * destination console's last point. Undefined without a destination console or page map.
   */
  destinationCursor(originUs: number, from: number, resumeUs: number): WriteCursor | undefined
}

/** migrate.py: READY seen (0.2 s poll), sleep(warm-up), QMP set-up, sleep(0.2), then `migrate`. */
const LAB_DELAY_AFTER_WARMUP_S = 0.2 + 0.1

function readConsole(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (e) {
    throw new UserError('cannot read the console log', {file, found: (e as NodeJS.ErrnoException).code ?? String(e)})
  }
}

/**
 * The destination console after a postcopy switchover: the same dirtier goes on, so its first
 * interval must start where the source's last one ended, and its lines must be host-stamped (its
 * times are the only clock of the destination's writes).
 */
function parseDestinationConsole(file: string, src: ConsoleReport): ConsoleReport {
  const dst = parseConsole(readConsole(file), {continued: true})
  const first = dst.intervals[0]
  if (first === undefined) throw new UserError('the destination console has no DIRTIER interval lines (did the destination guest run after the switchover?)', {file, expected: "lines such as '[1796107574.222937] DIRTIER t=36.418 writes=52486 distinct=43218 total=1203843 rate=52465'"})
  const unstamped = dst.intervals.find((iv) => iv.hostUs < 0)
  if (unstamped !== undefined) throw new UserError('the destination console is not host-stamped', {file, line: unstamped.line, expected: "the lab's dst-console.log ('[SECONDS.MICROS] DIRTIER t=...'), not dst-serial.log"})
  const srcTotal = src.intervals.at(-1)?.total ?? 0
  if (first.total - first.writes !== srcTotal)
    throw new UserError("the destination console does not continue the source console's dirtier", {file, line: first.line, expected: `a first interval starting at total=${srcTotal} (the source's last line)`, found: `total=${first.total} writes=${first.writes}`})
  if (dst.pfnEpochs.some((e) => e.epoch === 0)) throw new UserError('the destination console starts a new page map (epoch 0): not the same dirtier as the source', {file, line: dst.pfnEpochs.find((e) => e.epoch === 0)!.line})
  return dst
}

export function loadWorkload(cfg: LabConfig, consoleFile: string, configFile: string, dstConsoleFile?: string): Workload {
  const params = paramsFromConfig(cfg, configFile)
  const rep = parseConsole(readConsole(consoleFile))
  // An idle dirtier (-w 0 or -r 0) writes nothing after its fill: nothing to verify or re-create.
  const idle = params.wsMib === 0 || params.rate === 0
  if (rep.intervals.length === 0 && !idle) throw new UserError('the console log has no DIRTIER interval lines', {file: consoleFile, expected: "lines such as 'DIRTIER t=1.000 writes=4997 distinct=4806 total=4997 rate=4996'"})
  const dst = dstConsoleFile !== undefined && !idle ? parseDestinationConsole(dstConsoleFile, rep) : undefined
  const verifiedSrc = verifyAgainstConsole(params, rep, consoleFile)
  const verified = dst !== undefined ? verifyConsoles(params, [{rep, file: consoleFile}, {rep: dst, file: dstConsoleFile!}]) : verifiedSrc
  const npages = (params.wsMib * 1024 * 1024) / PAGE
  const map = pageMapEpochs(rep, npages, consoleFile)
  // Epochs the dirtier printed on the destination continue the source's (same process, same map).
  const dstEpochs = dst?.pfnEpochs ?? []
  if (dstEpochs.length > 0) {
    const last = map.later.at(-1) ?? rep.pfnEpochs[0] ?? {epoch: 0, total: 0}
    map.remapped += checkLaterEpochs(dstEpochs, last, npages, dstConsoleFile!)
    map.later = [...map.later, ...dstEpochs]
  }
  const hasGpas = rep.pfnRuns.length > 0
  const warmup = typeof cfg.args.warmup === 'number' ? cfg.args.warmup : 3
  const startUs = consoleStartHostUs(rep)
  const stamped = startUs >= 0
  const timing = stamped
    ? 'write k at the host-stamped dirtier start + its guest time (interpolated between the console\'s t/total lines); anchor error ~2 ms'
    : `write k at the estimated dirtier start (migration start - ${warmup} s warm-up - ${LAB_DELAY_AFTER_WARMUP_S} s, migrate.py's fixed delays) + its guest time; anchor error ~0.1 s`
  const destination =
    dst !== undefined
      ? {file: dstConsoleFile!, points: dst.intervals.map((iv) => ({hostUs: iv.hostUs, total: iv.total})), intervals: dst.intervals.length, writesVerified: verified - verifiedSrc, epochs: dstEpochs.length}
      : undefined

  /** Writes k = from, from+1, ... (until `timeNs` says undefined), gpa from the page map of k's epoch. */
  const makeCursor = (from: number, timeNs: (k: number) => number | undefined): WriteCursor => {
    const pages = new DirtierPages(params)
    for (let k = 0; k < from; k++) pages.next()
    let k = from
    // dirtier.c: counter is the number of writes so far, incremented before the store
    let counter = from
    // Each cursor applies the later epochs to its own copy (the importer walks the writes twice).
    const gpaOf = Float64Array.from(map.gpaOf)
    let nextEpoch = 0
    const c: WriteCursor = {
      t: 0,
      gpa: 0,
      advance(): boolean {
        const t = timeNs(k)
        if (t === undefined) return false
        while (nextEpoch < map.later.length && map.later[nextEpoch]!.total <= k) {
          for (const r of map.later[nextEpoch]!.runs) for (let j = 0; j < r.npages; j++) gpaOf[r.vpage + j] = (r.pfn + j) * PAGE
          nextEpoch++
        }
        const pg = pages.next()
        counter++
        // dirtier.c stores at mem[pg * 512 + (counter & 511)]: an 8-byte word inside the page.
        c.gpa = gpaOf[pg]! + (counter & (U64_PER_PAGE - 1)) * 8
        c.t = Math.round(t)
        k++
        return true
      },
    }
    return c
  }

  return {
    params,
    writesVerified: verified,
    intervals: rep.intervals.length,
    hasGpas,
    stamped,
    ...(destination !== undefined ? {destination} : {}),
    describe() {
      return {
        dirtier: {...params},
        consoleIntervalsVerified: rep.intervals.length,
        writesVerified: verified,
        consoleStamped: stamped,
        ...(destination !== undefined ? {destinationConsole: {file: destination.file, intervalsVerified: destination.intervals, writesVerified: destination.writesVerified, pageMapEpochs: destination.epochs}} : {}),
        ...(map.later.length > 0 ? {pageMapEpochs: map.later.map((e) => ({epoch: e.epoch, fromWrite: e.total, pagesMoved: e.runs.reduce((n, r) => n + r.npages, 0), complete: e.complete}))} : {}),
        writes: idle
          ? 'none: the dirtier was idle (no working set or rate 0)'
          : hasGpas
          ? `re-created: page sequence exact (PRNG verified against the console), GPAs from ${rep.pfnRuns.length} PFNRUN lines${map.later.length > 0 ? ` and ${map.later.length} later page-map epochs (${map.remapped} pages moved by the guest kernel)` : ''}, ${timing}`
          : 'not re-created: the console has no DIRTIER PFNRUN lines (the run was made without migrate.py --pfnmap), so the guest-physical frames of the working set are unknown; the page sequence itself was verified',
      }
    },
    cursor(originUs: number, migrationStartNs: number): WriteCursor | undefined {
      if (!hasGpas || params.rate <= 0) return undefined
      const clock = new WriteClock(rep.intervals, params.rate)
      const startNs = stamped && originUs >= 0 ? (startUs - originUs) * 1000 : migrationStartNs - (warmup + LAB_DELAY_AFTER_WARMUP_S) * 1e9
      return makeCursor(0, (k) => startNs + clock.at(k))
    },
    destinationCursor(originUs: number, from: number, resumeUs: number): WriteCursor | undefined {
      if (!hasGpas || params.rate <= 0 || destination === undefined) return undefined
      const at = destinationTimes(resumeUs, from, destination.points)
      return makeCursor(from, (k) => {
        const us = at(k)
        return us === undefined ? undefined : (us - originUs) * 1000
      })
    },
  }
}
