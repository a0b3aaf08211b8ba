/**
 * The HTML replay report: headline, double-copies by cause, per-iteration table, then the charts
 * of the registry that apply, each with its table written as CSV (report-data/<chart>.csv beside
 * the HTML unless a CSV folder is given). Every file is written atomically, the HTML last.
 */
import {basename, dirname, extname, join, resolve} from 'node:path'
import {iterationColumns, replayHeadline} from '../../analysis/replay-tables.js'
import {settingsToJson, SETTINGS} from '../../replay/config.js'
import type {ReplayResult} from '../../replay/result.js'
import {formatBytes, formatDurationNs} from '../../util/units.js'
import {UserError} from '../../util/errors.js'
import {REPLAY_CHARTS} from '../../charts/replay/index.js'
import {renderCharts} from '../../charts/render.js'
import {rowsToCsv} from '../../charts/csv.js'
import type {ChartDef, ChartRow, RenderedChart} from '../../charts/types.js'
import {AtomicOutput} from '../../io/atomic-output.js'
import {checkOutputDir, checkOutputFile} from '../../io/output-path.js'
import {chartSection, relativeHref} from './charts-section.js'
import {esc, kvTable, page, table, type HtmlCell} from './page.js'

export const HTML_REPORT_SCHEMA = 'migtrace.report/1'

const msText = (ms: number): string => formatDurationNs(ms * 1e6)
const int = (n: number): string => Math.round(n).toLocaleString('en-US')

export interface HtmlReportOptions {
  /** The trace as the user named it (shown in the title). */
  trace: string
  /** The HTML file to write. */
  out: string
  /** Folder for the CSV files; default: `<out without extension>-data/` beside the HTML. */
  csvDir?: string
  /** Charts to draw (default: the replay registry). */
  charts?: readonly ChartDef<ReplayResult>[]
  /** Shown in the footer (e.g. the command line); omitted when absent. */
  generatedBy?: string
}

export interface HtmlReportFiles {
  schema: typeof HTML_REPORT_SCHEMA
  html: string
  csvDir: string
  charts: {id: string; title: string; csv: string; rows: number}[]
  tables: {id: string; csv: string; rows: number}[]
}

export function defaultCsvDir(out: string): string {
  const base = basename(out, extname(out))
  return join(dirname(out), `${base}-data`)
}

function verdictCell(r: ReplayResult): HtmlCell {
  return {html: `<span class="verdict-${esc(r.verdict)}">${esc(r.verdict)}</span> (${esc(r.stopReason)})`}
}

function headline(r: ReplayResult): string {
  const h = replayHeadline(r)
  const rows: [string, HtmlCell][] = [
    ['verdict', verdictCell(r)],
    ['total time', `${msText(h.totalTimeMs)} (setup ${msText(h.setupTimeMs)})`],
    ['downtime', `${msText(h.downtimeMs)} (limit ${msText(h.downtimeLimitMs)})`],
    ['  RAM', `${msText(h.downtimeRamMs)}: ${int(r.downtime.ramPages)} pages, ${formatBytes(r.downtime.ramBytes)}`],
    ...(r.downtime.vfioStateMs !== undefined ? [['  VFIO device state', `${msText(r.downtime.vfioStateMs)}: ${formatBytes(r.downtime.vfioStateBytes ?? 0)}`] as [string, HtmlCell]] : []),
    ['  device state', `${msText(h.downtimeDeviceStateMs)}: ${formatBytes(r.downtime.deviceStateBytes)}`],
    ['iterations', `${h.iterations} live, ${h.dirtySyncCount} dirty syncs`],
    ['sent', `${int(h.pagesSent)} pages, ${formatBytes(h.bytesSent)} (${int(h.bytesSent)} bytes) = ${h.ratioToRam.toFixed(3)}x guest RAM (${formatBytes(h.guestBytes)})`],
    ['  by class', `first ${int(h.firstPages)}, re-dirtied ${int(h.redirtiedPages)}, double-copies ${int(h.redundantPages)}, zero ${int(h.zeroPages)}`],
    ['double-copies', `${int(h.redundantPages)} pages (${formatBytes(h.redundantBytes)})${h.pagesSent > 0 ? `, ${((100 * h.redundantPages) / h.pagesSent).toFixed(2)} % of pages sent` : ''}`],
  ]
  for (const c of r.causes) {
    const n = r.totals.redundantByCause[c.id] ?? 0
    if (n > 0) rows.push([`  ${c.id}`, `${int(n)} pages`])
  }
  const lost: HtmlCell =
    r.verdict === 'cancelled'
      ? 'n/a (cancelled)'
      : h.lostWrites > 0
        ? {text: `${int(h.lostWrites)} pages: the destination runs with stale pages`, className: 'bad'}
        : '0 pages'
  rows.push(['lost writes', lost])
  if (r.stall)
    rows.push([
      'to converge',
      `${r.stall.stalled ? 'stalled' : 'still'} at ${formatBytes(r.stall.dirtyBytes)} dirty: needs a downtime of ${msText(r.stall.needsDowntimeMs)} or ${formatBytes(r.stall.needsBandwidthBps)}/s`,
    ])
  for (const n of r.notes) rows.push(['note', n])
  return kvTable(rows, 'headline')
}

