import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {WriteClock, consoleStartHostUs, parseConsole} from '../../src/import/qemu/dirtier.js'
import {importQemuTrace, migrationParams} from '../../src/import/qemu/importer.js'
import {K} from '../../src/trace/events.js'
import {ROOT} from '../helpers/cli.js'

const DIR = join(ROOT, 'fixtures/qemu/02-moderate-random-pfnmap')
const tmp = mkdtempSync(join(tmpdir(), 'migtrace-pfn-'))

test('stamped console: start anchor, (t, total) points, and the write clock between them', (t) => {
  const rep = parseConsole(['[100.500000] DIRTIER PFNRUN vpage=0 pfn=0x10 npages=1', '[101.000000] DIRTIER READY', '[102.000900] DIRTIER t=1.000 writes=1000 distinct=9 total=1000 rate=1000', '[102.900000] DIRTIER t=2.000 writes=500 distinct=9 total=1500 rate=500'].join('\n'))
  t.is(rep.readyHostUs, 101_000_000)
  t.is(rep.lateRuns, 0)
  // the t=2.000 line arrived 0.9 s after the start it implies: the earliest bound wins.
  t.is(consoleStartHostUs(rep), 100_900_000)
  const c = new WriteClock(rep.intervals, 1000)
  t.deepEqual([c.at(0), c.at(500), c.at(1000), c.at(1250), c.at(1500), c.at(1600)], [0, 0.5e9, 1e9, 1.5e9, 2e9, 2.1e9])
  t.is(consoleStartHostUs(parseConsole('DIRTIER READY\nDIRTIER t=1.000 writes=1 distinct=1 total=1 rate=1')), -1)
})

test('mig_start params: the lab run\'s limits and the stop-copy send rate', (t) => {
  const lab = {args: {bandwidth: 128, downtime: 300}}
  t.deepEqual(migrationParams(lab, {stopUs: 1_000_000, stopPages: 1000, stopLastUs: 1_004_104}), {
    params: 'max-bandwidth=134217728;downtime-limit=300;link-bandwidth=1000000000',
    switchover: {pages: 1000, ms: 4.104, bytesPerSecond: 1_000_000_000, note: 'ram_save_page lines from the stop to the last send: normal pages x (4096 + 8 header bytes) / time; becomes link-bandwidth'},
  })
  t.deepEqual(migrationParams(undefined, {stopUs: -1, stopPages: 0, stopLastUs: -1}), {params: ''})
})

