/**
 * Postcopy recovery (docs/postcopy-snapshot.md, src/replay/drivers/postcopy-recovery.ts): hand
 * oracles on a pure postcopy of a 64 MiB guest (16,384 pages, one block `pc.ram`).
 * The link carries 4,104,000,000 bytes/s, so a page (4096 + the 8-byte header) takes exactly
 * 1 µs; rtt 0.2 ms (one way 100 µs); socket-buffer 100 pages (100 µs of background ahead of the
 * wire); no device state. The package is the discard message alone: one range, 16 bytes + the
 * 6-byte command header + "pc.ram" = 28 bytes, P = 28 / 4.104e9 s = 6.8226 ns. Background page k
 * (0-based) is taken at max(P, P + k µs - 100 µs), goes on the wire at P + k µs and arrives at
 * P + (k + 1) µs + 100 µs.
 * The resume handshake: connect 1 RTT; RECV_BITMAP 12 bytes out (5-byte header + length byte +
 * "pc.ram"), 1 RTT, the receivedmap back: 4 + 7 + 8 + 2048 + 8 = 2075 bytes; RESUME 5 bytes out,
 * 1 RTT, the 8-byte ack back: 3 RTT + 2100 bytes = 600 µs + 511.6959 ns.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {RawOverrides} from '../../src/replay/config.js'
import {batchesOf, machine, MiB} from './helpers.js'

const near = (got: number, want: number, tol = 1e-9): boolean => Math.abs(got - want) <= Math.abs(want) * tol + 1e-9
const PAGES = 16384
const P_MS = 28 / 4.104e9 * 1e3
const HANDSHAKE_MS = 0.6 + (2100 / 4.104e9) * 1e3
const base: RawOverrides = {'max-bandwidth': 4104e6, 'start-at': 0, 'postcopy-after': 0, 'device-state-bytes': 0, rtt: '0.2ms', 'socket-buffer': 410400}

test('idle guest, failure 5 ms after the switch: the 201 pages in flight are lost and re-sent; total = 105.6005 + 11.485 + 0.1 ms', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const clean = await replay({header, layout, events: []}, {overrides: base})
  t.true(near(clean.postcopy!.postcopyMs, P_MS + 16.384 + 0.1), `${clean.postcopy!.postcopyMs}`)
  t.is(clean.postcopy!.recovery, null)

  const r = await replay({header, layout, events: []}, {overrides: {...base, 'postcopy-fail-at': '5ms', 'postcopy-recover-after': '100ms'}})
  const pc = r.postcopy!
  t.is(pc.switchoverMs, 0)
  const rec = pc.recovery!
  t.is(rec.failures, 1)
  // Taken by F = 5 ms: k <= (5 ms - P + 100 µs) / 1 µs, so pages 0..5099 (5100). Received by F:
  // k + 1 <= (5 ms - 100 µs - P) / 1 µs, so pages 0..4898 (4899). Lost: 201.
  t.is(rec.pagesLost, 201)
  t.is(rec.pagesResent, 201)
  t.is(rec.requestsResent, 0)
  t.is(rec.faultsDuringPause, 0)
  t.is(rec.guestBlockedMs, 0)
  const p = rec.pauses[0]!
  t.is(p.failMs, 5)
  t.is(p.recoverMs, 105)
  t.is(p.bitmapBytes, 2075)
  t.true(near(p.handshakeMs, HANDSHAKE_MS), `${p.handshakeMs}`)
  t.true(near(p.pausedMs, 100 + HANDSHAKE_MS))
  // After the resume the scan starts again at page 0: the 16,384 - 4,899 = 11,485 pages not
  // received, the last one arriving 11,485 µs + 100 µs after the resume.
  t.true(near(pc.postcopyMs, 105 + HANDSHAKE_MS + 11.485 + 0.1), `${pc.postcopyMs}`)
  t.is(pc.pagesAfterSwitchover, PAGES + 201)
  t.is(pc.bytesAfterSwitchover, (PAGES + 201) * 4104)
  // The invariants: a lost page sent again is not "sent twice"; nothing missing, nothing lost.
  t.is(pc.pagesSentTwiceAfterSwitchover, 0)
  t.is(pc.destinationMissingPages, 0)
  t.is(r.lostWrites, 0)
  // The ledger calls the second send redundant, with the recovery's cause.
  t.is(r.sendHistogram[2], 201)
  t.is(r.totals.redundantByCause['postcopy-recovery'], 201)
})

test('a vCPU waiting on a lost page blocks through the pause; a fault during the pause is served right after the resume', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, vcpus: 2})
  const gpa = (page: number): number => page * 4096
  // The guest runs on the destination from G = P + 100 µs (wall = trace time + G).
  // vCPU 0 reads page 10000 at trace 4.7005 ms (wall 4.8005 ms + P): the request reaches the
  // source at 4.9005 ms + P, after background pages 0..5000 (taken up to then): the page goes on
  // the wire in slot 5001, at P + 5.001 ms, and would arrive at P + 5.102 ms, after the failure at 5 ms.
  // vCPU 1 reads page 12000 at trace 50 ms (wall 50.1 ms + P), in the pause.
  const events = batchesOf(layout, [
    {t_ns: 4.7005e6, kind: 'read', vcpu: 0, gpa: gpa(10000), len: 4096},
    {t_ns: 50e6, kind: 'read', vcpu: 1, gpa: gpa(12000), len: 4096},
  ])
  const r = await replay({header, layout, events}, {overrides: {...base, 'postcopy-fail-at': '5ms', 'postcopy-recover-after': '100ms'}})
  const pc = r.postcopy!
  const rec = pc.recovery!
  const resume = 105 + HANDSHAKE_MS
  // Lost: the same 5100 slots taken, 4899 received; page 10000 is one of the 201.
  t.is(rec.pagesLost, 201)
  t.is(rec.pauses[0]!.vcpusWaiting, 1)
  // page_requested still holds 10000: requested again at the resume and sent first (arrives
  // resume + 1 µs + 100 µs); vCPU 1's request comes with the ack and goes next (+ 2 µs + 100 µs).
  t.is(rec.requestsResent, 1)
  t.is(rec.faultsDuringPause, 1)
  t.is(pc.faults, 2)
  t.is(pc.requests, 3)
  const block0 = resume + 0.101 - (4.8005 + P_MS)
  const block1 = resume + 0.102 - (50.1 + P_MS)
  t.true(near(pc.blocktimeMsPerVcpu[0]!, block0, 1e-9), `${pc.blocktimeMsPerVcpu[0]} vs ${block0}`)
  t.true(near(pc.blocktimeMsPerVcpu[1]!, block1, 1e-9), `${pc.blocktimeMsPerVcpu[1]} vs ${block1}`)
  // The failure's price: vCPU 0's extra wait (from its first promised arrival P + 5.102 ms) and
  // vCPU 1's whole wait.
  t.true(near(rec.guestBlockedMs, resume + 0.101 - (5.102 + P_MS) + block1, 1e-9), `${rec.guestBlockedMs}`)
  // One fault each: the lost page did not count a second fault, its latency is the whole wait.
  t.is(pc.latencyNs.count, 2)
  t.true(near(pc.latencyNs.max, block0 * 1e6, 1e-9))
  t.is(pc.latencyHistogram.reduce((a, b) => a + b, 0), 2)
  // The two urgent pages only change the order: the last page still arrives at resume + 11.585 ms.
  t.true(near(pc.postcopyMs, resume + 11.485 + 0.1), `${pc.postcopyMs}`)
  t.is(pc.pagesSentTwiceAfterSwitchover, 0)
  t.is(pc.destinationMissingPages, 0)
  t.is(r.lostWrites, 0)
})

test('a mig_net_fail event: the failure at its time, the recovery after its value (ms)', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  // Trace 4.9005 ms = wall 5.0005 ms + P: received k + 1 <= 4900.5 (4900 pages), taken
  // k <= 5100.5 (5101 pages).
  const events = batchesOf(layout, [{t_ns: 4.9005e6, kind: 'mig_net_fail', value: 100}])
  const r = await replay({header, layout, events}, {overrides: base})
  const rec = r.postcopy!.recovery!
  t.is(rec.failures, 1)
  t.is(rec.pagesLost, 201)
  t.true(near(rec.pauses[0]!.failMs, 5.0005 + P_MS))
  t.true(near(r.postcopy!.postcopyMs, 5.0005 + P_MS + 100 + HANDSHAKE_MS + (PAGES - 4900) / 1000 + 0.1), `${r.postcopy!.postcopyMs}`)
  t.is(r.postcopy!.destinationMissingPages, 0)
  // Without a value the setting applies; postcopy-preempt adds one RTT (the preempt channel).
  const r2 = await replay({header, layout, events: batchesOf(layout, [{t_ns: 4.9e6, kind: 'mig_net_fail'}])}, {overrides: {...base, 'postcopy-recover-after': '20ms', 'postcopy-preempt': true}})
  const p2 = r2.postcopy!.recovery!.pauses[0]!
  t.true(near(p2.recoverMs - p2.failMs, 20))
  t.true(near(p2.handshakeMs, HANDSHAKE_MS + 0.2), `${p2.handshakeMs}`)
})

test('a network failure before postcopy fails the migration; one after postcopy is over is ignored', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const pre = await replay({header, layout, events: batchesOf(layout, [{t_ns: 3e6, kind: 'mig_net_fail'}])}, {overrides: {...base, 'postcopy-after': undefined as never}})
  t.is(pre.verdict, 'cancelled')
  t.is(pre.postcopy, undefined)
  t.true(pre.notes.some((n) => /network failed at 3\.000 ms, before postcopy/.test(n)), pre.notes.join('\n'))
  // Postcopy is over at 16.484 ms: a failure set later never happens, and a note says so.
  const late = await replay({header, layout, events: []}, {overrides: {...base, 'postcopy-fail-at': '50ms'}})
  t.is(late.postcopy!.recovery, null)
  t.true(late.notes.some((n) => /postcopy-fail-at: postcopy was over/.test(n)), late.notes.join('\n'))
  t.is(late.postcopy!.pagesAfterSwitchover, PAGES)
  // A second failure while paused is ignored (counted).
  const twice = await replay({header, layout, events: batchesOf(layout, [{t_ns: 4.9e6, kind: 'mig_net_fail', value: 100}, {t_ns: 50e6, kind: 'mig_net_fail'}])}, {overrides: base})
  t.is(twice.postcopy!.recovery!.failures, 1)
  t.is(twice.postcopy!.recovery!.failuresIgnored, 1)
  t.is(twice.events.ignored['mig_net_fail'], 1)
})

test('random failures keep the postcopy invariants: nothing sent twice but the lost pages, nothing missing, no write lost', async (t) => {
  const {header, layout} = machine({memory: 16 * MiB, vcpus: 3})
  const pages = (16 * MiB) / 4096
  let x = 7
  let failed = 0
  const rnd = (): number => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  for (let seed = 1; seed <= 8; seed++) {
    const recs = []
    for (let j = 0; j < 1500; j++) recs.push({t_ns: Math.floor(rnd() * 400e6), kind: rnd() < 0.6 ? ('write' as const) : ('read' as const), vcpu: j % 3, gpa: Math.floor(rnd() * pages) * 4096, len: 4096})
    recs.sort((a, b) => a.t_ns - b.t_ns)
    const overrides: RawOverrides = {
      'max-bandwidth': '16MiB/s',
      'start-at': 0,
      'postcopy-at': `${Math.floor(rnd() * 300)}ms`,
      'postcopy-preempt': seed % 2 === 0,
      rtt: `${1 + Math.floor(rnd() * 4)}ms`,
      'postcopy-fail-at': `${Math.floor(rnd() * 600)}ms`,
      'postcopy-recover-after': `${Math.floor(rnd() * 200)}ms`,
    }
    const r = await replay({header, layout, events: batchesOf(layout, recs)}, {overrides})
    const pc = r.postcopy!
    t.is(pc.pagesSentTwiceAfterSwitchover, 0, `seed ${seed}`)
    t.is(pc.destinationMissingPages, 0, `seed ${seed}`)
    t.is(r.lostWrites, 0, `seed ${seed}`)
    if (pc.recovery) {
      failed++
      t.is(pc.recovery.pagesResent, pc.recovery.pagesLost, `seed ${seed}`)
      t.true(pc.blocktimeMs >= pc.recovery.guestBlockedMs - 1e-6, `seed ${seed}`)
    }
  }
  // The draws must exercise the recovery (the failure falls inside postcopy in most runs).
  t.true(failed >= 4, `only ${failed} runs had a failure in postcopy`)
})
