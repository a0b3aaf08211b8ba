// migtrace record: how many write records per second go from the plugin to a written trace, and
// with how much memory, without dropping any (the plugin blocks on a full pipe, so a slow reader
// slows the guest instead of losing stores).
//  1. stream side alone: a synthetic record stream (ctx.events write records, 1 vCPU and 4 vCPUs
//     interleaved in 48 KiB chunks as the plugin hands them over) through Session -> .csv.gz;
//  2. end to end: the tiny test guest (test/record/tiny-guest) built with 16384 pages x 100 rounds,
//     recorded with --epoch 0 (every store is a record): records/s of the whole pipeline, and the
//     check that every store the plugin counted is in the trace. Skipped without QEMU or cc.
import {spawnSync} from 'node:child_process'
import {readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {Readable} from 'node:stream'

const G = 2 ** 30

function records(n, vcpus) {
  const rec = (type, vcpu, aux, t, addr) => {
    const b = Buffer.alloc(24)
    b[0] = type
    b.writeUInt16LE(vcpu, 2)
    b.writeUInt32LE(aux, 4)
    b.writeBigUInt64LE(BigInt(t), 8)
    b.writeBigUInt64LE(BigInt(addr), 16)
    return b
  }
  // Chunks as the plugin writes them: 2048 records of one vCPU per chunk, vCPUs taking turns.
  const per = 2048
  let seed = 7
  const rnd = () => {
    seed ^= seed << 13
    seed ^= seed >>> 17
    seed ^= seed << 5
    return seed >>> 0
  }
  // Made before the clock starts: the generator's own time is not the reader's.
  return [
    ...(function* () {
      yield Buffer.concat([rec(1, vcpus, 1, 1.7e18, vcpus), ...Array.from({length: vcpus}, (_, v) => rec(3, v, 3, 0, 1.7e18))])
      const t = new Float64Array(vcpus)
      for (let done = 0; done < n; ) {
        for (let v = 0; v < vcpus && done < n; v++) {
          const m = Math.min(per, n - done)
          const b = Buffer.alloc(m * 24)
          for (let i = 0; i < m; i++) {
            t[v] += 200 + (rnd() & 255)
            const o = i * 24
            b[o] = 2
            b.writeUInt16LE(v, o + 2)
            b.writeUInt32LE(8, o + 4)
            b.writeUInt32LE(t[v] % 2 ** 32, o + 8)
            b.writeUInt32LE(Math.floor(t[v] / 2 ** 32), o + 12)
            b.writeUInt32LE((rnd() % (G / 4096)) * 4096 + (rnd() & 511) * 8, o + 16)
          }
          done += m
          yield b
        }
      }
      yield Buffer.concat([...Array.from({length: vcpus}, (_, v) => rec(3, v, 0, t[v] + 1, 1.8e18)), rec(6, 0, 0, 1.8e18, n)])
    })(),
  ]
}

export async function run(ctx) {
  const {Session} = await ctx.dist('record/session')
  const {buildLayout, parseInfoMtree, parseInfoRamblock, virtioMemDevices, headerLayout} = await ctx.dist('record/qemu-layout')
  const {AddressMap, addressRanges} = await ctx.dist('record/address-map')
  const {QemuLogFolder} = await ctx.dist('record/qemu-events')
  const {TraceWriter} = await ctx.dist('trace/write/writer')
  const {parseHeader} = await ctx.dist('trace/header')
  const fix = (n) => readFileSync(join(ctx.root, 'fixtures/record', n), 'utf8')
  const layout = buildLayout(parseInfoRamblock(fix('pc-1g-info-ramblock.txt')), parseInfoMtree(fix('pc-1g-info-mtree.txt')), virtioMemDevices([]))
  const n = Math.min(ctx.events, 5e6)
  for (const vcpus of [1, 4]) {
    const header = parseHeader({format: 'migtrace', version: 1, ...headerLayout(layout), vcpus})
    const out = join(ctx.tmp, `record-${vcpus}.csv.gz`)
    const s = new Session({clock: 'guest'}, layout, new AddressMap(addressRanges(layout, false).ranges), new QemuLogFolder(join(ctx.tmp, 'none.log'), {virtioMem: []}))
    const chunks = records(n, vcpus)
    let rss = 0
    const poll = setInterval(() => (rss = Math.max(rss, process.memoryUsage().rss)), 20)
    const r = await ctx.time(async () => {
      const done = s.consume(Readable.from(chunks))
      await s.helloSeen
      s.writer = await TraceWriter.open(out, header, [], undefined, {headerAtClose: true, gzipLevel: 1})
      await done.catch(() => undefined)
      s.finish()
      await s.flush()
      await s.writer.close(header)
    })
    clearInterval(poll)
    if (s.events !== n) throw new Error(`bench: ${s.events} events written for ${n} records`)
    ctx.record(`stream side, ${vcpus} vCPU(s): ${n} write records -> .csv.gz`, n / r.seconds, 'records/s')
    ctx.record(`stream side, ${vcpus} vCPU(s): peak RSS`, rss / 2 ** 20, 'MiB')
    ctx.record(`stream side, ${vcpus} vCPU(s): trace size`, statSync(out).size / 2 ** 20, 'MiB')
  }

  // End to end with QEMU.
  const elf = join(ctx.tmp, 'tiny-big.elf')
  const dir = join(ctx.root, 'test/record/tiny-guest')
  const cc = spawnSync('cc', ['-m32', '-O2', '-DPAGES=16384u', '-DROUNDS=100u', '-ffreestanding', '-fno-pic', '-fno-stack-protector', '-nostdlib', '-static', `-Wl,-T,${join(dir, 'tiny-guest.ld')}`, '-Wl,--build-id=none', '-o', elf, join(dir, 'tiny-guest.c')])
  if (cc.status !== 0 || spawnSync('qemu-system-x86_64', ['--version']).status !== 0) {
    console.log('  end to end: skipped (needs qemu-system-x86_64 and cc -m32)')
    return
  }
  const out = join(ctx.tmp, 'e2e.csv.gz')
  const r = await ctx.time(async () =>
    spawnSync(process.execPath, [join(ctx.root, 'bin/run.js'), 'record', '--out', out, '--epoch', '0', '--', 'qemu-system-x86_64', '-accel', 'tcg', '-machine', 'pc', '-m', '128M', '-nodefaults', '-display', 'none', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-kernel', elf], {encoding: 'utf8', env: {...process.env, NODE_ENV: 'production'}}),
  )
  if (r.out.status !== 0) throw new Error(`bench: record failed: ${r.out.stderr}`)
  const {openTrace} = await ctx.dist('trace/read/open')
  const rec = (await openTrace(out)).header.source.recording
  if (rec.writeRecords !== rec.writesWritten + rec.romStoresDropped + rec.unmappedStoresDropped) throw new Error(`bench: records lost: ${JSON.stringify(rec)}`)
  ctx.record('end to end, --epoch 0: write records', rec.writeRecords, 'records')
  ctx.record('end to end, --epoch 0: records per host second (QEMU + plugin + migtrace)', rec.writeRecords / rec.hostSeconds, 'records/s')
  // A store across a page boundary is two records; everything else is one record per RAM store.
  ctx.record('end to end, --epoch 0: RAM stores seen', rec.storesSeen - rec.ioStoresSkipped, 'stores')
  ctx.record('end to end, --epoch 0: records written by the plugin = received', rec.pluginRecords, 'records')
}
