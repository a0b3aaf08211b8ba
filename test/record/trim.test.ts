import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {trimTrace} from '../../src/record/trim.js'
import {openTrace} from '../../src/trace/read/index.js'
import {toRecord} from '../../src/trace/write/encode.js'
import type {EventRecord} from '../../src/trace/events.js'
import {UserError} from '../../src/util/errors.js'
import {runCli} from '../helpers/cli.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-trim-'))
const HEADER = {format: 'migtrace', version: 1, memory: '64M', populated: [{gpa: '0x10000', len: '8K'}], virtioMem: [{id: 'vm0', base: '4G', regionSize: '64M', requestedSize: '8M'}], source: {recording: {x: 1}}}
const lines = [
  `# ${JSON.stringify(HEADER)}`,
  't_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params',
  '100,write,0,,,0x1000,,8,,,,,',
  '200,write,0,,,0x2ff8,,16,,,,,',
  '300,vmem_plug,,vm0,,0x100000000,,,,2,,,',
  '400,mig_sync,,,,,,,,,5,,',
  '500,dma_write,,,,0x8000,,4096,,,,,',
  '1000,write,0,,,0x5000,,8,,,,,',
  '1500,vmem_unplug,,vm0,,0x100200000,,,,1,,,',
  '2000,write,0,,,0x6000,,8,,,,,',
  '2500,write,0,,,0x7000,,8,,,,,',
]

async function records(p: string): Promise<{header: Awaited<ReturnType<typeof openTrace>>['header']; ev: EventRecord[]}> {
  const t = await openTrace(p)
  const ev: EventRecord[] = []
  for await (const b of t.events()) for (let i = 0; i < b.length; i++) ev.push(toRecord(b, i, t.deviceIds))
  return {header: t.header, ev}
}

test('the window, shifted to 0; pages written before it become populated; virtio-mem folded', async (t) => {
  const input = join(tmp, 'in.csv')
  writeFileSync(input, lines.join('\n') + '\n')
  const out = join(tmp, 'out.csv.gz')
  const r = await trimTrace({input, out, fromNs: 1000, toNs: 2500})
  const {header, ev} = await records(out)
  t.deepEqual(ev, [
    {t_ns: 0, kind: 'write', vcpu: 0, gpa: 0x5000, len: 8},
    {t_ns: 500, kind: 'vmem_unplug', dev: 'vm0', gpa: 0x100200000, count: 1},
    {t_ns: 1000, kind: 'write', vcpu: 0, gpa: 0x6000, len: 8},
  ])
  // 0x1000, 0x2000 and 0x3000 (the 16-byte write crosses into it), 0x8000, and the header's 0x10000-0x11fff.
  t.deepEqual(header.populated, [
    {gpa: 0x1000, len: 0x3000},
    {gpa: 0x8000, len: 0x1000},
    {gpa: 0x10000, len: 0x2000},
  ])
  t.is(r.populatedPages, 6)
  t.deepEqual(header.virtioMem[0]!.plugged, [{gpa: 2 ** 32, blocks: 2}])
  const trim = header.source!.trim as Record<string, unknown>
  t.deepEqual(trim.droppedBefore, {mig_sync: 1})
  t.is(trim.fromNs, 1000)
  t.deepEqual(header.source!.recording, {x: 1})
})

test('bad windows: one line, exit 2', async (t) => {
  const input = join(tmp, 'in2.csv')
  writeFileSync(input, lines.join('\n') + '\n')
  await t.throwsAsync(() => trimTrace({input, out: join(tmp, 'x.csv'), fromNs: 5000, toNs: 6000}), {instanceOf: UserError, message: /ends before the window/})
  await t.throwsAsync(() => trimTrace({input, out: join(tmp, 'x.csv'), fromNs: 5000, toNs: 5000}), {instanceOf: UserError, message: /window is empty/})
  const r = await runCli(['trim', input, join(tmp, 'y.csv'), '--from', '2s', '--to', '1s'])
  t.is(r.code, 2)
  t.regex(r.stderr, /^migtrace: field 'to': the window is empty/)
})
