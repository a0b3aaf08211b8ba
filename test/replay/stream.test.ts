/**
 * The migration stream (docs/stream.md): the sender's CPU, each rule with a hand-computed oracle.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {compareWithObserved} from '../../src/analysis/expect.js'
import type {RawOverrides} from '../../src/replay/config.js'
import {batchesOf, GiB, machine, MiB} from './helpers.js'

const WIRE = 4104 // a 4 KiB page and its 8-byte record header
const GiBps = 2 ** 30
const close = (got: number, want: number, eps = 1e-6): boolean => Math.abs(got - want) <= eps

/** An idle 64 MiB guest (16384 populated pages, one vCPU), migrated at once on a 1 GiB/s link with no rate limit. */
async function idle(extra: RawOverrides, events: {t_ns: number; kind: 'write' | 'read'; gpa: number}[] = []) {
  const {header, layout} = machine({memory: 64 * MiB})
  const recs = [...events.map((e) => ({...e, vcpu: 0, len: 8})), {t_ns: 60e9, kind: 'read' as const, vcpu: 0, gpa: 0, len: 8}]
  return replay({header, layout, events: batchesOf(layout, recs)}, {overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', ...extra}})
}

test('sender-page-cost: a CPU-bound migration thread sends a page per cost, not at the link rate', async (t) => {
  // 10 us per page > 4104 B / 1 GiB/s = 3.82 us on the link: the pass takes 16384 x 10 us.
  const r = await idle({'sender-page-cost': '0.01ms'})
  t.is(r.totals.pagesSent, 16384)
  t.true(close(r.rows[0]!.endNs / 1e6, 163.84, 1e-6), `pass ${r.rows[0]!.endNs / 1e6}`)
  t.true(close(r.totalTimeMs, 163.84, 1e-6), `total ${r.totalTimeMs}`)
  t.is(r.transferredBytes, 16384 * WIRE, 'the CPU changes the time, not the bytes')
})

test('sender-page-cost below the link time: the link is the bound, the figures do not move', async (t) => {
  const linkMs = (16384 * WIRE * 1000) / GiBps
  const base = await idle({})
  const r = await idle({'sender-page-cost': '0.001ms'})
  t.true(close(base.totalTimeMs, linkMs, 1e-6), `base ${base.totalTimeMs}`)
  t.true(close(r.totalTimeMs, linkMs, 1e-6), `total ${r.totalTimeMs} vs ${linkMs}`)
})

test('host-cpus: one core shared by the migration thread and a busy vCPU halves what the thread produces', async (t) => {
  // share = 1 x min(1, 1 / (1 thread + 1 vCPU)) = 0.5 core: 20 us per page; 2 cores: a core each.
  const one = await idle({'sender-page-cost': '0.01ms', 'host-cpus': 1})
  t.true(close(one.totalTimeMs, 327.68, 1e-6), `1 core ${one.totalTimeMs}`)
  const two = await idle({'sender-page-cost': '0.01ms', 'host-cpus': 2})
  t.true(close(two.totalTimeMs, 163.84, 1e-6), `2 cores ${two.totalTimeMs}`)
})

test('sender-page-cost in the downtime: the pages left go at the slower of link and CPU', async (t) => {
  // At 1 ms the cursor is near page 100 (1 ms / 10 us): pages 0 and 1 written then are re-dirtied
  // behind it. max-iterations=1 forces the switchover after the first pass, so both go in the downtime.
  const r = await idle({'sender-page-cost': '0.01ms', 'downtime-limit': '0.001ms', 'max-iterations': 1}, [
    {t_ns: 1e6, kind: 'write', gpa: 0},
    {t_ns: 1e6, kind: 'write', gpa: 4096},
  ])
  t.is(r.stopReason, 'max-iterations')
  t.is(r.downtime.ramPages, 2)
  // 2 pages x 10 us of CPU (each above its 3.82 us on the link).
  t.true(close(r.downtime.ramMs, 0.02, 1e-9), `downtime RAM ${r.downtime.ramMs}`)
})

test('vm-stop-cost and device-state-cost: host time in the downtime, before the RAM pass and after it', async (t) => {
  // As above: 2 pages x 10 us in the downtime. vm_stop_force_state (0.5 ms) comes before the
  // last-stage sync and ram_save_complete; the devices' sections and the stream's tail (3 ms) after
  // the RAM pass, with device-state-bytes 4 KiB at 1 GiB/s (3.814697 us) on top.
  const writes = [
    {t_ns: 1e6, kind: 'write' as const, gpa: 0},
    {t_ns: 1e6, kind: 'write' as const, gpa: 4096},
  ]
  const base = {'sender-page-cost': '0.01ms', 'downtime-limit': '0.001ms', 'max-iterations': 1, 'device-state-bytes': '4KiB'} as const
  const off = await idle(base, writes)
  const r = await idle({...base, 'vm-stop-cost': '0.5ms', 'device-state-cost': '3ms'}, writes)
  const devBytesMs = (4096 * 1000) / GiBps
  t.is(r.downtime.ramPages, 2, 'the guest is stopped: the same pages are left')
  t.true(close(off.downtime.ramMs, 0.02, 1e-9), `RAM without ${off.downtime.ramMs}`)
  t.true(close(r.downtime.ramMs, 0.52, 1e-9), `stop + RAM ${r.downtime.ramMs}`)
  t.true(close(off.downtime.deviceStateMs, devBytesMs, 1e-9), `devices without ${off.downtime.deviceStateMs}`)
  t.true(close(r.downtime.deviceStateMs, 3 + devBytesMs, 1e-9), `devices ${r.downtime.deviceStateMs}`)
  t.true(close(r.downtimeMs, 0.52 + 3 + devBytesMs, 1e-9), `downtime ${r.downtimeMs}`)
  t.true(close(r.totalTimeMs - off.totalTimeMs, 3.5, 1e-9), `total ${r.totalTimeMs} vs ${off.totalTimeMs}`)
  t.is(r.transferredBytes, off.transferredBytes, 'host time, no bytes')
})

test('host-cpus in the downtime: the VM is stopped, so the thread has a core to itself', async (t) => {
  // One core: live the thread shares it with the busy vCPU (20 us a page); after
  // vm_stop_force_state the 2 pages left cost 10 us each.
  const r = await idle({'sender-page-cost': '0.01ms', 'host-cpus': 1, 'downtime-limit': '0.001ms', 'max-iterations': 1}, [
    {t_ns: 1e6, kind: 'write', gpa: 0},
    {t_ns: 1e6, kind: 'write', gpa: 4096},
  ])
  t.is(r.downtime.ramPages, 2)
  t.true(close(r.downtime.ramMs, 0.02, 1e-9), `downtime RAM ${r.downtime.ramMs}`)
  t.true(close(r.rows[0]!.endNs / 1e6, 327.68, 1e-6), `live pass ${r.rows[0]!.endNs / 1e6}`)
})

/** A 64 MiB guest whose first 32 MiB hold data (8192 normal pages) and the rest zero pages (8192), as idle(). */
async function halfZero(extra: RawOverrides) {
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 0, len: 32 * MiB}]})
  return replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
    overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', ...extra},
  })
}

