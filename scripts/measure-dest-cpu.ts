/**
 * The destination's CPU per record it loaded, in the kept lab runs (lab/runs/<run>), from what the
 * driver records with every run (src/lab/driver.ts): summary.json's `host_cpu_during_migration.qemu_s`
 * (both QEMUs' CPU from `migrate` to the end) and `src_threads_cpu_s` (the source's threads, by
 * name), so the destination QEMU's CPU is the difference. Divided by the records the destination
 * loaded (query-migrate's `normal` + `duplicate`; with multifd the channels' pages are in `normal`
 * too, so the figure mixes the two loops there; a postcopy run's includes the page placing). Runs
 * that did not complete are left out. CPU time, not wall time: a preempted destination
 * does not show here. This is the figure `dest-record-cost` stands for (docs/stream.md, "The
 * destination's load loop"); it varies from one capture to the next (docs/lab.md, "What is left").
 *   npx tsx scripts/measure-dest-cpu.ts [lab/runs]
 */
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

const dir = process.argv[2] ?? 'lab/runs'
const rows: string[] = []
for (const name of readdirSync(dir).sort()) {
  const summaryPath = join(dir, name, 'summary.json')
  const observedPath = join(dir, name, 'observed.json')
  if (!existsSync(summaryPath) || !existsSync(observedPath)) continue
  const summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as {
    host_cpu_during_migration?: {qemu_s?: number; wall_s?: number}
    src_threads_cpu_s?: Record<string, number>
  }
  const observed = JSON.parse(readFileSync(observedPath, 'utf8')) as {status?: string; ram?: {normal?: number; duplicate?: number}}
  if (observed.status !== 'completed') {
    // A cancelled migration: the source's threads ran on after the destination stopped loading.
    rows.push(`| ${name} | - | - | - | - | (${observed.status ?? 'no status'}: not a completed migration) |`)
    continue
  }
  const qemu = summary.host_cpu_during_migration?.qemu_s
  const threads = summary.src_threads_cpu_s
  const records = (observed.ram?.normal ?? 0) + (observed.ram?.duplicate ?? 0)
  if (qemu === undefined || threads === undefined || records === 0) {
    rows.push(`| ${name} | - | - | - | - | (no per-thread CPU in summary.json) |`)
    continue
  }
  const src = Object.values(threads).reduce((a, b) => a + b, 0)
  const dst = qemu - src
  const wall = summary.host_cpu_during_migration?.wall_s ?? Number.NaN
  rows.push(`| ${name} | ${src.toFixed(2)} | ${dst.toFixed(2)} | ${wall.toFixed(2)} | ${records} | ${((dst / records) * 1e6).toFixed(2)} |`)
}
console.log('| run | source QEMU CPU s | destination QEMU CPU s | wall s | records loaded | destination us a record |')
console.log('|---|---|---|---|---|---|')
for (const r of rows) console.log(r)
