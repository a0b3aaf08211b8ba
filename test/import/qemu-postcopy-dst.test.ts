/**
 * A postcopy run's destination (hand-made consoles and traces): the dirtier goes on on the
 * destination after the switchover, its writes are re-created from the source's generator at the
 * destination console's host-stamped points, and the destination's faults, fault latencies and
 * blocktime are kept as observation (never replayed).
 */
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {destinationTimes} from '../../src/import/qemu/dirtier.js'
import {readDestinationTrace} from '../../src/import/qemu/destination.js'
import {importQemuTrace} from '../../src/import/qemu/importer.js'
import {K} from '../../src/trace/events.js'
import {UserError} from '../../src/util/errors.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-pcdst-'))
const PAGE = 4096

/** 1 MiB working set (256 pages) on frames 0x1000.., seq pattern, zero fill (no PRNG draws), 100 writes/s. */
const CFG = {name: 'pc', args: {accel: 'tcg', mem: 256, ws: 1, rate: 100, pattern: 'seq', fill: 'zero', seed: 1, warmup: 1, bandwidth: 128, downtime: 300, mode: 'postcopy'}}

const SRC_CONSOLE = [
  '[999.950000] DIRTIER PFNMAP epoch=0 total=0 runs=1',
  '[999.950000] DIRTIER PFNRUN vpage=0 pfn=0x1000 npages=256',
  '[999.950000] DIRTIER PFNMAP epoch=0 end',
  '[1000.000000] DIRTIER READY',
  '[1001.000000] DIRTIER t=1.000 writes=100 distinct=100 total=100 rate=100',
  '[1002.000000] DIRTIER t=2.000 writes=100 distinct=100 total=200 rate=100',
]

/** The same dirtier after the switchover: 50 writes by host 1003.0, 100 more by 1004.0. */
const DST_CONSOLE = ['[1003.000000] DIRTIER t=2.500 writes=50 distinct=50 total=250 rate=50', '[1004.000000] DIRTIER t=3.500 writes=100 distinct=100 total=350 rate=100']

const SRC_TRACE = [
  '7@1000.000000:migrate_set_state new state setup',
  '7@1000.000001:migrate_set_state new state active',
  '7@1000.500000:ram_save_page pc.ram: offset: 0x1000000 host: 0x7f0001000000',
  '7@1001.000000:migration_bitmap_sync_end dirty_pages 100',
  '7@1001.995000:migrate_set_state new state postcopy-active',
  '7@1001.995000:postcopy_start ',
  '7@1003.500000:migrate_set_state new state completed',
]

/**
 * The destination resumes at 1002.5; two faults, placed after 50 and 20 ms; 4 host pages placed in
 * 0.1 s; a precopy page load too.
 */
const DST_TRACE = [
  '8@1000.600000:ram_load_loop pc.ram: addr: 0x1000000 flags: 0x8 host: 0x7f0001000000',
  '8@1002.500000:migrate_set_state new state postcopy-active',
  '9@1002.600000:postcopy_ram_fault_thread_request Request for HVA=0x7f0001100000 rb=pc.ram offset=0x1100000 pid=8',
  '9@1002.600010:postcopy_page_req_add new page req 0x7f0001100000 total 1',
  '8@1002.600010:postcopy_place_page host=0x7f0001200000',
  '8@1002.620010:postcopy_place_page host=0x7f0001201000',
  '8@1002.640010:postcopy_place_page_zero host=0x7f0001202000',
  '8@1002.650010:postcopy_page_req_del resolved page req 0x7f0001100000 total 0',
  '9@1002.700000:postcopy_ram_fault_thread_request Request for HVA=0x7f0001101000 rb=pc.ram offset=0x1101000 pid=8',
  '9@1002.700000:postcopy_page_req_add new page req 0x7f0001101000 total 1',
  '8@1002.700010:postcopy_place_page host=0x7f0001101000',
  '8@1002.720000:postcopy_page_req_del resolved page req 0x7f0001101000 total 0',
  '8@1003.500000:migrate_set_state new state completed',
]