test('single thread: a pass takes max(link, normal CPU) + zero pages: every record takes the one path in series', async (t) => {
  // Normal pages: max(8192 x 4104 B at 1 GiB/s = 31.311 ms, 8192 x 1 us); zero pages: 8192 x (9 B
  // on the link + 5 us). The same costs with multifd (below) overlap.
  const normalMs = (8192 * WIRE * 1000) / GiBps
  const zeroMs = (8192 * 9 * 1000) / GiBps + 8192 * 0.005
  const r = await halfZero({'sender-page-cost': '0.001ms', 'zero-page-cost': '0.005ms'})
  t.is(r.totals.pagesSent, 16384)
  t.true(close(r.rows[0]!.endNs / 1e6, normalMs + zeroMs, 1e-6), `pass ${r.rows[0]!.endNs / 1e6} vs ${normalMs + zeroMs}`)
  // CPU-bound normal pages (4 us > 3.82 us on the link): 8192 x 4 us, then the zero pages, each
  // its 9 bytes and 1 us.
  const cpu = await halfZero({'sender-page-cost': '0.004ms', 'zero-page-cost': '0.001ms'})
  const want = 32.768 + (8192 * 9 * 1000) / GiBps + 8.192
  t.true(close(cpu.rows[0]!.endNs / 1e6, want, 1e-6), `pass ${cpu.rows[0]!.endNs / 1e6} vs ${want}`)
})

test('first-touch-cost: each page pays it on its first send only, zero pages in series, normal pages with their CPU; none with guest-ram-prealloc', async (t) => {
  // halfZero at 1 GiB/s: normal pages max(3.82 us link, 1 us + 7 us first touch) = 8 us each:
  // 8192 x 8 us = 65.536 ms; zero pages 8192 x (9 B + 1 us + 7 us).
  const normalMs = (8192 * WIRE * 1000) / GiBps
  const zeroMs = (8192 * 9 * 1000) / GiBps + 8192 * 0.001
  const base = await halfZero({'sender-page-cost': '0.001ms', 'zero-page-cost': '0.001ms'})
  t.true(close(base.rows[0]!.endNs / 1e6, normalMs + zeroMs, 1e-6), `no first touch ${base.rows[0]!.endNs / 1e6}`)
  const cold = await halfZero({'sender-page-cost': '0.001ms', 'zero-page-cost': '0.001ms', 'first-touch-cost': '0.007ms'})
  const want = 8192 * 0.008 + zeroMs + 8192 * 0.007
  t.true(close(cold.rows[0]!.endNs / 1e6, want, 1e-6), `first pass ${cold.rows[0]!.endNs / 1e6} vs ${want}`)
  t.is(cold.transferredBytes, base.transferredBytes, 'time, not bytes')
  const pre = await halfZero({'sender-page-cost': '0.001ms', 'zero-page-cost': '0.001ms', 'first-touch-cost': '0.007ms', 'guest-ram-prealloc': true})
  t.true(close(pre.rows[0]!.endNs / 1e6, normalMs + zeroMs, 1e-6), `preallocated ${pre.rows[0]!.endNs / 1e6}`)
  // A page re-sent (written during the pass, sent again in the downtime) does not pay it again.
  const resend = await idle({'first-touch-cost': '0.007ms', 'downtime-limit': '0.001ms', 'max-iterations': 1}, [
    {t_ns: 1e6, kind: 'write', gpa: 0},
    {t_ns: 1e6, kind: 'write', gpa: 4096},
  ])
  t.is(resend.downtime.ramPages, 2)
  t.true(close(resend.downtime.ramMs, (2 * WIRE * 1000) / GiBps, 1e-9), `downtime RAM ${resend.downtime.ramMs}`)
  t.true(close(resend.rows[0]!.endNs / 1e6, 16384 * 0.007, 1e-6), `live pass ${resend.rows[0]!.endNs / 1e6}`)
})

/** A 64 MiB guest whose first 32 MiB are zero pages (8192) and the rest data (8192 normal pages), as idle(). */
async function zeroFirst(extra: RawOverrides) {
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 32 * MiB, len: 32 * MiB}]})
  return replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
    overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', ...extra},
  })
}

test('dest-record-cost: the destination loads one record after the other; the source waits once precopy-socket-buffer bytes stand unread', async (t) => {
  // 8192 zero records (9 B each, 8.382 ns on the link) then 8192 normal pages (3.822 us each), at
  // 5 us a record on the destination: it is through record k (0-based) at z + (k + 1) x 5 us, z the
  // first zero record's 9 bytes (it arrives then; every later record arrives before the loop is
  // free). The source may leave 4 MiB unread: its last write (the stream's 8192 x 9 + 8192 x 4104
  // = 33 693 696 bytes) returns once the loop has read up to 33 693 696 - 4 194 304 = 29 499 392
  // bytes: the 8192 zero records (73 728 bytes) and floor(29 425 664 / 4104) = 7169 pages, record
  // 8192 + 7168 = 15 360. So the pass ends at z + 15 361 x 5 us = 76.805 ms, where the source alone
  // takes 31.380 ms (the link's 31.311 for the pages plus the zero records' 0.069).
  const z = (9 * 1e9) / GiBps
  const alone = (8192 * WIRE * 1000) / GiBps + (8192 * 9 * 1000) / GiBps
  const base = await zeroFirst({})
  t.true(close(base.rows[0]!.endNs / 1e6, alone, 1e-6), `source alone ${base.rows[0]!.endNs / 1e6} vs ${alone}`)
  const r = await zeroFirst({'dest-record-cost': '0.005ms', 'precopy-socket-buffer': 4 * MiB})
  const want = (z + 15361 * 5000) / 1e6
  t.true(close(r.rows[0]!.endNs / 1e6, want, 1e-6), `pass ${r.rows[0]!.endNs / 1e6} vs ${want}`)
  t.is(r.transferredBytes, base.transferredBytes, 'time, not bytes')
  // A socket that holds the whole stream: the source never waits for the destination.
  const deep = await zeroFirst({'dest-record-cost': '0.005ms', 'precopy-socket-buffer': 64 * MiB})
  t.true(close(deep.rows[0]!.endNs / 1e6, alone, 1e-6), `deep socket ${deep.rows[0]!.endNs / 1e6}`)
})

