/**
 * Rate window by rate window, QEMU's bytes against the model's, for a kept lab run
 * (lab/runs/<run>): where the model's timeline departs from QEMU's.
 *   npx tsx scripts/compare-windows.ts lab/calibration.json xbzrle-hot [setting=value ...]   (RUNS_DIR=dir: runs elsewhere)
 * One table sorted by time, each row one side's entry. Left: the source trace's migrate_transferred lines (migration_update_counters at each window's
 * end: ms since migrate_set_state setup, MB transferred so far) and its syncs, stop and vm_stop.
 * Right: the model's transfer timeline (ReplayResult.transferTimeline: the same window ends, ms
 * since the migration start, MB so far) and each iteration's start, replayed with the run's lab
 * settings, the config file and the settings given after the run's name (a diagnostic: e.g.
 * dest-record-cost=0.0052 to see what one capture's own figure would do).
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {loadRun, predict} from '../src/calibrate/runs.js'
import type {SettingsOverrides} from '../src/replay/config.js'
import {sourceTraceOf} from '../src/lab/run-files.js'

const [config, name, ...sets] = process.argv.slice(2)
if (config === undefined || name === undefined) {
  console.error('usage: compare-windows.ts CONFIG.json RUN [setting=value ...]')
  process.exit(2)
}
const settings = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>
for (const s of sets) {
  const eq = s.indexOf('=')
  if (eq < 1) {
    console.error(`compare-windows.ts: not setting=value: ${s}\nusage: compare-windows.ts CONFIG.json RUN [setting=value ...]`)
    process.exit(2)
  }
  const v = s.slice(eq + 1)
  settings[s.slice(0, eq)] = v === 'true' ? true : v === 'false' ? false : Number.isNaN(Number(v)) ? v : Number(v)
}
const dir = join(process.env.RUNS_DIR ?? 'lab/runs', name)
const file = sourceTraceOf(dir)
if (file === undefined) throw new Error(`no source trace in ${dir}`)
const left: [number, string][] = []
let t0 = Number.NaN
let sum = 0
for (const line of gunzipSync(readFileSync(file)).toString('utf8').split('\n')) {
  const m = /^\d+@(\d+\.\d+):(\w+)(.*)$/.exec(line)
  if (!m) continue
  const t = Number(m[1])
  if (Number.isNaN(t0) && m[2] === 'migrate_set_state') t0 = t
  const ms = (t - t0) * 1000
  if (m[2] === 'migrate_transferred') {
    sum += Number(/transferred (\d+)/.exec(m[3]!)![1])
    const spent = /time_spent (\d+)/.exec(m[3]!)?.[1]
    left.push([ms, `${ms.toFixed(1)} ${(sum / 1e6).toFixed(2)} MB (${spent} ms)`])
  } else if (/^migration_bitmap_sync_(start|end)$|^migration_thread_low_pending$|^migration_completion_vm_stop$/.test(m[2]!)) left.push([ms, `${ms.toFixed(1)} ${m[2]}`])
}
const run = await loadRun(dir)
const {result, rows} = await predict(run, settings as SettingsOverrides)
console.log(rows.filter((r) => r.observed !== null).map((r) => `${r.metric}: ${r.observed} / ${Number(r.predicted).toFixed(1)}`).join('; '))
const right: [number, string][] = []
const tl = result.transferTimeline
if (tl) for (let i = 0; i < tl.tMs.length; i++) right.push([tl.tMs[i]!, `${tl.tMs[i]!.toFixed(1)} ${(tl.bytes[i]! / 1e6).toFixed(2)} MB`])
for (const r of result.rows) right.push([r.startNs / 1e6, `${(r.startNs / 1e6).toFixed(1)} iteration ${r.iteration} (${r.phase}): ${r.pagesSent} pages`])
// One table on one time axis (ms since the start, each side's own zero): a row is one side's entry,
// so a QEMU line and a model line on the same row happened at about the same time.
const rowsByTime: [number, number, string][] = [...left.map(([ms, text]) => [ms, 0, text] as [number, number, string]), ...right.map(([ms, text]) => [ms, 1, text] as [number, number, string])]
rowsByTime.sort((a, b) => a[0] - b[0] || a[1] - b[1])
console.log(`| QEMU (${file}) | model |`)
console.log('|---|---|')
for (const [, side, text] of rowsByTime) console.log(side === 0 ? `| ${text} | |` : `| | ${text} |`)