function run(name: string, files: {srcConsole?: string[]; dstConsole?: string[]; srcTrace?: string[]; dstTrace?: string[]; dstStats?: unknown}) {
  const dir = join(tmp, name)
  mkdirSync(dir)
  const p = (f: string): string => join(dir, f)
  writeFileSync(p('config.json'), JSON.stringify(CFG))
  writeFileSync(p('src-console.log'), (files.srcConsole ?? SRC_CONSOLE).join('\n') + '\n')
  writeFileSync(p('dst-console.log'), (files.dstConsole ?? DST_CONSOLE).join('\n') + '\n')
  writeFileSync(p('trace-src.log'), (files.srcTrace ?? SRC_TRACE).join('\n') + '\n')
  writeFileSync(p('trace-dst.log'), (files.dstTrace ?? DST_TRACE).join('\n') + '\n')
  writeFileSync(p('final-dst.json'), JSON.stringify(files.dstStats ?? {'query-migrate': {status: 'completed', 'postcopy-blocktime': 70, 'postcopy-vcpu-blocktime': [70]}, 'query-status': {status: 'running'}}))
  return {dir, config: p('config.json'), console: p('src-console.log'), dstConsole: p('dst-console.log'), trace: p('trace-src.log'), dstTrace: p('trace-dst.log'), dstStats: p('final-dst.json'), out: p('out.csv')}
}

interface Ev {
  kind: number
  t: number
  gpa: number
}

async function importAll(f: ReturnType<typeof run>, extra: {dstConsole?: boolean; dstTrace?: boolean; dstStats?: boolean} = {dstConsole: true, dstTrace: true, dstStats: true}) {
  const evs: Ev[] = []
  const r = await importQemuTrace({
    trace: f.trace!,
    out: f.out!,
    workload: f.config,
    console: f.console,
    ...(extra.dstConsole ? {dstConsole: f.dstConsole} : {}),
    ...(extra.dstTrace ? {dstTrace: f.dstTrace} : {}),
    ...(extra.dstStats ? {dstStats: f.dstStats} : {}),
    onBatch: (b) => {
      for (let i = 0; i < b.length; i++) evs.push({kind: b.kind[i]!, t: b.t[i]!, gpa: b.gpa[i]!})
    },
  })
  return {r, evs, writes: evs.filter((e) => e.kind === K.write)}
}

test('destination times: the resume point, then the stamped (time, total) points; nothing past the last', (t) => {
  const at = destinationTimes(1_002_500_000, 200, [
    {hostUs: 1_003_000_000, total: 250},
    {hostUs: 1_004_000_000, total: 350},
  ])
  t.is(at(199), undefined)
  t.is(at(200), 1_002_500_000)
  t.is(at(225), 1_002_750_000)
  t.is(at(250), 1_003_000_000)
  t.is(at(300), 1_003_500_000)
  t.is(at(349), 1_003_990_000)
  t.is(at(350), undefined)
  // points at or before the resume's total are skipped; a stamp before the previous one is held
  const b = destinationTimes(100, 10, [
    {hostUs: 50, total: 5},
    {hostUs: 300, total: 20},
    {hostUs: 200, total: 30},
  ])
  t.is(b(15), 200)
  t.is(b(25), 300)
})

