import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {replayFile} from '../../src/compare/replay-one.js'
import {REPLAY_CHARTS} from '../../src/charts/replay/index.js'
import type {ChartDef} from '../../src/charts/types.js'
import type {ReplayResult} from '../../src/replay/result.js'
import {writeReplayHtmlReport} from '../../src/report/html/replay-html.js'
import {runCli} from '../helpers/cli.js'
import {chartSections, markGroups, marksByType} from './svg-marks.js'

const TRACE = 'fixtures/replay/small.csv'
const dirs: string[] = []
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'migtrace-report-'))
  dirs.push(d)
  return d
}
test.after.always(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

let cached: Promise<ReplayResult> | undefined
const small = (): Promise<ReplayResult> => (cached ??= replayFile({trace: TRACE, overrides: {}, driver: 'qemu'}))

function csvRows(path: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(path, 'utf8').trimEnd().split('\n')
  const cols = head!.split(',')
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])))
}

test('report: every chart is drawn with the expected number of marks', async (t) => {
  const r = await small()
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: TRACE, out: join(dir, 'report.html')})
  const html = readFileSync(files.html, 'utf8')
  const sections = chartSections(html)
  t.deepEqual([...sections.keys()], ['convergence', 'transfer-timeline', 'double-copies', 'downtime'])

  const rows = r.rows
  t.is(rows.length, 3, 'the fixture replays in 2 live iterations + stop-copy')
  // convergence: one line per series; a point per positive value (the threshold is unknown at iteration 0)
  const conv = markGroups(sections.get('convergence')!)
  t.is(conv.filter((g) => g.type === 'line').length, 3)
  const points = rows.reduce((n, x) => n + (x.dirtyPagesAtSync > 0 ? 1 : 0) + (x.pagesSent > 0 ? 1 : 0) + (x.thresholdBytes > 0 ? 1 : 0), 0)
  t.is(marksByType(sections.get('convergence')!).symbol, points)
  t.is(points, 8)
  // transfer timeline: a band per iteration (no setup time here), one line, the RAM rule
  t.deepEqual(marksByType(sections.get('transfer-timeline')!), {rect: rows.length, line: 1, rule: 1})
  // double-copies: one bar segment per non-zero (iteration, cause)
  const segments = rows.reduce((n, x) => n + Object.values(x.redundantByCause).filter((v) => v > 0).length, 0)
  t.deepEqual(marksByType(sections.get('double-copies')!), {rect: segments})
  t.is(segments, 4)
  // downtime: RAM only (no device state in this trace) and the limit rule
  t.deepEqual(marksByType(sections.get('downtime')!), {rect: 1, rule: 1})
})

test('report: CSV files hold the numbers behind the charts', async (t) => {
  const r = await small()
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: TRACE, out: join(dir, 'report.html')})
  t.is(files.csvDir, join(dir, 'report-data'))
  t.deepEqual(readdirSync(files.csvDir).sort(), ['convergence.csv', 'double-copies.csv', 'downtime.csv', 'iterations.csv', 'transfer-timeline.csv'])
  const dc = csvRows(join(files.csvDir, 'double-copies.csv'))
  t.is(
    dc.reduce((s, x) => s + Number(x.pages), 0),
    r.totals.redundantPages,
  )
  for (const [cause, n] of Object.entries(r.totals.redundantByCause))
    t.is(
      dc.filter((x) => x.cause === cause).reduce((s, x) => s + Number(x.pages), 0),
      n,
      cause,
    )
  // One row per 100 ms rate window (and the downtime's pass), summing to everything on the wire.
  const tl = csvRows(join(files.csvDir, 'transfer-timeline.csv'))
  t.is(tl.length, r.transferTimeline!.tMs.length - 1)
  t.true(tl.length > r.rows.length, 'finer than the iteration boundaries')
  t.is(Number(tl.at(-1)!.cumulative_bytes), r.transferredBytes)
  t.is(
    tl.reduce((s, x) => s + Number(x.bytes_sent), 0),
    r.transferredBytes,
  )
  t.deepEqual([...new Set(tl.map((x) => x.phase))], ['live', 'stop-copy'])
  const dt = csvRows(join(files.csvDir, 'downtime.csv'))
  t.is(Number(dt.find((x) => x.part === 'RAM')!.pages), r.downtime.ramPages)
  t.is(Number(dt.find((x) => x.part === 'downtime-limit')!.ms), r.settings['downtime-limit'])
  const conv = csvRows(join(files.csvDir, 'convergence.csv'))
  t.deepEqual(
    conv.map((x) => Number(x.dirty_pages_at_sync)),
    r.rows.map((x) => x.dirtyPagesAtSync),
  )
  t.is(conv[0]!.threshold_pages, '', 'no threshold before the first bandwidth measurement')
  t.is(Number(conv[1]!.threshold_pages), Math.floor(r.rows[1]!.thresholdBytes / r.guest.pageSize))
  t.is(csvRows(join(files.csvDir, 'iterations.csv')).length, r.rows.length)
  // no temp files left behind by the atomic writes
  t.deepEqual(readdirSync(dir).sort(), ['report-data', 'report.html'])
})

