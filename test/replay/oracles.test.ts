/**
 * Exact oracles from anchors.md §8 (O3, O4, O5, O7, O13) and the lost-write property, run through
 * the whole engine with in-memory traces. Rates include QEMU's 8-byte page header (4104 bytes per
 * 4 KiB page on the wire), which is why figures are compared within 1 %.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {SettingsOverrides} from '../../src/replay/config.js'
import {batchesOf, machine, mergeByTime, prng, sequentialWriter, GiB, MiB} from './helpers.js'
import type {EventRecord} from '../../src/trace/events.js'

const within = (got: number, want: number, tol = 0.01): boolean => Math.abs(got - want) <= Math.abs(want) * tol

/**
 * O3: M MiB guest, R and D in MiB/s of page content, sequential writer (distinct pages at a
 * constant rate). max-bandwidth carries the 8-byte header on top, so pages move at R / 4 KiB.
 */
async function geometric(M: number, R: number, D: number, extra: SettingsOverrides = {}, endS = (3 * M) / R) {
  const {header, layout} = machine({memory: M * MiB})
  const pages = (M * MiB) / 4096
  const events = sequentialWriter(layout, {rate: (D * MiB) / 4096, endNs: endS * 1e9, pages}, 1 << 16)
  return replay({header, layout, events}, {overrides: {'max-bandwidth': (R * MiB * 4104) / 4096, 'start-at': 0, 'stop-policy': 'rounds', ...extra}})
}
/** Page content sent, in MiB (the textbook's V_mig); bytes on the wire are 4104/4096 of it. */
const contentMiB = (r: {totals: {pagesSent: number; bytesSent: number}}): number => {
  if (Math.abs(r.totals.bytesSent - r.totals.pagesSent * 4104) > 0) throw new Error('unexpected zero pages')
  return (r.totals.pagesSent * 4096) / MiB
}

test('O3 A: geometric precopy, lambda 0.2: 3 rounds, 1277.952 MB, 12.78 s, 81.92 ms', async (t) => {
  const r = await geometric(1024, 100, 20)
  t.is(r.stopReason, 'converged')
  t.is(r.verdict, 'converged')
  t.is(r.iterations, 3)
  t.true(within(contentMiB(r), 1277.952), `sent ${contentMiB(r)} MiB`)
  t.true(within(r.totalTimeMs, 12779.52), `time ${r.totalTimeMs}`)
  t.true(within(r.downtimeMs, 81.92), `downtime ${r.downtimeMs}`)
  t.deepEqual(
    r.rows.map((x) => x.phase),
    ['live', 'live', 'live', 'stop-copy'],
  )
  t.true(within(r.rows[1]!.pagesSent, (204.8 * MiB) / 4096))
  t.true(within(r.rows[2]!.pagesSent, (40.96 * MiB) / 4096))
  t.is(r.lostWrites, 0)
  t.is(r.totals.redundantPages, 0, 'a writer behind the sender never writes before a send')
})

test('O3 B: lambda 0.5: 6 rounds, 2032 MB, 20.32 s, 160 ms', async (t) => {
  const r = await geometric(1024, 100, 50)
  t.is(r.iterations, 6)
  t.true(within(contentMiB(r), 2032), `sent ${contentMiB(r)} MiB`)
  t.true(within(r.totalTimeMs, 20320), `time ${r.totalTimeMs}`)
  t.true(within(r.downtimeMs, 160), `downtime ${r.downtimeMs}`)
})

test('O3 C: 8 GiB at 10 GbE: 2 rounds, 10158.08 MB, 8.126 s, 262.144 ms', async (t) => {
  const r = await geometric(8192, 1250, 250)
  t.is(r.iterations, 2)
  t.true(within(contentMiB(r), 10158.08), `sent ${contentMiB(r)} MiB`)
  t.true(within(r.totalTimeMs, 8126.464), `time ${r.totalTimeMs}`)
  t.true(within(r.downtimeMs, 262.144), `downtime ${r.downtimeMs}`)
})

test('O3 D: D >= R does not converge; the cap is the stop reason and the downtime is M/R', async (t) => {
  const r = await geometric(64, 64, 64, {}, 40)
  t.is(r.verdict, 'not-converged')
  t.is(r.stopReason, 'max-iterations')
  t.is(r.iterations, 30)
  t.true(within(r.downtimeMs, 1000), `downtime ${r.downtimeMs}`)
  t.true(r.stall?.stalled)
})

