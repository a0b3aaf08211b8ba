/**
 * Measures what each kind of XBZRLE page costs the single stream in a kept lab run with XBZRLE
 * (lab/runs/<run>/trace-src.log.gz, QEMU 7.2's `ram_save_page` and `save_xbzrle_page_skipping`
 * trace lines), live and in the downtime pass:
 *   npx tsx scripts/measure-xbzrle-records.ts [lab/runs/xbzrle-hot]
 * The trace does not say which records were deltas, so the script replays QEMU's cache
 * (migration/page_cache.c) over the run's ram_save_page lines: direct-mapped on the page number,
 * `xbzrle-cache-size` / 4 KiB slots, age = dirty_sync_count (one per migration_bitmap_sync_end);
 * a lookup hits when the slot holds the page (cache_is_cached refreshes the age); a miss inserts
 * unless the slot holds another page younger than CACHED_PAGE_LIFETIME (2) syncs (cache_insert),
 * and nothing is inserted in the last stage (save_xbzrle_page). XBZRLE starts once the scan
 * wraps (find_dirty_block: xbzrle_enabled). A hit followed by save_xbzrle_page_skipping was
 * skipped, else it went as a delta record (the lab runs have no overflow; query-migrate says).
 * The classification is checked against the run's query-migrate (xbzrle-cache pages, cache-miss).
 * Each page's time is the gap from its ram_save_page line to the next one (or to its section's
 * end): its own work and the trace line's, plus any wait on the socket (the means; the medians
 * leave the waits out).
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'

const dir = process.argv[2] ?? 'lab/runs/xbzrle-hot'
const LINE = /^(\d+)@(\d+\.\d+):(\w+) ?(.*)$/
for (const f of ['config.json', 'observed.json', 'trace-src.log.gz']) {
  if (!existsSync(join(dir, f))) {
    process.stderr.write(`measure-xbzrle-records: ${join(dir, f)} not found (a kept lab run: config.json, observed.json, trace-src.log.gz)\n`)
    process.exit(2)
  }
}
const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {args: {xbzrle?: boolean; xbzrle_cache_size?: number}}
if (cfg.args.xbzrle !== true) {
  process.stderr.write(`measure-xbzrle-records: ${dir} did not run with XBZRLE\n`)
  process.exit(2)
}
const slots = ((cfg.args.xbzrle_cache_size ?? 64) * 1024 * 1024) / 4096
const lines = gunzipSync(readFileSync(join(dir, 'trace-src.log.gz'))).toString('utf8').split('\n')

type Kind = 'first-round' | 'miss' | 'delta' | 'skip'
interface Rec {
  t: number
  kind: Kind
  down: boolean
  end?: number
}
const cachePage = new Int32Array(slots).fill(-1)
const cacheAge = new Int32Array(slots)
let sync = 0
let enabled = false
let stopped = false
let lastOffset = -1
const recs: Rec[] = []
for (let i = 0; i < lines.length; i++) {
  const m = LINE.exec(lines[i]!)
  if (m === null) continue
  const t = Number(m[2])
  const ev = m[3]
  if (ev === 'migration_bitmap_sync_end') sync++
  else if (ev === 'migration_completion_vm_stop') stopped = true
  else if (ev === 'savevm_section_end' && recs.length > 0 && recs[recs.length - 1]!.end === undefined) recs[recs.length - 1]!.end = t
  else if (ev === 'ram_save_page') {
    const p = /^(\S+): offset: 0x([0-9a-f]+)/.exec(m[4]!)
    if (p === null) continue
    const main = p[1] === 'pc.ram'
    const offset = parseInt(p[2]!, 16)
    if (main) {
      if (offset < lastOffset) enabled = true
      lastOffset = offset
    }
    let kind: Kind = 'first-round'
    if (enabled && main) {
      const page = offset / 4096
      const slot = page & (slots - 1)
      if (cachePage[slot] === page) {
        cacheAge[slot] = sync
        kind = (lines[i + 1] ?? '').includes(':save_xbzrle_page_skipping') ? 'skip' : 'delta'
      } else {
        kind = 'miss'
        if (!stopped && (cachePage[slot] === -1 || cacheAge[slot]! + 2 <= sync)) {
          cachePage[slot] = page
          cacheAge[slot] = sync
        }
      }
    }
    recs.push({t, kind, down: stopped})
  }
}

const gaps = new Map<string, number[]>()
for (let j = 0; j < recs.length; j++) {
  const r = recs[j]!
  const next = r.end ?? recs[j + 1]?.t
  if (next === undefined) continue
  const key = `${r.down ? 'downtime' : 'live'} ${r.kind}`
  let g = gaps.get(key)
  if (g === undefined) gaps.set(key, (g = []))
  g.push((next - r.t) * 1e6)
}
const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const count = (k: Kind) => recs.filter((r) => r.kind === k).length
const obs = JSON.parse(readFileSync(join(dir, 'observed.json'), 'utf8')) as {'xbzrle-cache'?: {pages: number; 'cache-miss': number}}
const x = obs['xbzrle-cache']
console.log(`${dir}: hits ${count('delta') + count('skip')} (query-migrate pages ${x?.pages ?? '?'}), misses ${count('miss')} (cache-miss ${x?.['cache-miss'] ?? '?'})`)
console.log('| phase | page | n | median µs | mean µs | sum ms |')
console.log('|---|---|---|---|---|---|')
for (const [k, v] of [...gaps].sort(([a], [b]) => a.localeCompare(b))) {
  const [phase, kind] = k.split(' ')
  const sum = v.reduce((a, b) => a + b, 0)
  console.log(`| ${phase} | ${kind} | ${v.length} | ${median(v).toFixed(2)} | ${(sum / v.length).toFixed(2)} | ${(sum / 1000).toFixed(1)} |`)
}