test('report: the HTML is self-contained and links its CSVs relatively', async (t) => {
  const r = await small()
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: TRACE, out: join(dir, 'out', 'r.html'), csvDir: join(dir, 'data')})
  const html = readFileSync(files.html, 'utf8')
  t.false(/<script|<link|<img|<iframe|@import|url\(/i.test(html))
  // the only absolute URLs are XML namespace names, which are never fetched
  const urls = [...html.matchAll(/https?:\/\/[^"'\s<>)]+/g)].map((m) => m[0])
  t.true(urls.every((u) => u.startsWith('http://www.w3.org/')), urls.join(' '))
  const hrefs = [...html.matchAll(/href="([^"]+)"/g)].map((m) => m[1]!)
  t.true(hrefs.includes('../data/convergence.csv'))
  for (const h of hrefs.filter((x) => !x.startsWith('#'))) t.true(existsSync(join(dir, 'out', h)), h)
  // headline figures
  t.regex(html, /<span class="verdict-converged">converged<\/span>/)
  t.regex(html, /<th class="part">lazy-clear-window<\/th><td>215 pages<\/td>/)
  t.regex(html, /<th>lost writes<\/th><td>0 pages<\/td>/)
})

test('report: a chart that does not apply is left out; a new chart is one ChartDef', async (t) => {
  const r = await small()
  const extra: ChartDef<ReplayResult> = {
    id: 'send-counts',
    title: 'Pages by number of sends',
    caption: 'test chart',
    appliesTo: () => true,
    rows: (x) => x.sendHistogram.map((pages, sends) => ({sends, pages})).filter((row) => row.pages > 0),
    spec: (rows) => ({data: {values: rows}, mark: 'bar', encoding: {x: {field: 'sends', type: 'ordinal'}, y: {field: 'pages', type: 'quantitative'}}}),
  }
  const never: ChartDef<ReplayResult> = {...extra, id: 'never', appliesTo: () => false}
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: TRACE, out: join(dir, 'report.html'), charts: [...REPLAY_CHARTS, extra, never]})
  const sections = chartSections(readFileSync(files.html, 'utf8'))
  t.true(sections.has('send-counts'))
  t.false(sections.has('never'))
  t.false(existsSync(join(files.csvDir, 'never.csv')))
  t.deepEqual(marksByType(sections.get('send-counts')!), {rect: r.sendHistogram.filter((n) => n > 0).length})
  // a replay without double-copies has no double-copies chart
  const clean = {...r, totals: {...r.totals, redundantPages: 0}}
  const f2 = await writeReplayHtmlReport(clean, {trace: TRACE, out: join(dir, 'clean.html')})
  t.false(chartSections(readFileSync(f2.html, 'utf8')).has('double-copies'))
  t.is(f2.csvDir, join(dir, 'clean-data'))
})

test('CLI: migtrace report writes the HTML and CSVs and describes them in --json', async (t) => {
  const dir = tmp()
  const out = join(dir, 'report.html')
  const res = await runCli(['report', TRACE, '--out', out, '--set', 'downtime-limit=50ms', '--json'])
  t.is(res.code, 0, res.stderr)
  const doc = JSON.parse(res.stdout) as {schema: string; html: string; csvDir: string; charts: {id: string; rows: number; csv: string}[]; verdict: string}
  t.is(doc.schema, 'migtrace.report/1')
  t.is(doc.html, out)
  t.deepEqual(
    doc.charts.map((c) => c.id),
    ['convergence', 'transfer-timeline', 'double-copies', 'downtime'],
  )
  for (const c of doc.charts) t.true(existsSync(c.csv))
  const dt = csvRows(join(dir, 'report-data', 'downtime.csv'))
  t.is(dt.find((x) => x.part === 'downtime-limit')!.ms, '50', '--set reaches the replay')
  const quiet = await runCli(['report', TRACE, '--out', join(dir, 'q.html'), '--quiet'])
  t.is(quiet.code, 0, quiet.stderr)
  t.is(quiet.stdout, '')
  t.is(quiet.stderr, '')
  const bad = await runCli(['report', TRACE, '--out', join(dir, 'x.html'), '--set', 'downtime-limit=fast'])
  t.is(bad.code, 2)
  t.regex(bad.stderr, /^migtrace: field 'downtime-limit': not a valid duration/)
})

