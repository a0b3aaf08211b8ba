/**
 * Measures the migration thread's per-page time in the kept lab runs (lab/runs/<run>/trace-src.log.gz),
 * as scripts/measure-sync-cost.ts does for the syncs.
 *   npx tsx scripts/measure-page-cost.ts [lab/runs] [--sections]
 * Each RAM section of the live phase (savevm_state_iterate -> savevm_section_end on the migration
 * thread: one ram_save_iterate) is one sample:
 * - busy time: the section's duration, the thread's own time (ram_save_iterate returns when the
 *   window's budget is spent, after MAX_WAIT, or when RAM is clean; the rate limit's sleep,
 *   migration_rate_limit, is between sections);
 * - pages scanned: the drop of `migrate_pending` (ram_save_pending's remaining bytes) across the
 *   section; a sync between two pendings adds its `dirty_pages`, taken back out;
 * - normal pages: the section's ram_save_page lines (single thread), or with multifd the pages of the
 *   multifd_send packets the channels sent during the section (ram_save_multifd_page queues them;
 *   7.2 flushes at every section end, multifd_send_sync_main, so they are sent before it ends);
 * - zero pages: scanned - normal (save_zero_page runs in the migration thread in 7.2 with or
 *   without multifd: ram_save_target_page calls it first).
 * A least-squares fit of busy = a x normal + b x zero over a run's sections gives the two costs.
 * Sections that carry no page, or that straddle the switchover, are left out. The per-page
 * `ram_save_page` trace line is itself part of a single-threaded run's normal-page time
 * (multifd runs have no per-page line).
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {coldMemoryCapture} from '../src/lab/host-memory.js'

interface Section {
  t0: number
  ms: number
  normal: number
  scanned: number
  pass: number
  /** The section ended with the budget spent or MAX_WAIT (not RAM clean): its time is all work. */
  windowMs: number
}

interface RunFigures {
  run: string
  multifd: boolean
  sections: Section[]
  pass1: {ms: number; busyMs: number; normal: number; zero: number; mbps: number}
  /** The downtime's pass, after the last-stage sync: pages (pending at the stop + found by the sync), normal ones, ms. */
  final: {pages: number; normal: number; ms: number}
  limitMBps: number
  /** The run's guest RAM: preallocated (--prealloc), cold (first touches allocate: docs/lab.md), or not said (older runs). */
  memory: 'prealloc' | 'cold' | '?'
}

const args = process.argv.slice(2)
const dir = args.find((a) => !a.startsWith('--')) ?? 'lab/runs'
const showSections = args.includes('--sections')
const LINE = /^(\d+)@(\d+\.\d+):(\w+) ?(.*)$/
const PAGE = 4096

function measure(run: string): RunFigures | undefined {
  const trace = join(dir, run, 'trace-src.log.gz')
  if (!existsSync(trace)) return undefined
  const cfg = JSON.parse(readFileSync(join(dir, run, 'config.json'), 'utf8')) as {args: {bandwidth: number; prealloc?: unknown}; host_memory?: Parameters<typeof coldMemoryCapture>[0]['host_memory']}
  const cold = coldMemoryCapture(cfg)
  const memory = cfg.args.prealloc === true ? 'prealloc' : cold === true ? 'cold' : '?'
  const text = gunzipSync(readFileSync(trace)).toString('utf8')
  let mig = ''
  const sections: Section[] = []
  let multifd = false
  let cur: {t0: number; normal: number; pendingBefore: number; pass: number} | undefined
  let pending = Number.NaN
  let syncAdd = 0
  let pass = 0
  let stopped = false
  let lastEnd: Section | undefined
  let lastPendingSection: {s: Section; pendingBefore: number} | undefined
  let lastTransferred = Number.NaN
  // The downtime's pass (migration_completion_vm_stop -> the RAM section's end): the pages pending
  // at the stop and those the last-stage sync found; normal ones traced.
  const fin = {pending: Number.NaN, added: 0, normal: 0, syncEnd: Number.NaN, end: Number.NaN}
  for (const line of text.split('\n')) {
    const m = LINE.exec(line)
    if (!m) continue
    const [, tid, ts, ev, rest] = m
    const t = Number(ts)
    switch (ev) {
      case 'savevm_state_setup':
        mig = tid!
        break
      case 'migration_bitmap_sync_end':
        if (stopped) {
          fin.added = Number(/dirty_pages (\d+)/.exec(rest!)?.[1] ?? 0)
          fin.syncEnd = t
        }
        pass++
        if (pass > 1) syncAdd += Number(/dirty_pages (\d+)/.exec(rest!)?.[1] ?? 0)
        break
      case 'migration_completion_vm_stop':
        stopped = true
        fin.pending = pending / PAGE
        break
      case 'migrate_pending': {
        const p = Number(/pending size (\d+)/.exec(rest!)?.[1])
        if (lastPendingSection !== undefined) {
          const before = lastPendingSection.pendingBefore
          lastPendingSection.s.scanned = Math.round((before - (p - syncAdd * PAGE)) / PAGE)
          lastPendingSection = undefined
        }
        syncAdd = 0
        pending = p
        break
      }
      case 'savevm_state_iterate':
        if (tid === mig && !stopped) cur = {t0: t, normal: 0, pendingBefore: pending, pass}
        break
      case 'ram_save_page':
        if (cur !== undefined && tid === mig) cur.normal++
        if (stopped) fin.normal++
        break
      case 'multifd_send': {
        multifd = true
        const n = Number(/normal pages (\d+)/.exec(rest!)?.[1] ?? 0)
        if (cur !== undefined) cur.normal += n
        if (stopped) fin.normal += n
        break
      }
      case 'migrate_transferred':
        lastTransferred = t
        break
      case 'savevm_section_end':
        if (stopped && tid === mig && rest!.startsWith('ram') && Number.isNaN(fin.end)) fin.end = t
        if (cur !== undefined && tid === mig && rest!.startsWith('ram')) {
          const s: Section = {t0: cur.t0, ms: (t - cur.t0) * 1000, normal: cur.normal, scanned: Number.NaN, pass: cur.pass, windowMs: (t - lastTransferred) * 1000}
          sections.push(s)
          lastEnd = s
          lastPendingSection = {s, pendingBefore: cur.pendingBefore}
          cur = undefined
        }
        break
    }
  }
  void lastEnd
  const ok = sections.filter((s) => Number.isFinite(s.scanned) && s.scanned > 0)
  const p1 = ok.filter((s) => s.pass === 1)
  const busyMs = p1.reduce((a, s) => a + s.ms, 0)
  const normal = p1.reduce((a, s) => a + s.normal, 0)
  const zero = p1.reduce((a, s) => a + Math.max(0, s.scanned - s.normal), 0)
  const p1ms = p1.length > 0 ? (p1[p1.length - 1]!.t0 + p1[p1.length - 1]!.ms / 1000 - p1[0]!.t0) * 1000 : 0
  return {run, multifd, sections: ok, final: {pages: Math.round(fin.pending + fin.added), normal: fin.normal, ms: (fin.end - fin.syncEnd) * 1000}, pass1: {ms: p1ms, busyMs, normal, zero, mbps: ((normal * 4104 + zero * 9) / (p1ms / 1000)) / 1e6}, limitMBps: (cfg.args.bandwidth * 2 ** 20) / 1e6, memory}
}

