/**
 * Postcopy and hybrid switchover: O11 (anchors.md §8, scaled down 8x: M = 1024 MiB at
 * R = 156.25 MiB/s keeps the oracle's times, 6.5536 s per guest RAM), the invariants (no page
 * sent twice after the switchover, nothing lost), a non-converging hot set finished by postcopy,
 * fault latency against RTT and preempt, and huge host pages.
 * Rates carry QEMU's 8-byte page header on top (4104 bytes per 4 KiB page), as in oracles.test.ts.
 */
import {join} from 'node:path'
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {RawOverrides} from '../../src/replay/config.js'
import {createBatch, K, type EventBatch} from '../../src/trace/events.js'
import type {TraceLayout} from '../../src/trace/layout.js'
import {openTrace} from '../../src/trace/read/open.js'
import {ROOT} from '../helpers/cli.js'
import {machine, mergeByTime, pageGpa, prng, sequentialWriter, MiB} from './helpers.js'

const within = (got: number, want: number, tol = 0.01): boolean => Math.abs(got - want) <= Math.abs(want) * tol
const wire = (mibPerS: number): number => (mibPerS * MiB * 4104) / 4096

/** Random single-page accesses (`kind`) of one vCPU: `n` of them between t0 and t1. */
function randomAccesses(layout: TraceLayout, opts: {n: number; t0: number; t1: number; first: number; pages: number; vcpu: number; kind: number; seed: number}): EventBatch[] {
  const rnd = prng(opts.seed)
  const b = createBatch(opts.n)
  for (let j = 0; j < opts.n; j++) {
    const i = b.length++
    b.t[i] = opts.t0 + ((opts.t1 - opts.t0) * j) / opts.n
    b.kind[i] = opts.kind
    b.vcpu[i] = opts.vcpu
    b.gpa[i] = pageGpa(layout, opts.first + Math.floor(rnd() * opts.pages))
    b.len[i] = layout.pageSize
  }
  return [b]
}

test('O11 pure postcopy: every page sent exactly once, RAM time M/R, downtime = device state only', async (t) => {
  const M = 1024
  const {header, layout} = machine({memory: M * MiB, vcpus: 2})
  const pages = (M * MiB) / 4096
  // The guest keeps writing and reading on the destination: random pages, so many fault.
  const events = mergeByTime(
    layout,
    randomAccesses(layout, {n: 4000, t0: 0, t1: 4e9, first: 0, pages, vcpu: 0, kind: K.write, seed: 1}),
    randomAccesses(layout, {n: 4000, t0: 0, t1: 4e9, first: 0, pages, vcpu: 1, kind: K.read, seed: 2}),
  )
  const device = 4 * MiB
  const r = await replay({header, layout, events}, {overrides: {'max-bandwidth': wire(156.25), 'start-at': 0, 'postcopy-after': 0, 'device-state-bytes': device}})
  t.is(r.verdict, 'postcopy')
  t.is(r.stopReason, 'postcopy')
  const pc = r.postcopy!
  t.is(pc.trigger, 'after-iterations')
  t.is(pc.precopyIterations, 0)
  t.is(r.iterations, 0)
  // Exactly once: the ledger's send counts are all 1.
  t.is(r.sendHistogram[1], pages)
  t.is(r.sendHistogram.reduce((a, b) => a + b, 0) - r.sendHistogram[0]! - r.sendHistogram[1]!, 0)
  t.is(r.totals.pagesSent, pages)
  t.is(pc.pagesAfterSwitchover, pages)
  t.is(pc.pagesSentTwiceAfterSwitchover, 0)
  t.is(pc.destinationMissingPages, 0)
  t.is(r.lostWrites, 0)
  t.is(pc.bytesBeforeSwitchover, 0)
  t.is(pc.bytesAfterSwitchover, r.totals.bytesSent)
  // RAM time 6.5536 s (the urgent pages are part of the same stream).
  t.true(within(pc.postcopyMs, 6553.6), `postcopy ${pc.postcopyMs} ms`)
  // Downtime: the package only (discard bitmap: one range, and the device state).
  t.is(pc.discardRanges, 1)
  t.true(within(r.downtimeMs, ((device + pc.discardBytes) * 1000) / wire(156.25), 1e-9), `downtime ${r.downtimeMs}`)
  // Faults happened, each became a request, and the vCPUs ran late by their blocktime.
  t.true(pc.faults > 100, `faults ${pc.faults}`)
  t.is(pc.requests, pc.faults + 0)
  t.is(pc.urgentPages + pc.requestsSkipped, pc.requests)
  t.true(within(pc.blocktimeMsPerVcpu[0]! + pc.blocktimeMsPerVcpu[1]!, pc.blocktimeMs, 1e-9))
  t.true(within(pc.guestDelayMsPerVcpu[0]!, pc.blocktimeMsPerVcpu[0]!, 1e-9), 'a vCPU runs late by exactly what it was blocked')
  t.is(pc.latencyHistogram.length, 33)
  t.is(pc.latencyHistogram.reduce((a, b) => a + b, 0), pc.faults)
  t.true(pc.latencyNs.p50 <= pc.latencyNs.p90 && pc.latencyNs.p90 <= pc.latencyNs.p99 && pc.latencyNs.p99 <= pc.latencyNs.max)
})

