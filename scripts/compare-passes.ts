/**
 * Pass by pass, QEMU's time against the model's, for kept lab runs (lab/runs/<run>):
 *   npx tsx scripts/compare-passes.ts lab/calibration.json random high-rate ...   (RUNS_DIR=dir: runs elsewhere)
 * Observed (the source trace): each migration_bitmap_sync_start -> _end (the sync's time) and the
 * pages of the pass it opens (ram_save_page lines, when the trace kept them; else '-'). Model
 * (`replay --driver qemu` with the run's lab settings and the config file): each iteration's start,
 * its pages, the pages its opening sync newly set (QEMU's dirty_pages counts those too, summed over
 * a period of < 1 s) and its zero pages.
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {loadRun, predict} from '../src/calibrate/runs.js'
import type {SettingsOverrides} from '../src/replay/config.js'
import {sourceTraceOf} from '../src/lab/run-files.js'

const [config, ...runs] = process.argv.slice(2)
if (config === undefined || runs.length === 0) {
  console.error('usage: compare-passes.ts CONFIG.json RUN...')
  process.exit(2)
}
// A settings file as replay --config reads it (setting units: ms, ms per GiB, bytes/s).
const settings = JSON.parse(readFileSync(config, 'utf8')) as SettingsOverrides
for (const name of runs) {
  const dir = join(process.env.RUNS_DIR ?? 'lab/runs', name)
  const file = sourceTraceOf(dir)!
  const syncs: {start: number; ms: number; pages: number; sent: number; zero: number}[] = []
  let t0 = Number.NaN
  let st = Number.NaN
  let cur: (typeof syncs)[number] | undefined
  for (const line of gunzipSync(readFileSync(file)).toString('utf8').split('\n')) {
    const m = /^\d+@(\d+\.\d+):(\w+)(.*)$/.exec(line)
    if (!m) continue
    const t = Number(m[1])
    if (Number.isNaN(t0) && m[2] === 'migrate_set_state') t0 = t
    if (m[2] === 'migration_bitmap_sync_start') st = t
    else if (m[2] === 'migration_bitmap_sync_end') {
      cur = {start: (st - t0) * 1000, ms: (t - st) * 1000, pages: Number(/dirty_pages (\d+)/.exec(m[3]!)?.[1] ?? 0), sent: 0, zero: 0}
      syncs.push(cur)
    } else if (m[2] === 'ram_save_page' && cur) cur.sent++
  }
  const run = await loadRun(dir)
  const {result, rows} = await predict(run, settings)
  console.log(`\n## ${name}`)
  console.log(rows.filter((r) => r.observed !== null).map((r) => `${r.metric}: ${r.observed} / ${Number(r.predicted).toFixed(1)}`).join('; '))
  console.log('| # | QEMU sync start ms | sync ms | dirty_pages (period) | ram_save_page | model iter start ms | model pages | model new dirty | model zero |')
  console.log('|---|---|---|---|---|---|---|---|---|')
  const n = Math.max(syncs.length, result.rows.length)
  for (let i = 0; i < n; i++) {
    const s = syncs[i]
    const r = result.rows[i]
    console.log(
      `| ${i + 1} | ${s ? s.start.toFixed(0) : '-'} | ${s ? s.ms.toFixed(1) : '-'} | ${s ? s.pages : '-'} | ${s ? s.sent : '-'} | ${r ? (r.startNs / 1e6).toFixed(0) : '-'} | ${r ? r.pagesSent : '-'} | ${r ? r.newDirtyPages : '-'} | ${r ? r.zero : '-'} |`,
    )
  }
}