test('mig_start params, multifd: the stop-copy rate, unless the destination held it back (a multifd_recv_sync_main inside the stop-copy, and slower than max-bandwidth)', (t) => {
  const lab = {args: {bandwidth: 128, downtime: 300}}
  // 2560 pages in 20 packets over 10.8 ms: 2560 x 4096 + 20 x 1344 = 10 512 640 bytes, 973 392 593 B/s.
  const s = {stopUs: 1_000_000, stopPages: 0, stopLastUs: 1_010_800, stopMultifdPages: 2560, stopMultifdPackets: 20}
  const rate = Math.round((10_512_640 * 1e6) / 10_800)
  t.is(rate, 973_392_593)
  const note = 'multifd_send lines from the stop to the last packet: pages x 4096 + packets x 1344 header bytes / time; becomes link-bandwidth'
  // The destination released its channels before the stop and after the last packet (the
  // completion's own sync): the stop-copy did not wait for it.
  t.deepEqual(migrationParams(lab, s, [990_000, 1_000_000, 1_010_801]), {
    params: `max-bandwidth=134217728;downtime-limit=300;link-bandwidth=${rate}`,
    switchover: {pages: 2560, packets: 20, ms: 10.8, bytesPerSecond: rate, note},
  })
  // Releases 6.5 and 10.8 ms after the stop, inside it, but the stop-copy ran above max-bandwidth
  // (973 MB/s against 134 217 728 B/s): the sockets held the backlog, the rate is the link's.
  const released = [990_000, 1_006_500, 1_010_800, 1_012_000]
  t.deepEqual(migrationParams(lab, s, released).params, `max-bandwidth=134217728;downtime-limit=300;link-bandwidth=${rate}`)
  // The same stop-copy over 108 ms, 97 339 259 B/s, below max-bandwidth: it waited for the
  // destination; the rate is the destination's, not used.
  const slow = {...s, stopLastUs: 1_108_000}
  const held = migrationParams(lab, slow, released)
  t.is(held.params, 'max-bandwidth=134217728;downtime-limit=300')
  t.deepEqual(held.switchover!.heldBack, {releases: 3, msAfterStop: [6.5, 10.8, 12]})
  t.is(held.switchover!.bytesPerSecond, Math.round((10_512_640 * 1e6) / 108_000))
  t.is(held.switchover!.bytesPerSecond, 97_339_259)
  t.regex(held.switchover!.note as string, /^multifd_send lines .* Not used as link-bandwidth.*left to max-bandwidth$/)
  // With live windows (migrate_transferred bytes, ms): those that spent the 13 421 772.8-byte budget
  // give 136 691 380, 135 338 000 and 136 745 780 B/s; the 13 000 000-byte window did not spend it.
  // Their median, 136 691 380 B/s, is the link-bandwidth.
  const windows = [13_669_138, 100, 13_669_138, 101, 13_674_578, 100, 13_000_000, 95]
  const live = migrationParams(lab, {...slow, liveWindows: windows}, released)
  t.is(live.params, 'max-bandwidth=134217728;downtime-limit=300;link-bandwidth=136691380')
  t.is(live.switchover!.liveWindows, 3)
  t.is(live.switchover!.liveBytesPerSecond, 136_691_380)
  t.regex(live.switchover!.note as string, /median rate of the live windows/)
  // Not held back: the windows change nothing, the stop-copy rate stays.
  t.is(migrationParams(lab, {...s, liveWindows: windows}, released).params, `max-bandwidth=134217728;downtime-limit=300;link-bandwidth=${rate}`)
  // A window that spent its budget over 545 ms (24 770 642 B/s: the first window, or a source
  // blocked behind full sockets) is outside the 100-110 ms band and does not enter the median: with
  // it the median of four would be (135 338 000 + 136 691 380) / 2 = 136 014 690.
  const long = [13_500_000, 545, ...windows]
  const withLong = migrationParams(lab, {...slow, liveWindows: long}, released)
  t.is(withLong.params, 'max-bandwidth=134217728;downtime-limit=300;link-bandwidth=136691380')
  t.is(withLong.switchover!.liveWindows, 3)
  // With only two windows in the band and the long one: fewer than 3, left to max-bandwidth.
  const two = migrationParams(lab, {...slow, liveWindows: [13_500_000, 545, 13_669_138, 100, 13_669_138, 101]}, released)
  t.is(two.params, 'max-bandwidth=134217728;downtime-limit=300')
  t.regex(two.switchover!.note as string, /Fewer than 3 live windows spent their budget within 110 ms/)
})

test('mig_start params, multifd, no lab config: no max-bandwidth to compare with, so the held-back test is not made and the stop-copy rate stays', (t) => {
  // The slow stop-copy above (10 512 640 bytes over 108 ms, 97 339 259 B/s) with releases inside it.
  const slow = {stopUs: 1_000_000, stopPages: 0, stopLastUs: 1_108_000, stopMultifdPages: 2560, stopMultifdPackets: 20}
  const released = [990_000, 1_006_500, 1_010_800, 1_012_000]
  const windows = [13_669_138, 100, 13_669_138, 101, 13_674_578, 100]
  // max-bandwidth 0 is no limit (qemu_file_rate_limit tests rate_limit_max > 0).
  for (const [lab, params] of [
    [undefined, 'link-bandwidth=97339259'],
    [{args: {}}, 'link-bandwidth=97339259'],
    [{args: {bandwidth: 0}}, 'max-bandwidth=0;link-bandwidth=97339259'],
  ] as const) {
    const r = migrationParams(lab, {...slow, liveWindows: windows}, released)
    t.is(r.params, params, JSON.stringify(lab))
    t.is(r.switchover!.heldBack, undefined)
    t.is(r.switchover!.bytesPerSecond, 97_339_259)
    t.regex(r.switchover!.note as string, /no known max-bandwidth .* cannot be told/)
  }
})