test('O11 hybrid after 2 precopy rounds at lambda 0.5: 1536 + <= 256 MiB (12,288 + 2,048 MB at 1/8), ~11.47 s', async (t) => {
  const M = 1024
  const {header, layout} = machine({memory: M * MiB})
  const pages = (M * MiB) / 4096
  // D = R/2: lambda 0.5, a sequential writer over the whole guest.
  const events = sequentialWriter(layout, {rate: (78.125 * MiB) / 4096, endNs: 12e9, pages}, 1 << 16)
  const r = await replay({header, layout, events}, {overrides: {'max-bandwidth': wire(156.25), 'start-at': 0, 'stop-policy': 'rounds', 'postcopy-after': 2}})
  t.is(r.verdict, 'postcopy')
  const pc = r.postcopy!
  t.is(pc.precopyIterations, 2)
  t.deepEqual(
    r.rows.map((x) => x.phase),
    ['live', 'live', 'postcopy'],
  )
  const contentMiB = (p: number): number => (p * 4096) / MiB
  const before = r.rows[0]!.pagesSent + r.rows[1]!.pagesSent
  t.true(within(contentMiB(before), 1536), `precopy ${contentMiB(before)} MiB`)
  t.true(contentMiB(pc.pagesAfterSwitchover) <= 256 * 1.001, `postcopy ${contentMiB(pc.pagesAfterSwitchover)} MiB`)
  t.true(within(contentMiB(r.totals.pagesSent), 1792), `total ${contentMiB(r.totals.pagesSent)} MiB`)
  t.true(within(r.totalTimeMs, 11468.8), `time ${r.totalTimeMs}`)
  t.is(pc.pagesSentTwiceAfterSwitchover, 0)
  t.is(r.lostWrites, 0)
  t.is(pc.bytesBeforeSwitchover + pc.bytesAfterSwitchover, r.totals.bytesSent)
})