test('dest-record-cost below the link time: the destination keeps up, the figures do not move', async (t) => {
  // 16384 normal pages at 3.822 us on the link, 3 us each on the destination: the loop is through
  // each page 3 us after it arrives, long before the socket fills.
  const base = await idle({})
  const r = await idle({'dest-record-cost': '0.003ms', 'precopy-socket-buffer': 64 * 1024})
  t.true(close(r.totalTimeMs, base.totalTimeMs, 1e-9), `total ${r.totalTimeMs} vs ${base.totalTimeMs}`)
})

test('dest-record-cost in the downtime: ram_save_complete\'s writes wait for the destination\'s backlog as the live ones do', async (t) => {
  // The idle 64 MiB guest of normal pages (16384, 3.822 us each on the link = l), 10 us a record on
  // the destination, 64 KiB left unread: record i (1-based) needs records up to i - 16 loaded
  // (16 x 4104 >= 65 536 > 15 x 4104). The loop is through record i at l + i x 10 us (from record
  // 17 on the source waits, so it always is behind), and the source writes record i (i > 16) at
  // l + (i - 16) x 10 us: the live pass ends with record 16 384 at l + 16 368 x 10 us. Pages 0 and 1,
  // written at 1 ms, are left for the downtime (max-iterations=1): records 16 385 and 16 386 are
  // written at l + 16 369 x 10 us and l + 16 370 x 10 us, so ram_save_complete takes 20 us, where
  // the link alone takes 2 x 3.822 = 7.644 us.
  const l = (WIRE * 1e9) / GiBps
  const writes = [
    {t_ns: 1e6, kind: 'write' as const, gpa: 0},
    {t_ns: 1e6, kind: 'write' as const, gpa: 4096},
  ]
  const base = await idle({'downtime-limit': '0.001ms', 'max-iterations': 1}, writes)
  t.true(close(base.downtime.ramMs, (2 * l) / 1e6, 1e-9), `link alone ${base.downtime.ramMs}`)
  const r = await idle({'dest-record-cost': '0.01ms', 'precopy-socket-buffer': 64 * 1024, 'downtime-limit': '0.001ms', 'max-iterations': 1}, writes)
  t.is(r.stopReason, 'max-iterations')
  t.is(r.downtime.ramPages, 2)
  t.true(close(r.rows[0]!.endNs / 1e6, (l + 16368 * 10000) / 1e6, 1e-6), `live pass ${r.rows[0]!.endNs / 1e6}`)
  t.true(close(r.downtime.ramMs, 0.02, 1e-9), `downtime RAM ${r.downtime.ramMs}`)
  t.is(r.transferredBytes, base.transferredBytes, 'time, not bytes')
})

test('dest-record-cost with multifd: the channels load the normal pages, the main loop only the zero records', async (t) => {
  // An idle guest of normal pages only: nothing goes down the main stream for the loop to load.
  const base = await idle({multifd: true, 'multifd-channels': 2})
  const r = await idle({multifd: true, 'multifd-channels': 2, 'dest-record-cost': '0.05ms', 'precopy-socket-buffer': 64 * 1024})
  t.true(close(r.totalTimeMs, base.totalTimeMs, 1e-9), `total ${r.totalTimeMs} vs ${base.totalTimeMs}`)
  // Zero records first (legacy detection: save_zero_page's records on the main channel), 50 us each
  // on the loop, 64 KiB left unread: after its last zero record (the main stream's 73 728 bytes)
  // the migration thread waits until the loop has read 73 728 - 65 536 = 8192 bytes, 910 records,
  // which it is through at z + 910 x 50 us = 45.5 ms. Only then does it queue the pages for the
  // channels, whose bytes take the link time they take without the loop: the pass is that much
  // later than the 8192 zero records' z each.
  const z = (9 * 1e9) / GiBps
  const opts = {multifd: true, 'multifd-channels': 2, 'zero-page-detection': 'legacy'} as const
  const free = await zeroFirst(opts)
  const zero = await zeroFirst({...opts, 'dest-record-cost': '0.05ms', 'precopy-socket-buffer': 64 * 1024})
  const want = (free.rows[0]!.endNs - 8192 * z + z + 910 * 50000) / 1e6
  t.true(close(zero.rows[0]!.endNs / 1e6, want, 1e-6), `pass ${zero.rows[0]!.endNs / 1e6} vs ${want}`)
})