test('the destination writes continue the source generator after postcopy_start, at the stamped times', async (t) => {
  const f = run('ok', {})
  const {r, evs, writes} = await importAll(f)
  // source: writes 0..199 at 1000 s + k/100 s, up to the stop at 1001.995 s
  const src = writes.filter((w) => w.t < 1.995e9)
  t.is(src.length, 200)
  t.is(src[199]!.t, 1.99e9)
  // destination: writes 200..349 from the resume (postcopy-active on the destination, 1002.5 s)
  const dst = writes.filter((w) => w.t >= 1.995e9)
  t.is(dst.length, 150)
  t.deepEqual(
    [dst[0]!.t, dst[25]!.t, dst[50]!.t, dst[100]!.t, dst[149]!.t],
    [2.5e9, 2.75e9, 3e9, 3.5e9, 3.99e9],
  )
  // seq: write k on page k % 256 (frame 0x1000 + page), at word (k + 1) & 511
  const gpaOf = (k: number): number => (0x1000 + (k % 256)) * PAGE + ((k + 1) & 511) * 8
  t.is(dst[0]!.gpa, gpaOf(200))
  t.is(dst[100]!.gpa, gpaOf(300))
  t.is(dst[149]!.gpa, gpaOf(349))
  t.is(src[5]!.gpa, gpaOf(5))
  // after the switch (mig_postcopy, vm_stop) and in time order; the last ones after the source's last line
  const iPc = evs.findIndex((e) => e.kind === K.mig_postcopy)
  const iStop = evs.findIndex((e) => e.kind === K.vm_stop)
  const iFirstDst = evs.findIndex((e) => e.kind === K.write && e.t >= 2.5e9)
  t.true(iPc >= 0 && iPc < iStop && iStop < iFirstDst)
  t.true(evs.every((e, i) => i === 0 || e.t >= evs[i - 1]!.t))
  const iDone = evs.findIndex((e) => e.kind === K.mig_complete)
  // writes 301..349 come after it (write 300, at the same instant, comes first)
  t.is(evs.slice(iDone + 1).filter((e) => e.kind === K.write).length, 49)
  // the destination's precopy page load is not a send: the source's one page only
  t.is(evs.filter((e) => e.kind === K.page_sent).length, 1)
  const wl = r.header.source!.workload as Record<string, unknown>
  t.like(wl, {writesEmitted: 350, writeIndexFirst: 0, writeIndexLast: 349, destinationWrites: {emitted: 150, writeIndexFirst: 200, writeIndexLast: 349}, destinationConsole: {intervalsVerified: 2, writesVerified: 150}})
  // observation only: faults, their latency (req_add -> req_del) and the destination's blocktime
  t.like(r.header.observed, {'postcopy-faults': 2, 'postcopy-fault-latency': {count: 2, p50Ms: 20, p90Ms: 50, maxMs: 50}, 'postcopy-blocktime': 70, 'postcopy-vcpu-blocktime': [70]})
  t.is((r.header.observed!['postcopy-fault-latency'] as {meanMs: number}).meanMs, 35)
  // ahead of a requested page: 35 ms at 4 x 4104 bytes per 0.1 s
  t.is(r.header.observed!['postcopy-request-backlog-bytes'], Math.round(0.035 * ((4 * 4104) / 0.1)))
  const faults = r.header.source!.postcopyFaults as {count: number; first: {t_ns: number; gpa: string}[]}
  t.is(faults.count, 2)
  t.deepEqual(faults.first.map((x) => [x.t_ns, x.gpa]), [
    [2.6e9, '0x1100000'],
    [2.7e9, '0x1101000'],
  ])
  t.false(evs.some((e) => e.kind === K.read))
})

test('without --dst-trace the destination writes start at the source stop; without --dst-console none', async (t) => {
  const f = run('no-dst-trace', {})
  const a = await importAll(f, {dstConsole: true})
  const dst = a.writes.filter((w) => w.t >= 1.995e9)
  t.is(dst.length, 150)
  t.is(dst[0]!.t, 1.995e9)
  // 50 writes between the stop and 1003.0 s
  t.is(dst[25]!.t, 1.995e9 + 0.5025e9)
  t.is(a.r.header.observed, undefined)
  const f2 = run('no-dst', {})
  const b = await importAll(f2, {})
  t.is(b.writes.length, 200)
})