test('no page is sent twice after the switchover and nothing is lost, whatever the switch point (property)', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, vcpus: 3})
  const pages = (64 * MiB) / 4096
  for (let seed = 1; seed <= 6; seed++) {
    const rnd = prng(seed)
    const events = mergeByTime(
      layout,
      randomAccesses(layout, {n: 3000, t0: 0, t1: 2e9, first: 0, pages, vcpu: 0, kind: K.write, seed: seed * 10}),
      randomAccesses(layout, {n: 3000, t0: 0, t1: 2e9, first: 0, pages: pages / 8, vcpu: 1, kind: K.write, seed: seed * 10 + 1}),
      randomAccesses(layout, {n: 3000, t0: 0, t1: 2e9, first: 0, pages, vcpu: 2, kind: K.read, seed: seed * 10 + 2}),
    )
    const overrides: RawOverrides = {'max-bandwidth': '16MiB/s', 'start-at': 0, 'postcopy-at': `${Math.floor(rnd() * 1500)}ms`, 'postcopy-preempt': seed % 2 === 0, rtt: `${1 + Math.floor(rnd() * 5)}ms`}
    const r = await replay({header, layout, events}, {overrides})
    const pc = r.postcopy!
    t.is(r.verdict, 'postcopy', `seed ${seed}`)
    t.is(pc.pagesSentTwiceAfterSwitchover, 0, `seed ${seed}`)
    t.is(pc.destinationMissingPages, 0, `seed ${seed}`)
    t.is(r.lostWrites, 0, `seed ${seed}`)
    t.is(r.rows.at(-1)!.pagesSent, pc.pagesAfterSwitchover)
  }
})

test('a hot set that never converges in precopy completes with postcopy; downtime is bounded by the device state', async (t) => {
  const file = join(ROOT, 'traces/hotset-nonconverging.csv.gz')
  const run = async (overrides: RawOverrides) => {
    const tr = await openTrace(file)
    return replay({header: tr.header, layout: tr.layout, events: tr.events(), file}, {overrides})
  }
  const device = 8 * MiB
  const pre = await run({'max-iterations': 8, 'device-state-bytes': device})
  t.is(pre.verdict, 'not-converged')
  t.is(pre.stopReason, 'max-iterations')
  const post = await run({'max-iterations': 8, 'device-state-bytes': device, 'postcopy-on-stall': true})
  t.is(post.verdict, 'postcopy')
  t.regex(post.postcopy!.trigger, /^(stall|cap:max-iterations)$/)
  t.is(post.lostWrites, 0)
  t.is(post.postcopy!.pagesSentTwiceAfterSwitchover, 0)
  t.is(post.postcopy!.destinationMissingPages, 0)
  const rate = wire(128) * (4096 / 4104) // max-bandwidth 128 MiB/s is the switchover rate here
  const bound = ((device + post.postcopy!.discardBytes) * 1000) / rate
  t.true(post.downtimeMs <= bound * 1.000001, `downtime ${post.downtimeMs} vs ${bound}`)
  t.true(post.downtimeMs < pre.downtimeMs / 5, `postcopy ${post.downtimeMs} ms vs precopy ${pre.downtimeMs} ms`)
})

test('fault latency grows with the RTT; preempt skips the socket backlog', async (t) => {
  const {header, layout} = machine({memory: 256 * MiB})
  const pages = (256 * MiB) / 4096
  // Reads of random pages in the upper half, which the stream reaches last.
  const events = randomAccesses(layout, {n: 400, t0: 0, t1: 4e8, first: pages / 2, pages: pages / 2, vcpu: 0, kind: K.read, seed: 7})
  const rate = 1e9 // bytes/s
  const lat = async (rtt: string, preempt: boolean) => {
    const r = await replay({header, layout, events}, {overrides: {'max-bandwidth': rate, 'start-at': 0, 'postcopy-after': 0, rtt, 'postcopy-preempt': preempt}})
    t.is(r.postcopy!.pagesSentTwiceAfterSwitchover, 0)
    return r.postcopy!.latencyNs
  }
  const page = (4104 / rate) * 1e9
  const backlog = ((4 * MiB) / rate) * 1e9
  const p1 = await lat('0.1ms', true)
  const p2 = await lat('1ms', true)
  const p3 = await lat('10ms', true)
  // With preempt an urgent page waits one RTT plus its own transfer.
  t.true(within(p1.p50, 0.1e6 + page, 1e-6), `p50 ${p1.p50}`)
  t.true(within(p2.p50, 1e6 + page, 1e-6), `p50 ${p2.p50}`)
  t.true(within(p3.p50, 10e6 + page, 1e-6), `p50 ${p3.p50}`)
  t.true(p1.p99 < p2.p99 && p2.p99 < p3.p99)
  // Without preempt it queues behind the socket's backlog of background pages (4 MiB).
  const q2 = await lat('1ms', false)
  t.true(within(q2.p50, 1e6 + backlog + page, 0.01), `p50 ${q2.p50} vs ${1e6 + backlog + page}`)
})

