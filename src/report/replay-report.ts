/**
 * Replay reports: text (headline + per-iteration table), JSON (schema migtrace.replay/1), CSV files
 * per table, Markdown. Every figure comes from analysis/replay-tables (itself from the ledger).
 */
import type {AtomicOutput} from '../io/atomic-output.js'
import {join} from 'node:path'
import {causeColumns, iterationColumns, replayHeadline, replayTables, sendCountColumns} from '../analysis/replay-tables.js'
import {modeJson, modeMarkdownRows, modeTextLines} from './postcopy-report.js'
import {streamJson, streamTextLines} from './stream-report.js'
import {settingsToJson} from '../replay/config.js'
import type {ReplayResult} from '../replay/result.js'
import {formatBytes, formatDurationNs} from '../util/units.js'
import {deviceCsvTables, deviceJson, deviceSectionsMarkdown, deviceSectionsText} from './vfio-virtio-mem.js'

export const REPLAY_SCHEMA = 'migtrace.replay/1'

export interface ReportContext {
  /** The trace as the user named it. */
  trace: string
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000
const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const msText = (ms: number): string => formatDurationNs(ms * 1e6)

/** The JSON document (stable key order; times in ms rounded to the microsecond). */
export function replayJson(r: ReplayResult, ctx: ReportContext): Record<string, unknown> {
  const h = replayHeadline(r)
  const cols = iterationColumns(r)
  const perIteration = r.rows.map((_, i) => Object.fromEntries(Object.entries(cols).map(([k, v]) => [k, v[i]])))
  const kvm = r.components.kvm ?? {}
  return {
    schema: REPLAY_SCHEMA,
    trace: ctx.trace,
    driver: r.driver,
    stopPolicy: h.stopPolicy,
    verdict: r.verdict,
    stopReason: r.stopReason,
    iterations: r.iterations,
    dirtySyncCount: r.dirtySyncCount,
    totalTimeMs: h.totalTimeMs,
    setupTimeMs: h.setupTimeMs,
    downtimeMs: h.downtimeMs,
    downtime: {
      ramMs: h.downtimeRamMs,
      deviceStateMs: h.downtimeDeviceStateMs,
      ramPages: r.downtime.ramPages,
      ramBytes: r.downtime.ramBytes,
      deviceStateBytes: r.downtime.deviceStateBytes,
      vfioStateMs: r3(r.downtime.vfioStateMs ?? 0),
      vfioStateBytes: r.downtime.vfioStateBytes ?? 0,
      limitMs: h.downtimeLimitMs,
    },
    pagesSent: h.pagesSent,
    bytesSent: h.bytesSent,
    transferredBytes: r.transferredBytes,
    ratioToRam: h.ratioToRam,
    firstPages: h.firstPages,
    redirtiedPages: h.redirtiedPages,
    zeroPages: h.zeroPages,
    redundantPages: h.redundantPages,
    redundantBytes: h.redundantBytes,
    redundantByCause: r.totals.redundantByCause,
    lostWrites: r.lostWrites,
    guest: {bytes: r.guest.bytes, pages: r.guest.pages, pageSize: r.guest.pageSize},
    traceEndedFirst: r.traceEndedFirst,
    traceEndMs: r3((r.traceEndNs - r.startNs) / 1e6),
    migrationStartMs: r3(r.startNs / 1e6),
    stall: r.stall ?? null,
    sendHistogram: r.sendHistogram,
    kvm,
    lazyClears: r.lazyClears,
    events: r.events,
    settings: settingsToJson(r.settings),
    notes: r.notes,
    ...deviceJson(r),
    ...modeJson(r),
    ...streamJson(r),
    perIteration,
  }
}

function pad(s: string, w: number, right: boolean): string {
  return right ? s.padStart(w) : s.padEnd(w)
}

/** A plain aligned text table (numbers right-aligned). */
export function textTable(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? int(c) : c)))
  const right = headers.map((_, j) => rows.every((r) => typeof r[j] === 'number'))
  const widths = headers.map((h, j) => Math.max(h.length, ...cells.map((r) => r[j]!.length)))
  const line = (r: string[]): string => r.map((c, j) => pad(c, widths[j]!, right[j]!)).join('  ').trimEnd()
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}

/** What shaped the run: the driver and the switches that apply to it. */
function runShape(r: ReplayResult, stopPolicy: string): string {
  // A background snapshot has no dirty logging and no stop policy (bg_migration_thread).
  if (r.snapshot) return `background snapshot, transport ${r.settings.transport}`
  return `driver ${r.driver}, stop-policy ${stopPolicy}, dirty-log ${r.settings['dirty-log']}, clear-policy ${r.settings['clear-policy']}`
}

