/**
 * The dirtier's page map in epochs (hand-made consoles): the guest kernel moves pages (a virtio-mem
 * unplug migrates them out of the blocks it returns), the dirtier prints the changed runs with the
 * number of writes made before, and the importer gives each write the frame of its epoch.
 */
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {loadWorkload, pageMapEpochs, parseConsole} from '../../src/import/qemu/dirtier.js'
import {importQemuTrace} from '../../src/import/qemu/importer.js'
import {K} from '../../src/trace/events.js'
import {UserError} from '../../src/util/errors.js'
import {PAGE_MAP_LINES, seqLabConfig} from './lab-fixture.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-epochs-'))
const PAGE = 4096

const CFG = seqLabConfig('e')

const CONSOLE = [
  '[999.900000] DIRTIER CONFIG ws_mib=1 pages=256 rate=100 pattern=seq',
  ...PAGE_MAP_LINES,
  '[1000.000000] DIRTIER READY',
  '[1001.000000] DIRTIER t=1.000 writes=100 distinct=100 total=100 rate=100',
  // pages 160..169 moved to 0x5000.. before write #150 (0-based), 200 to 0x6000 before write #180
  '[1001.500000] DIRTIER PFNMAP epoch=1 total=150 runs=1',
  '[1001.500000] DIRTIER PFNRUN vpage=160 pfn=0x5000 npages=10',
  '[1001.500000] DIRTIER PFNMAP epoch=1 end',
  '[1001.800000] DIRTIER PFNMAP epoch=2 total=180 runs=1',
  '[1001.800000] DIRTIER PFNRUN vpage=200 pfn=0x6000 npages=1',
  '[1002.000000] DIRTIER t=2.000 writes=100 distinct=100 total=200 rate=100',
  '[1003.000000] DIRTIER t=3.000 writes=100 distinct=100 total=300 rate=100',
].join('\n')

test('parse: epochs with their totals and runs, the end marker, the first dirtier\'s header-less map as epoch 0', (t) => {
  const rep = parseConsole(CONSOLE)
  t.deepEqual(
    rep.pfnEpochs.map((e) => ({epoch: e.epoch, total: e.total, runs: e.runs.length, complete: e.complete, line: e.line})),
    [
      {epoch: 0, total: 0, runs: 2, complete: true, line: 2},
      {epoch: 1, total: 150, runs: 1, complete: true, line: 8},
      {epoch: 2, total: 180, runs: 1, complete: false, line: 11},
    ],
  )
  t.is(rep.pfnRuns.length, 2)
  t.is(rep.lateRuns, 0)
  t.is(rep.intervals.length, 3)
  const old = parseConsole(['DIRTIER PFNMAP runs=1', 'DIRTIER PFNRUN vpage=0 pfn=0x10 npages=256', 'DIRTIER READY'].join('\n'))
  t.deepEqual(old.pfnEpochs, [{epoch: 0, total: 0, runs: [{vpage: 0, pfn: 0x10, npages: 256}], line: 1, complete: true}])
  const bare = parseConsole(['DIRTIER PFNRUN vpage=0 pfn=0x10 npages=256', 'DIRTIER READY', 'DIRTIER PFNRUN vpage=0 pfn=0x10 npages=1'].join('\n'))
  t.is(bare.pfnEpochs.length, 1)
  t.is(bare.lateRuns, 1)
})