test('huge pages: a partly dirty host page becomes wholly dirty at the switchover; a fault waits for the whole 2 MiB', async (t) => {
  const {header, layout} = machine({ramBlocks: [{name: 'pc.ram', size: 64 * MiB, backing: 'hugetlb-2M'}]} as never)
  const perHuge = (2 * MiB) / 4096
  // Precopy sends everything once (round 0), while vCPU 0 writes one 4 KiB page in each of
  // the first 8 huge pages: those host pages are partly dirty at the switchover.
  const writes = createBatch(8)
  for (let j = 0; j < 8; j++) {
    const i = writes.length++
    writes.t[i] = 600e6 + j * 1e6
    writes.kind[i] = K.write
    writes.vcpu[i] = 0
    writes.gpa[i] = pageGpa(layout, j * perHuge + 3)
    writes.len[i] = 4096
  }
  const r = await replay({header, layout, events: [writes]}, {overrides: {'max-bandwidth': wire(64), 'start-at': 0, 'stop-policy': 'rounds', 'postcopy-after': 1}})
  const pc = r.postcopy!
  t.is(pc.hugePagesRedirtied, 8)
  t.is(pc.pagesAfterSwitchover, 8 * perHuge)
  t.is(pc.discardRanges, 1, 'the 8 whole huge pages are one run')
  t.is(pc.pagesSentTwiceAfterSwitchover, 0)
  t.is(r.lostWrites, 0)

  // Pure postcopy, one read at the top of RAM: the reply is the whole 2 MiB host page.
  const read = randomAccesses(layout, {n: 1, t0: 1e6, t1: 2e6, first: (64 * MiB) / 4096 - 1, pages: 1, vcpu: 0, kind: K.read, seed: 1})
  const rate = 1e9
  const p = await replay({header, layout, events: read}, {overrides: {'max-bandwidth': rate, 'start-at': 0, 'postcopy-after': 0, 'postcopy-preempt': true, rtt: '1ms'}})
  t.is(p.postcopy!.faults, 1)
  t.true(within(p.postcopy!.latencyNs.max, 1e6 + ((perHuge * 4104) / rate) * 1e9, 1e-6), `latency ${p.postcopy!.latencyNs.max}`)
})

test('a trace mig_postcopy event starts postcopy at the next migration-thread turn; a guest that faults runs later', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const pages = (64 * MiB) / 4096
  const ctl = createBatch(1)
  ctl.length = 1
  ctl.t[0] = 100e6
  ctl.kind[0] = K.mig_postcopy
  const acc = randomAccesses(layout, {n: 200, t0: 101e6, t1: 300e6, first: 0, pages, vcpu: 0, kind: K.read, seed: 3})
  const events = mergeByTime(layout, [ctl], acc)
  const r = await replay({header, layout, events}, {overrides: {'max-bandwidth': '32MiB/s', 'start-at': 0, rtt: '2ms'}})
  t.is(r.postcopy!.trigger, 'trace-event')
  t.true(within(r.postcopy!.switchoverMs, 100, 0.01), `switch at ${r.postcopy!.switchoverMs}`)
  t.true(r.postcopy!.faults > 0)
  // The vCPU's later accesses ran later than in the trace by what it was blocked.
  t.true(within(r.postcopy!.guestDelayMsPerVcpu[0]!, r.postcopy!.blocktimeMsPerVcpu[0]!, 1e-6))
  t.true(r.traceEndNs > 101e6 + r.postcopy!.blocktimeMsPerVcpu[0]! * 1e6, 'the last replayed access ran after the whole blocktime')
})

