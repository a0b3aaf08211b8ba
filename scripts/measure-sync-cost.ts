/**
 * Measures the bitmap sync's host cost in the kept lab runs (lab/runs/<run>/trace-src.log.gz):
 * every migration_bitmap_sync_start -> _end pair of the source trace, its duration, and the pages
 * it handled, per page.
 *   npx tsx scripts/measure-sync-cost.ts [lab/runs]
 * The source trace is trace-src.log.gz or the kept trace-src.thin.log.gz (which keeps every sync line).
 * Pages per sync: sync #1 (ram_init_bitmaps) finds every page of a block on the per-page path
 * dirty (ram_block_add set them), so it counts pc.ram's pages when its length is not a multiple of
 * 64 pages (the lab's --ram-pad), 0 otherwise (the fast path); the small ROM blocks (66 pages) are
 * left out. Later syncs count the trace's `dirty_pages`, which is num_dirty_pages_period
 * (migration_bitmap_sync, QEMU 7.2): the pages newly set in the migration bitmap SINCE THE PERIOD
 * BEGAN; the period restarts only at a sync that ends more than 1 s after the last restart, so a
 * sync within 1 s of it reports its own pages plus the earlier syncs' of the period. The script
 * takes the difference from the period's previous figure (the sync's own new pages). That is
 * still a slight undercount of the pages the per-page path tested dirty (a page written again
 * before its send is tested but not new). `us/page` subtracts the walk over the block's clean
 * pages, measured by the syncs that found < 100 pages (`sync-cost`, ms per GiB). The last-stage
 * sync runs with the VM stopped; the others while the guest runs.
 */
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {sourceTraceOf} from '../src/lab/run-files.js'

interface Sync {
  run: string
  index: number
  pages: number
  ms: number
  lastStage: boolean
  load: number
  /** pc.ram on the per-page path and no virtio-mem device (whose block takes the fast path): the summary's runs. */
  perPage: boolean
}

const dir = process.argv[2] ?? 'lab/runs'
const out: Sync[] = []
for (const run of readdirSync(dir).sort()) {
  const trace = sourceTraceOf(join(dir, run))
  if (trace === undefined) continue
  const cfg = JSON.parse(readFileSync(join(dir, run, 'config.json'), 'utf8')) as {args: {mem: number; vmem_size?: number}; load?: {migrate?: {avg: number[]}}}
  const ramPages = Math.round((cfg.args.mem * 2 ** 20) / 4096)
  const perPage = ramPages % 64 !== 0 && !(cfg.args.vmem_size! > 0)
  const load = cfg.load?.migrate?.avg[0] ?? Number.NaN
  let start = Number.NaN
  let stopped = false
  let index = 0
  // num_dirty_pages_period as of the period's last sync, and when the period (re)started.
  let periodPrev = 0
  let periodStart = Number.NaN
  for (const line of gunzipSync(readFileSync(trace)).toString('utf8').split('\n')) {
    const m = /^\d+@(\d+\.\d+):(migration_bitmap_sync_start|migration_bitmap_sync_end|migration_completion_vm_stop)(?: dirty_pages (\d+))?/.exec(line)
    if (!m) continue
    const t = Number(m[1])
    if (m[2] === 'migration_completion_vm_stop') stopped = true
    else if (m[2] === 'migration_bitmap_sync_start') {
      start = t
      if (Number.isNaN(periodStart)) periodStart = t // ram_state_init, about the setup's start
    } else if (!Number.isNaN(start)) {
      index++
      const period = Number(m[3])
      const pages = index === 1 ? (ramPages % 64 === 0 ? 0 : ramPages) : period - periodPrev
      out.push({run, index, pages, ms: (t - start) * 1000, lastStage: stopped, load, perPage})
      // migration_bitmap_sync: end_time > time_last_bitmap_sync + 1000 resets the period.
      if (t - periodStart > 1) {
        periodStart = t
        periodPrev = 0
      } else periodPrev = period
      start = Number.NaN
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const empties = out.filter((s) => s.perPage && s.index > 1 && s.pages < 100)
/** The walk over a block's clean pages, ms per sync (1 GiB guests here): the median of the syncs that found < 100 pages. */
const walkMs = empties.length > 0 ? median(empties.map((s) => s.ms)) : 0
const us = (s: Sync): number => (s.pages > 0 ? ((s.ms - (s.index > 1 ? walkMs : 0)) * 1000) / s.pages : Number.NaN)
console.log('| run | sync | pages | ms | us/page | VM | load |')
console.log('|---|---|---|---|---|---|---|')
for (const s of out) console.log(`| ${s.run} | ${s.index} | ${s.pages} | ${s.ms.toFixed(1)} | ${Number.isNaN(us(s)) ? '-' : us(s).toFixed(2)} | ${s.lastStage ? 'stopped' : 'running'} | ${s.load.toFixed(1)} |`)
const slow = out.filter((s) => s.perPage && s.pages >= 1000)
const first = slow.filter((s) => s.index === 1)
const later = slow.filter((s) => s.index > 1)
console.log(`\nsync #1: median ${median(first.map(us)).toFixed(2)} us/page over ${first.length} runs (${Math.min(...first.map(us)).toFixed(2)}-${Math.max(...first.map(us)).toFixed(2)})`)
console.log(`later syncs (>= 1000 pages): median ${median(later.map(us)).toFixed(2)} us/page over ${later.length} (${Math.min(...later.map(us)).toFixed(2)}-${Math.max(...later.map(us)).toFixed(2)}); VM stopped: median ${median(later.filter((s) => s.lastStage).map(us)).toFixed(2)}`)
if (empties.length > 0) console.log(`syncs with < 100 dirty pages (the walk alone, median ${walkMs.toFixed(1)} ms): ${empties.map((s) => `${s.run} #${s.index} ${s.ms.toFixed(1)} ms`).join(', ')}`)