/** The causes that sent something (a cause with 0 pages says nothing here; the CSV has them all). */
function causesTable(r: ReplayResult): string {
  const normal = r.guest.pageSize + 8
  const rows: HtmlCell[][] = r.causes
    .map((c) => [c, r.totals.redundantByCause[c.id] ?? 0] as const)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => [c.id, n, {text: formatBytes(n * normal), className: 'num'}, c.label])
  if (rows.length === 0) return '<p>No double-copies: every page sent again had changed since its last send.</p>'
  return table(['cause', 'pages', 'bytes', 'meaning'], rows)
}

const numCell = (text: string): HtmlCell => ({text, className: 'num'})
const plain = (v: number | string): HtmlCell => v
const msCell = (v: number | string): HtmlCell => numCell(msText(Number(v)))
const bytesCell = (v: number | string): HtmlCell => numCell(formatBytes(Number(v)))

/** The iterations table: readable headers with units, figures formatted (the CSV keeps raw values). */
const ITERATION_COLUMNS: {key: string; header: string; cell: (v: number | string) => HtmlCell}[] = [
  {key: 'iteration', header: '#', cell: plain},
  {key: 'phase', header: 'phase', cell: plain},
  {key: 'start_ms', header: 'start', cell: msCell},
  {key: 'end_ms', header: 'end', cell: msCell},
  {key: 'dirty_pages_at_sync', header: 'dirty at sync (pages)', cell: plain},
  {key: 'new_dirty_pages', header: 'newly dirty (pages)', cell: plain},
  {key: 'pages_sent', header: 'sent (pages)', cell: plain},
  {key: 'bytes_sent', header: 'sent', cell: bytesCell},
  {key: 'first', header: 'first', cell: plain},
  {key: 'redirtied', header: 're-dirtied', cell: plain},
  {key: 'redundant', header: 'double-copies', cell: plain},
  {key: 'zero', header: 'zero', cell: plain},
  {key: 'dirty_rate_pps', header: 'dirty rate (pages/s)', cell: plain},
  {key: 'expected_downtime_ms', header: 'expected downtime', cell: msCell},
  {key: 'threshold_bytes', header: 'threshold', cell: bytesCell},
]

function iterationsTable(r: ReplayResult): {html: string; rows: ChartRow[]} {
  const cols = iterationColumns(r)
  const names = Object.keys(cols)
  const rows: ChartRow[] = r.rows.map((_, i) => Object.fromEntries(names.map((n) => [n, cols[n]![i]!])))
  const html = table(
    ITERATION_COLUMNS.map((c) => c.header),
    rows.map((row) => ITERATION_COLUMNS.map((c) => c.cell(row[c.key] as number | string))),
    'iterations',
  )
  return {html: `<div class="scroll">${html}</div>`, rows}
}

function settingsTable(r: ReplayResult): string {
  const s = settingsToJson(r.settings)
  const units = new Map<string, string>(SETTINGS.map((x) => [x.key, x.unit]))
  return table(
    ['setting', 'value', 'unit'],
    Object.entries(s).map(([k, v]) => [k, String(v), units.get(k) ?? '']),
  )
}