test('each write gets the frame of its epoch (before, at and after the switch, and after the sweep wraps)', (t) => {
  const con = join(tmp, 'c.log')
  writeFileSync(con, CONSOLE)
  const w = loadWorkload(CFG as never, con, 'cfg.json')
  t.true(w.hasGpas)
  t.like(w.describe(), {pageMapEpochs: [{epoch: 1, fromWrite: 150, pagesMoved: 10, complete: true}, {epoch: 2, fromWrite: 180, pagesMoved: 1, complete: false}]})
  const c = w.cursor(0, 0)!
  const gpa: number[] = []
  for (let k = 0; k < 300; k++) {
    c.advance()
    gpa.push(Math.floor(c.gpa / PAGE))
  }
  // seq: write k touches page k % 256
  t.is(gpa[149], 0x2000 + 149 - 128) // last write of epoch 0
  t.is(gpa[150], 0x2000 + 150 - 128) // page 150 did not move
  t.is(gpa[160], 0x5000) // moved in epoch 1
  t.is(gpa[169], 0x5009)
  t.is(gpa[170], 0x2000 + 170 - 128)
  t.is(gpa[200], 0x6000) // epoch 2
  t.is(gpa[4], 0x1004)
  // a second cursor starts again from epoch 0 (the importer walks the writes twice)
  const c2 = w.cursor(0, 0)!
  for (let k = 0; k <= 160; k++) c2.advance()
  t.is(Math.floor(c2.gpa / PAGE), 0x5000)
  const c3 = w.cursor(0, 0)!
  c3.advance()
  t.is(Math.floor(c3.gpa / PAGE), 0x1000)
})

test('a move of page 1 before write 1 applies to it; a move after its write does not reach back', (t) => {
  const con = join(tmp, 'c1.log')
  const lines = ['DIRTIER PFNMAP epoch=0 total=0 runs=1', 'DIRTIER PFNRUN vpage=0 pfn=0x1000 npages=256', 'DIRTIER PFNMAP epoch=0 end', 'DIRTIER READY', 'DIRTIER PFNMAP epoch=1 total=1 runs=1', 'DIRTIER PFNRUN vpage=0 pfn=0x9000 npages=2', 'DIRTIER PFNMAP epoch=1 end', 'DIRTIER t=1.000 writes=100 distinct=100 total=100 rate=100']
  writeFileSync(con, lines.join('\n'))
  const c = loadWorkload(CFG as never, con, 'cfg.json').cursor(0, 0)!
  const got: number[] = []
  for (let k = 0; k < 3; k++) {
    c.advance()
    got.push(Math.floor(c.gpa / PAGE))
  }
  t.deepEqual(got, [0x1000, 0x9001, 0x1002])
})

test('bad maps: epoch 0 not covering the set, epochs out of order, a run outside the set (file and line)', (t) => {
  const mk = (lines: string[]) => parseConsole(lines.join('\n'))
  const e1 = t.throws(() => pageMapEpochs(mk(['DIRTIER PFNMAP epoch=0 total=0 runs=1', 'DIRTIER PFNRUN vpage=0 pfn=0x1 npages=100']), 256, 'c.log'), {instanceOf: UserError})
  t.is(e1!.message, "c.log:1: the console's DIRTIER PFNRUN lines do not cover the working set (expected frames for all 256 working-set pages, found 100 pages mapped)")
  const base = ['DIRTIER PFNMAP epoch=0 total=0 runs=1', 'DIRTIER PFNRUN vpage=0 pfn=0x1 npages=256', 'DIRTIER PFNMAP epoch=0 end']
  const e2 = t.throws(() => pageMapEpochs(mk([...base, 'DIRTIER PFNMAP epoch=2 total=50 runs=0', 'DIRTIER PFNMAP epoch=3 total=40 runs=0']), 256, 'c.log'), {instanceOf: UserError})
  t.is(e2!.message, 'c.log:5: page map epochs out of order (expected an epoch after 2 with total >= 50, found epoch=3 total=40)')
  const e3 = t.throws(() => pageMapEpochs(mk([...base, 'DIRTIER PFNMAP epoch=1 total=5 runs=1', 'DIRTIER PFNRUN vpage=250 pfn=0x9 npages=10']), 256, 'c.log'), {instanceOf: UserError})
  t.is(e3!.message, 'c.log:4: a page-map run lies outside the working set (expected pages below 256, found vpage=250 npages=10)')
})

