/**
 * Ground truth for `migtrace record`: a recording of the lab's dirtier (lab/guest/dirtier.c)
 * checked against the writes re-created from its seed (src/import/qemu/dirtier.ts).
 *
 * The dirtier's writes W[0..N) are exact: the page sequence from the seed (verified against every
 * console interval's distinct-page count first), the frame from the printed page map (its epochs
 * included), the word from the write counter ((k + 1) & 511, 8 bytes). The recording keeps the
 * first store by a vCPU to a page per epoch, so its records of working-set frames R must be:
 *  1. exact: R restricted to dirtier stores is a subsequence of W, address for address (each
 *     record is matched to the next write at the same address, in order; a record of a
 *     working-set frame that matches no write is the kernel's, counted apart);
 *  2. complete: every write k is covered: its page has a matched record at k itself, or an earlier
 *     one in the same epoch of trace time. Write k's time is not known, but it is not before the
 *     last matched record before it (prev). No epoch boundary can lie between prev and k unless k
 *     is recorded itself: every write after a boundary whose page has no record in the new epoch
 *     yet is the first store to its page there, and no record lies between prev and k. So an
 *     unrecorded k is covered exactly when its page's latest record is in prev's epoch; otherwise
 *     the plugin *missed* it.
 * Everything else in the recording (boot, the fill, the rest of the guest) is the guest kernel's
 * and other programs' writes: counted per console interval (records and distinct pages).
 */
import {readFileSync} from 'node:fs'
import {openTrace} from '../trace/read/index.js'
import {K} from '../trace/events.js'
import {DirtierPages, pageMapEpochs, parseConsole, verifyAgainstConsole, type DirtierParams} from '../import/qemu/dirtier.js'

const PAGE = 4096

export interface IntervalTruth {
  /** Console line `DIRTIER t=..`: guest seconds since READY. */
  t: number
  writes: number
  distinct: number
  /** Writes of the interval recorded themselves (the first store to their page in an epoch). */
  recorded: number
  /** Writes covered by an earlier record of their page in the same epoch. */
  sameEpoch: number
  missed: number
  /** Records of the rest of the guest in the interval's time span, and their distinct pages. */
  otherRecords: number
  otherPages: number
}

export interface GroundTruth {
  writesRecreated: number
  intervals: IntervalTruth[]
  /** Records of working-set frames that match no dirtier write (the kernel touching them). */
  foreignWsRecords: number
  /** Records before the dirtier's first write (boot, the fill). */
  recordsBeforeFirstWrite: number
  recordsTotal: number
  epochNs: number
  missed: number
}

export interface GroundTruthInput {
  trace: string
  console: string
  params: DirtierParams
}

/** The dirtier's writes: GPA of each (the 8-byte word), in order. */
export function recreateWrites(params: DirtierParams, consoleText: string, consoleFile: string, n: number): Float64Array {
  const rep = parseConsole(consoleText)
  verifyAgainstConsole(params, rep, consoleFile)
  const pages = new DirtierPages(params)
  const {gpaOf, later} = pageMapEpochs(rep, pages.npages, consoleFile)
  const out = new Float64Array(n)
  let e = 0
  for (let k = 0; k < n; k++) {
    while (e < later.length && later[e]!.total <= k) {
      for (const r of later[e]!.runs) for (let i = 0; i < r.npages; i++) gpaOf[r.vpage + i] = (r.pfn + i) * PAGE
      e++
    }
    const pg = pages.next()
    // dirtier.c: counter++ then mem[pg * 512 + (counter & 511)] = counter.
    out[k] = gpaOf[pg]! + ((k + 1) & 511) * 8
  }
  return out
}