test('multifd-socket-buffer (7.2): the destination\'s channels wait at each section\'s SYNC for the main thread; the source blocks once their sockets are full', async (t) => {
  // 64 MiB: 15 616 zero pages, then 768 pages with data (6 packets of 128, 525 632 bytes each), two
  // channels, a sync after every section, a 1 000 000-byte window (10 MB/s), the link 1 GiB/s (r).
  // The main thread loads the 15 616 zero records at 50 us each (the main stream never blocks: 64
  // MiB of room); it is through the last at z + 15 616 x 50 us = 780.8 ms (z: the first record's 9
  // bytes), so section 1's SYNC releases the channels at E1 = 780.8 ms + z. Windows: section 1 =
  // the zero records (140 544 bytes) and packets 1-2 (over the budget at packet 2); section 2 from
  // 100 ms = packets 3-4 (E2 = E1: the loop reads section 2's EOS only after E1); section 3 from
  // 200 ms = packets 5-6. Bytes after SYNC 1 when packet k (k > 2) is handed over: (k - 2) x 525 632
  // plus section 2's two SYNC packets (2 x 1344) once k > 4: packet 5 leaves 1 579 584, packet 6
  // 2 105 216 > 2 x 1 MiB = 2 097 152. So packet 6 is handed over at E1 (not at 200 ms + 2 x
  // 525 632 / r), section 3's SYNC packets (2 688 bytes) follow, and RAM is clean: the pass ends
  // at E1 + 2 688 / r. With sockets that hold it all, section 3 ends at 201 ms, the thread sleeps
  // to the window's end and finds RAM clean there: 300 ms. ram_save_complete's sync adds its 2 688
  // bytes to the total.
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 61 * MiB, len: 3 * MiB}]})
  const run = (extra: RawOverrides) =>
    replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
      overrides: {
        'start-at': 0,
        'max-bandwidth': 10_000_000,
        'link-bandwidth': '1GiB/s',
        'stop-policy': 'rounds',
        multifd: true,
        'multifd-channels': 2,
        'zero-page-detection': 'legacy',
        'multifd-flush-after-each-section': true,
        'dest-record-cost': '0.05ms',
        'precopy-socket-buffer': 64 * MiB,
        ...extra,
      },
    })
  const z = (9 * 1e9) / GiBps
  const e1 = z + 15616 * 50000
  const sync = (2688 * 1e9) / GiBps
  const free = await run({'multifd-socket-buffer': GiB})
  const held = await run({'multifd-socket-buffer': MiB})
  t.is(held.stream!.multifd!.packets, 6)
  t.true(close(free.rows[0]!.endNs, 300e6, 1e-3), `free ${free.rows[0]!.endNs / 1e6} ms`)
  t.true(close(held.rows[0]!.endNs, e1 + sync, 1e-3), `held ${held.rows[0]!.endNs / 1e6} ms vs ${(e1 + sync) / 1e6}`)
  t.true(close(held.totalTimeMs, (e1 + 2 * sync) / 1e6, 1e-9), `total ${held.totalTimeMs}`)
  t.is(held.transferredBytes, free.transferredBytes, 'time, not bytes')
  // The same 50 us a record through the destination-interval rule (dest-record-intervals x
  // trace-page-interval = 50 x 0.001 ms, dest-record-cost 0): the same hold, to the nanosecond.
  const viaIntervals = {'dest-record-cost': 0, 'dest-record-intervals': 50, 'trace-page-interval': '0.001ms'}
  const heldI = await run({'multifd-socket-buffer': MiB, ...viaIntervals})
  const freeI = await run({'multifd-socket-buffer': GiB, ...viaIntervals})
  t.true(close(heldI.rows[0]!.endNs, e1 + sync, 1e-3), `held (intervals) ${heldI.rows[0]!.endNs / 1e6} ms vs ${(e1 + sync) / 1e6}`)
  t.true(close(heldI.totalTimeMs, (e1 + 2 * sync) / 1e6, 1e-9), `total (intervals) ${heldI.totalTimeMs}`)
  t.true(close(freeI.rows[0]!.endNs, 300e6, 1e-3), `free (intervals) ${freeI.rows[0]!.endNs / 1e6} ms`)
  // One byte more room: packet 6 fits, nothing waits.
  const roomy = await run({'multifd-socket-buffer': 2105216 / 2})
  t.true(close(roomy.rows[0]!.endNs, free.rows[0]!.endNs, 1e-6), `roomy ${roomy.rows[0]!.endNs / 1e6} vs ${free.rows[0]!.endNs / 1e6}`)
})

test('multifd-socket-buffer (8.1+): the destination\'s loop stops at each round\'s RAM_SAVE_FLAG_MULTIFD_FLUSH, not at each section\'s end', async (t) => {
  // The machine of the test above, with the 768 data pages written again at 50 ms, so a second
  // round sends them. 8.1+ flushes once per round (find_dirty_block wrapping: multifd_send_sync_main
  // and RAM_SAVE_FLAG_MULTIFD_FLUSH on the main channel), and ram_load_precopy calls
  // multifd_recv_sync_main at that record (not at each section's EOS). So round 1 has no barrier:
  // it ends at 300 ms, as with roomy sockets (the 7.2 run holds it to E1 + its SYNC packets' time).
  // Round 2 starts at 300 ms with the flush; its packets go 2 a window (300, 400, 500 ms). The
  // loop reaches the flush record once through round 1's 15 616 zero records, at E1 = z + 15 616 x
  // 50 us = 780.8 ms; packet 4 of round 2 would leave 4 x 525 632 = 2 102 528 bytes after the
  // round's SYNC, more than the 2 x 1 MiB the channels hold, so the source waits until E1; packet
  // 5 then takes its link time (packet 6 stays open until ram_save_complete): round 2 ends at
  // E1 + 525 632 / r, against 500 ms + 525 632 / r with roomy sockets.
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 61 * MiB, len: 3 * MiB}]})
  const writes = Array.from({length: 768}, (_, i) => ({t_ns: 50e6, kind: 'write' as const, vcpu: 0, gpa: 61 * MiB + i * 4096, len: 8}))
  const run = (extra: RawOverrides) =>
    replay({header, layout, events: batchesOf(layout, [...writes, {t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
      overrides: {'start-at': 0, 'max-bandwidth': 10_000_000, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', multifd: true, 'multifd-channels': 2, 'zero-page-detection': 'legacy', 'dest-record-cost': '0.05ms', 'precopy-socket-buffer': 64 * MiB, ...extra},
    })
  const z = (9 * 1e9) / GiBps
  const e1 = z + 15616 * 50000
  const packet = (525632 * 1e9) / GiBps
  const held = await run({'multifd-socket-buffer': MiB, 'multifd-flush-after-each-section': false})
  const free = await run({'multifd-socket-buffer': GiB, 'multifd-flush-after-each-section': false})
  const held72 = await run({'multifd-socket-buffer': MiB, 'multifd-flush-after-each-section': true})
  t.deepEqual(held.rows.map((r) => r.pagesSent), [16384, 768, 0])
  t.true(close(held.rows[0]!.endNs, 300e6, 1e-6), `round 1 (8.1+) ${held.rows[0]!.endNs / 1e6} ms`)
  t.true(close(held72.rows[0]!.endNs, e1 + (2688 * 1e9) / GiBps, 1e-3), `round 1 (7.2) ${held72.rows[0]!.endNs / 1e6} ms`)
  t.true(close(held.rows[1]!.endNs, e1 + packet, 1e-3), `round 2 held ${held.rows[1]!.endNs / 1e6} ms vs ${(e1 + packet) / 1e6}`)
  t.true(close(free.rows[1]!.endNs, 500e6 + packet, 1e-3), `round 2 free ${free.rows[1]!.endNs / 1e6} ms`)
  // Three syncs: setup, round 2's flush, ram_save_complete; 7.2 syncs at every section's end.
  t.is(held.stream!.multifd!.syncs, 3)
  t.true(held72.stream!.multifd!.syncs > 3)
  t.is(held.transferredBytes, free.transferredBytes, 'time, not bytes')
})

test('dest-first-touch-cost: QEMU < 8.0 loads a virtio-mem device\'s pages into unpopulated memory on the destination, even with prealloc', async (t) => {
  // 64 MiB of RAM (16384 pages) and a virtio-mem device with 16 MiB plugged (4096 pages), every
  // page with data, on a 1 GiB/s link: the source alone takes 20480 x 3.822 us = 78.278 ms. At
  // 10 us a page the destination's loop gets the device's first page when the source is through
  // it, 16385 x 4104 B / 1 GiB/s = 62.625 ms, and is through device page k at 62.625 + (k + 1) x
  // 10 us. The source's last write leaves 4 MiB unread: it returns once the loop has read
  // 20480 x 4104 - 4 194 304 bytes, the RAM and floor(4096 - 4 194 304 / 4104) = 3073 device
  // pages: at 62.625 + 30.73 = 93.356 ms.
  const {header, layout} = machine({memory: 64 * MiB, virtioMem: [{id: 'vm0', base: 4 * GiB, regionSize: GiB, blockSize: 2 * MiB, plugged: 16 * MiB}]})
  const run = (extra: RawOverrides) =>
    replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
      overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', 'precopy-socket-buffer': 4 * MiB, 'dest-first-touch-cost': '0.01ms', ...extra},
    })
  const alone = (20480 * WIRE * 1000) / GiBps
  const cold = await run({'guest-ram-prealloc': true, 'qemu-version': '7.2'})
  const want = (16385 * WIRE * 1000) / GiBps + 3073 * 0.01
  t.true(close(cold.rows[0]!.endNs / 1e6, want, 1e-6), `7.2, prealloc ${cold.rows[0]!.endNs / 1e6} vs ${want}`)
  // 8.0 migrates the plugged blocks first and preallocates them before RAM arrives.
  const early = await run({'guest-ram-prealloc': true, 'qemu-version': '8.0'})
  t.true(close(early.rows[0]!.endNs / 1e6, alone, 1e-6), `8.0 ${early.rows[0]!.endNs / 1e6} vs ${alone}`)
  // Without prealloc the destination's first touch is first-touch-cost's (0 here), not this.
  const notPre = await run({'guest-ram-prealloc': false, 'qemu-version': '7.2'})
  t.true(close(notPre.rows[0]!.endNs / 1e6, alone, 1e-6), `no prealloc ${notPre.rows[0]!.endNs / 1e6} vs ${alone}`)
})

