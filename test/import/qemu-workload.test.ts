import {mkdtempSync, readFileSync, writeFileSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {DirtierPages, Xorshift64, dirtierSeed, loadWorkload, parseConsole, verifyAgainstConsole} from '../../src/import/qemu/dirtier.js'
import {lastSendReport} from '../../src/import/qemu/last-send.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT, runCli} from '../helpers/cli.js'

const FIX = join(ROOT, 'fixtures/qemu')
const tmp = mkdtempSync(join(tmpdir(), 'migtrace-wl-'))

test('xorshift64 matches dirtier.c bit for bit (reference values from 64-bit arithmetic)', (t) => {
  const r = new Xorshift64(dirtierSeed(1))
  const got: bigint[] = []
  for (let i = 0; i < 3; i++) {
    r.step()
    got.push(r.value)
  }
  t.deepEqual(got, [0x40822041n, 0x100041060c011441n, 0x9b1e842f6e862629n])
  const d = new Xorshift64(dirtierSeed(undefined))
  d.step()
  t.is(d.value, 0x79690975fbde15b0n)
  t.is(dirtierSeed(4), 5n)
})

test('the re-created page stream reproduces every console interval of the real runs', (t) => {
  for (const run of ['02-moderate-random', '06-virtio-mem']) {
    const dir = join(FIX, run)
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
    const w = loadWorkload(cfg, join(dir, 'src-serial.log'), join(dir, 'config.json'))
    t.is(w.intervals, run === '02-moderate-random' ? 6 : 7)
    t.is(w.writesVerified, run === '02-moderate-random' ? 30009 : 32266)
    // The lab ran without --pfnmap: no GPAs, so no writes can be placed.
    t.false(w.hasGpas)
    t.is(w.cursor(0, 0), undefined)
  }
})

test('a console from another seed is rejected at the first differing interval', (t) => {
  const dir = join(FIX, '02-moderate-random')
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
  const rep = parseConsole(readFileSync(join(dir, 'src-serial.log'), 'utf8'))
  const params = {wsMib: 256, rate: 5000, pattern: 'random' as const, hotPct: 10, hotProb: 90, fill: 'random' as const, seed: 2}
  const e = t.throws(() => verifyAgainstConsole(params, rep, 'c.log'), {instanceOf: UserError})
  t.is(e!.line, 8)
  t.regex(e!.message, /^c\.log:8: the console's distinct-page count differs .* \(expected distinct=\d+, found distinct=4806\)$/)
  t.is(cfg.args.seed, 1)
})

test('PFNRUN lines give each write its guest-physical address', (t) => {
  const cfg = {args: {ws: 1, rate: 1000, pattern: 'seq', fill: 'zero', seed: 3, warmup: 1}}
  const con = join(tmp, 'c.log')
  writeFileSync(con, ['DIRTIER PFNRUN vpage=0 pfn=0x1000 npages=128', 'DIRTIER PFNRUN vpage=128 pfn=0x2000 npages=128', 'DIRTIER READY', 'DIRTIER t=1.000 writes=300 distinct=256 total=300 rate=300'].join('\n'))
  const w = loadWorkload(cfg as never, con, 'cfg.json')
  const c = w.cursor(0, 2e9)!
  const got: [number, number][] = []
  for (let i = 0; i < 3; i++) {
    c.advance()
    got.push([c.t, c.gpa])
  }
  // seq pattern: pages 0, 1, 2; counter 1, 2, 3 picks the 8-byte word. Unstamped console: start =
  // 2 s - 1 s warm-up - 0.3 s (migrate.py's fixed delays); the console's t=1.000 total=300 point
  // spaces the writes 1/300 s apart.
  t.deepEqual(got, [
    [0.7e9, 0x1000 * 4096 + 8],
    [Math.round(0.7e9 + 1e9 / 300), 0x1001 * 4096 + 16],
    [Math.round(0.7e9 + 2e9 / 300), 0x1002 * 4096 + 24],
  ])
  t.is(new DirtierPages({wsMib: 1, rate: 1, pattern: 'seq', hotPct: 10, hotProb: 90, fill: 'zero', seed: 1}).npages, 256)
})

test('send history of capture 02: passes, and the per-CPU page the destination oops points at', async (t) => {
  const r = await lastSendReport(join(ROOT, 'traces/qemu-02-moderate-random.csv.gz'), [0x3ec23040])
  t.deepEqual(r.passes.map((p) => p.pagesSent), [0, 82329, 6987, 3271, 0, 7787])
  t.deepEqual(r.passes.map((p) => p.reportedDirty), [0, 0, 11717, 1449, 1902, 1902])
  t.is(r.stopCopyPass, 5)
  t.is(r.lastSentInStopCopy, 7787)
  t.is(r.distinctPagesSent, 86756)
  t.deepEqual(r.watched.map((w) => ({gpa: w.gpa, passes: w.sends.map((s) => s.pass)})), [{gpa: 0x3ec23000, passes: [1, 5]}])
})

test('CLI: import prints a summary; a malformed line exits 2 with one line and leaves no file', async (t) => {
  const dir = join(FIX, '06-virtio-mem')
  const o = join(tmp, 'o.jsonl')
  const ok = await runCli(['import', 'qemu', join(dir, 'trace-src.log.gz'), '--workload', join(dir, 'config.json'), '--stats', join(dir, 'final-src.json'), '--out', o])
  t.is(ok.code, 0, ok.stderr)
  t.regex(ok.stdout, /: 64943 events from 65187 lines \(layout from lab-config\)/)
  // The six virtio-mem requests before the migration are folded into the header's plug state
  // (the populated map is memory as the migration found it): 256 MiB plugged at setup.
  t.regex(ok.stdout, /virtio_mem_plug_request \(before the migration: folded into the header's plug state\)":4/)
  const h = JSON.parse(readFileSync(o, 'utf8').split('\n')[0]!) as {virtioMem: {plugged: {blocks: number}[]; requestedSize: number}[]}
  t.is(h.virtioMem[0]!.plugged.reduce((n, r) => n + r.blocks, 0), 128)
  t.is(h.virtioMem[0]!.requestedSize, 256 * 2 ** 20)
  const v = await runCli(['validate', o])
  t.is(v.code, 0, v.stdout + v.stderr)
  const bad = join(tmp, 'bad.log')
  writeFileSync(bad, '1@1.000000:migration_bitmap_sync_end dirty_pages many\n')
  const o2 = join(tmp, 'o2.csv')
  const e = await runCli(['import', 'qemu', bad, '--out', o2])
  t.is(e.code, 2)
  t.is(e.stderr, `migtrace: ${bad}:1: malformed migration_bitmap_sync_end line (expected 'migration_bitmap_sync_end dirty_pages %lu' (QEMU 7.2+), found 'migration_bitmap_sync_end dirty_pages many')\n`)
  t.false(existsSync(o2))
})