test("qemu's own rule differs from the textbook: it syncs as the remainder shrinks and spends the downtime budget", async (t) => {
  const rounds = await geometric(1024, 100, 20)
  const qemu = await geometric(1024, 100, 20, {'stop-policy': 'qemu'})
  t.is(qemu.stopReason, 'converged')
  // QEMU syncs whenever the pending estimate is under the threshold (migration_iteration_run), not
  // once per pass, so it needs more syncs ...
  t.true(qemu.dirtySyncCount > rounds.dirtySyncCount, `${qemu.dirtySyncCount} vs ${rounds.dirtySyncCount}`)
  // ... and switches over as soon as pending <= threshold = bandwidth x downtime-limit: the last
  // stage is just under the limit (30 MiB at 100 MiB/s = 300 ms), while the textbook's last round
  // is lambda^n of RAM (81.92 ms).
  t.true(qemu.downtimeMs <= 300 * 1.01, `qemu downtime ${qemu.downtimeMs}`)
  t.true(qemu.downtimeMs > 2 * rounds.downtimeMs, `qemu ${qemu.downtimeMs} vs rounds ${rounds.downtimeMs}`)
  // Stopping with a larger remainder means fewer bytes and less time than the extra textbook pass.
  t.true(qemu.totals.bytesSent < rounds.totals.bytesSent)
  t.true(qemu.totalTimeMs < rounds.totalTimeMs)
  // The first 100 ms window has threshold 0 (migrate_init), so sync #1's row shows 0.
  t.is(qemu.rows[0]!.thresholdBytes, 0)
  t.is(qemu.rows[1]!.thresholdBytes, Math.floor(((100 * MiB * 4104) / 4096 / 1000) * 300))
})

test('O4: the QEMU switchover threshold with defaults is 40,265,318 bytes', async (t) => {
  const {header, layout} = machine({memory: GiB})
  const events = sequentialWriter(layout, {rate: 2000, endNs: 20e9, pages: 262144})
  const r = await replay({header, layout, events}, {overrides: {'start-at': 0}})
  t.is(r.settings['max-bandwidth'], 134217728)
  t.is(r.settings['downtime-limit'], 300)
  const later = r.rows.filter((x) => x.iteration > 0)
  t.true(later.length > 0)
  for (const row of later) t.is(row.thresholdBytes, 40265318)
  const last = r.rows.at(-1)!
  t.is(last.phase, 'stop-copy')
  t.true(last.dirtyPagesAtSync * 4096 <= 40265318, 'switchover only when pending <= threshold')
  t.true(within(last.expectedDowntimeMs, (last.dirtyPagesAtSync * 4096 * 1000) / 134217728, 1e-9))
})

test('O7: writable working set stall (scaled 1/16): converges at 300 ms, stalls at 200 ms', async (t) => {
  const {header, layout} = machine({memory: 256 * MiB})
  const pages = 65536
  const hot = 4096
  const R = 62.5 * MiB
  const writer = (endNs: number) => sequentialWriter(layout, {rate: R / 4096, endNs, first: pages - hot, pages: hot})
  const ok = await replay({header, layout, events: writer(6e9)}, {overrides: {'max-bandwidth': R, 'start-at': 0, 'stop-policy': 'rounds'}})
  t.is(ok.stopReason, 'converged')
  t.is(ok.iterations, 1)
  t.true(within(ok.downtimeMs, 256), `downtime ${ok.downtimeMs}`)
  t.true(within(ok.totalTimeMs, 4352), `total ${ok.totalTimeMs}`)
  t.true(within(ok.totals.bytesSent, 272 * MiB), `bytes ${ok.totals.bytesSent / MiB}`)
  t.is(ok.sendHistogram[2], hot, 'every hot page is sent twice')
  t.is(ok.sendHistogram[1], pages - hot)

  const stall = await replay({header, layout, events: writer(14e9)}, {overrides: {'max-bandwidth': R, 'start-at': 0, 'stop-policy': 'rounds', 'downtime-limit': 200}})
  t.is(stall.verdict, 'not-converged')
  t.is(stall.stopReason, 'max-iterations')
  t.true(stall.stall!.stalled)
  t.is(stall.stall!.dirtyBytes, hot * 4096)
  t.true(within(stall.stall!.needsDowntimeMs, 256), `needs ${stall.stall!.needsDowntimeMs} ms`)
  t.true(within(stall.stall!.needsBandwidthBps, 80 * MiB), 'needs 16 MiB / 200 ms')
  for (const row of stall.rows.slice(1, -1)) t.is(row.dirtyPagesAtSync, hot)
})