test('postcopy-after-syncs=K switches in the turn of sync K, once it is done (the lab: migrate-start-postcopy once dirty-sync-count reads K), one sync later than postcopy-after=K-1', async (t) => {
  const M = 256
  const {header, layout} = machine({memory: M * MiB, vcpus: 1})
  // A guest that dirties its first 16 MiB over and over, so no pass ever converges.
  const writes = () => randomAccesses(layout, {n: 40000, t0: 0, t1: 20e9, first: 0, pages: 4096, vcpu: 0, kind: K.write, seed: 3})
  const run = (o: RawOverrides) => replay({header, layout, events: writes()}, {overrides: {'max-bandwidth': wire(156.25), 'start-at': 0, 'downtime-limit': 1, ...o}})
  const bySync = await run({'postcopy-after-syncs': 3})
  const byPass = await run({'postcopy-after': 2})
  t.is(bySync.postcopy!.trigger, 'after-syncs')
  t.is(byPass.postcopy!.trigger, 'after-iterations')
  // postcopy-after=2 switches when pass 2 ends, so postcopy_start's sync is the 3rd;
  // postcopy-after-syncs=3 lets sync 3 happen live and switches in the same turn
  // (migration_iteration_run: qemu_savevm_state_pending syncs, then start_postcopy is tested): its
  // own sync is the 4th, and the pass sync 3 opened is cut before it sent anything.
  t.is(byPass.dirtySyncCount, 3)
  t.is(bySync.dirtySyncCount, 4)
  t.is(byPass.postcopy!.precopyIterations, 2)
  t.is(bySync.postcopy!.precopyIterations, 2)
  // No sync cost here: the switch is at sync 3's instant, and the pass it opened is the postcopy row.
  const rows = bySync.rows
  t.is(rows.length, 3)
  t.is(rows[2]!.phase, 'postcopy')
  t.is(bySync.stopNs, rows[2]!.startNs)
})

/** The lab's postcopy run in miniature: a padded (per-page sync path) guest, sync 3 costs time. */
const labLikeMachine = () => machine({memory: 64 * MiB + 4096, vcpus: 1})
// 4 writes per ms, random over the first 4 MiB, for 20 s: no pass converges.
const labLikeWrites = (layout: TraceLayout) => randomAccesses(layout, {n: 80000, t0: 0, t1: 20e9, first: 0, pages: 1024, vcpu: 0, kind: K.write, seed: 5})
async function labLike(o: RawOverrides) {
  const {header, layout} = labLikeMachine()
  return replay({header, layout, events: labLikeWrites(layout)}, {overrides: {'max-bandwidth': wire(8), 'start-at': 0, 'downtime-limit': 1, 'lazy-clear': false, 'sync-page-cost': 0.01, 'postcopy-after-syncs': 3, ...o}})
}