/** The downtime and its parts, as they apply to the run's mode. */
function downtimeText(r: ReplayResult, h: ReturnType<typeof replayHeadline>): string {
  if (r.snapshot)
    return `${msText(h.downtimeMs)}: the VM stops while RAM is write-protected (ram_write_tracking_start) and the device state is saved into a buffer; it is appended to the snapshot at the end`
  if (r.postcopy)
    return `${msText(h.downtimeMs)} = discard bitmap ${msText(h.downtimeRamMs)} (${formatBytes(r.downtime.ramBytes)})${r.components.vfio ? ` + VFIO device state ${msText(r.downtime.vfioStateMs ?? 0)}` : ''} + device state ${msText(h.downtimeDeviceStateMs)}, the postcopy package; limit ${msText(h.downtimeLimitMs)}`
  return `${msText(h.downtimeMs)} = RAM ${msText(h.downtimeRamMs)} (${int(r.downtime.ramPages)} pages)${r.components.vfio ? ` + VFIO device state ${msText(r.downtime.vfioStateMs ?? 0)} (${formatBytes(r.downtime.vfioStateBytes ?? 0)})` : ''} + device state ${msText(h.downtimeDeviceStateMs)}; limit ${msText(h.downtimeLimitMs)}`
}

/** query-migrate's `transferred`: everything on the wire, RAM page records and the rest. */
function transferredText(r: ReplayResult): string {
  const other = r.transferredBytes - r.totals.bytesSent
  return `${formatBytes(r.transferredBytes)} on the wire${other > 0 ? ` (RAM pages ${formatBytes(r.totals.bytesSent)} + device data ${formatBytes(other)})` : ' (RAM pages only)'}`
}

function verdictLine(r: ReplayResult): string {
  const why: Record<string, string> = {
    converged: 'the dirty set fell under the switchover threshold',
    'max-iterations': 'forced after the maximum number of iterations',
    'data-cap': 'forced after sending more than the data cap',
    'time-cap': 'forced at the time cap',
    'trace-end': 'the trace ended first',
    cancelled: 'migrate_cancel',
    postcopy: 'switched to postcopy, which always completes',
  }
  if (r.snapshot) return 'snapshot complete (background-snapshot: every page saved once)'
  if (r.traceEndedFirst && r.stopReason === 'converged') {
    // The switchover came after the trace, with the guest assumed idle: not a convergence.
    if (r.verdict === 'not-converged') return 'not-converged (while the trace ran; the switchover after it assumes an idle guest)'
    return 'inconclusive (the trace ended before the migration; it switched over only with the guest assumed idle afterwards)'
  }
  if (r.traceEndedFirst && r.stopReason === 'trace-end' && r.settings['trace-end'] !== 'switchover')
    return 'not-converged (even with the guest idle after the trace, VFIO device data kept it from converging: forced)'
  return `${r.verdict} (${r.stopReason}: ${why[r.stopReason] ?? r.stopReason})`
}

export function replayText(r: ReplayResult, ctx: ReportContext): string {
  const h = replayHeadline(r)
  const out: string[] = []
  out.push(`migtrace replay ${ctx.trace}  [${runShape(r, h.stopPolicy)}]`)
  out.push('')
  const kv: [string, string][] = [
    ['verdict', verdictLine(r)],
    ['total time', `${msText(h.totalTimeMs)} (setup ${msText(h.setupTimeMs)})`],
    ['downtime', downtimeText(r, h)],
    ['iterations', `${h.iterations} live, ${h.dirtySyncCount} dirty syncs`],
    ['sent', `${int(h.pagesSent)} pages, ${formatBytes(h.bytesSent)} = ${h.ratioToRam.toFixed(3)}x guest RAM (${formatBytes(h.guestBytes)})`],
    ['transferred', transferredText(r)],
    ['  by class', `first ${int(h.firstPages)}, re-dirtied ${int(h.redirtiedPages)}, double-copies ${int(h.redundantPages)}, zero ${int(h.zeroPages)}`],
    ['double-copies', `${int(h.redundantPages)} pages (${formatBytes(h.redundantBytes)})`],
  ]
  for (const c of r.causes) {
    const n = r.totals.redundantByCause[c.id] ?? 0
    if (n > 0) kv.push([`  ${c.id}`, `${int(n)} pages`])
  }
  kv.push(['lost writes', r.verdict === 'cancelled' ? 'n/a (cancelled)' : `${int(h.lostWrites)} pages${h.lostWrites > 0 ? ' (the destination runs with stale pages!)' : ''}`])
  if (r.stall) {
    kv.push([
      'to converge',
      `${r.stall.stalled ? 'stalled' : 'still'} at ${formatBytes(r.stall.dirtyBytes)} dirty: needs a downtime of ${msText(r.stall.needsDowntimeMs)} or ${formatBytes(r.stall.needsBandwidthBps)}/s`,
    ])
  }
  kv.push(...modeTextLines(r))
  kv.push(...streamTextLines(r))
  const w = Math.max(...kv.map(([k]) => k.length))
  for (const [k, v] of kv) out.push(`${k.padEnd(w)}  ${v}`)
  for (const n of r.notes) out.push(`note: ${n}`)
  out.push(...deviceSectionsText(r))
  out.push('')
  const cols = iterationColumns(r)
  const rows = r.rows.map((_, i) => [
    cols.iteration![i] as number,
    cols.phase![i] as string,
    (cols.start_ms![i] as number).toFixed(1),
    (cols.end_ms![i] as number).toFixed(1),
    cols.dirty_pages_at_sync![i] as number,
    cols.pages_sent![i] as number,
    formatBytes(cols.bytes_sent![i] as number),
    cols.redundant![i] as number,
    cols.dirty_rate_pps![i] as number,
    (cols.expected_downtime_ms![i] as number).toFixed(1),
    formatBytes(cols.threshold_bytes![i] as number),
  ])
  out.push(textTable(['iter', 'phase', 'start ms', 'end ms', 'dirty@sync', 'pages sent', 'bytes', 'redundant', 'dirty pages/s', 'exp. downtime ms', 'threshold'], rows))
  return `${out.join('\n')}\n`
}