test('the first rate window opens at the migration start: once the setup took 100 ms, it closes as soon as the first turn spent the budget', async (t) => {
  // migration_thread's update_iteration_initial_status comes before qemu_savevm_state_setup, and
  // migration_update_counters runs after migration_iteration_run. The idle 64 MiB guest (16384
  // pages of 4104 B, l = 3.822 us each on 1 GiB/s) at max-bandwidth 32 MiB/s: a budget of
  // 3 355 443.2 bytes a window, spent by the 818th page (817 x 4104 = 3 352 968 is not over it).
  // setup-time 150 ms: the first turn sends 818 pages from 150 ms, and the window (open since 0)
  // closes right after them; 19 full windows follow from 150 ms + 818 l, then 24 pages:
  // 150 + 818 l + 1 900 + 24 l = 2 050 ms + 842 l. Were the first window opened at 150 ms, the
  // pass would end at 150 + 2 000 + 24 l.
  const l = (WIRE * 1e3) / GiBps
  const r = await idle({'max-bandwidth': '32MiB/s', 'setup-time': 150})
  t.is(r.totals.pagesSent, 16384)
  const want = 2050 + 842 * l
  t.true(close(r.rows[0]!.endNs / 1e6, want, 1e-6), `pass ${r.rows[0]!.endNs / 1e6} vs ${want}`)
  // A setup under 100 ms leaves the first window the rest of its 100 ms: 20 windows from 0, then 24 pages.
  const quick = await idle({'max-bandwidth': '32MiB/s', 'setup-time': 40})
  const wantQuick = 2000 + 24 * l
  t.true(close(quick.rows[0]!.endNs / 1e6, wantQuick, 1e-6), `quick setup: pass ${quick.rows[0]!.endNs / 1e6} vs ${wantQuick}`)
})

test('dest-first-touch-cost with postcopy-ram: the destination discards its RAM at POSTCOPY_ADVISE, so every precopy load is a first touch', async (t) => {
  // postcopy_ram_incoming_init -> init_range madvises every RAM block away on the destination
  // before precopy starts (prealloc undone). The idle 64 MiB guest (16384 pages with data) on a
  // 1 GiB/s link, 10 us a page on the destination's loop, 4 MiB of socket: the loop gets page 1
  // at l = 4104 B / 1 GiB/s and is through page i at l + i x 10 us (it is always behind). The
  // source's last write returns once the loop has read 16384 x 4104 - 4 194 304 = 63 045 632
  // bytes: 15 361 pages (15 362 x 4104 = 63 045 648 is 16 bytes more), at l + 153.61 ms.
  const l = (WIRE * 1e9) / GiBps
  const asked = {'postcopy-after-syncs': 99, 'precopy-socket-buffer': 4 * MiB, 'dest-first-touch-cost': '0.01ms'} as const
  const want = (l + 15361 * 10000) / 1e6
  for (const v of ['7.2', '9.2']) {
    const r = await idle({...asked, 'guest-ram-prealloc': true, 'qemu-version': v})
    t.true(close(r.rows[0]!.endNs / 1e6, want, 1e-6), `${v}: pass ${r.rows[0]!.endNs / 1e6} vs ${want}`)
  }
  const alone = (16384 * l) / 1e6
  // No postcopy asked for: no advise, the preallocated destination pays nothing.
  const plain = await idle({'precopy-socket-buffer': 4 * MiB, 'dest-first-touch-cost': '0.01ms', 'guest-ram-prealloc': true})
  t.true(close(plain.rows[0]!.endNs / 1e6, alone, 1e-6), `no postcopy ${plain.rows[0]!.endNs / 1e6} vs ${alone}`)
  // Without prealloc the destination's first touch is first-touch-cost's (0 here), not this.
  const notPre = await idle({...asked, 'guest-ram-prealloc': false})
  t.true(close(notPre.rows[0]!.endNs / 1e6, alone, 1e-6), `no prealloc ${notPre.rows[0]!.endNs / 1e6} vs ${alone}`)
})