/** The HTML text (pure: no files). `csvHref(id)` links each chart to its CSV. */
export function replayHtml(r: ReplayResult, trace: string, charts: RenderedChart[], csvHref: (id: string) => string | undefined, iterationsHref?: string, generatedBy?: string): string {
  const it = iterationsTable(r)
  const body = `<h1>migtrace report: ${esc(trace)}</h1>
<p class="sub">driver ${esc(r.driver)}, stop-policy ${esc(r.driver === 'qemu' ? r.settings['stop-policy'] : 'recorded')}, dirty-log ${esc(r.settings['dirty-log'])}, clear-policy ${esc(r.settings['clear-policy'])}, max-bandwidth ${esc(formatBytes(r.settings['max-bandwidth']))}/s, downtime-limit ${esc(msText(r.settings['downtime-limit']))}</p>
<nav><ul>
<li><a href="#summary">Summary</a></li>
<li><a href="#causes">Double-copies by cause</a></li>
<li><a href="#iterations">Iterations</a></li>
${charts.map((c) => `<li><a href="#chart-${esc(c.id)}">${esc(c.title)}</a></li>`).join('\n')}
<li><a href="#settings">Settings</a></li>
</ul></nav>
<h2 id="summary">Summary</h2>
${headline(r)}
<h2 id="causes">Double-copies by cause</h2>
${causesTable(r)}
<h2 id="iterations">Iterations</h2>
<p class="sub">Times since migration start; an iteration opens with a dirty sync (the last one, stop-copy, is the downtime).</p>
${it.html}
${iterationsHref ? `<p class="data">Data: <a href="${esc(iterationsHref)}">${esc(iterationsHref)}</a></p>` : ''}
<h2 id="charts">Charts</h2>
${charts.map((c) => chartSection(c, csvHref(c.id))).join('\n')}
<h2 id="settings">Settings</h2>
<details><summary>Replay settings (${esc(Object.keys(settingsToJson(r.settings)).length)})</summary>
${settingsTable(r)}
</details>
${generatedBy ? `<p class="sub">Generated by <code>${esc(generatedBy)}</code></p>` : ''}`
  return page(`migtrace report: ${basename(trace)}`, body)
}

/** Before the replay: the HTML path must be a file name and the CSV folder a directory, both writable. */
export function checkReplayHtmlReportPaths(opts: Pick<HtmlReportOptions, 'out' | 'csvDir'>): void {
  checkOutputFile(opts.out, {what: 'the HTML report', field: '--out'})
  if (opts.csvDir !== undefined && resolve(opts.csvDir) === resolve(opts.out))
    throw new UserError('the CSV folder cannot be the HTML file', {file: opts.csvDir, field: '--csv-dir', expected: `a directory other than ${opts.out}`})
  checkOutputDir(opts.csvDir ?? defaultCsvDir(resolve(opts.out)), {what: "the report's CSV tables", field: opts.csvDir !== undefined ? '--csv-dir' : '--out'})
}

/** Render the charts, write their CSVs, then the HTML: all of them appear together, or none. */
export async function writeReplayHtmlReport(r: ReplayResult, opts: HtmlReportOptions): Promise<HtmlReportFiles> {
  checkReplayHtmlReportPaths(opts)
  const out = resolve(opts.out)
  const csvDir = resolve(opts.csvDir ?? defaultCsvDir(out))
  const htmlDir = dirname(out)
  const charts = await renderCharts(opts.charts ?? REPLAY_CHARTS, r)
  const files: HtmlReportFiles = {schema: HTML_REPORT_SCHEMA, html: out, csvDir, charts: [], tables: []}
  const hrefs = new Map<string, string>()
  const output = new AtomicOutput('the HTML report', '--out')
  try {
    for (const c of charts) {
      const csv = join(csvDir, `${c.id}.csv`)
      output.writeFile(csv, rowsToCsv(c.rows))
      hrefs.set(c.id, relativeHref(htmlDir, csv))
      files.charts.push({id: c.id, title: c.title, csv, rows: c.rows.length})
    }
    const it = iterationsTable(r)
    const itCsv = join(csvDir, 'iterations.csv')
    output.writeFile(itCsv, rowsToCsv(it.rows))
    files.tables.push({id: 'iterations', csv: itCsv, rows: it.rows.length})
    output.writeFile(out, replayHtml(r, opts.trace, charts, (id) => hrefs.get(id), relativeHref(htmlDir, itCsv), opts.generatedBy))
    output.commit()
  } finally {
    output.abort()
  }
  return files
}
