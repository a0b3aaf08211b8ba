import {mkdtempSync, readFileSync, writeFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'
import {chartSections, marksByType} from '../report/svg-marks.js'

const TRACE = 'fixtures/replay/small.csv'
const dirs: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'migtrace-shard-'))
  dirs.push(d)
  return d
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})
const GRID = ['grid', TRACE, '--bandwidth', '8Mbit/s,64Mbit/s', '--downtime', '20ms,1s']
const COMPARE = ['compare', TRACE, '--variant', 'a', '--variant', 'b:max-bandwidth=32MiB/s', '--variant', 'c:downtime-limit=20ms', '--variant', 'd:stop-policy=xen']

async function ok(args: string[]): Promise<string> {
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`${args.join(' ')}: exit ${r.code}\n${r.stderr}`)
  return r.stdout
}

/** The unsharded JSON and n shard files (the first shard runs on worker threads, the others inline). */
async function sharded(base: string[], n: number): Promise<{full: string; files: string[]}> {
  const dir = tmp()
  const files = Array.from({length: n}, (_, i) => join(dir, `s${i + 1}.json`))
  const [full, ...shards] = await Promise.all([ok([...base, '--json', '--jobs', '1']), ...files.map((_, i) => ok([...base, '--shard', `${i + 1}/${n}`, '--jobs', i === 0 ? '2' : '1']))])
  shards.forEach((s, i) => writeFileSync(files[i]!, s))
  return {full: full!, files}
}

let gridRuns: ReturnType<typeof sharded> | undefined
const gridSharded = (): ReturnType<typeof sharded> => (gridRuns ??= sharded(GRID, 3))

test('compare: shards + merge == the unsharded run, byte for byte', async (t) => {
  const {full, files} = await sharded(COMPARE, 3)
  // out of order on purpose
  t.is(await ok(['merge', ...[...files].reverse(), '--json']), full)
  const shard = JSON.parse(readFileSync(files[0]!, 'utf8')) as {schema: string; total: number; results: {index: number}[]}
  t.is(shard.schema, 'migtrace.shard/1')
  t.is(shard.total, 4)
  t.deepEqual(
    shard.results.map((r) => r.index),
    [0, 3],
  )
  // the other formats of a merge equal the unsharded run's too
  const [md, mergedMd] = await Promise.all([ok([...COMPARE, '--format', 'md', '--jobs', '1']), ok(['merge', ...files, '--format', 'md'])])
  t.is(mergedMd, md)
})

test('grid: shards + merge == the unsharded run, byte for byte', async (t) => {
  const {full, files} = await gridSharded()
  t.is(await ok(['merge', files[2]!, files[0]!, files[1]!, '--json']), full)
})

test('merge: refuses incomplete, duplicated or mixed shards (exit 2)', async (t) => {
  const dir = tmp()
  const {files} = await gridSharded()
  const [p1, p2, p3] = files as [string, string, string]
  const other = join(dir, 'other.json')
  writeFileSync(other, await ok(['grid', TRACE, '--bandwidth', '8Mbit/s', '--downtime', '20ms', '--shard', '1/3']))
  const missing = await runCli(['merge', p1, p3])
  t.is(missing.code, 2)
  t.regex(missing.stderr, /shards are missing .*shard 2\/3/)
  const dup = await runCli(['merge', p1, p2, p3, p1])
  t.is(dup.code, 2)
  t.regex(dup.stderr, /the same item in two shards/)
  const mixed = await runCli(['merge', p1, p2, p3, other])
  t.is(mixed.code, 2)
  t.regex(mixed.stderr, /from another sweep/)
  const notShard = join(dir, 'x.json')
  writeFileSync(notShard, '{"schema":"migtrace.grid/1"}')
  const r = await runCli(['merge', notShard])
  t.is(r.code, 2)
  t.regex(r.stderr, /not a shard file/)
  const failIfShard = await runCli([...COMPARE, '--shard', '1/2', '--fail-if', 'redundant>0'])
  t.is(failIfShard.code, 2)
  t.regex(failIfShard.stderr, /--fail-if needs every result/)
})

