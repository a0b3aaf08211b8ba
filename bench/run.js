#!/usr/bin/env node
// Benchmarks against the built dist/ (run `npm run build` first): `npm run bench [section ...]`.
// Each file in bench/sections/ exports `async function run(ctx)`; with names on the command line
// only those sections run (e.g. `npm run bench -- trace-io`). Sizes can be scaled with
// BENCH_EVENTS (default 10^7 events for the trace sections).
import {mkdtempSync, readdirSync, rmSync, existsSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, basename} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
if (!existsSync(join(root, 'dist'))) {
  console.error('bench: dist/ is missing; run `npm run build` first')
  process.exit(1)
}
const sectionsDir = join(root, 'bench', 'sections')
const wanted = process.argv.slice(2)
const all = readdirSync(sectionsDir).filter((f) => f.endsWith('.js')).sort()
const chosen = wanted.length > 0 ? all.filter((f) => wanted.includes(basename(f, '.js'))) : all
if (wanted.length > 0 && chosen.length !== wanted.length) {
  console.error(`bench: unknown section(s): ${wanted.filter((w) => !all.includes(`${w}.js`)).join(', ')} (have: ${all.map((f) => basename(f, '.js')).join(', ')})`)
  process.exit(1)
}

const results = []
const tmp = mkdtempSync(join(tmpdir(), 'migtrace-bench-'))
const ctx = {
  root,
  /** A temporary directory, removed when the run ends. */
  tmp,
  /** Events for the large-trace sections. */
  events: Number(process.env.BENCH_EVENTS ?? 1e7),
  /** Import a module from dist/ by its path under src/ without the extension, e.g. 'trace/read/open'. */
  dist: (path) => import(pathToFileURL(join(root, 'dist', `${path}.js`)).href),
  /** Record a figure; it is printed now and in the summary. */
  record(section, metric, value, unit) {
    results.push({section, metric, value, unit})
    console.log(`  ${metric}: ${fmt(value)} ${unit}`)
  },
  /**
   * Wall time of an async function, in seconds, and the CPU time this process used meanwhile
   * (user + system): on a shared machine the CPU figure is the steadier one.
   */
  async time(fn) {
    globalThis.gc?.()
    const c0 = process.cpuUsage()
    const t0 = process.hrtime.bigint()
    const out = await fn()
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    const c = process.cpuUsage(c0)
    return {seconds, cpuSeconds: (c.user + c.system) / 1e6, out}
  },
}

function fmt(v) {
  if (typeof v !== 'number') return String(v)
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`
  return Number.isInteger(v) ? String(v) : v.toFixed(3)
}

try {
  for (const f of chosen) {
    const name = basename(f, '.js')
    console.log(`## ${name}`)
    const mod = await import(pathToFileURL(join(sectionsDir, f)).href)
    await mod.run({...ctx, record: (metric, value, unit) => ctx.record(name, metric, value, unit)})
  }
} finally {
  rmSync(tmp, {recursive: true, force: true})
}
console.log('\n## summary')
for (const r of results) console.log(`${r.section.padEnd(12)} ${r.metric.padEnd(40)} ${fmt(r.value).padStart(10)} ${r.unit}`)