test('report: a postcopy run adds the fault-latency histogram (a bar per bucket of the occupied range)', async (t) => {
  const r = await replayFile({trace: 'traces/postcopy-large.csv.gz', overrides: {}, driver: 'qemu'})
  t.truthy(r.postcopy, 'the trace switches to postcopy')
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: 'postcopy-large', out: join(dir, 'report.html')})
  const sections = chartSections(readFileSync(files.html, 'utf8'))
  t.true(sections.has('postcopy-latency'))
  const h = r.postcopy!.latencyHistogram
  const occupied = h.flatMap((n, i) => (n > 0 ? [i] : []))
  const lo = Math.max(0, occupied[0]! - 1)
  const hi = Math.min(h.length - 1, occupied.at(-1)! + 1)
  t.deepEqual(marksByType(sections.get('postcopy-latency')!), {rect: hi - lo + 1})
  const rows = csvRows(join(files.csvDir, 'postcopy-latency.csv'))
  t.is(rows.length, h.length, 'the CSV has every bucket')
  t.is(
    rows.reduce((s, x) => s + Number(x.faults), 0),
    r.postcopy!.latencyNs.count,
  )
  // the timeline has a band per phase, postcopy included
  t.deepEqual(marksByType(sections.get('transfer-timeline')!), {rect: r.rows.length, line: 1, rule: 1})
  t.true(r.rows.some((x) => x.phase === 'postcopy'))
})

test('report: a virtio-mem run adds plugged size over time (one step line per device, the migration band)', async (t) => {
  const r = await replayFile({trace: 'traces/virtio-mem.csv.gz', overrides: {}, driver: 'qemu'})
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: 'virtio-mem', out: join(dir, 'report.html')})
  const sections = chartSections(readFileSync(files.html, 'utf8'))
  t.true(sections.has('virtio-mem-plugged'))
  t.false(sections.has('vfio-pinned'), 'no VFIO in this trace')
  t.deepEqual(marksByType(sections.get('virtio-mem-plugged')!), {rect: 1, line: 1})
  const vm = r.components['virtio-mem'] as {devices: {pluggedOverTime: {tNs: number; pluggedBytes: number}[]}[]}
  const rows = csvRows(join(files.csvDir, 'virtio-mem-plugged.csv'))
  t.deepEqual(
    rows.map((x) => Number(x.plugged_bytes)),
    vm.devices[0]!.pluggedOverTime.map((p) => p.pluggedBytes),
  )
  // BUSY during the migration: the guest keeps asking, and the plugged size is the same at the
  // migration's end as at its start, with no step in between.
  const series = vm.devices[0]!.pluggedOverTime
  const at = (tNs: number): number => series.filter((p) => p.tNs <= tNs).at(-1)!.pluggedBytes
  // the first entry at the end is the migration's own (later ones are requests answered after it)
  t.is(series.find((p) => p.tNs === r.endNs)!.pluggedBytes, at(r.startNs))
  t.deepEqual(series.filter((p) => p.tNs > r.startNs && p.tNs < r.endNs), [])
  const log = (r.components['virtio-mem'] as {requestLog: {response: string; duringMigration: boolean}[]}).requestLog
  t.true(log.some((x) => x.duringMigration && x.response === 'BUSY'))
  t.true(series.some((p) => p.tNs < r.startNs && p.pluggedBytes !== at(r.startNs)), 'the line does step before the migration')
})

test('report: a passthrough device shows the pages VFIO reports dirty at each sync, not an empty pinned-pages line', async (t) => {
  const r = await replayFile({trace: 'traces/vfio-passthrough.csv.gz', overrides: {}, driver: 'qemu'})
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: 'vfio-passthrough', out: join(dir, 'report.html')})
  const sections = chartSections(readFileSync(files.html, 'utf8'))
  // an IOMMU-backed passthrough device maps, it never pins: a pinned-pages chart would be a flat 0
  t.false(sections.has('vfio-pinned'))
  t.true(sections.has('vfio-dirty-syncs'))
  const rows = csvRows(join(files.csvDir, 'vfio-dirty-syncs.csv'))
  const syncs = (r.components.vfio as {containers: {perSync: {reportedDirtyPages: number; mappedPages: number}[]}[]}).containers.flatMap((c) => c.perSync)
  t.is(rows.length, syncs.length)
  t.true(syncs.length >= 3)
  // what matters: every mapped page is reported dirty at every sync
  for (const x of rows) {
    t.true(Number(x.mapped_pages) > 0)
    t.is(x.reported_dirty_pages, x.mapped_pages)
    t.is(Number(x.pinned_pages), 0)
  }
  const marks = marksByType(sections.get('vfio-dirty-syncs')!)
  t.is(marks.line, 3, 'a line per series: reported dirty, mapped, pinned')
  t.is(marks.symbol, 3 * rows.length, 'a point per sync and series')
})

