// Replay throughput and memory.
// 1. ctx.events guest writes (default 10^7) on a 4 GiB guest, fed as in-memory batches, through the
//    qemu driver with default settings at 10 Gbit/s: events per second through the whole model.
// 1b. The write path alone (the session's loop, no sends): see below.
// 2. Peak memory (maxRSS of a child process) for a 1 TiB guest with a short trace: every page of the
//    guest is still scanned and sent once, so this is the model's full footprint.
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

const GiB = 2 ** 30

/** Writes: 80 % in a 256 MiB hot set, 20 % uniform; a fixed-seed LCG; one reused batch. */
async function* writes(createBatch, K, n, pages, durationNs) {
  const size = 65536
  const b = createBatch(size)
  let seed = 12345
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296)
  const hot = 65536
  const dt = durationNs / n
  for (let i = 0; i < n; i += size) {
    const m = Math.min(size, n - i)
    b.length = m
    for (let j = 0; j < m; j++) {
      const p = rnd() < 0.8 ? Math.floor(rnd() * hot) : Math.floor(rnd() * pages)
      b.t[j] = (i + j) * dt
      b.kind[j] = K.write
      b.vcpu[j] = j & 3
      // 4 GiB: pages below 2 GiB sit at gpa 0, the rest at 4 GiB (q35 layout).
      b.gpa[j] = p < 524288 ? p * 4096 : 4 * GiB + (p - 524288) * 4096
      b.len[j] = 8
    }
    yield b
  }
}

export async function run(ctx) {
  const {parseHeader} = await ctx.dist('trace/header')
  const {TraceLayout} = await ctx.dist('trace/layout')
  const {createBatch, K} = await ctx.dist('trace/events')
  const {replay} = await ctx.dist('replay/index')

  const header = parseHeader({format: 'migtrace', version: 1, memory: '4G', vcpus: 4})
  const layout = new TraceLayout(header)
  const n = ctx.events
  const durationNs = 20e9
  const gen = await ctx.time(async () => {
    let k = 0
    for await (const b of writes(createBatch, K, n, layout.totalPages, durationNs)) k += b.length
    return k
  })
  const {seconds, cpuSeconds, out} = await ctx.time(() =>
    replay({header, layout, events: writes(createBatch, K, n, layout.totalPages, durationNs)}, {overrides: {'start-at': 0}}),
  )
  // Default max-bandwidth (128 MiB/s): the first pass outlasts the 20 s trace, so every event is replayed.
  if (out.events.replayed !== n) throw new Error(`only ${out.events.replayed} of ${n} events replayed`)
  ctx.record('write events', n, 'events')
  ctx.record('replay wall time (4 GiB, incl. generating events)', seconds, 's')
  ctx.record('event generation alone', gen.seconds, 's')
  ctx.record('throughput', n / seconds, 'events/s')
  ctx.record('throughput, generation subtracted', n / Math.max(1e-3, seconds - gen.seconds), 'events/s')
  // CPU seconds of this process: the steadier figure when other work shares the cores.
  ctx.record('throughput per CPU second, generation subtracted', n / Math.max(1e-3, cpuSeconds - gen.cpuSeconds), 'events/CPU-s')
  ctx.record('pages sent', out.totals.pagesSent, 'pages')
  ctx.record('verdict', `${out.verdict}/${out.stopReason}`, '')

  // 1b. The write path alone: the same writes through the session's loop with a driver that never
  // acts (no sends, no syncs), KVM logging every slot in the legacy mode (each first write to a
  // page sets a bit), pre-generated batches; the process's CPU (the loop allocates nothing, so no
  // GC or compiler thread runs meanwhile once warm), median of 3 after a warm-up.
  {
    const {HostModel} = await ctx.dist('replay/host')
    const {ReplaySession} = await ctx.dist('replay/session')
    const {resolveSettings} = await ctx.dist('replay/config')
    const {APPLY, Taken} = await ctx.dist('replay/driver')
    const m = Math.min(n, 4e6)
    const batches = []
    for await (const b of writes(createBatch, K, m, layout.totalPages, durationNs)) {
      // The columns a write reads, copied (createBatch(0) keeps the batches' shape).
      const c = createBatch(0)
      for (const f of ['t', 'kind', 'vcpu', 'gpa', 'len']) c[f] = b[f].slice(0, b.length)
      c.length = b.length
      batches.push(c)
    }
    const settings = resolveSettings(header, {'dirty-log': 'bitmap'})
    const once = () => {
      const host = new HostModel(header, layout, settings)
      host.kvm.logStart(0)
      const session = new ReplaySession(host, header.vcpus)
      session.driver = {name: 'qemu', settings, done: false, due: Infinity, endNs: Number.NaN, hostTimers: false, slow: false, wantsEventsAfter: false, act() {}, control: () => Taken.No, access: () => APPLY, endOfTrace() {}, figures() {}}
      const c0 = process.cpuUsage()
      for (const b of batches) session.feed(b)
      const u = process.cpuUsage(c0)
      const c = (u.user + u.system) / 1e6
      if (session.writes !== m) throw new Error(`write path: ${session.writes} of ${m} writes`)
      return c
    }
    once()
    const runs = [once(), once(), once()].sort((x, y) => x - y)
    ctx.record('write path alone (no sends), per CPU second', m / Math.max(1e-3, runs[1]), 'writes/CPU-s')
  }

  // 1 TiB guest, 10^5 writes over 2 s, everything zero (never-written pages go as 9-byte records).
  const child = `
    const {pathToFileURL} = await import('node:url')
    const d = (p) => import(pathToFileURL(${JSON.stringify(join(ctx.root, 'dist'))} + '/' + p + '.js').href)
    const {parseHeader} = await d('trace/header')
    const {TraceLayout} = await d('trace/layout')
    const {createBatch, K} = await d('trace/events')
    const {replay} = await d('replay/index')
    const header = parseHeader({format: 'migtrace', version: 1, memory: '1T', vcpus: 8, populated: 'none'})
    const layout = new TraceLayout(header)
    const b = createBatch(100000)
    for (let i = 0; i < 100000; i++) { b.t[i] = i * 20000; b.kind[i] = K.write; b.vcpu[i] = i & 7; b.gpa[i] = (i * 7919 % 500000) * 4096; b.len[i] = 8 }
    b.length = 100000
    const t0 = Date.now()
    const c0 = process.cpuUsage()
    const r = await replay({header, layout, events: [b]}, {overrides: {'max-bandwidth': '100Gbps', 'start-at': 0}})
    console.log(JSON.stringify({maxRssKiB: process.resourceUsage().maxRSS, seconds: (Date.now() - t0) / 1000, cpuSeconds: ((c) => (c.user + c.system) / 1e6)(process.cpuUsage(c0)), pages: r.totals.pagesSent, verdict: r.verdict}))
  `
  const res = spawnSync(process.execPath, ['--input-type=module', '-e', child], {encoding: 'utf8', maxBuffer: 1 << 20})
  if (res.status !== 0) throw new Error(`1 TiB child failed: ${res.stderr}`)
  const m = JSON.parse(res.stdout.trim().split('\n').at(-1))
  ctx.record('1 TiB guest: peak RSS', m.maxRssKiB / 1024, 'MiB')
  ctx.record('1 TiB guest: replay wall time', m.seconds, 's')
  ctx.record('1 TiB guest: replay CPU time (user + system)', m.cpuSeconds, 's')
  ctx.record('1 TiB guest: pages sent', m.pages, 'pages')
}
