/**
 * What `lab matrix` keeps for re-analysis (src/lab/keep.ts), on hand-made files: the thinned source
 * trace drops only the iteration passes' ram_save_page lines; a kept recording starts shortly
 * before `migrate`, can be coalesced per 10 ms and can leave out the dirtier's frames, and says so.
 */
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'
import test from 'ava'
import {copyRecording, thinSourceTrace, workingSetFrames} from '../../src/lab/keep.js'
import {openTrace} from '../../src/trace/read/open.js'
import {K} from '../../src/trace/events.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-keep-'))
const MIB = 1024 * 1024

test('thinSourceTrace keeps every line but the ram_save_page lines after the first round over RAM, up to the stop', async (t) => {
  const save = (s: string, off: number): string => `7@${s}:ram_save_page pc.ram: offset: 0x${off.toString(16)} host: 0x7f0000000000`
  const lines = [
    '7@1.000000:migrate_set_state new state setup',
    '7@1.050000:migration_bitmap_sync_start ',
    '7@1.100000:migration_bitmap_sync_end dirty_pages 262146',
    save('1.200000', 0x1000),
    '7@1.250000:migration_bitmap_sync_start ',
    '7@1.300000:migration_bitmap_sync_end dirty_pages 10',
    save('1.400000', 0x3000), // after the second sync, still the first round (the cursor goes on): kept
    save('1.450000', 0x2000), // back below 0x3000: the cursor wrapped, a re-send: dropped
    save('1.500000', 0x5000), // dropped (the round is over)
    '7@1.550000:migration_bitmap_sync_start ',
    '7@1.600000:migration_bitmap_sync_end dirty_pages 5',
    '7@1.700000:migration_completion_vm_stop ret 0',
    save('1.800000', 0x4000), // the stop-copy: kept
    '7@1.900000:migrate_set_state new state completed',
  ]
  const src = join(tmp, 'trace-src.log.gz')
  writeFileSync(src, gzipSync(`${lines.join('\n')}\n`))
  const r = await thinSourceTrace(src, join(tmp, 'thin.log.gz'))
  t.deepEqual({kept: r.kept, dropped: r.dropped}, {kept: 12, dropped: 2})
  const out = gunzipSync(readFileSync(join(tmp, 'thin.log.gz'))).toString().trim().split('\n')
  t.deepEqual(out, lines.filter((_, i) => i !== 7 && i !== 8))
})

function recording(name: string, rows: [number, number][]): string {
  const header = {format: 'migtrace', version: 1, pageSize: 4096, ramBlocks: [{name: 'pc.ram', size: 256 * MIB}], memslots: [{id: 0, base: 0, size: 256 * MIB, ramBlock: 'pc.ram', offset: 0}], vcpus: 1, source: {recorder: 'migtrace record', clock: 'host', epochNs: 1e6, recording: {timeOrigin: '100.000000'}}}
  const p = join(tmp, name)
  writeFileSync(p, [`# ${JSON.stringify(header)}`, 't_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params', ...rows.map(([tNs, g]) => `${tNs},write,0,,,0x${g.toString(16)},,8,,,,,`)].join('\n') + '\n')
  return p
}

async function writesOf(path: string): Promise<{rows: [number, number][]; recording: Record<string, unknown>}> {
  const tr = await openTrace(path)
  const rows: [number, number][] = []
  for await (const b of tr.events()) for (let i = 0; i < b.length; i++) if (b.kind[i] === K.write) rows.push([b.t[i]!, b.gpa[i]!])
  return {rows, recording: (tr.header.source as Record<string, unknown>).recording as Record<string, unknown>}
}

test('copyRecording: from a host time on, coalesced per epoch, without given frames; the header keeps the origin and says what was left out', async (t) => {
  // origin 100 s; keep from 100.5 s (t_ns 500e6)
  const src = recording('rec.csv', [
    [400e6, 0x1000],
    [500e6, 0x1000],
    [503e6, 0x1008], // same page, same 10 ms epoch: coalesced
    [509e6, 0x2000],
    [511e6, 0x1000], // next epoch: kept
    [512e6, 0x5000], // a dirtier frame: left out
  ])
  const out = join(tmp, 'kept.csv.gz')
  const k = await copyRecording(src, out, 100_500_000, {coalesceNs: 10e6, dropFrames: new Set([5])})
  t.like(k, {writes: 3, coalesceNs: 10e6, dirtierWritesRemoved: 1})
  const got = await writesOf(out)
  t.deepEqual(got.rows, [[500e6, 0x1000], [509e6, 0x2000], [511e6, 0x1000]])
  t.is(got.recording.timeOrigin, '100.000000')
  t.like(got.recording, {kept: {fromNs: 500e6, writesBefore: 1, writes: 3, coalesceNs: 10e6, writesCoalesced: 1}, dirtierWritesRemoved: {frames: 1, writes: 1}})
  const whole = await copyRecording(src, join(tmp, 'whole.csv.gz'), 0)
  t.is(whole.writes, 6)
  t.is((await writesOf(join(tmp, 'whole.csv.gz'))).recording.dirtierWritesRemoved, undefined)
})

test('workingSetFrames: every frame of the page map, later epochs included', (t) => {
  const dir = join(tmp, 'ws')
  mkdirSync(dir)
  writeFileSync(join(dir, 'config.json'), JSON.stringify({name: 'w', args: {accel: 'tcg', mem: 256, ws: 1, rate: 100, pattern: 'seq', fill: 'zero', seed: 1}}))
  writeFileSync(join(dir, 'console.log'), ['DIRTIER PFNMAP epoch=0 total=0 runs=2', 'DIRTIER PFNRUNS 0+80@1000 80+80@2000', 'DIRTIER PFNMAP epoch=0 end', 'DIRTIER READY', 'DIRTIER PFNMAP epoch=1 total=2 runs=1', 'DIRTIER PFNRUNS 2@9000', 'DIRTIER PFNMAP epoch=1 end'].join('\n'))
  const f = workingSetFrames(join(dir, 'config.json'), join(dir, 'console.log'))
  t.is(f.size, 257)
  t.true(f.has(0x1000) && f.has(0x107f) && f.has(0x2000) && f.has(0x207f) && f.has(0x9000))
  t.false(f.has(0x1080))
})
