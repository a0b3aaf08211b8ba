import {mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import test from 'ava'
import {ClockReason, Rec, RecordDecoder, RecordFormatError, type RecordSink} from '../../src/record/records.js'
import {VcpuMerger} from '../../src/record/merge.js'
import {ClockMap} from '../../src/record/clock-map.js'
import {parseIps} from '../../src/record/options.js'
import {checkQemuArgs, optionValue} from '../../src/record/qemu-args.js'
import {TraceWriter} from '../../src/trace/write/writer.js'
import {createBatch, K} from '../../src/trace/events.js'
import {parseHeader} from '../../src/trace/header.js'
import {openTrace} from '../../src/trace/read/index.js'
import {UserError} from '../../src/util/errors.js'

function rec(type: number, vcpu: number, aux: number, t: number, addr: number): Buffer {
  const b = Buffer.alloc(24)
  b[0] = type
  b.writeUInt16LE(vcpu, 2)
  b.writeUInt32LE(aux, 4)
  b.writeBigUInt64LE(BigInt(t), 8)
  b.writeBigUInt64LE(BigInt(addr), 16)
  return b
}

class Sink implements RecordSink {
  log: string[] = []
  hello(s: number, v: number, ver: number): void {
    this.log.push(`hello ${s} ${v} ${ver}`)
  }
  write(v: number, t: number, a: number, l: number): void {
    this.log.push(`w ${v} ${t} ${a.toString(16)} ${l}`)
  }
  clock(v: number, r: number, t: number, h: number): void {
    this.log.push(`c ${v} ${r} ${t} ${h}`)
  }
  stats(v: number, s: number, io: number): void {
    this.log.push(`s ${v} ${s} ${io}`)
  }
  stats2(v: number, r: number, i: number): void {
    this.log.push(`s2 ${v} ${r} ${i}`)
  }
  end(h: number, n: number): void {
    this.log.push(`end ${h} ${n}`)
  }
}

test('decoder: records split anywhere across chunks, 64-bit fields exact below 2^53', (t) => {
  const big = 2 ** 52 + 12345
  const stream = Buffer.concat([rec(Rec.hello, 1, 1, 1_700_000_000_000_000_000 / 1000, 1), rec(Rec.write, 0, 8, 1000, big), rec(Rec.clock, 0, ClockReason.idle, 2000, 5), rec(Rec.write, 3, 4, 3000, 0x1000), rec(Rec.end, 0, 0, 9, 3)])
  for (const cut of [1, 5, 23, 24, 25, 47, 60, 100]) {
    const s = new Sink()
    const d = new RecordDecoder(s)
    for (let o = 0; o < stream.length; o += cut) d.push(stream.subarray(o, o + cut))
    t.deepEqual(s.log, [`hello ${1_700_000_000_000_000} 1 1`, `w 0 1000 ${big.toString(16)} 8`, 'c 0 1 2000 5', 'w 3 3000 1000 4', 'end 9 3'], `chunks of ${cut}`)
    t.deepEqual(d.finish(), {complete: true, partialBytes: 0})
  }
  const s = new Sink()
  const d = new RecordDecoder(s)
  d.push(stream.subarray(0, 30))
  t.deepEqual(d.finish(), {complete: false, partialBytes: 6})
})

test('decoder: a stream that is not the plugin format is refused', (t) => {
  t.throws(() => new RecordDecoder(new Sink()).push(rec(Rec.write, 0, 8, 1, 1)), {instanceOf: RecordFormatError, message: /does not start with HELLO/})
  t.throws(() => new RecordDecoder(new Sink()).push(rec(Rec.hello, 1, 7, 1, 1)), {instanceOf: RecordFormatError, message: /format 7/})
  const d = new RecordDecoder(new Sink())
  d.push(rec(Rec.hello, 1, 1, 1, 1))
  t.throws(() => d.push(rec(42, 0, 0, 0, 0)), {instanceOf: RecordFormatError, message: /unknown record type 42/})
})

test('merger: per-vCPU streams come out in time order, held only until every running vCPU passed', (t) => {
  const out: string[] = []
  const m = new VcpuMerger(2, (v, tt) => out.push(`${v}@${tt}`))
  // The plugin's CLOCK init records, one per vCPU as QEMU creates them.
  m.clock(0, 0, false)
  m.clock(1, 0, false)
  m.write(0, 10, 0, 4)
  m.write(0, 30, 0, 4)
  m.release()
  t.deepEqual(out, [], 'vCPU 1 has not passed t=10 yet')
  m.write(1, 20, 0, 4)
  m.release()
  t.deepEqual(out, ['0@10', '1@20'])
  // vCPU 1 goes idle at 25: it holds nothing back any more.
  m.clock(1, 25, true)
  m.release()
  t.deepEqual(out, ['0@10', '1@20', '0@30'])
  // It resumes with an earlier time than what is out: written at the last time, counted.
  m.clock(1, 26, false)
  m.write(1, 28, 0, 4)
  m.write(0, 40, 0, 4)
  m.release()
  m.drain()
  t.deepEqual(out, ['0@10', '1@20', '0@30', '1@30', '0@40'])
  t.is(m.reordered, 1)
  t.is(m.maxReorderNs, 2)
})

test('merger: bounded, and one vCPU passes straight through', (t) => {
  const out: number[] = []
  const m = new VcpuMerger(2, (_v, tt) => out.push(tt), 8)
  for (let i = 0; i < 20; i++) {
    m.write(0, i, 0, 1)
    m.release()
    t.true(m.pending <= 8)
  }
  t.true(out.length >= 12)
  t.deepEqual(out, [...out].sort((a, b) => a - b))
  const one: number[] = []
  const s = new VcpuMerger(1, (_v, tt) => one.push(tt))
  s.write(0, 5, 0, 1)
  t.deepEqual(one, [5])
})

test('clock map: host time -> guest time between CLOCK points, 1:1 while idle', (t) => {
  const c = new ClockMap(false)
  c.start(1_000_000)
  c.point(1_000_000, 0, false)
  c.point(2_000_000, 100_000, false) // running: 10x slower than real
  c.point(3_000_000, 200_000, true) // went idle
  t.is(c.at(1_500_000), 50_000)
  t.is(c.at(2_500_000), 150_000)
  t.is(c.at(4_000_000), 1_200_000)
  t.true(c.idleNow)
  const h = new ClockMap(true)
  h.start(1_000_000)
  t.is(h.at(3_500_000), 2_500_000)
})

test('--ips: decimal suffixes; bad values name the field', (t) => {
  t.is(parseIps('2G'), 2e9)
  t.is(parseIps('3.5G'), 3.5e9)
  t.is(parseIps('800M'), 8e8)
  t.is(parseIps('1000000'), 1e6)
  t.throws(() => parseIps('fast'), {instanceOf: UserError, message: /field 'ips'/})
  t.throws(() => parseIps('0'), {instanceOf: UserError})
})

test('QEMU arguments: TCG only; -D and -accel read as QEMU reads them', (t) => {
  t.notThrows(() => checkQemuArgs(['-accel', 'tcg,thread=single', '-m', '1G']))
  t.notThrows(() => checkQemuArgs(['-machine', 'pc,accel=tcg']))
  t.throws(() => checkQemuArgs(['--enable-kvm']), {instanceOf: UserError, message: /needs TCG/})
  t.throws(() => checkQemuArgs(['-machine', 'q35,accel=kvm:tcg']), {instanceOf: UserError, message: /accelerator kvm/})
  t.throws(() => checkQemuArgs(['-daemonize']), {instanceOf: UserError, message: /-daemonize/})
  t.is(optionValue(['-D', 'a.log', '--D', 'b.log'], '-D'), 'b.log')
  t.is(optionValue(['-m', '1G'], '-D'), undefined)
})

test('TraceWriter headerAtClose: the final header goes in front of the events (gzip: its own member)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-hdr-'))
  const h0 = parseHeader({format: 'migtrace', version: 1, memory: '64M', description: 'provisional'})
  const h1 = parseHeader({format: 'migtrace', version: 1, memory: '64M', description: 'final', source: {writes: 2}})
  for (const name of ['t.csv.gz', 't.jsonl']) {
    const out = join(dir, name)
    const w = await TraceWriter.open(out, h0, [], undefined, {headerAtClose: true})
    const b = createBatch(4)
    for (let i = 0; i < 2; i++) {
      b.t[i] = 1000 * (i + 1)
      b.kind[i] = K.write
      b.vcpu[i] = 0
      b.gpa[i] = 0x1000 * (i + 1)
      b.len[i] = 8
    }
    b.length = 2
    await w.writeBatch(b)
    t.deepEqual(readdirSync(dir).filter((f) => f.startsWith(name)), [], 'nothing at the target before close')
    await w.close(h1)
    const tr = await openTrace(out)
    t.is(tr.header.description, 'final')
    t.deepEqual(tr.header.source, {writes: 2})
    let n = 0
    for await (const batch of tr.events()) n += batch.length
    t.is(n, 2)
    t.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), [])
  }
  const text = gunzipSync(readFileSync(join(dir, 't.csv.gz'))).toString()
  t.regex(text, /^# \{"format":"migtrace".*"final"/)
  const plain = join(dir, 'x.csv')
  writeFileSync(plain, '')
  const w = await TraceWriter.open(join(dir, 'y.csv'), h0, [], undefined, {headerAtClose: true})
  await t.throwsAsync(() => w.close(), {message: /bug: close\(header\)/})
})