test('multifd: the migration thread finds zero pages while the channels send the others: max(link, zero CPU, pages x cost / N)', async (t) => {
  // zero-page-detection=legacy (7.2, 8.x): ram_save_target_page's save_zero_page, on the migration thread.
  // 4 channels at 20 us a page: 8192 x 20 / 4 = 40.96 ms; the migration thread's save_zero_page
  // 8192 x 2 us = 16.38 ms; the link 31.4 ms: the channels are the bound. At 5.5 us a zero page
  // (45.056 ms) the migration thread is, and the pass is not their sum (86.02 ms). (Both stay
  // under MAX_WAIT, 50 ms: one ram_save_iterate turn; each turn is such a max.)
  const finalMs = (4 * PACKET_LEN * 1000) / GiBps
  const channels = await halfZero({multifd: true, 'multifd-channels': 4, 'zero-page-detection': 'legacy', 'multifd-page-cost': '0.02ms', 'zero-page-cost': '0.002ms'})
  t.true(close(channels.rows[0]!.endNs / 1e6, 40.96, 1e-6), `pass ${channels.rows[0]!.endNs / 1e6}`)
  t.true(close(channels.totalTimeMs, 40.96 + finalMs, 1e-6), `total ${channels.totalTimeMs}`)
  const zero = await halfZero({multifd: true, 'multifd-channels': 4, 'zero-page-detection': 'legacy', 'multifd-page-cost': '0.02ms', 'zero-page-cost': '0.0055ms'})
  t.true(close(zero.rows[0]!.endNs / 1e6, 45.056, 1e-6), `pass ${zero.rows[0]!.endNs / 1e6}`)
})

// --- multifd ---------------------------------------------------------------------------------
const PACKET_LEN = 320 + 8 * 128 // sizeof(MultiFDPacket_t) + the offsets of 128 pages

test('multifd x4, idle guest: packets of 128 pages, 4096 bytes a page, a 1344-byte header a packet, sync packets at setup and end', async (t) => {
  const r = await idle({multifd: true, 'multifd-channels': 4})
  const m = r.stream!.multifd!
  t.is(m.packets, 16384 / 128)
  t.is(m.syncs, 2, 'ram_save_setup and ram_save_complete (8.1+: no round completed in between)')
  t.is(m.syncPackets, 8)
  t.is(m.headerBytes, (128 + 8) * PACKET_LEN)
  t.is(m.pageBytes, 16384 * 4096)
  t.is(r.transferredBytes, 16384 * 4096 + (128 + 8) * PACKET_LEN)
  // Link-bound: the pass is the pages and their packets' headers at 1 GiB/s; the downtime the
  // final sync's 4 header-only packets.
  const passMs = ((16384 * 4096 + 128 * PACKET_LEN) * 1000) / GiBps
  t.true(close(r.rows[0]!.endNs / 1e6, passMs, 1e-6), `pass ${r.rows[0]!.endNs / 1e6} vs ${passMs}`)
  t.true(close(r.downtimeMs, (4 * PACKET_LEN * 1000) / GiBps, 1e-9), `downtime ${r.downtimeMs}`)
})

test('multifd: the rate window counts a packet whole when it goes to a channel (multifd_send_pages), so a window overshoots by up to one packet', async (t) => {
  // 52 MiB = 13 312 pages = 104 full packets of 4096 x 128 + 1344 = 525 632 bytes, at
  // max-bandwidth 128 MiB/s: a budget of 13 421 772 bytes a 100 ms window. Counted per packet the
  // window ends on the packet that crosses it, the 26th: 13 666 432 bytes (QEMU 7.2's windows in
  // lab/runs/multifd-2: 13 669 138, those packets and 2 706 bytes of zero records), so the 104
  // packets take exactly 4 windows. Counted per page the window would end after 13 424 768 bytes
  // and a fifth window would be needed.
  const {header, layout} = machine({memory: 52 * MiB})
  const r = await replay(
    {header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])},
    {overrides: {'start-at': 0, 'max-bandwidth': '128MiB/s', 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', multifd: true, 'multifd-channels': 2}},
  )
  const tl = r.transferTimeline!
  const setupSync = 2 * PACKET_LEN
  t.deepEqual(tl.tMs.slice(0, 5), [0, 100, 200, 300, 400])
  t.deepEqual(tl.bytes.slice(0, 5), [0, 1, 2, 3, 4].map((w) => setupSync + w * 26 * (128 * 4096 + PACKET_LEN)))
  t.is(r.rows[0]!.pagesSent, 13312)
  t.true(close(r.rows[0]!.endNs / 1e6, 400, 1e-9), `pass ${r.rows[0]!.endNs / 1e6}`)
  // the bytes do not change: pages, 104 packets' headers and 2 syncs of 2 channels
  t.is(r.transferredBytes, 13312 * 4096 + (104 + 4) * PACKET_LEN)
})

test('multifd: total time = max(link, pages x cost / N threads) for an idle guest', async (t) => {
  // 40 us per page: one thread 16384 x 40 us = 655.36 ms; 4 channels 163.84 ms (> the 63.2 ms link).
  const one = await idle({'sender-page-cost': '0.04ms'})
  t.true(close(one.totalTimeMs, 655.36, 1e-6), `1 thread ${one.totalTimeMs}`)
  // sender-page-cost is the migration thread's ram_save_page path: multifd's channels do not pay it.
  const notChannels = await idle({'sender-page-cost': '0.04ms', multifd: true, 'multifd-channels': 4})
  t.true(notChannels.totalTimeMs < 70, `multifd with sender-page-cost only: ${notChannels.totalTimeMs}`)
  const four = await idle({'multifd-page-cost': '0.04ms', multifd: true, 'multifd-channels': 4})
  const finalMs = (4 * PACKET_LEN * 1000) / GiBps
  t.true(close(four.totalTimeMs, 163.84 + finalMs, 1e-6), `4 channels ${four.totalTimeMs}`)
  t.is(four.stream!.cpuBoundPages, 16384)
  // 2 host cores shared by 4 channel threads and 1 vCPU: 4 x 2/5 = 1.6 cores, 25 us a page.
  const shared = await idle({'multifd-page-cost': '0.04ms', multifd: true, 'multifd-channels': 4, 'host-cpus': 2})
  t.true(close(shared.totalTimeMs, 409.6 + finalMs, 1e-6), `4 channels on 2 cores ${shared.totalTimeMs}`)
  t.true(close(shared.stream!.coreShare, 1.6, 1e-12))
})

test('multifd zero pages: legacy detection sends 9-byte records on the main channel; multifd detection (9.0+) an offset in a packet', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, populated: 'none'})
  const run = (zpd: string) =>
    replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
      overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', multifd: true, 'multifd-channels': 2, 'zero-page-detection': zpd},
    })
  const legacy = await run('legacy')
  t.is(legacy.stream!.multifd!.packets, 0)
  t.is(legacy.transferredBytes, 16384 * 9 + 2 * 2 * PACKET_LEN)
  const inChannels = await run('multifd')
  t.is(inChannels.stream!.multifd!.packets, 128)
  t.is(inChannels.stream!.multifd!.zeroPages, 16384)
  t.is(inChannels.transferredBytes, (128 + 4) * PACKET_LEN)
})