test('O5: Xen stop rules (> 3x memory at lambda 0.9, < 50 pages at lambda 0.5)', async (t) => {
  const {header, layout} = machine({memory: GiB})
  const P = 262144
  const R = 25600
  const run = (lambda: number, endS: number) =>
    replay(
      {header, layout, events: sequentialWriter(layout, {rate: R * lambda, endNs: endS * 1e9, pages: P})},
      {overrides: {'max-bandwidth': R * 4104, 'start-at': 0, 'stop-policy': 'xen'}},
    )
  const a = await run(0.9, 40)
  t.is(a.stopReason, 'data-cap')
  t.is(a.iterations, 4)
  const last = a.rows.at(-1)!
  t.true(within(last.pagesSent, 171993), `last ${last.pagesSent}`)
  t.true(within(a.downtimeMs, 6718.5), `downtime ${a.downtimeMs}`)
  t.true(within(a.totals.pagesSent, 1073506), `total ${a.totals.pagesSent}`)
  const b = await run(0.5, 25)
  t.is(b.stopReason, 'converged')
  t.is(b.iterations, 13)
  t.true(Math.abs(b.rows.at(-1)!.pagesSent - 32) <= 1, `final ${b.rows.at(-1)!.pagesSent}`)
  t.true(within(b.totals.pagesSent, 524256), `total ${b.totals.pagesSent}`)
})

/** O13: 1000 pages, sender at 100 pages/s, writer page j at j / W. */
async function writeBeforeSend(W: number, extra: SettingsOverrides) {
  const {header, layout} = machine({memory: 1000 * 4096})
  const events = sequentialWriter(layout, {rate: W, endNs: (1000 / W) * 1e9 - 1, pages: 1000})
  return replay({header, layout, events}, {overrides: {'max-bandwidth': 100 * 4104, 'start-at': 0, 'stop-policy': 'rounds', ...extra}})
}

test('O13: write-before-send duplicates, with and without the lazy clear', async (t) => {
  const legacy = await writeBeforeSend(200, {'dirty-log': 'bitmap'})
  t.is(legacy.totals.redundantPages, 999)
  t.is(legacy.totals.redundantByCause['sync-window'], 999)
  t.is(legacy.lostWrites, 0)
  const noLazy = await writeBeforeSend(200, {'dirty-log': 'manual-initially-set', 'lazy-clear': false})
  t.is(noLazy.totals.redundantPages, 999)
  // Clear right before each 64-page chunk: only chunk 0 (cleared at t = 0, when the writer starts) re-logs.
  const lazy = await writeBeforeSend(200, {'dirty-log': 'manual-initially-set', 'x-clear-bitmap-shift': 6})
  t.is(lazy.totals.redundantPages, 63)
  t.is(lazy.totals.redundantByCause['lazy-clear-window'], 63)
  for (const mode of ['bitmap', 'manual-initially-set'] as const) {
    const slow = await writeBeforeSend(50, {'dirty-log': mode, 'x-clear-bitmap-shift': 6})
    t.is(slow.totals.redundantPages, 0, `${mode}: a writer slower than the sender only re-dirties`)
    t.is(slow.totals.redirtiedPages, slow.totals.pagesSent - 1000, 'every re-send is a genuine re-dirty')
  }
})

/** Random writes from 2 vCPUs plus some emulated DMA, all through a migration. */
function concurrentTrace(seed: number, layout: ReturnType<typeof machine>['layout'], pages: number, endNs: number): EventRecord[] {
  const rnd = prng(seed)
  const recs: EventRecord[] = []
  let t = 0
  while (t < endNs) {
    t += Math.floor(rnd() * 400e3)
    const p = Math.floor(rnd() * pages)
    if (rnd() < 0.05) recs.push({t_ns: t, kind: 'dma_write', gpa: p * 4096, len: 4096})
    else recs.push({t_ns: t, kind: 'write', vcpu: rnd() < 0.5 ? 0 : 1, gpa: p * 4096, len: 8})
  }
  return recs
}