let postcopyRun: Promise<ReplayResult> | undefined
const postcopy = (): Promise<ReplayResult> => (postcopyRun ??= replayFile({trace: 'traces/hotset-nonconverging.csv.gz', overrides: {'postcopy-after': '2'}, driver: 'qemu'}))

test('charts a user can read: a short downtime on its own scale, short latency labels, only phases that happened, one x axis', async (t) => {
  const r = await postcopy()
  t.true(r.downtimeMs < r.settings['downtime-limit'] / 5, 'a postcopy downtime far under the limit')
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: 'pc', out: join(dir, 'report.html')})
  const html = readFileSync(files.html, 'utf8')
  const sections = chartSections(html)
  // the downtime bar fills its axis; the limit is named above it instead of squashing it
  const downtime = sections.get('downtime')!
  t.false(marksByType(downtime).rule !== undefined, 'no limit rule on the axis')
  t.regex(downtime, /limit 300\.0 ms \(off this scale\)/)
  t.regex(downtime, />µs</)
  // fault-latency axis labels: the bucket start, horizontal (no rotation that cuts them off)
  const latency = sections.get('postcopy-latency')!
  t.notRegex(latency, /rotate\(-30/)
  t.notRegex(latency, />[^<]*–[^<]*<\/text>/, 'no range labels on the axis')
  // the transfer timeline's legend lists the phases of this run only
  const timeline = sections.get('transfer-timeline')!
  t.regex(timeline, />postcopy</)
  t.notRegex(timeline, />stop-copy</)
  t.notRegex(timeline, />setup</)
  // one x axis convention
  t.notRegex(html, /trace time \(ms\)/)
  t.regex(timeline, /time since migration start \(ms\)/)
})

test('report tables: causes without all-zero rows, iteration headers with units and formatted figures', async (t) => {
  const r = await small()
  const dir = tmp()
  const files = await writeReplayHtmlReport(r, {trace: TRACE, out: join(dir, 'report.html')})
  const html = readFileSync(files.html, 'utf8')
  const causes = html.slice(html.indexOf('<h2 id="causes">'), html.indexOf('<h2 id="iterations">'))
  const present = Object.entries(r.totals.redundantByCause).filter(([, n]) => n > 0)
  t.true(present.length > 0)
  t.is((causes.match(/<tr>/g) ?? []).length, 1 + present.length, 'the header and one row per cause that sent something')
  const it = html.slice(html.indexOf('<table class="iterations">'), html.indexOf('</table>', html.indexOf('<table class="iterations">')))
  t.regex(it, /<th>dirty at sync \(pages\)<\/th>/)
  t.notRegex(it, /_/, 'no snake_case headers')
  t.regex(it, /<td class="num">[0-9.]+ (B|KiB|MiB|GiB)<\/td>/, 'bytes shown with a unit')
  // the CSV behind it keeps the raw columns
  t.true(readFileSync(join(files.csvDir, 'iterations.csv'), 'utf8').startsWith('iteration,phase,start_ms,end_ms,'))
})

test('double-copies of a one-iteration run are one narrow bar, not the chart width', async (t) => {
  const r = await small()
  const {doubleCopiesChart} = await import('../../src/charts/replay/double-copies.js')
  const one = {...r, rows: r.rows.slice(0, 1)}
  const rows = [{iteration: 1, phase: 'live', cause: 'lazy-clear-window', pages: 10}]
  const spec = doubleCopiesChart.spec(rows, one) as {width: unknown}
  t.deepEqual(spec.width, {step: 48})
  const many = Array.from({length: 40}, (_, i) => ({iteration: i, phase: 'live', cause: 'lazy-clear-window', pages: 10}))
  t.is((doubleCopiesChart.spec(many, {...r, rows: Array.from({length: 40}, () => r.rows[0]!)}) as {width: unknown}).width, 640)
})