test('bad destination input: one line naming the file and line', async (t) => {
  const f = run('unstamped', {dstConsole: ['DIRTIER t=2.500 writes=50 distinct=50 total=250 rate=50']})
  const e1 = await t.throwsAsync(importAll(f), {instanceOf: UserError})
  t.is(e1!.message, `${f.dstConsole}:1: the destination console is not host-stamped (expected the lab's dst-console.log ('[SECONDS.MICROS] DIRTIER t=...'), not dst-serial.log)`)
  const g = run('gap', {dstConsole: ['[1003.000000] DIRTIER t=2.500 writes=40 distinct=40 total=250 rate=40']})
  const e2 = await t.throwsAsync(importAll(g), {instanceOf: UserError})
  t.is(e2!.message, `${g.dstConsole}:1: the destination console does not continue the source console's dirtier (expected a first interval starting at total=200 (the source's last line), found total=250 writes=40)`)
  const h = run('prng', {dstConsole: [DST_CONSOLE[0]!, '[1004.000000] DIRTIER t=3.500 writes=100 distinct=99 total=350 rate=100']})
  const e3 = await t.throwsAsync(importAll(h), {instanceOf: UserError})
  t.regex(e3!.message, new RegExp(`^${h.dstConsole.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2: the console's distinct-page count differs`))
  const p = run('precopy', {srcTrace: SRC_TRACE.filter((l) => !/postcopy/.test(l))})
  const e4 = await t.throwsAsync(importAll(p), {instanceOf: UserError})
  t.regex(e4!.message, /the trace has no postcopy switchover \(postcopy_start\)/)
  const q = run('dst-not-postcopy', {dstTrace: DST_TRACE.filter((l) => !/postcopy-active/.test(l))})
  const e5 = await t.throwsAsync(importAll(q, {dstTrace: true}), {instanceOf: UserError})
  t.is(e5!.message, `${q.dstTrace}: the destination trace never enters postcopy (expected a line '…:migrate_set_state new state postcopy-active' (a postcopy run's destination, traced with migrate_set_state))`)
  const s = run('no-console', {})
  const e6 = await t.throwsAsync(importQemuTrace({trace: s.trace!, out: s.out!, workload: s.config, dstConsole: s.dstConsole}), {instanceOf: UserError})
  t.regex(e6!.message, /--dst-console needs --console/)
  const u = run('bad-stats', {dstStats: {'query-migrate': {status: 'completed', 'postcopy-blocktime': 'x'}}})
  const e7 = await t.throwsAsync(importAll(u), {instanceOf: UserError})
  t.is(e7!.message, `${u.dstStats}: field 'postcopy-blocktime': not a query-migrate reply (expected a number of ms, found "x")`)
})

test("the switchover's discards as the destination applied them: the last run of ram_discard_range before postcopy-active", async (t) => {
  const dir = join(tmp, 'discards')
  mkdirSync(dir, {recursive: true})
  const f = join(dir, 'trace-dst.log')
  writeFileSync(
    f,
    [
      // postcopy advise: whole blocks, before the precopy loads (not the switchover's).
      '9@1000.000000:ram_discard_range pc.ram: start: 0 40000000',
      '9@1000.000010:ram_block_discard_range pc.ram@0x7f0000000000 + 0x40000000: madvise: 1 fallocate: 0 ret: 0',
      '9@1000.100000:ram_load_complete exit_code 0 seq iteration 1',
      // the switchover: 3 ranges of 1, 16 and 2 pages, 2 ms from the first to the last.
      '9@1002.000000:ram_discard_range pc.ram: start: 1000 1000',
      '9@1002.000005:ram_block_discard_range pc.ram@0x7f0000001000 + 0x1000: madvise: 1 fallocate: 0 ret: 0',
      '9@1002.001000:ram_discard_range pc.ram: start: 8000 10000',
      '9@1002.002000:ram_discard_range pc.ram: start: 20000 2000',
      // the package: the fault thread's PONG and LISTEN do not belong to the run.
      '9@1002.002100:migrate_send_rp_message 2: len 4',
      '10@1002.003000:migrate_set_state new state postcopy-active',
      '9@1002.004000:ram_discard_range pc.ram: start: 30000 1000',
    ].join('\n') + '\n',
  )
  const d = await readDestinationTrace(f)
  t.deepEqual(d.discards, {ranges: 3, pages: 19, firstUs: 1002_000000, lastUs: 1002_002000})
})

test("the import keeps the switchover's discard time in header.observed['postcopy-discard-apply']", async (t) => {
  const dstTrace = [...DST_TRACE]
  // 2 ranges of 4 and 4 pages applied over 4 ms before the destination's postcopy-active.
  dstTrace.splice(1, 0, '8@1002.490000:ram_discard_range pc.ram: start: 1100000 4000', '8@1002.494000:ram_discard_range pc.ram: start: 1200000 4000')
  const {r} = await importAll(run('discard-observed', {dstTrace}))
  t.deepEqual(r.header.observed?.['postcopy-discard-apply'], {ranges: 2, pages: 8, ms: 4, msPerPage: 0.5})
})