export async function checkGroundTruth(input: GroundTruthInput): Promise<GroundTruth> {
  const text = readFileSync(input.console, 'utf8')
  const rep = parseConsole(text)
  const ivs = rep.intervals
  const n = ivs.length > 0 ? ivs[ivs.length - 1]!.total : 0
  // The dirtier went on writing after its last console line until QEMU quit: those writes are
  // re-created too (up to 10 s more at its rate), so their records match, but are not judged.
  const tail = Math.max(0, Math.round(input.params.rate * 10))
  const W = recreateWrites(input.params, text, input.console, n + tail)
  const wsFrames = new Set<number>()
  for (const ep of rep.pfnEpochs) for (const r of ep.runs) for (let i = 0; i < r.npages; i++) wsFrames.add(r.pfn + i)

  const tr = await openTrace(input.trace)
  const epochNs = Number(tr.header.source?.epochNs ?? 0)
  // Pass over the trace: working-set records (t, gpa) and everything else (t, page).
  const wsT: number[] = []
  const wsA: number[] = []
  const otherT: number[] = []
  const otherP: number[] = []
  for await (const b of tr.events())
    for (let i = 0; i < b.length; i++) {
      if (b.kind[i] !== K.write) continue
      const g = b.gpa[i]!
      if (wsFrames.has(Math.floor(g / PAGE))) {
        wsT.push(b.t[i]!)
        wsA.push(g)
      } else {
        otherT.push(b.t[i]!)
        otherP.push(Math.floor(g / PAGE))
      }
    }

  // Anchor: the first record at the address of one of the first writes that the next records
  // follow as a subsequence (the first write's page may already have a record in its epoch).
  const LOOKAHEAD = 1 << 16
  const follows = (j0: number, k0: number): boolean => {
    let k = k0
    let ok = 0
    for (let j = j0; j < wsA.length && ok < 32; j++) {
      let kk = k
      while (kk < W.length && kk < k + LOOKAHEAD && W[kk] !== wsA[j]) kk++
      if (kk >= W.length || kk >= k + LOOKAHEAD) return false
      k = kk + 1
      ok++
    }
    return ok > 0
  }
  let start = -1
  let startK = 0
  for (let j = 0; j < wsA.length && start < 0; j++)
    for (let k0 = 0; k0 < Math.min(16, n); k0++)
      if (wsA[j] === W[k0] && follows(j, k0)) {
        start = j
        startK = k0
        break
      }
  // Match: each record to the next write at its address.
  const matchPos = new Int32Array(wsA.length).fill(-1)
  let foreign = 0
  let k = startK
  if (start >= 0)
    for (let j = start; j < wsA.length; j++) {
      let kk = k
      while (kk < W.length && kk < k + LOOKAHEAD && W[kk] !== wsA[j]) kk++
      if (kk < W.length && kk < k + LOOKAHEAD) {
        matchPos[j] = kk
        k = kk + 1
      } else foreign++
    }
  // Per write: the matched record at it (if any), and the times of the matched records around it.
  const recAt = new Float64Array(n).fill(-1)
  for (let j = 0; j < wsA.length; j++) if (matchPos[j]! >= 0 && matchPos[j]! < n) recAt[matchPos[j]!] = wsT[j]!
  const prevT = new Float64Array(n)
  let last = -1
  for (let i = 0; i < n; i++) {
    if (recAt[i]! >= 0) last = recAt[i]!
    prevT[i] = last
  }
  const pageOf = (a: number): number => Math.floor(a / PAGE)
  const lastRec = new Map<number, number>() // page -> time of its latest matched record so far
  const epochOf = (t: number): number => (epochNs > 0 ? Math.floor(t / epochNs) : t)
  const verdict = new Uint8Array(n) // 1 recorded, 2 same epoch, 3 missed
  for (let i = 0; i < n; i++) {
    const p = pageOf(W[i]!)
    if (recAt[i]! >= 0) {
      verdict[i] = 1
      lastRec.set(p, recAt[i]!)
      continue
    }
    const lr = lastRec.get(p)
    if (lr === undefined || epochNs === 0) {
      verdict[i] = 3
      continue
    }
    verdict[i] = epochOf(prevT[i]!) === epochOf(lr) ? 2 : 3
  }
  // Per interval.
  const out: IntervalTruth[] = []
  let from = 0
  let oi = 0
  for (let x = 0; x < ivs.length; x++) {
    const iv = ivs[x]!
    const to = iv.total
    const c = {recorded: 0, sameEpoch: 0, missed: 0}
    const distinct = new Set<number>()
    for (let i = from; i < to; i++) {
      distinct.add(pageOf(W[i]!))
      const v = verdict[i]!
      if (v === 1) c.recorded++
      else if (v === 2) c.sameEpoch++
      else c.missed++
    }
    // The interval's span of trace time: from its first write's time to the next interval's.
    const t0 = from < n ? Math.max(0, prevT[from]!) : Infinity
    const t1 = to < n ? Math.max(0, prevT[to]!) : Infinity
    let records = 0
    const pages = new Set<number>()
    while (oi < otherT.length && otherT[oi]! < t0) oi++
    let oj = oi
    while (oj < otherT.length && otherT[oj]! < t1) {
      records++
      pages.add(otherP[oj]!)
      oj++
    }
    out.push({t: iv.t, writes: to - from, distinct: distinct.size, ...c, otherRecords: records, otherPages: pages.size})
    from = to
  }
  const firstT = start >= 0 ? wsT[start]! : Infinity
  const before = wsT.filter((t) => t < firstT).length + otherT.filter((t) => t < firstT).length
  return {
    writesRecreated: n,
    intervals: out,
    foreignWsRecords: foreign,
    recordsBeforeFirstWrite: before,
    recordsTotal: wsT.length + otherT.length,
    epochNs,
    missed: out.reduce((s, x) => s + x.missed, 0),
  }
}

/** The result as a Markdown table (docs/record.md quotes one). */
export function groundTruthMarkdown(g: GroundTruth): string {
  const rows = g.intervals.map((x) => `| ${x.t.toFixed(3)} | ${x.writes} | ${x.distinct} | ${x.recorded} | ${x.sameEpoch} | ${x.missed} | ${x.otherRecords} | ${x.otherPages} |`)
  return [
    '| interval (guest s) | dirtier writes | distinct pages | recorded themselves | same epoch as a record | missed | other writes (kernel, ...) | their pages |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n')
}
