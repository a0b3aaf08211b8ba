/**
 * The parts of a postcopy switchover's downtime in a kept lab run's source trace
 * (lab/runs/<run>/trace-src.log.gz or trace-src.thin.log.gz, host clock):
 *   npx tsx scripts/measure-postcopy-switchover.ts lab/runs/postcopy [more run dirs...]
 * QEMU 7.2's postcopy_start (migration/migration.c) reads time_at_stop on entry and sets
 * ms->downtime after qemu_savevm_send_packaged, so the downtime is, in trace events:
 *   stop     postcopy_start -> the first savevm_state_complete_precopy (vm_stop_force_state,
 *            the non-postcopiable iterables)
 *   sync     migration_bitmap_sync_start -> _end inside ram_postcopy_send_discard_bitmap
 *            (dirty_pages: what it found new; with sync-pauses-guest the model finds what the guest
 *            wrote since the previous sync)
 *   discards the sync's end -> the last postcopy_discard_send_finish (postcopy_each_send_discard:
 *            postcopy_discard_send_range per range, a flushed command per 12): per range, the
 *            replay's postcopy-discard-range-cost
 *   package  -> savevm_send_postcopy_run (LISTEN, device state, RUN into the package; the send
 *            itself is not traced)
 * Also the gap from the sync before the switch (the sync that made dirty-sync-count reach the
 * lab's --postcopy-after) to postcopy_start, and whether a ram_save_iterate ran between.
 * A run without postcopy_start in its trace: one line on stderr, exit 2.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {sourceTraceOf} from '../src/lab/run-files.js'

const LINE = /^\d+@(\d+\.\d+):(\S+)\s*(.*)$/

function measure(dir: string): string {
  const trace = sourceTraceOf(dir)
  if (trace === undefined) throw new Error(`${dir}: no trace-src.log.gz or trace-src.thin.log.gz`)
  const lines = gunzipSync(readFileSync(trace)).toString('utf8').split('\n')
  let prevSyncEnd = Number.NaN
  let iterateSincePrevSync = false
  let start = Number.NaN
  let gap = Number.NaN
  let iterated = false
  let stop = Number.NaN
  let syncStart = Number.NaN
  let syncEnd = Number.NaN
  let syncPages = 0
  let discardsEnd = Number.NaN
  let ranges = 0
  let commands = 0
  let run = Number.NaN
  let observed: number | undefined
  const obsFile = join(dir, 'observed.json')
  if (existsSync(obsFile)) observed = (JSON.parse(readFileSync(obsFile, 'utf8')) as {downtime?: number}).downtime
  for (const l of lines) {
    const m = LINE.exec(l)
    if (!m) continue
    const t = Number(m[1]) * 1000
    const ev = m[2]!
    if (Number.isNaN(start)) {
      if (ev === 'migration_bitmap_sync_end') {
        prevSyncEnd = t
        iterateSincePrevSync = false
      } else if (ev === 'savevm_state_iterate') iterateSincePrevSync = true
      else if (ev === 'postcopy_start') {
        start = t
        gap = t - prevSyncEnd
        iterated = iterateSincePrevSync
      }
      continue
    }
    if (ev === 'savevm_state_complete_precopy' && Number.isNaN(stop)) stop = t
    else if (ev === 'migration_bitmap_sync_start' && Number.isNaN(syncStart)) syncStart = t
    else if (ev === 'migration_bitmap_sync_end' && Number.isNaN(syncEnd)) {
      syncEnd = t
      syncPages = Number(/dirty_pages (\d+)/.exec(m[3]!)?.[1] ?? 0)
    } else if (ev === 'postcopy_discard_send_finish') {
      discardsEnd = t
      const w = /sent=(\d+) in (\d+) commands/.exec(m[3]!)
      if (w) {
        ranges += Number(w[1])
        commands += Number(w[2])
      }
    } else if (ev === 'savevm_send_postcopy_run') {
      run = t
      break
    }
  }
  if (Number.isNaN(start)) throw new Error(`${dir}: the source trace has no postcopy_start`)
  const f = (x: number): string => x.toFixed(1)
  const discardMs = discardsEnd - syncEnd
  return [
    `${dir}: sync before the switch -> postcopy_start ${f(gap)} ms (${iterated ? 'a ram_save_iterate between' : 'no iterate between'})`,
    `  stop ${f(stop - start)} ms, sync ${f(syncEnd - syncStart)} ms (${syncPages} new pages), discards ${f(discardMs)} ms (${ranges} ranges in ${commands} commands: ${((discardMs * 1000) / Math.max(1, ranges)).toFixed(2)} us a range), package ${f(run - discardsEnd)} ms`,
    `  postcopy_start -> savevm_send_postcopy_run ${f(run - start)} ms${observed !== undefined ? `; query-migrate downtime ${observed} ms` : ''}`,
  ].join('\n')
}

const dirs = process.argv.slice(2)
if (dirs.length === 0) dirs.push('lab/runs/postcopy')
try {
  for (const d of dirs) console.log(measure(d))
} catch (e) {
  process.stderr.write(`measure-postcopy-switchover: ${(e as Error).message}\n`)
  process.exit(2)
}