test('sync-pauses-guest (TCG: the BQL held across migration_bitmap_sync): postcopy-after-syncs switches when sync 3 is done and its sync finds nothing new', async (t) => {
  const runs = await labLike({})
  const paused = await labLike({'sync-pauses-guest': true})
  const link = wire(8)
  for (const r of [runs, paused]) {
    t.is(r.postcopy!.trigger, 'after-syncs')
    t.is(r.dirtySyncCount, 4)
    // The switch comes when sync 3's per-page time is over: a whole number of 10 us pages after
    // sync 3 (no ram_save_iterate between), and the pass it opened sent nothing.
    const sync3 = r.rows[2]!
    const waitedPages = (r.stopNs - sync3.startNs) / 1e4
    t.true(waitedPages > 100 && Math.abs(waitedPages - Math.round(waitedPages)) < 1e-6, `sync 3 took ${waitedPages} pages' time`)
    t.is(sync3.pagesSent, 0)
  }
  // The guest stood still during sync 3: postcopy_start's sync (ram_postcopy_send_discard_bitmap)
  // finds no page, so the downtime is the discard messages alone at the link rate (sync-cost 0),
  // as QEMU's 0-page switchover sync in the lab (docs/lab.md).
  const pc = paused.postcopy!
  t.is(paused.rows[3]!.newDirtyPages, 0)
  t.true(Math.abs(paused.downtimeMs - (pc.discardBytes * 1000) / link) < 1e-9, `downtime ${paused.downtimeMs}`)
  // With the guest running during sync 3, the switchover sync handles, 10 us each, the distinct
  // pages it wrote then (counted here from the trace: without pauses trace time is wall time).
  const {layout} = labLikeMachine()
  const during = new Set<number>()
  for (const b of labLikeWrites(layout)) for (let i = 0; i < b.length; i++) if (b.t[i]! > runs.rows[2]!.startNs && b.t[i]! < runs.stopNs) during.add(b.gpa[i]!)
  const extra = (runs.downtimeMs - (runs.postcopy!.discardBytes * 1000) / link) / 0.01
  t.true(during.size > 10, `${during.size} pages written during sync 3`)
  t.true(Math.abs(extra - during.size) < 1e-6, `switchover sync handled ${extra} pages, the guest wrote ${during.size} during sync 3`)
})

test('sync-pauses-guest with a wall-paced writer (workload-pacing=wall): the writes due during a sync happen at its end, later ones on time; after sync 3 they land after the switch', async (t) => {
  const runs = await labLike({'workload-pacing': 'wall'})
  const held = await labLike({'workload-pacing': 'wall', 'sync-pauses-guest': true})
  const link = wire(8)
  t.is(held.postcopy!.trigger, 'after-syncs')
  t.is(held.dirtySyncCount, 4)
  // Unlike a pause, a hold moves no later event: the syncs come at the same times as without it
  // (the writes held at a live sync's end dirty the same pages before the same next sync).
  t.deepEqual(
    held.rows.slice(0, 3).map((r) => r.startNs),
    runs.rows.slice(0, 3).map((r) => r.startNs),
  )
  t.is(held.stopNs, runs.stopNs)
  // What the guest wrote during sync 3 is held to its end, where postcopy_start stops the VM: it is
  // done on the destination, so the switchover sync finds nothing and the downtime is the discard
  // messages alone (sync-cost 0), as with the CPU-paced pause.
  t.is(held.rows[3]!.newDirtyPages, 0)
  t.true(Math.abs(held.downtimeMs - (held.postcopy!.discardBytes * 1000) / link) < 1e-9, `downtime ${held.downtimeMs}`)
  t.true(runs.downtimeMs > held.downtimeMs + 0.1, `without the hold the switchover sync pays for the pages written during sync 3: ${runs.downtimeMs} vs ${held.downtimeMs}`)
})

test('postcopy-discard-range-cost: the source finds and sends each discard range inside the downtime', async (t) => {
  const a = await labLike({'sync-pauses-guest': true})
  const b = await labLike({'sync-pauses-guest': true, 'postcopy-discard-range-cost': '4us'})
  t.true(a.postcopy!.discardRanges > 10)
  t.is(b.postcopy!.discardRanges, a.postcopy!.discardRanges)
  // 4 us a range: ranges x 0.004 ms more downtime, and the guest resumes that much later.
  t.true(Math.abs(b.downtimeMs - a.downtimeMs - a.postcopy!.discardRanges * 0.004) < 1e-9, `${b.downtimeMs} vs ${a.downtimeMs}`)
  t.true(Math.abs(b.postcopy!.guestResumeMs - a.postcopy!.guestResumeMs - a.postcopy!.discardRanges * 0.004) < 1e-9)
})