test('grid: every cell equals a single replay with the same settings', async (t) => {
  const grid = JSON.parse((await gridSharded()).full) as {
    schema: string
    cells: {bandwidth: string; bandwidthBytesPerSec: number; downtimeLimitMs: number; verdict: string; totalTimeMs: number; downtimeMs: number; metrics: Record<string, number>}[]
  }
  type Single = Record<string, number> & {verdict: string}
  t.is(grid.schema, 'migtrace.grid/1')
  t.deepEqual(
    grid.cells.map((c) => [c.bandwidth, c.bandwidthBytesPerSec, c.downtimeLimitMs]),
    [
      ['8Mbit/s', 1e6, 20],
      ['8Mbit/s', 1e6, 1000],
      ['64Mbit/s', 8e6, 20],
      ['64Mbit/s', 8e6, 1000],
    ],
  )
  const singles = await Promise.all(
    grid.cells.map((c) => ok(['replay', TRACE, '--json', '--set', `max-bandwidth=${c.bandwidthBytesPerSec}`, '--set', `link-bandwidth=${c.bandwidthBytesPerSec}`, '--set', `downtime-limit=${c.downtimeLimitMs}`])),
  )
  grid.cells.forEach((c, i) => {
    const s = JSON.parse(singles[i]!) as Single
    t.is(c.verdict, s.verdict, `cell ${i}`)
    t.is(c.totalTimeMs, s.totalTimeMs!, `cell ${i}`)
    t.is(c.downtimeMs, s.downtimeMs!, `cell ${i}`)
    t.is(c.metrics.bytesSent, s.bytesSent, `cell ${i}`)
  })
  t.true(new Set(grid.cells.map((c) => c.totalTimeMs)).size > 1, 'the cells differ')
})

test('grid: text, csv, and the HTML heat map (a rect and a label per cell)', async (t) => {
  const dir = tmp()
  const html = join(dir, 'grid.html')
  const {files} = await gridSharded()
  const [csv, text, mergedCsv] = await Promise.all([ok([...GRID, '--html', html, '--format', 'csv', '--quiet', '--jobs', '1']), ok(['merge', ...files]), ok(['merge', ...files, '--format', 'csv'])])
  t.is(mergedCsv, csv)
  t.regex(text, /^total time\nbandwidth \\ downtime-limit +20ms +1s$/m)
  t.regex(text, /^8Mbit\/s {2,}\d/m)
  t.is(csv.trimEnd().split('\n').length, 1 + 4)
  t.true(csv.startsWith('bandwidth,bandwidth_bytes_per_s,downtime_limit,downtime_limit_ms,verdict,stop_reason,total_time_ms,downtime_ms,'))
  const sections = chartSections(readFileSync(html, 'utf8'))
  t.deepEqual([...sections.keys()], ['grid-total-time', 'grid-downtime'])
  for (const s of sections.values()) t.deepEqual(marksByType(s), {rect: 4, text: 4})
  const bad = await runCli(['grid', TRACE, '--bandwidth', '1000', '--downtime', '1s'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /a grid bandwidth needs a unit/)
})

test('grid heat map: white text on the dark half of the colour scale, black on the light half', async (t) => {
  const dir = tmp()
  const html = join(dir, 'grid.html')
  await ok([...GRID, '--html', html, '--quiet', '--jobs', '1'])
  const sections = chartSections(readFileSync(html, 'utf8'))
  for (const s of sections.values()) {
    const fills = [...s.matchAll(/<text[^>]*fill="([^"]+)"[^>]*>[^<]*[✓✗?–P]<\/text>/g)].map((m) => m[1])
    t.is(fills.length, 4)
    t.true(fills.includes('white') && fills.includes('black'), fills.join(' '))
  }
})

test('compare --html: the variants drawn on one set of axes, one line per variant; the JSON does not change', async (t) => {
  const dir = tmp()
  const html = join(dir, 'compare.html')
  const [withHtml, plain] = await Promise.all([ok([...COMPARE, '--html', html, '--json', '--jobs', '2']), ok([...COMPARE, '--json', '--jobs', '1'])])
  t.is(withHtml, plain)
  const sections = chartSections(readFileSync(html, 'utf8'))
  t.deepEqual([...sections.keys()], ['compare-transfer', 'compare-convergence', 'compare-downtime'])
  t.is(marksByType(sections.get('compare-transfer')!).line, 4, 'a line per variant')
  t.is(marksByType(sections.get('compare-downtime')!).rect, 8, 'a bar and a limit tick per variant')
  const sharded = await runCli([...COMPARE, '--html', html, '--shard', '1/2'])
  t.is(sharded.code, 2)
  t.regex(sharded.stderr, /--html needs every variant/)
})
