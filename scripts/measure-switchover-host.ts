/**
 * The host time of a precopy switchover's downtime outside the RAM pass, in a kept lab run's
 * source trace (lab/runs/<run>/trace-src.log.gz or trace-src.thin.log.gz, host clock):
 *   npx tsx scripts/measure-switchover-host.ts lab/runs/*
 * QEMU 7.2 (migration/migration.c, migration/savevm.c), in trace events:
 *   stop     migration_thread_low_pending -> migration_completion_vm_stop (migration_completion:
 *            vm_stop_force_state, the downtime clock already read)
 *   devices  the RAM section's savevm_section_end inside savevm_state_complete_precopy -> the last
 *            savevm_section_end (qemu_savevm_state_complete_precopy_non_iterable: vmstate_save
 *            of each device)
 *   tail     -> migrate_set_state completed (QEMU_VM_EOF, the vmdesc JSON, qemu_fflush)
 * A run whose trace has postcopy_start, or lacks these events, is reported as skipped on stderr.
 * Last line: the medians over the runs measured: stop (the replay's vm-stop-cost), devices + tail
 * (its device-state-cost) and the total.
 */
import {readFileSync} from 'node:fs'
import {basename} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {sourceTraceOf} from '../src/lab/run-files.js'

const LINE = /^\d+@(\d+\.\d+):(\S+)\s*(.*)$/

interface Parts {stop: number; devices: number; tail: number}

function measure(dir: string): Parts | string {
  const trace = sourceTraceOf(dir)
  if (trace === undefined) return 'no trace-src.log.gz or trace-src.thin.log.gz'
  const lines = gunzipSync(readFileSync(trace)).toString('utf8').split('\n')
  let lowPending = Number.NaN
  let vmStop = Number.NaN
  let complete = false
  let ramEnd = Number.NaN
  let lastSectionEnd = Number.NaN
  let completed = Number.NaN
  for (const line of lines) {
    const m = LINE.exec(line)
    if (m === null) continue
    const t = Number(m[1]) * 1000
    const ev = m[2]
    const args = m[3]
    if (ev === 'postcopy_start') return 'postcopy (scripts/measure-postcopy-switchover.ts)'
    if (ev === 'migration_thread_low_pending') lowPending = t
    else if (ev === 'migration_completion_vm_stop') vmStop = t
    else if (ev === 'savevm_state_complete_precopy') complete = true
    else if (ev === 'savevm_section_end' && complete) {
      if (Number.isNaN(ramEnd) && args.startsWith('ram,')) ramEnd = t
      lastSectionEnd = t
    } else if (ev === 'migrate_set_state' && args.includes('completed')) completed = t
  }
  if ([lowPending, vmStop, ramEnd, lastSectionEnd, completed].some(Number.isNaN)) return 'missing trace events (low_pending, vm_stop, the RAM section, completed)'
  return {stop: vmStop - lowPending, devices: lastSectionEnd - ramEnd, tail: completed - lastSectionEnd}
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

const dirs = process.argv.slice(2)
if (dirs.length === 0) {
  console.error('usage: npx tsx scripts/measure-switchover-host.ts lab/runs/<run> [...]')
  process.exit(2)
}
const got: Parts[] = []
console.log('run              stop_ms devices_ms tail_ms total_ms')
for (const dir of dirs) {
  const r = measure(dir)
  if (typeof r === 'string') {
    console.error(`${basename(dir)}: skipped: ${r}`)
    continue
  }
  got.push(r)
  console.log(`${basename(dir).padEnd(16)} ${r.stop.toFixed(2).padStart(7)} ${r.devices.toFixed(2).padStart(10)} ${r.tail.toFixed(2).padStart(7)} ${(r.stop + r.devices + r.tail).toFixed(2).padStart(8)}`)
}
if (got.length === 0) process.exit(2)
console.log(
  `median over ${got.length} runs: stop ${median(got.map((p) => p.stop)).toFixed(2)} devices ${median(got.map((p) => p.devices)).toFixed(2)} tail ${median(got.map((p) => p.tail)).toFixed(2)} devices+tail ${median(got.map((p) => p.devices + p.tail)).toFixed(2)} total ${median(got.map((p) => p.stop + p.devices + p.tail)).toFixed(2)} ms`,
)
