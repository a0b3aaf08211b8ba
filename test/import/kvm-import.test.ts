import {existsSync, mkdtempSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {importKvm} from '../../src/import/kvm/importer.js'
import {detectFormat} from '../../src/import/kvm/formats.js'
import {openTrace} from '../../src/trace/read/index.js'
import {toRecord} from '../../src/trace/write/encode.js'
import type {EventRecord} from '../../src/trace/events.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT, runCli} from '../helpers/cli.js'

// Hand-made inputs (fixtures/kvm/): a QEMU 7.2 log of a 2 GiB pc guest with the dirty ring
// (memslots as QEMU sets them: 640 KiB low, the ROMs read-only, RAM from 1 MiB, SMM aliases),
// perf script lines of kvm:kvm_dirty_ring_push for the same guest, and bpftrace one-liner output.
const FIX = join(ROOT, 'fixtures/kvm')
const tmp = mkdtempSync(join(tmpdir(), 'migtrace-kvm-'))
let n = 0
const out = (ext = 'csv'): string => join(tmp, `k${n++}.${ext}`)

async function events(path: string): Promise<{header: Awaited<ReturnType<typeof openTrace>>['header']; ev: EventRecord[]}> {
  const t = await openTrace(path)
  const ev: EventRecord[] = []
  for await (const b of t.events()) for (let i = 0; i < b.length; i++) ev.push(toRecord(b, i, t.deviceIds))
  return {header: t.header, ev}
}

const w = (t_ns: number, vcpu: number, gpa: number): EventRecord => ({t_ns, kind: 'write', vcpu, gpa, len: 4096})

test("QEMU's kvm_dirty_ring_page: the offset is placed in the one dirty-logged slot that holds it", async (t) => {
  const o = out()
  const r = await importKvm({input: join(FIX, 'qemu-ring-2g.log'), out: o})
  t.is(r.format, 'qemu-log')
  const {header, ev} = await events(o)
  // Times are the harvests (the trace lines), from the first one written.
  t.deepEqual(ev, [w(0, 0, 0x100000 + 0x200 * 4096), w(1000, 0, 0x100000 + 0x201 * 4096), w(20000, 1, 0x100000 + 0x7fe00 * 4096), w(100_000_000, 0, 0x300000)])
  // Offset 0x10 fits both the 640 KiB slot and the RAM slot (both dirty-logged): skipped, not guessed.
  // Offset 0x80000 is past every slot. The read-only BIOS slot never counts.
  t.deepEqual(r.skipped, {'slot ambiguous: the event has no slot id and several slots hold the offset': 1, 'no dirty-logged slot holds the offset': 1})
  t.is(r.harvests, 2)
  t.is(header.dirtyTracking.mode, 'ring')
  t.is(header.vcpus, 2)
  t.deepEqual(
    header.memslots.map((s) => [s.base, s.size]),
    [
      [0, 0xa0000],
      [0xc0000, 0x20000],
      [0xe0000, 0x20000],
      [0x100000, 0x7ff00000],
      [0xfffc0000, 0x40000],
    ],
  )
  t.is(header.source!.smmSlotLines, 1)
  t.is(header.source!.timeOrigin, '1796000001.100010')
  t.regex(String(header.source!.writeMeaning), /first write|written at least once since/)
})

test('QEMU ring log of a 4 GiB guest: offsets both RAM slots could hold are skipped', async (t) => {
  const log = join(tmp, 'ring-4g.log')
  writeFileSync(
    log,
    [
      '1@1796000000.000000:kvm_set_user_memory Slot#3 flags=0x1 gpa=0x100000 size=0xbff00000 ua=0x7f0000100000 ret=0',
      '1@1796000000.000001:kvm_set_user_memory Slot#5 flags=0x1 gpa=0x100000000 size=0x40000000 ua=0x7f00c0000000 ret=0',
      '1@1796000000.000002:kvm_set_user_memory Slot#6 flags=0x1 gpa=0x200000000 size=0x0 ua=0x0 ret=0',
      '2@1796000000.100000:kvm_dirty_ring_page vcpu 3 fetch 0 offset 0x3ffff',
      '2@1796000000.100001:kvm_dirty_ring_page vcpu 3 fetch 1 offset 0x40000',
    ].join('\n'),
  )
  const o = out()
  const r = await importKvm({input: log, out: o})
  const {header, ev} = await events(o)
  t.deepEqual(ev, [w(0, 3, 0x100000 + 0x40000 * 4096)])
  t.deepEqual(r.skipped, {'slot ambiguous: the event has no slot id and several slots hold the offset': 1})
  t.is(header.vcpus, 4)
})

test('perf kvm:kvm_dirty_ring_push: slot and offset, slots from a QEMU log', async (t) => {
  const o = out('jsonl')
  const r = await importKvm({input: join(FIX, 'perf-ring-push.txt'), qemuLog: join(FIX, 'qemu-ring-2g.log'), out: o})
  t.is(r.format, 'perf')
  const {header, ev} = await events(o)
  t.deepEqual(ev, [w(0, 0, 0x300000), w(50_000, 1, 0x7ff00000), w(100_000, 0, 0x10000), w(59_900_000, 0, 0x300000)])
  t.deepEqual(r.skipped, {'address space 1 (SMM)': 1, 'slot unknown or offset past its end': 1})
  t.is(r.harvests, 1)
  t.is(header.dirtyTracking.mode, 'ring')
})

test('perf with a migtrace header as the layout; without slots it says what to give', async (t) => {
  const hdr = join(tmp, 'layout.json')
  writeFileSync(hdr, JSON.stringify({format: 'migtrace', version: 1, ramBlocks: [{name: 'pc.ram', size: '2G'}], memslots: [{id: 0, base: 0, size: '640K', ramBlock: 'pc.ram'}, {id: 3, base: '1M', size: 0x7ff00000, ramBlock: 'pc.ram', offset: '1M'}]}))
  const o = out()
  const r = await importKvm({input: join(FIX, 'perf-ring-push.txt'), layout: hdr, out: o})
  const {header, ev} = await events(o)
  t.is(ev.length, 4)
  t.is(r.layoutFrom, 'header')
  t.deepEqual(header.ramBlocks.map((b) => b.name), ['pc.ram'])
  const e = await t.throwsAsync(() => importKvm({input: join(FIX, 'perf-ring-push.txt'), out: out()}), {instanceOf: UserError})
  t.regex(e!.message, /names a memslot, not an address.*--qemu-log/)
})

test('bpftrace on mark_page_dirty_in_slot: frames, vCPU from the thread name, lines put back in time order', async (t) => {
  const o = out('csv.gz')
  const r = await importKvm({input: join(FIX, 'bpftrace-mark-dirty.txt'), out: o})
  t.is(r.format, 'bpftrace')
  const {header, ev} = await events(o)
  // 999999900 came third but is the earliest: trace time 0.
  t.deepEqual(ev, [w(0, 0, 0x301000), w(100, 0, 0x300000), w(600, 1, 0x100000000), w(2100, 0, 0x302000), w(3100, 0, 0x303000)])
  t.is(header.source!.nonVcpuWrites, 1)
  t.deepEqual(header.source!.nonVcpuThreads, {'qemu-system-x86': 1})
  // No layout given: pc.ram over the frames seen, split at 4 GiB.
  t.deepEqual(
    header.memslots.map((s) => [s.base, s.size, s.offset]),
    [
      [0, 0x400000, 0],
      [0x100000000, 0x200000, 0x400000],
    ],
  )
  // With the QEMU log's slots, a frame outside them is skipped.
  const o2 = out()
  const r2 = await importKvm({input: join(FIX, 'bpftrace-mark-dirty.txt'), qemuLog: join(FIX, 'qemu-ring-2g.log'), out: o2})
  t.deepEqual(r2.skipped, {'frame in no memslot of the layout': 1})
})

test('formats are recognised from the first lines', (t) => {
  t.is(detectFormat(['Attaching 1 probe...', '123 45 CPU 0/KVM']), 'bpftrace')
  t.is(detectFormat(['  CPU 0/KVM 1 [000] 1.000001: kvm:kvm_dirty_ring_push: ring 0: dirty 0x1 reset 0x0 slot 1 offset 0x2 (used 1)']), 'perf')
  t.is(detectFormat(['1@1.000001:kvm_dirty_ring_page vcpu 0 fetch 0 offset 0x1']), 'qemu-log')
  t.is(detectFormat(['hello world']), undefined)
})

test('import kvm CLI: one line per mistake, exit 2, nothing written; the trace replays as writes', async (t) => {
  const bad = join(tmp, 'bad.log')
  writeFileSync(bad, '1@1.000001:kvm_set_user_memory Slot#0 flags=0x1 gpa=0x0 size=0x100000 ua=0x0 ret=0\n1@1.000002:kvm_dirty_ring_page vcpu zero fetch 0 offset 0x1\n')
  const o = out()
  const r1 = await runCli(['import', 'kvm', bad, '--out', o])
  t.is(r1.code, 2)
  t.regex(r1.stderr, /^migtrace: .*bad\.log:2: malformed kvm_dirty_ring_page line/)
  const junk = join(tmp, 'junk.txt')
  writeFileSync(junk, 'nothing to see\n')
  const r2 = await runCli(['import', 'kvm', junk, '--out', o])
  t.is(r2.code, 2)
  t.regex(r2.stderr, /cannot tell what this file is/)
  const r3 = await runCli(['import', 'kvm', join(FIX, 'perf-ring-push.txt'), '--out', o])
  t.is(r3.code, 2)
  for (const r of [r1, r2, r3]) t.is(r.stderr.trim().split('\n').length, 1)
  t.false(existsSync(o))
  t.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), [])

  const good = out()
  const ok = await runCli(['import', 'kvm', join(FIX, 'qemu-ring-2g.log'), '--out', good])
  t.is(ok.code, 0, ok.stderr)
  t.regex(ok.stdout, /4 write events from 20 lines \(qemu-log; layout from kvm_set_user_memory; 2 harvests\)/)
  t.regex(ok.stdout, /skipped: 1 slot ambiguous/)
  const rep = await runCli(['replay', good, '--json'])
  t.is(rep.code, 0, rep.stderr)
  const j = JSON.parse(rep.stdout) as {kvm: {loggedWrites: number}}
  // The guest's writes reached KVM's dirty log in the model: a ring-only trace is not an idle guest.
  t.true(j.kvm.loggedWrites >= 3, JSON.stringify(j.kvm))
})