/** Least squares y = a x1 + b x2 (no intercept), a and b >= 0. */
function fit2(xs: [number, number][], ys: number[]): [number, number, number] {
  let s11 = 0, s12 = 0, s22 = 0, s1y = 0, s2y = 0
  xs.forEach(([x1, x2], i) => {
    s11 += x1 * x1
    s12 += x1 * x2
    s22 += x2 * x2
    s1y += x1 * ys[i]!
    s2y += x2 * ys[i]!
  })
  const det = s11 * s22 - s12 * s12
  let a = (s1y * s22 - s2y * s12) / det
  let b = (s2y * s11 - s1y * s12) / det
  if (!(a >= 0)) [a, b] = [0, s2y / s22]
  if (!(b >= 0)) [a, b] = [s1y / s11, 0]
  const res = ys.reduce((acc, y, i) => acc + (y - a * xs[i]![0] - b * xs[i]![1]) ** 2, 0)
  const tot = ys.reduce((acc, y) => acc + y * y, 0)
  return [a, b, 1 - res / tot]
}

const out: RunFigures[] = []
for (const run of readdirSync(dir).sort()) {
  const f = measure(run)
  if (f !== undefined) out.push(f)
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y)
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-')
console.log('| run | guest RAM | normal pages by | pass 1 ms (busy) | normal | zero | pass 1 MB/s (limit) | live µs/page: normal-only sections (n) | zero-only sections (n) | fit a·normal + b·zero: a, b µs (R²) | downtime pass: pages (normal), ms, µs/page |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|')
for (const f of out) {
  const xs: [number, number][] = f.sections.map((s) => [s.normal, Math.max(0, s.scanned - s.normal)])
  const ys = f.sections.map((s) => s.ms * 1000)
  const [a, b, r2] = fit2(xs, ys)
  const p = f.pass1
  const normalOnly = f.sections.filter((s) => s.normal > 500 && s.normal >= 0.98 * s.scanned).map((s) => (s.ms * 1000) / s.scanned)
  const zeroOnly = f.sections.filter((s) => s.scanned - s.normal > 500 && s.normal <= 0.02 * s.scanned).map((s) => (s.ms * 1000) / s.scanned)
  const fin = f.final
  console.log(
    `| ${f.run} | ${f.memory} | ${f.multifd ? 'channels' : 'migration thread'} | ${p.ms.toFixed(0)} (${p.busyMs.toFixed(0)}) | ${p.normal} | ${p.zero} | ${p.mbps.toFixed(0)} (${f.limitMBps.toFixed(0)}) | ${f2(median(normalOnly))} (${normalOnly.length}) | ${f2(median(zeroOnly))} (${zeroOnly.length}) | ${f2(a)}, ${f2(b)} (${r2.toFixed(2)}) | ${fin.pages} (${fin.normal}), ${fin.ms.toFixed(1)}, ${f2((fin.ms * 1000) / fin.pages)} |`,
  )
  if (showSections) for (const s of f.sections) console.log(`  pass ${s.pass} +${s.ms.toFixed(1)} ms normal ${s.normal} zero ${s.scanned - s.normal}`)
}
// Over all runs: the sections that are (nearly) all zero pages give the migration thread's zero-page
// time alone; the single thread's all-normal sections its normal-page time (with the link and the
// destination in the same path).
const zeroOnly = out.flatMap((f) => f.sections.filter((s) => s.scanned - s.normal > 500 && s.normal <= 0.02 * s.scanned).map((s) => (s.ms * 1000) / s.scanned))
const normalOnly = out.flatMap((f) => f.sections.filter((s) => !f.multifd && s.normal > 500 && s.normal >= 0.98 * s.scanned).map((s) => (s.ms * 1000) / s.scanned))
console.log(`\nzero-only sections: median ${f2(median(zeroOnly))} µs/page over ${zeroOnly.length}; single-thread normal-only sections: median ${f2(median(normalOnly))} µs/page over ${normalOnly.length}`)
