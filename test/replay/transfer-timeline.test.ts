/**
 * The transfer timeline (ReplayResult.transferTimeline): cumulative bytes on the wire at every
 * 100 ms rate window, the stop and the end, with hand-computed oracles.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {batchesOf, machine, MiB} from './helpers.js'

const WIRE = 4104 // a 4 KiB page and its 8-byte record header
const GiBps = 2 ** 30

test('an idle guest at 128 MiB/s over a 1 GiB/s link: a point per 100 ms window, each a full budget, then the stop', async (t) => {
  // As the pacing oracle of qemu-rules.test.ts: 3271 pages per window (the page crossing the
  // 13421772.8-byte budget included), 16384 pages in five full windows and 29 pages more.
  const {header, layout} = machine({memory: 64 * MiB})
  const events = batchesOf(layout, [{t_ns: 0, kind: 'read', vcpu: 0, gpa: 0, len: 8}])
  const r = await replay({header, layout, events}, {overrides: {'start-at': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds'}})
  const tl = r.transferTimeline!
  const window = 3271 * WIRE
  const passEndMs = 500 + (29 * WIRE * 1000) / GiBps
  t.deepEqual(tl.bytes, [0, window, 2 * window, 3 * window, 4 * window, 5 * window, 16384 * WIRE])
  t.deepEqual(tl.tMs.slice(0, 6), [0, 100, 200, 300, 400, 500])
  t.true(Math.abs(tl.tMs[6]! - passEndMs) < 1e-9, `stop at ${tl.tMs[6]} vs ${passEndMs}`)
  // The last point is the end of the migration with every byte transferred.
  t.is(tl.bytes.at(-1), r.transferredBytes)
  t.true(Math.abs(tl.tMs.at(-1)! - r.totalTimeMs) < 1e-9)
})

test('the downtime pass and the device state close the timeline at the end of the migration', async (t) => {
  // The same idle guest with 1 MiB of device state: the stop point holds the pass, the end point
  // adds the device state, sent at the link rate during the downtime.
  const {header, layout} = machine({memory: 64 * MiB})
  const events = batchesOf(layout, [{t_ns: 0, kind: 'read', vcpu: 0, gpa: 0, len: 8}])
  const r = await replay({header, layout, events}, {overrides: {'start-at': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', 'device-state-bytes': '1M'}})
  const tl = r.transferTimeline!
  const stop = tl.tMs.length - 2
  t.is(tl.bytes[stop], 16384 * WIRE, 'at the stop: the pass')
  t.is(tl.bytes.at(-1), 16384 * WIRE + MiB, 'at the end: the device state too')
  t.is(r.transferredBytes, 16384 * WIRE + MiB)
  // 1 MiB at 1 GiB/s after the stop.
  t.true(Math.abs(tl.tMs.at(-1)! - tl.tMs[stop]! - 1000 / 1024) < 1e-9, `${tl.tMs.at(-1)! - tl.tMs[stop]!}`)
  for (let i = 1; i < tl.tMs.length; i++) t.true(tl.tMs[i]! >= tl.tMs[i - 1]! && tl.bytes[i]! >= tl.bytes[i - 1]!, `point ${i} goes forward`)
})

test('a recorded run has no rate windows: no timeline (the chart draws the iteration boundaries)', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const events = batchesOf(layout, [
    {t_ns: 0, kind: 'mig_start'},
    {t_ns: 1e6, kind: 'page_sent', gpa: 0},
    {t_ns: 2e6, kind: 'mig_complete'},
  ])
  const r = await replay({header, layout, events}, {driver: 'recorded'})
  t.is(r.transferTimeline, undefined)
})
