// The synthetic generator (`migtrace generate`): events/s of the merged event stream alone
// (4 vCPUs of uniform writes plus the migration track), then of the same stream written to CSV
// through TraceWriter, and the heap growth during the write (batches are reused: it must stay flat).
// Runs under bench/run.js, or alone: `node bench/sections/generate.js` (after `npm run build`).
import {statSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

function spec(events, vcpus) {
  const rate = 10_000_000 // accesses/s in all: 1 s of guest time is 10^7 events
  return {
    seed: 42,
    duration: `${(events / rate) * 1e3}ms`,
    memory: '8G',
    vcpus,
    workloads: [{workload: 'uniform', params: {rate}}],
    migration: {start: '1ms', params: 'max-bandwidth=134217728;downtime-limit=300'},
  }
}

/** The same rate per CPU second (user + system of this process), when the runner measures it. */
function perCpu(ctx, what, events, m) {
  if (m.cpuSeconds !== undefined) ctx.record(`${what}, per CPU second`, events / m.cpuSeconds, 'events/CPU-s')
}

export async function run(ctx) {
  const {parseSpec, synthesize, writeSynthTrace} = await ctx.dist('synth/index')
  const n = ctx.events

  const s = parseSpec(spec(n, 4))
  const gen = await ctx.time(async () => {
    let count = 0
    for (const b of synthesize(s).batches()) count += b.length
    return count
  })
  ctx.record(`synthesize ${gen.out} events (4 vCPUs, no output)`, gen.out / gen.seconds, 'events/s')
  perCpu(ctx, 'synthesize (4 vCPUs, no output)', gen.out, gen)

  const out = join(ctx.tmp, 'generate.csv')
  globalThis.gc?.()
  const heap0 = process.memoryUsage().heapUsed
  let heapMax = heap0
  const write = await ctx.time(() =>
    writeSynthTrace(s, out, {
      onProgress: () => {
        const h = process.memoryUsage().heapUsed
        if (h > heapMax) heapMax = h
      },
    }),
  )
  ctx.record(`generate ${write.out.events} events to CSV`, write.out.events / write.seconds, 'events/s')
  perCpu(ctx, 'generate to CSV', write.out.events, write)
  ctx.record('CSV size', statSync(out).size / 2 ** 20, 'MiB')
  ctx.record('heap growth while writing', (heapMax - heap0) / 2 ** 20, 'MiB')

  // User and system time apart: the user time is the generator's and the encoder's own; the system
  // time is the kernel copying ~700 MiB into fresh page-cache pages, which this VM makes cost 0.1 to
  // 1.9 s from one minute to the next (a bare loop writing 730 MB: 0.09-1.82 s), whatever ran
  // before (docs/generate.md, Speed). The CSV is removed first, so the section holds one output at a
  // time (measured: no steady effect on that system time, 0.8-1.9 s with or without).
  rmSync(out)
  const outArrow = join(ctx.tmp, 'generate.arrow')
  const u0 = process.cpuUsage()
  const arrow = await ctx.time(() => writeSynthTrace(s, outArrow))
  const u = process.cpuUsage(u0)
  ctx.record(`generate ${arrow.out.events} events to Arrow`, arrow.out.events / arrow.seconds, 'events/s')
  perCpu(ctx, 'generate to Arrow', arrow.out.events, arrow)
  ctx.record('generate to Arrow, user CPU', u.user / 1e6, 's')
  ctx.record('generate to Arrow, system CPU (page cache)', u.system / 1e6, 's')
  ctx.record('Arrow size', statSync(outArrow).size / 2 ** 20, 'MiB')
  rmSync(outArrow)

  // One vCPU: no interleaving, so the merge copies whole runs; what is left is the CSV encoder.
  const one = await ctx.time(() => writeSynthTrace(parseSpec(spec(n, 1)), join(ctx.tmp, 'generate-1.csv')))
  ctx.record(`generate ${one.out.events} events to CSV (1 vCPU)`, one.out.events / one.seconds, 'events/s')
}

// Standalone: node bench/sections/generate.js [events]
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const tmp = mkdtempSync(join(tmpdir(), 'migtrace-bench-generate-'))
  const ctx = {
    root,
    tmp,
    events: Number(process.argv[2] ?? process.env.BENCH_EVENTS ?? 1e7),
    dist: (path) => import(pathToFileURL(join(root, 'dist', `${path}.js`)).href),
    record: (metric, value, unit) => console.log(`  ${metric}: ${typeof value === 'number' && value >= 1e6 ? `${(value / 1e6).toFixed(2)}M` : typeof value === 'number' ? value.toFixed(3) : value} ${unit}`),
    async time(fn) {
      globalThis.gc?.()
      const t0 = process.hrtime.bigint()
      const out = await fn()
      return {seconds: Number(process.hrtime.bigint() - t0) / 1e9, out}
    },
  }
  try {
    await run(ctx)
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}
