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
  limitMBps: number
}

const args = process.argv.slice(2)
const dir = args.find((a) => !a.startsWith('--')) ?? 'lab/runs'
const showSections = args.includes('--sections')
const LINE = /^(\d+)@(\d+\.\d+):(\w+) ?(.*)$/
const PAGE = 4096

function measure(run: string): RunFigures | undefined {
  const trace = join(dir, run, 'trace-src.log.gz')
  if (!existsSync(trace)) return undefined
  const cfg = JSON.parse(readFileSync(join(dir, run, 'config.json'), 'utf8')) as {args: {bandwidth: number}}
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
        pass++
        if (pass > 1) syncAdd += Number(/dirty_pages (\d+)/.exec(rest!)?.[1] ?? 0)
        break
      case 'migration_completion_vm_stop':
        stopped = true
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
        break
      case 'multifd_send': {
        multifd = true
        if (cur !== undefined) cur.normal += Number(/normal pages (\d+)/.exec(rest!)?.[1] ?? 0)
        break
      }
      case 'migrate_transferred':
        lastTransferred = t
        break
      case 'savevm_section_end':
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
  return {run, multifd, sections: ok, pass1: {ms: p1ms, busyMs, normal, zero, mbps: ((normal * 4104 + zero * 9) / (p1ms / 1000)) / 1e6}, limitMBps: (cfg.args.bandwidth * 2 ** 20) / 1e6}
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
console.log('| run | thread | pass 1 ms | busy ms | normal | zero | pass 1 MB/s (limit) | fit: normal µs | zero µs | R² | sections (pass 1 / all) |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|')
for (const f of out) {
  // Pass 1 and the later live passes: every section with pages, its busy time against its pages.
  const xs: [number, number][] = f.sections.map((s) => [s.normal, Math.max(0, s.scanned - s.normal)])
  const ys = f.sections.map((s) => s.ms * 1000)
  const [a, b, r2] = fit2(xs, ys)
  const p = f.pass1
  console.log(
    `| ${f.run} | ${f.multifd ? 'multifd' : 'single'} | ${p.ms.toFixed(0)} | ${p.busyMs.toFixed(0)} | ${p.normal} | ${p.zero} | ${p.mbps.toFixed(0)} (${f.limitMBps.toFixed(0)}) | ${a.toFixed(2)} | ${b.toFixed(2)} | ${r2.toFixed(2)} | ${f.sections.filter((s) => s.pass === 1).length} / ${f.sections.length} |`,
  )
  if (showSections) for (const s of f.sections) console.log(`  pass ${s.pass} +${s.ms.toFixed(1)} ms normal ${s.normal} zero ${s.scanned - s.normal}`)
}
// Sections that are (nearly) all zero pages give the zero-page time alone; all normal the normal time.
const zeroOnly = out.flatMap((f) => f.sections.filter((s) => s.scanned - s.normal > 500 && s.normal <= 0.02 * s.scanned).map((s) => ({run: f.run, us: (s.ms * 1000) / s.scanned})))
const normalOnly = out.flatMap((f) => f.sections.filter((s) => !f.multifd && s.normal > 500 && s.normal >= 0.98 * s.scanned).map((s) => ({run: f.run, us: (s.ms * 1000) / s.scanned})))
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y)
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
for (const [what, xs] of [['zero-only sections (>500 zero pages, <=2 % normal)', zeroOnly], ['normal-only sections, single thread (>500 pages, >=98 % normal)', normalOnly]] as const) {
  const by = new Map<string, number[]>()
  for (const x of xs) by.set(x.run, [...(by.get(x.run) ?? []), x.us])
  console.log(`\n${what}: median ${median(xs.map((x) => x.us)).toFixed(2)} µs/page over ${xs.length}; per run: ${[...by].map(([r, v]) => `${r} ${median(v).toFixed(2)} (${v.length})`).join(', ')}`)
}