test('run 02 with --pfnmap: every guest write re-created at its frame, counts exact against the console', async (t) => {
  const con = readFileSync(join(DIR, 'src-console.log'), 'utf8')
  const rep = parseConsole(con)
  const frames = new Set<number>()
  for (const r of rep.pfnRuns) for (let k = 0; k < r.npages; k++) frames.add(r.pfn + k)
  t.is(frames.size, 65536)
  const times: number[] = []
  let outside = 0
  let unaligned = 0
  const kinds = new Map<number, number>()
  const out = join(tmp, 'q02.csv.gz')
  const r = await importQemuTrace({
    trace: join(DIR, 'trace-src.log.gz'),
    out,
    stats: join(DIR, 'final-src.json'),
    workload: join(DIR, 'config.json'),
    console: join(DIR, 'src-console.log'),
    onBatch: (b) => {
      for (let i = 0; i < b.length; i++) {
        kinds.set(b.kind[i]!, (kinds.get(b.kind[i]!) ?? 0) + 1)
        if (b.kind[i] !== K.write) continue
        times.push(b.t[i]!)
        if (!frames.has(Math.floor(b.gpa[i]! / 4096))) outside++
        if (b.gpa[i]! % 8 !== 0 || b.len[i] !== 8) unaligned++
      }
    },
  })
  const w = r.header.source!.workload as Record<string, number | boolean>
  t.is(w.consoleIntervalsVerified, 6)
  t.is(w.consoleStamped, true)
  // the writes of the trace window: dirtier writes #17030..#33031, up to the source's vm stop.
  t.deepEqual([w.writesEmitted, w.writeIndexFirst, w.writeIndexLast], [16002, 17030, 33031])
  t.is(kinds.get(K.write), 16002)
  t.is(kinds.get(K.page_sent), 101103 - 4) // = ram.normal, less the 4 ACPI-blob pages without a GPA
  t.is(outside, 0)
  t.is(unaligned, 0)
  // The console's interval t=5.002 (writes=5002) lies inside the trace: exactly that many writes in it.
  const [origS, origUs] = String(r.header.source!.timeOrigin).split('.')
  const startNs = (consoleStartHostUs(rep) - (Number(origS) * 1e6 + Number(origUs))) * 1000
  const iv = rep.intervals.find((x) => x.t === 5.002)!
  const prev = rep.intervals[rep.intervals.indexOf(iv) - 1]!
  const lo = startNs + prev.t * 1e9 + 1e5
  const hi = startNs + iv.t * 1e9 + 1e5
  t.is(times.filter((x) => x > lo && x <= hi).length, iv.writes)
  t.is(iv.writes, 5002)
  // TCG run: legacy get-and-clear bitmap; the run's own parameters ride on mig_start.
  t.deepEqual(r.header.dirtyTracking, {mode: 'bitmap', manualProtect: false, initiallySet: false, ringSize: 4096})
  // The shared lab's host: 1.488 us between back-to-back page lines (79 620 gaps; this repo's lab
  // host 3.3-4.9), the host's figure for a traced record (trace-page-interval).
  t.is(r.header.source!.migrationParams, 'max-bandwidth=134217728;downtime-limit=300;link-bandwidth=734015980;trace-page-interval=0.001488')
  t.is((r.header.source!.pageIntervalMeasured as {gaps: number}).gaps, 79620)
  t.is((r.header.observed!.ram as Record<string, number>).transferred, 416506725)
})