test('multifd-flush-after-each-section (7.2): a sync after every ram_save_iterate, more sync packets', async (t) => {
  // With 128 MiB/s windows the pass is cut into 100 ms sections (5 of them for 64 MiB).
  const {header, layout} = machine({memory: 64 * MiB})
  const events = batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])
  const base = {'start-at': 0, 'stop-policy': 'rounds', multifd: true, 'multifd-channels': 2} as const
  const perRound = await replay({header, layout, events}, {overrides: base})
  const perSection = await replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {overrides: {...base, 'multifd-flush-after-each-section': true}})
  const a = perRound.stream!.multifd!
  const b = perSection.stream!.multifd!
  t.is(a.syncs, 2)
  t.true(b.syncs > a.syncs + 3, `${b.syncs} syncs`)
  t.is(b.syncPackets, 2 * b.syncs)
  t.is(perSection.transferredBytes, 16384 * 4096 + (b.packets + b.syncPackets) * PACKET_LEN)
  // Each partial packet a section flush sends costs another header.
  t.true(b.packets >= a.packets)
})

// --- compression -----------------------------------------------------------------------------
test('multifd-compression: bytes = round(ratio x 4096) a page, from the header content profile; CPU per page / channels', async (t) => {
  const {COMPRESSION_TABLE} = await import('../../src/replay/sender/compression-table.js')
  const {header, layout} = machine({memory: 64 * MiB, content: 'text-like'})
  const row = COMPRESSION_TABLE['text-like']!.zstd[1]!
  const r = await replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
    overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', multifd: true, 'multifd-channels': 4, 'multifd-compression': 'zstd'},
  })
  const c = r.stream!.compression!
  t.is(c.pages, 16384)
  t.deepEqual(c.pagesByProfile, {'text-like': 16384})
  t.is(c.compressedBytes, Math.round(row.ratio * 4096) * 16384)
  t.is(r.transferredBytes, Math.round(row.ratio * 4096) * 16384 + (128 + 8) * PACKET_LEN)
  t.true(close(c.cpuMs, (row.ns * 16384) / 1e6, 1e-6))
  t.true(row.ratio < 0.6, `text-like compresses (ratio ${row.ratio})`)
})