test('lost writes: all-ones CLEAR loses writes, known-dirty never does (every mode, random traces)', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, vcpus: 2})
  const base: SettingsOverrides = {'max-bandwidth': 32 * MiB, 'start-at': 0, 'x-clear-bitmap-shift': 8}
  let lostAllOnes = 0
  for (let seed = 1; seed <= 4; seed++) {
    const events = batchesOf(layout, concurrentTrace(seed, layout, 16384, 6e9))
    for (const mode of ['bitmap', 'manual', 'manual-initially-set', 'ring'] as const) {
      const r = await replay({header, layout, events}, {overrides: {...base, 'dirty-log': mode, 'ring-size': 1024}})
      t.is(r.stopReason, 'converged')
      t.is(r.lostWrites, 0, `seed ${seed}, ${mode}: known-dirty loses nothing`)
    }
    const bad = await replay({header, layout, events}, {overrides: {...base, 'dirty-log': 'manual-initially-set', 'clear-policy': 'all-ones'}})
    lostAllOnes += bad.lostWrites
  }
  t.true(lostAllOnes > 0, `all-ones lost ${lostAllOnes} pages`)
})

test('emulated DMA re-sends are blamed on the QEMU-side source', async (t) => {
  const {header, layout} = machine({memory: 1000 * 4096})
  // DMA writes every page just ahead of the sender: the send carries the data, the next sync re-sends it.
  const recs: EventRecord[] = []
  for (let j = 1; j < 1000; j++) recs.push({t_ns: (j / 100) * 1e9 - 1e6, kind: 'dma_write', gpa: j * 4096, len: 4096})
  const r = await replay({header, layout, events: batchesOf(layout, recs)}, {overrides: {'max-bandwidth': 100 * 4104, 'start-at': 0, 'stop-policy': 'rounds'}})
  t.is(r.totals.redundantByCause['dma-vhost'], 999)
  t.is(r.lostWrites, 0)
})

test('time cap and cancel are stop reasons', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const events = sequentialWriter(layout, {rate: 20000, endNs: 30e9, pages: 16384})
  const capped = await replay({header, layout, events}, {overrides: {'max-bandwidth': 64 * MiB, 'start-at': 0, 'time-cap': 5000}})
  t.is(capped.stopReason, 'time-cap')
  t.is(capped.verdict, 'not-converged')
  t.true(within(capped.stopNs / 1e6, 5000, 0.001))
  const withCancel = mergeByTime(layout, events, batchesOf(layout, [{t_ns: 2e9, kind: 'mig_cancel'}]))
  const cancelled = await replay({header, layout, events: withCancel}, {overrides: {'max-bandwidth': 64 * MiB, 'start-at': 0}})
  t.is(cancelled.stopReason, 'cancelled')
  t.is(cancelled.verdict, 'cancelled')
  t.is(cancelled.downtimeMs, 0)
})

test('migration starts at mig_start with its params; a trace that ends first is inconclusive', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const writes = sequentialWriter(layout, {rate: 1000, startNs: 0, endNs: 3e9, pages: 16384})
  const start = batchesOf(layout, [{t_ns: 1e9, kind: 'mig_start', params: 'max-bandwidth=32MiB/s;downtime-limit=100;multifd-channels=4'}])
  const r = await replay({header, layout, events: mergeByTime(layout, writes, start)})
  t.is(r.startNs, 1e9)
  t.is(r.settings['max-bandwidth'], 32 * MiB)
  t.is(r.settings['downtime-limit'], 100)
  t.is(r.verdict, 'inconclusive')
  t.true(r.traceEndedFirst)
  t.true(r.notes.some((n) => n.includes('multifd-channels')))
  // A user setting wins over the trace's params.
  const pinned = await replay({header, layout, events: mergeByTime(layout, writes, start)}, {overrides: {'max-bandwidth': 16 * MiB}})
  t.is(pinned.settings['max-bandwidth'], 16 * MiB)
  await t.throwsAsync(replay({header, layout, events: writes}), {message: /no mig_start/})
})