export async function replayMarkdown(r: ReplayResult, ctx: ReportContext): Promise<string> {
  const h = replayHeadline(r)
  const t = await replayTables(r)
  const out: string[] = []
  out.push(`## migtrace replay: \`${ctx.trace}\``)
  out.push('')
  out.push(`driver \`${r.driver}\`, stop-policy \`${h.stopPolicy}\`, dirty-log \`${r.settings['dirty-log']}\`, clear-policy \`${r.settings['clear-policy']}\``)
  out.push('')
  out.push('| | |')
  out.push('|:-|:-|')
  out.push(`| verdict | **${verdictLine(r)}** |`)
  out.push(`| total time | ${msText(h.totalTimeMs)} |`)
  out.push(`| downtime | ${downtimeText(r, h)} |`)
  out.push(`| iterations | ${h.iterations} live, ${h.dirtySyncCount} dirty syncs |`)
  out.push(`| sent | ${int(h.pagesSent)} pages, ${formatBytes(h.bytesSent)} (${h.ratioToRam.toFixed(3)}x guest RAM) |`)
  out.push(`| transferred | ${transferredText(r)} |`)
  out.push(`| double-copies | ${int(h.redundantPages)} pages (${formatBytes(h.redundantBytes)}) |`)
  out.push(`| zero pages | ${int(h.zeroPages)} |`)
  out.push(`| lost writes | ${int(h.lostWrites)} |`)
  out.push(...modeMarkdownRows(r))
  out.push(...streamTextLines(r).map(([k, v]) => `| ${k.trim()} | ${v} |`))
  for (const n of r.notes) out.push(`| note | ${n} |`)
  out.push('')
  out.push('### Iterations')
  out.push('')
  out.push(t.iterations.select('iteration', 'phase', 'start_ms', 'end_ms', 'dirty_pages_at_sync', 'pages_sent', 'bytes_sent', 'redundant', 'dirty_rate_pps', 'expected_downtime_ms', 'threshold_bytes').toMarkdown().trimEnd())
  out.push('')
  out.push('### Double-copies by cause')
  out.push('')
  out.push(t.causes.select('cause', 'pages', 'bytes').toMarkdown().trimEnd())
  out.push('')
  const devices = deviceSectionsMarkdown(r)
  if (devices.length > 0) out.push(...devices)
  return `${out.join('\n')}\n`
}

type Columns = Record<string, (number | string | boolean | null)[]>

/**
 * Every table of a replay by name (headline, iterations, causes, send-counts, then the device
 * tables present in this result), as columns: the CSV files, the Arrow files and `--table`.
 */
export function replayTableColumns(r: ReplayResult): [string, Columns][] {
  const headline = replayHeadline(r) as unknown as Record<string, number | string>
  const headlineCols: Columns = Object.fromEntries(Object.entries(headline).map(([k, v]) => [k, [v]]))
  return [
    ['headline', headlineCols],
    ['iterations', iterationColumns(r)],
    ['causes', causeColumns(r)],
    ['send-counts', sendCountColumns(r)],
    ...deviceCsvTables(r).map(([name, cols]): [string, Columns] => [name.replace(/\.csv$/, ''), cols]),
  ]
}

/** One table as CSV text (ends with a newline). */
export async function replayTableCsv(cols: Columns): Promise<string> {
  const aq = await import('arquero')
  const text = aq.table(cols).toCSV()
  return text.endsWith('\n') ? text : `${text}\n`
}

/** CSV files per table into dir, as part of `output` (they appear when it is committed); returns their paths. */
export async function writeReplayCsv(r: ReplayResult, dir: string, output: AtomicOutput): Promise<string[]> {
  const written: string[] = []
  for (const [name, cols] of replayTableColumns(r)) {
    const p = join(dir, `${name}.csv`)
    output.writeFile(p, await replayTableCsv(cols))
    written.push(p)
  }
  return written
}