test('content per region: pages outside every region count as random', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, content: [{gpa: 0, len: 16 * MiB, profile: 'mostly-zero'}]})
  const r = await replay({header, layout, events: batchesOf(layout, [{t_ns: 60e9, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {
    overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', multifd: true, 'multifd-compression': 'zlib'},
  })
  t.deepEqual(r.stream!.compression!.pagesByProfile, {random: 12288, 'mostly-zero': 4096})
})

// --- XBZRLE ----------------------------------------------------------------------------------
/**
 * A 1 MiB guest (256 pages) on a link that sends a pass in 100 ms, rounds policy, threshold 1 page
 * (downtime-limit 0.5 ms: 5253 bytes). Pages 10 and 11 are written during pass 1, so pass 2
 * (from 100 ms; XBZRLE active: the scan wrapped) sends them as cache misses and caches them. Page
 * 10 is written again at 100.5 ms, after its send: the sync at 100.78 ms finds 1 page, converges,
 * and the stop-copy sends page 10 as a cache hit, encoded against the cached copy.
 */
async function xbzrleRun(second: {gpa: number; len: number}[], extra: RawOverrides = {}) {
  const {header, layout} = machine({memory: MiB})
  const rate = (256 * WIRE) / 0.1
  const recs = [
    {t_ns: 50e6, kind: 'write' as const, vcpu: 0, gpa: 10 * 4096, len: 8},
    {t_ns: 50e6, kind: 'write' as const, vcpu: 0, gpa: 11 * 4096, len: 8},
    ...second.map((w) => ({t_ns: 100.5e6, kind: 'write' as const, vcpu: 0, gpa: 10 * 4096 + w.gpa, len: w.len})),
    {t_ns: 60e9, kind: 'read' as const, vcpu: 0, gpa: 0, len: 8},
  ]
  return replay({header, layout, events: batchesOf(layout, recs)}, {overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': rate, 'stop-policy': 'rounds', 'downtime-limit': '0.5ms', xbzrle: true, ...extra}})
}

test('XBZRLE: a hit encodes the bytes the guest changed: runs 100 unchanged, 8 changed, 92 unchanged, 100 changed = 112 bytes', async (t) => {
  const r = await xbzrleRun([
    {gpa: 100, len: 8},
    {gpa: 200, len: 100},
  ])
  t.is(r.stopReason, 'converged')
  // uleb(100) + uleb(8) + 8 + uleb(92) + uleb(100) + 100; the last unchanged run is not written.
  const encoded = 1 + 1 + 8 + 1 + 1 + 100
  const record = 8 + 1 + 2 + encoded
  t.is(r.downtime.ramPages, 1)
  t.is(r.downtime.ramBytes, record)
  t.is(r.transferredBytes, 256 * WIRE + 2 * WIRE + record)
  t.deepEqual(r.stream!.xbzrle, {cacheSize: 64 * MiB, pages: 1, bytes: record - 8, cacheHits: 1, cacheMiss: 2, overflow: 0, skipped: 0, cacheMissRate: 2 / 3, savedBytes: WIRE - record})
})

test('precopy-bytes and downtime-bytes count the RAM records at their wire size: an XBZRLE delta at its encoded bytes, multifd packets not at all (7.2)', async (t) => {
  // The run above: 256 + 2 pages sent whole while the guest ran, then page 10 as a 123-byte delta
  // with the VM stopped. ram_transferred_add files 258 x 4104 under precopy-bytes and 123 under
  // downtime-bytes; the ledger counts the delta at 4104 too, so bytesSent - the downtime's bytes
  // gave 259 x 4104 - 123.
  const rec = 8 + 1 + 2 + 112
  const r = await xbzrleRun([{gpa: 100, len: 8}, {gpa: 200, len: 100}])
  const observed = {status: 'completed', ram: {'precopy-bytes': 258 * WIRE, 'downtime-bytes': rec}}
  const by = Object.fromEntries(compareWithObserved(observed, r).map((x) => [x.metric, x.predicted]))
  t.is(by['precopy-bytes'], 258 * WIRE)
  t.is(by['downtime-bytes'], rec)
  t.is(r.totals.bytesSent, 259 * WIRE, "the ledger's nominal count")
  // multifd x2 on the idle 64 MiB guest of normal pages: every page goes in a channel's packet,
  // which 7.2's multifd_send_pages adds to ram_counters.transferred directly: nothing on the main
  // stream's RAM records (lab/runs/multifd-2: precopy-bytes 1 577 288, its 175 222 zero records).
  const mf = await idle({multifd: true, 'multifd-channels': 2})
  const mfBy = Object.fromEntries(compareWithObserved({status: 'completed', ram: {}}, mf).map((x) => [x.metric, x.predicted]))
  t.deepEqual([mfBy['precopy-bytes'], mfBy['downtime-bytes']], [0, 0])
  t.true(mf.transferredBytes > 16384 * 4096)
})

test('XBZRLE: a delta record pays sender-page-cost whole (the cost is per record, not per byte), plus xbzrle-page-cost', async (t) => {
  // The 123-byte record of the test above: the record path 0.2 ms + 0.01 ms of encoding = 0.21 ms,
  // above its 11.71 us on the link (123 B at 256 x 4104 B per 100 ms). The rule per byte gave
  // 0.2 x 123 / 4104 + 0.01 = 0.016 ms.
  const r = await xbzrleRun([{gpa: 100, len: 8}, {gpa: 200, len: 100}], {'sender-page-cost': '0.2ms', 'xbzrle-page-cost': '0.01ms'})
  const record = 8 + 1 + 2 + 112
  t.is(r.downtime.ramPages, 1)
  t.is(r.downtime.ramBytes, record)
  t.is(r.stream!.xbzrle!.cacheHits, 1)
  t.true(close(r.downtime.ramMs, 0.21, 1e-9), `downtime RAM ${r.downtime.ramMs} vs 0.21`)
})

test('XBZRLE: a delta that does not fit the page overflows, and the page goes whole', async (t) => {
  const r = await xbzrleRun([{gpa: 0, len: 4096}])
  t.is(r.downtime.ramBytes, WIRE)
  const x = r.stream!.xbzrle!
  t.is(x.overflow, 1)
  t.is(x.cacheHits, 1)
  t.is(x.pages, 0)
  t.is(x.bytes, 4096)
  t.is(x.savedBytes, 0)
})

test('XBZRLE: a skipped page (dirty, unchanged since its cached copy) pays the page loop, sender-page-cost, plus xbzrle-page-cost, and sends nothing', async (t) => {
  // Pages 10 and 200 are written in pass 1; pass 2 (from 100 ms, XBZRLE on) sends them as misses,
  // page 10 in 100-100.39 ms, page 200 in 100.39-100.78 ms, and caches them. Page 200 is written
  // again at 100.2 ms, after the sync that opened pass 2 but before its send: the cached copy
  // already holds that write, yet the page is dirty at the sync of 100.78 ms (1 page: converged).
  // The stop-copy encodes it against the cache and finds nothing changed: 0 bytes. QEMU 7.2's
  // save_xbzrle_page did the whole page's work first (ram_find_and_save_block's loop,
  // save_zero_page's buffer_is_zero, ram_save_page's trace, the cache lookup, the copy into
  // XBZRLE.current_buf and xbzrle_encode_buffer of the page) before it found 0 bytes changed:
  // 0.2 ms + 0.01 ms = 0.21 ms (charged 0.01 ms before).
  const {header, layout} = machine({memory: MiB})
  const rate = (256 * WIRE) / 0.1
  const recs = [
    {t_ns: 50e6, kind: 'write' as const, vcpu: 0, gpa: 10 * 4096, len: 8},
    {t_ns: 50e6, kind: 'write' as const, vcpu: 0, gpa: 200 * 4096, len: 8},
    {t_ns: 100.2e6, kind: 'write' as const, vcpu: 0, gpa: 200 * 4096 + 64, len: 8},
    {t_ns: 60e9, kind: 'read' as const, vcpu: 0, gpa: 0, len: 8},
  ]
  const r = await replay({header, layout, events: batchesOf(layout, recs)}, {
    overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': rate, 'stop-policy': 'rounds', 'downtime-limit': '0.5ms', xbzrle: true, 'sender-page-cost': '0.2ms', 'xbzrle-page-cost': '0.01ms'},
  })
  t.is(r.stopReason, 'converged')
  t.is(r.downtime.ramPages, 1)
  t.is(r.downtime.ramBytes, 0)
  t.is(r.transferredBytes, 256 * WIRE + 2 * WIRE)
  t.deepEqual(r.stream!.xbzrle, {cacheSize: 64 * MiB, pages: 1, bytes: 0, cacheHits: 1, cacheMiss: 2, overflow: 0, skipped: 1, cacheMissRate: 2 / 3, savedBytes: WIRE})
  t.true(close(r.downtime.ramMs, 0.21, 1e-9), `downtime RAM ${r.downtime.ramMs} vs 0.21`)
})

test("dest-record-intervals: the destination's time a record is that many of the capture's trace-page-interval, in place of dest-record-cost", async (t) => {
  // 1.25 x 4 us = 5 us a record: the oracle of the dest-record-cost test above (8192 zero records,
  // then 8192 pages; 4 MiB unread at most): the pass ends at z + 15 361 x 5 us, whatever
  // dest-record-cost says.
  const z = (9 * 1e9) / GiBps
  const want = (z + 15361 * 5000) / 1e6
  const r = await zeroFirst({'dest-record-intervals': 1.25, 'trace-page-interval': '0.004ms', 'dest-record-cost': '0.001ms', 'precopy-socket-buffer': 4 * MiB})
  t.true(close(r.rows[0]!.endNs / 1e6, want, 1e-6), `pass ${r.rows[0]!.endNs / 1e6} vs ${want}`)
  // A trace that measured no interval (trace-page-interval 0): dest-record-cost, 5 us, stands.
  const unmeasured = await zeroFirst({'dest-record-intervals': 1.25, 'dest-record-cost': '0.005ms', 'precopy-socket-buffer': 4 * MiB})
  t.true(close(unmeasured.rows[0]!.endNs / 1e6, want, 1e-6), `no interval ${unmeasured.rows[0]!.endNs / 1e6}`)
  // An interval but no ratio: dest-record-cost (0 here: the source alone, 31.380 ms).
  const alone = (8192 * WIRE * 1000) / GiBps + (8192 * 9 * 1000) / GiBps
  const noRatio = await zeroFirst({'trace-page-interval': '0.004ms', 'precopy-socket-buffer': 4 * MiB})
  t.true(close(noRatio.rows[0]!.endNs / 1e6, alone, 1e-6), `no ratio ${noRatio.rows[0]!.endNs / 1e6}`)
})
