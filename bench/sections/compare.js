// compare / grid: N variants of one trace in one pass (each batch decoded once, fed to every
// variant's model) against N separate replays, on a generated CSV trace of ctx.events / 2 events.
// Figures: the decode alone, one replay, 4 variants in one pass and 4 replays one after another
// (CPU seconds of this process, the steadier figure on a shared machine), and what the pass costs
// beyond one decode per model run.
import {join} from 'node:path'
import {generateCsv} from './trace-io.js'

export async function run(ctx) {
  const {openTrace} = await ctx.dist('trace/read/open')
  const {replayFile, replayFileEach} = await ctx.dist('compare/replay-one')
  const n = Math.round(ctx.events / 2)
  const csv = join(ctx.tmp, 'compare.csv')
  await generateCsv(csv, n)
  const variants = ['64MiB/s', '128MiB/s', '256MiB/s', '1GiB/s'].map((bw) => ({'start-at': 0, 'max-bandwidth': bw}))
  const med = async (fn, reps = 3) => {
    const xs = []
    for (let i = 0; i < reps; i++) xs.push((await ctx.time(fn)).cpuSeconds)
    return xs.sort((a, b) => a - b)[reps >> 1]
  }
  const decode = await med(async () => {
    const t = await openTrace(csv)
    let k = 0
    for await (const b of t.events()) k += b.length
    return k
  })
  const one = await med(() => replayFile({trace: csv, driver: 'qemu', overrides: variants[1]}))
  const pass = await med(() => replayFileEach({trace: csv, driver: 'qemu', overrides: variants}))
  const apart = await med(async () => {
    for (const v of variants) await replayFile({trace: csv, driver: 'qemu', overrides: v})
  }, 1)
  ctx.record(`trace events`, n, 'events')
  ctx.record('decode alone (CPU)', decode, 's')
  ctx.record('one replay (CPU)', one, 's')
  ctx.record('4 variants, one pass (CPU)', pass, 's')
  ctx.record('4 variants, 4 replays (CPU)', apart, 's')
  ctx.record('one pass / (decode + 4 model runs)', pass / (decode + 4 * Math.max(0, one - decode)), 'x')
  ctx.record('4 replays / one pass', apart / pass, 'x')
}
