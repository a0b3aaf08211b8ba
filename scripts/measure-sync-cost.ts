/**
 * Measures the bitmap sync's host cost in the kept lab runs (lab/runs/<run>/trace-src.log.gz):
 * every migration_bitmap_sync_start -> _end pair of the source trace, its duration, and the pages
 * it handled, per page.
 *   npx tsx scripts/measure-sync-cost.ts [lab/runs]
 * Pages per sync: sync #1 (ram_init_bitmaps) finds every page of a block on the per-page path
 * dirty (ram_block_add set them), so it counts pc.ram's pages when its length is not a multiple of
 * 64 pages (the lab's --ram-pad), 0 otherwise (the fast path); the small ROM blocks (66 pages) are
 * left out. Later syncs count the trace's `dirty_pages` (num_dirty_pages_period: pages newly set
 * in the migration bitmap), a slight undercount of the pages the per-page path tested dirty (a
 * page written again before its send is tested but not new). The last-stage sync runs with the
 * VM stopped; the others while the guest runs.
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'

interface Sync {
  run: string
  index: number
  pages: number
  ms: number
  lastStage: boolean
  load: number
}

const dir = process.argv[2] ?? 'lab/runs'
const out: Sync[] = []
for (const run of readdirSync(dir).sort()) {
  const trace = join(dir, run, 'trace-src.log.gz')
  if (!existsSync(trace)) continue
  const cfg = JSON.parse(readFileSync(join(dir, run, 'config.json'), 'utf8')) as {args: {mem: number}; load?: {migrate?: {avg: number[]}}}
  const ramPages = Math.round((cfg.args.mem * 2 ** 20) / 4096)
  const load = cfg.load?.migrate?.avg[0] ?? Number.NaN
  let start = Number.NaN
  let stopped = false
  let index = 0
  for (const line of gunzipSync(readFileSync(trace)).toString('utf8').split('\n')) {
    const m = /^\d+@(\d+\.\d+):(migration_bitmap_sync_start|migration_bitmap_sync_end|migration_completion_vm_stop)(?: dirty_pages (\d+))?/.exec(line)
    if (!m) continue
    const t = Number(m[1])
    if (m[2] === 'migration_completion_vm_stop') stopped = true
    else if (m[2] === 'migration_bitmap_sync_start') start = t
    else if (!Number.isNaN(start)) {
      index++
      const pages = index === 1 ? (ramPages % 64 === 0 ? 0 : ramPages) : Number(m[3])
      out.push({run, index, pages, ms: (t - start) * 1000, lastStage: stopped, load})
      start = Number.NaN
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const us = (s: Sync): number => (s.pages > 0 ? (s.ms * 1000) / s.pages : Number.NaN)
console.log('| run | sync | pages | ms | us/page | VM | load |')
console.log('|---|---|---|---|---|---|---|')
for (const s of out) console.log(`| ${s.run} | ${s.index} | ${s.pages} | ${s.ms.toFixed(1)} | ${Number.isNaN(us(s)) ? '-' : us(s).toFixed(2)} | ${s.lastStage ? 'stopped' : 'running'} | ${s.load.toFixed(1)} |`)
const slow = out.filter((s) => s.pages >= 1000)
const first = slow.filter((s) => s.index === 1)
const later = slow.filter((s) => s.index > 1)
console.log(`\nsync #1: median ${median(first.map(us)).toFixed(2)} us/page over ${first.length} runs (${Math.min(...first.map(us)).toFixed(2)}-${Math.max(...first.map(us)).toFixed(2)})`)
console.log(`later syncs (>= 1000 pages): median ${median(later.map(us)).toFixed(2)} us/page over ${later.length} (${Math.min(...later.map(us)).toFixed(2)}-${Math.max(...later.map(us)).toFixed(2)}); VM stopped: median ${median(later.filter((s) => s.lastStage).map(us)).toFixed(2)}`)
const empty = out.filter((s) => s.index > 1 && s.pages < 100)
if (empty.length > 0) console.log(`syncs with < 100 dirty pages (the walk alone): ${empty.map((s) => `${s.run} #${s.index} ${s.ms.toFixed(1)} ms`).join(', ')}`)