test('import: a hand-made trace and console; the written trace carries each write at its epoch\'s frame', async (t) => {
  const dir = join(tmp, 'run')
  const {mkdirSync} = await import('node:fs')
  mkdirSync(dir)
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CFG))
  writeFileSync(join(dir, 'console.log'), CONSOLE)
  writeFileSync(
    join(dir, 'trace.log'),
    [
      '7@1000.000000:migrate_set_state new state setup',
      '7@1000.000001:migrate_set_state new state active',
      '7@1000.500000:ram_save_page pc.ram: offset: 0x1000000 host: 0x7f0001000000',
      '7@1003.500000:migration_completion_vm_stop ret 0',
      '7@1003.600000:migrate_set_state new state completed',
    ].join('\n') + '\n',
  )
  const writes: {t: number; page: number}[] = []
  const r = await importQemuTrace({
    trace: join(dir, 'trace.log'),
    out: join(dir, 'out.csv'),
    workload: join(dir, 'config.json'),
    console: join(dir, 'console.log'),
    onBatch: (b) => {
      for (let i = 0; i < b.length; i++) if (b.kind[i] === K.write) writes.push({t: b.t[i]!, page: Math.floor(b.gpa[i]! / PAGE)})
    },
  })
  // writes k = 0..350 sit at 1000 s + k/100 s (the console's t/total points), up to the stop at 1003.5 s
  t.is(writes.length, 351)
  t.is(writes[150]!.t, 1.5e9)
  t.deepEqual([writes[159]!.page, writes[160]!.page, writes[200]!.page, writes[256 + 160]?.page], [0x2000 + 31, 0x5000, 0x6000, undefined])
  t.deepEqual(writes.slice(256, 262).map((w) => w.page), [0x1000, 0x1001, 0x1002, 0x1003, 0x1004, 0x1005])
  t.is(writes[350]!.page, 0x1000 + 94)
  const wl = r.header.source!.workload as {pageMapEpochs: unknown[]; writes: string}
  t.is(wl.pageMapEpochs.length, 2)
  t.regex(wl.writes, /and 2 later page-map epochs \(11 pages moved by the guest kernel\)/)
})

test('the compact page map (DIRTIER PFNRUNS, hex, several runs a line) reads as the long form', (t) => {
  const con = join(tmp, 'compact.log')
  const lines = ['DIRTIER PFNMAP epoch=0 total=0 runs=2', 'DIRTIER PFNRUNS 0+80@1000 80+80@2000', 'DIRTIER PFNMAP epoch=0 end', 'DIRTIER READY', 'DIRTIER PFNMAP epoch=1 total=2 runs=3', 'DIRTIER PFNRUNS 2@9000 4+2@a000', 'DIRTIER PFNRUNS ff@b000', 'DIRTIER PFNMAP epoch=1 end', 'DIRTIER t=1.000 writes=100 distinct=100 total=100 rate=100']
  writeFileSync(con, lines.join('\n'))
  const rep = parseConsole(lines.join('\n'))
  t.deepEqual(rep.pfnEpochs[1]!.runs, [{vpage: 2, npages: 1, pfn: 0x9000}, {vpage: 4, npages: 2, pfn: 0xa000}, {vpage: 255, npages: 1, pfn: 0xb000}])
  const c = loadWorkload(CFG as never, con, 'cfg.json').cursor(0, 0)!
  const got: number[] = []
  for (let k = 0; k < 6; k++) {
    c.advance()
    got.push(Math.floor(c.gpa / PAGE))
  }
  t.deepEqual(got, [0x1000, 0x1001, 0x9000, 0x1003, 0xa000, 0xa001])
  const bad = join(tmp, 'bad-compact.log')
  writeFileSync(bad, ['DIRTIER PFNMAP epoch=0 total=0 runs=1', 'DIRTIER PFNRUNS 0+100@1000 zz@1', 'DIRTIER READY', 'DIRTIER t=1.000 writes=100 distinct=100 total=100 rate=100'].join('\n'))
  t.throws(() => loadWorkload(CFG as never, bad, 'cfg.json'), {instanceOf: UserError, message: /bad-compact\.log:2: a page-map line does not parse/})
})
