/**
 * A lab run's recording (the source guest's stores, host clock) as the source of the imported
 * writes, on hand-made inputs: each recorded write is placed at its host wall-clock time on the
 * log's time base (timeOrigin + t_ns - the log's first line), before a log line at the same time,
 * and left out (and counted) before the first line, while the guest is stopped, after the last
 * line, or outside the layout. A kept recording without the dirtier's writes gets them re-created
 * from its seed, merged in time order.
 */
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {importQemuTrace} from '../../src/import/qemu/importer.js'
import {K, kindName} from '../../src/trace/events.js'
import {parseTimeOrigin} from '../../src/import/qemu/recorded-writes.js'
import {UserError} from '../../src/util/errors.js'
import {PAGE_MAP_LINES, seqLabConfig} from './lab-fixture.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-recording-'))
const MIB = 1024 * 1024

const CFG = seqLabConfig('r')
const CONSOLE = [
  ...PAGE_MAP_LINES,
  '[1000.000000] DIRTIER READY',
  '[1001.000000] DIRTIER t=1.000 writes=100 distinct=100 total=100 rate=100',
  '[1002.000000] DIRTIER t=2.000 writes=100 distinct=100 total=200 rate=100',
  '[1003.000000] DIRTIER t=3.000 writes=100 distinct=100 total=300 rate=100',
].join('\n')
const LOG = [
  '7@1000.000000:migrate_set_state new state setup',
  '7@1000.500000:ram_save_page pc.ram: offset: 0x1000000 host: 0x7f0001000000',
  '7@1003.500000:migration_completion_vm_stop ret 0',
  '7@1003.600000:migrate_set_state new state completed',
].join('\n')

/** A recording's header as the lab writes it (host clock), time origin at 999.8 s; its RAM is larger than the run's layout (256 MiB), so a store can lie outside the latter. */
function recordingHeader(extra: Record<string, unknown> = {}, clock = 'host'): Record<string, unknown> {
  return {
    format: 'migtrace',
    version: 1,
    pageSize: 4096,
    ramBlocks: [{name: 'pc.ram', size: 1024 * MIB}],
    memslots: [{id: 0, base: 0, size: 1024 * MIB, ramBlock: 'pc.ram', offset: 0}],
    vcpus: 1,
    source: {recorder: 'migtrace record', clock, epochNs: 1e6, recording: {timeOrigin: '999.800000', ...extra}},
  }
}

/** Writes at host times 999.9 (before the log), 1000.25, 1000.5 (with the log's line), 1000.7 (beyond RAM), 1003.55 (stopped), 1004.0 (after the log). */
const ROWS = [
  [100e6, '0x1000010', 8],
  [450e6, '0xa000', 4],
  [700e6, '0x3000008', 8],
  [900e6, '0x20000000', 8],
  [3750e6, '0x5000', 8],
  [4200e6, '0x6000', 8],
]

function writeRun(name: string, header: Record<string, unknown>): string {
  const dir = join(tmp, name)
  mkdirSync(dir)
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CFG))
  writeFileSync(join(dir, 'console.log'), CONSOLE)
  writeFileSync(join(dir, 'trace.log'), `${LOG}\n`)
  const csv = [`# ${JSON.stringify(header)}`, 't_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params', ...ROWS.map(([t, g, l]) => `${t},write,0,,,${g},,${l},,,,,`)]
  writeFileSync(join(dir, 'recording.csv'), `${csv.join('\n')}\n`)
  return dir
}

interface Ev {
  kind: string
  t: number
  gpa?: number
  len?: number
}

async function importRun(dir: string): Promise<{events: Ev[]; header: Record<string, unknown>}> {
  const events: Ev[] = []
  const r = await importQemuTrace({
    trace: join(dir, 'trace.log'),
    out: join(dir, 'out.csv'),
    workload: join(dir, 'config.json'),
    console: join(dir, 'console.log'),
    recording: join(dir, 'recording.csv'),
    onBatch: (b) => {
      for (let i = 0; i < b.length; i++) events.push({kind: kindName(b.kind[i]!), t: b.t[i]!, ...(b.kind[i] === K.write || b.kind[i] === K.page_sent ? {gpa: b.gpa[i]!} : {}), ...(b.kind[i] === K.write ? {len: b.len[i]!} : {})})
    },
  })
  return {events, header: r.header.source as Record<string, unknown>}
}

test('parseTimeOrigin: SECONDS.MICROS to µs, anything else undefined', (t) => {
  t.is(parseTimeOrigin('1796180609.154332'), 1796180609154332)
  t.is(parseTimeOrigin('999.800000'), 999800000)
  t.is(parseTimeOrigin('999.8'), undefined)
  t.is(parseTimeOrigin(12), undefined)
})

test('recorded writes replace the re-created ones, at their host time on the log\'s base; the rest counted', async (t) => {
  const {events, header} = await importRun(writeRun('exact', recordingHeader()))
  t.deepEqual(events, [
    {kind: 'mig_start', t: 0},
    {kind: 'write', t: 250e6, gpa: 0xa000, len: 4},
    // at the same time as the ram_save_page line: the write first
    {kind: 'write', t: 500e6, gpa: 0x3000008, len: 8},
    {kind: 'page_sent', t: 500e6, gpa: 0x1000000},
    {kind: 'vm_stop', t: 3500e6},
    {kind: 'mig_complete', t: 3600e6},
  ])
  t.like(header.recordedWrites, {emitted: 2, beforeFirstLine: 1, outsideLayout: 1, whileStopped: 1, afterLastLine: 1, dirtierRecreated: false, timeOrigin: '999.800000'})
})

test("a kept recording without the dirtier's writes: the dirtier's re-created from its seed, merged in time order", async (t) => {
  const {events, header} = await importRun(writeRun('thin', recordingHeader({dirtierWritesRemoved: {frames: 256, writes: 1000}})))
  const writes = events.filter((e) => e.kind === 'write')
  // 351 dirtier writes (1000 s + k/100 s up to the stop at 1003.5 s) and the 2 recorded ones
  t.is(writes.length, 353)
  t.true(writes.every((w, i) => i === 0 || w.t >= writes[i - 1]!.t))
  const at = (ns: number): Ev[] => writes.filter((w) => w.t === ns)
  // the dirtier's write k=25 (page 25 on frame 0x1019, word 26) is at 250 ms as well: the re-created one first
  t.deepEqual(at(250e6), [
    {kind: 'write', t: 250e6, gpa: 0x1019 * 4096 + 26 * 8, len: 8},
    {kind: 'write', t: 250e6, gpa: 0xa000, len: 4},
  ])
  t.deepEqual(at(500e6).map((w) => w.gpa), [0x1032 * 4096 + 51 * 8, 0x3000008])
  t.like(header.recordedWrites, {emitted: 2, dirtierRecreated: true})
  t.like(header.workload, {writesEmitted: 351 + 2})
})

test('a guest-clock recording is refused: its time cannot be aligned with the log', async (t) => {
  const dir = writeRun('guest', recordingHeader({}, 'guest'))
  const e = await t.throwsAsync(importRun(dir), {instanceOf: UserError})
  t.regex(e!.message, /not on the host clock/)
})
