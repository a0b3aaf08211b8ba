/**
 * The lab's comparison of a postcopy run imports the destination's console, trace and final
 * query-migrate too (src/lab/analyze.ts destinationFiles); a precopy run and a destination whose
 * guest printed nothing (crashed) do not add them.
 */
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {destinationFiles} from '../../src/lab/analyze.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-labpc-'))

function dir(name: string, files: Record<string, string>): string {
  const d = join(tmp, name)
  mkdirSync(d)
  for (const [f, text] of Object.entries(files)) writeFileSync(join(d, f), text)
  return d
}

test('a postcopy run: the destination console, the kept destination trace and final-dst.json', (t) => {
  const d = dir('pc', {'summary.json': JSON.stringify({postcopy_started_at_s: 26.2}), 'dst-console.log': '[1.000000] DIRTIER t=30.9 writes=1 distinct=1 total=5 rate=1\n', 'trace-dst.postcopy.log.gz': '', 'final-dst.json': '{}'})
  t.deepEqual(destinationFiles(d), {dstConsole: join(d, 'dst-console.log'), dstTrace: join(d, 'trace-dst.postcopy.log.gz'), dstStats: join(d, 'final-dst.json')})
  // the whole destination trace of a run directory comes first
  const w = dir('pc-whole', {'summary.json': JSON.stringify({postcopy_started_at_s: 1}), 'trace-dst.log.gz': '', 'trace-dst.postcopy.log.gz': ''})
  t.deepEqual(destinationFiles(w), {dstTrace: join(w, 'trace-dst.log.gz')})
})

test('a precopy run, or a destination guest that printed no dirtier line: no destination writes', (t) => {
  const p = dir('pre', {'summary.json': JSON.stringify({status: 'completed'}), 'dst-console.log': '[1.000000] DIRTIER t=3.0 writes=1 distinct=1 total=5 rate=1\n', 'final-dst.json': '{}'})
  t.deepEqual(destinationFiles(p), {})
  const c = dir('crashed', {'summary.json': JSON.stringify({postcopy_started_at_s: 3}), 'dst-console.log': '[1.000000] BUG: unable to handle page fault\n'})
  t.deepEqual(destinationFiles(c), {})
  t.deepEqual(destinationFiles(join(tmp, 'absent')), {})
})

test('a precopy multifd run: its destination trace (the first round\'s zero pages), whole or as lab matrix keeps it', (t) => {
  const cfg = JSON.stringify({args: {multifd_channels: 2}})
  const kept = dir('mf-kept', {'summary.json': JSON.stringify({status: 'completed'}), 'config.json': cfg, 'trace-dst.zero.log.gz': '', 'dst-console.log': '[1.000000] DIRTIER t=3.0 writes=1 distinct=1 total=5 rate=1\n'})
  t.deepEqual(destinationFiles(kept), {dstTrace: join(kept, 'trace-dst.zero.log.gz')})
  const whole = dir('mf-whole', {'summary.json': JSON.stringify({status: 'completed'}), 'config.json': cfg, 'trace-dst.log.gz': '', 'trace-dst.zero.log.gz': ''})
  t.deepEqual(destinationFiles(whole), {dstTrace: join(whole, 'trace-dst.log.gz')})
  // without multifd, or without a destination trace: nothing
  const single = dir('single', {'summary.json': JSON.stringify({status: 'completed'}), 'config.json': JSON.stringify({args: {multifd_channels: 0}}), 'trace-dst.log.gz': ''})
  t.deepEqual(destinationFiles(single), {})
  t.deepEqual(destinationFiles(dir('mf-none', {'summary.json': '{}', 'config.json': cfg})), {})
})
