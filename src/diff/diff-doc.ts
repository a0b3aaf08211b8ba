/**
 * `migtrace diff a.json b.json`: two saved replay results (`replay --json`, `--format json`, or the
 * replay.json that `--out DIR --format json` writes) side by side, perf-diff style: the first is
 * the baseline, the second is shown with its value, delta, percentage and ratio against it. The
 * figures and their rounding are compare's (compare/metrics.ts), so diffing two saved replays says
 * what `migtrace compare` would say about the same two runs; the settings that differ come first.
 */
import {readFileSync} from 'node:fs'
import {z} from 'zod'
import {CAUSE_PREFIX, diff, METRICS, type Diff, type MetricUnit} from '../compare/metrics.js'
import {csvLines, mdTable, num, signed, textTable, type Table} from '../compare/table.js'
import {UserError, showValue} from '../util/errors.js'

export const DIFF_SCHEMA = 'migtrace.diff/1'
const REPLAY_SCHEMA = 'migtrace.replay/1'

/** The part of a replay JSON a diff reads; everything else in the file is ignored. */
const SavedReplay = z.looseObject({
  schema: z.literal(REPLAY_SCHEMA),
  trace: z.string(),
  driver: z.string(),
  verdict: z.string(),
  stopReason: z.string(),
  iterations: z.number(),
  dirtySyncCount: z.number(),
  totalTimeMs: z.number(),
  setupTimeMs: z.number(),
  downtimeMs: z.number(),
  downtime: z.looseObject({ramMs: z.number(), deviceStateMs: z.number(), vfioStateMs: z.number().optional()}),
  pagesSent: z.number(),
  bytesSent: z.number(),
  transferredBytes: z.number().optional(),
  ratioToRam: z.number(),
  firstPages: z.number(),
  redirtiedPages: z.number(),
  zeroPages: z.number(),
  redundantPages: z.number(),
  redundantBytes: z.number(),
  redundantByCause: z.record(z.string(), z.number()),
  lostWrites: z.number(),
  settings: z.record(z.string(), z.unknown()),
})
type SavedReplay = z.infer<typeof SavedReplay>

export interface DiffSide {
  file: string
  trace: string
  driver: string
  verdict: string
  stopReason: string
  metrics: Record<string, number>
}

export interface DiffDoc {
  schema: typeof DIFF_SCHEMA
  baseline: DiffSide
  other: DiffSide
  /** Settings whose values differ: key -> [baseline, other] (absent on one side: null). */
  settingsChanged: Record<string, [unknown, unknown]>
  metrics: {name: string; unit: string; better: string}[]
  /** metric -> delta / ratio / pct of `other` against `baseline`. */
  diff: Record<string, Diff>
}

/** Read and check one saved replay result; a mistake names the file and the field. */
export function readSavedReplay(file: string): SavedReplay {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    throw new UserError(err.code === 'ENOENT' ? 'no such file' : 'cannot read the replay result', {file, expected: `the JSON of migtrace replay --json (schema ${REPLAY_SCHEMA})`, found: err.code ?? err.message})
  }
  const parsed = SavedReplay.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const schema = (raw as {schema?: unknown} | null)?.schema
    if (issue.path[0] === 'schema')
      throw new UserError('not a saved replay result', {file, field: 'schema', expected: `${REPLAY_SCHEMA} (the output of migtrace replay --json)`, found: showValue(schema)})
    throw new UserError('not a saved replay result', {file, field: issue.path.join('.'), expected: `the output of migtrace replay --json (${issue.message})`})
  }
  return parsed.data
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000

/** The metrics of compare (compare/metrics.ts), read from a saved replay JSON. */
export function savedMetrics(j: SavedReplay): Record<string, number> {
  const m: Record<string, number> = {
    totalTimeMs: j.totalTimeMs,
    downtimeMs: j.downtimeMs,
    downtimeRamMs: j.downtime.ramMs,
    downtimeVfioStateMs: r3(j.downtime.vfioStateMs ?? 0),
    downtimeDeviceStateMs: j.downtime.deviceStateMs,
    setupTimeMs: j.setupTimeMs,
    iterations: j.iterations,
    dirtySyncCount: j.dirtySyncCount,
    pagesSent: j.pagesSent,
    bytesSent: j.bytesSent,
    // Results saved before transferredBytes existed carried RAM records only on the wire.
    transferredBytes: j.transferredBytes ?? j.bytesSent,
    ratioToRam: j.ratioToRam,
    firstPages: j.firstPages,
    redirtiedPages: j.redirtiedPages,
    redundantPages: j.redundantPages,
    redundantBytes: j.redundantBytes,
    redundant: j.pagesSent > 0 ? Math.round((j.redundantPages / j.pagesSent) * 1e6) / 1e6 : 0,
    zeroPages: j.zeroPages,
    lostWrites: j.lostWrites,
    converged: j.verdict === 'converged' ? 1 : 0,
  }
  for (const [cause, pages] of Object.entries(j.redundantByCause)) m[`${CAUSE_PREFIX}${cause}`] = pages
  return m
}

function side(file: string, j: SavedReplay): DiffSide {
  return {file, trace: j.trace, driver: j.driver, verdict: j.verdict, stopReason: j.stopReason, metrics: savedMetrics(j)}
}

function settingsChanged(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, [unknown, unknown]> {
  const out: Record<string, [unknown, unknown]> = {}
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const [x, y] = [a[k] ?? null, b[k] ?? null]
    if (JSON.stringify(x) !== JSON.stringify(y)) out[k] = [x, y]
  }
  return out
}

export function diffDoc(baselineFile: string, otherFile: string): DiffDoc {
  const a = readSavedReplay(baselineFile)
  const b = readSavedReplay(otherFile)
  const base = side(baselineFile, a)
  const other = side(otherFile, b)
  const names = new Set([...Object.keys(base.metrics), ...Object.keys(other.metrics)])
  const specs = [...METRICS.filter((m) => names.has(m.name))]
  for (const n of names) if (n.startsWith(CAUSE_PREFIX)) specs.push({name: n, unit: 'pages', better: 'lower', doc: ''})
  return {
    schema: DIFF_SCHEMA,
    baseline: base,
    other,
    settingsChanged: settingsChanged(a.settings, b.settings),
    metrics: specs.map((m) => ({name: m.name, unit: m.unit, better: m.better})),
    diff: Object.fromEntries(specs.map((m) => [m.name, diff(other.metrics[m.name] ?? 0, base.metrics[m.name] ?? 0, m.unit)])),
  }
}

const digits = (unit: string): number => (unit === 'ratio' ? 6 : 3)
const ratioText = (d: Diff): string => (d.ratio === null ? 'n/a' : `${d.ratio.toFixed(4)}x`)
const pctText = (d: Diff): string => (d.pct === null ? 'n/a' : `${d.pct > 0 ? '+' : ''}${d.pct.toFixed(2)}%`)
const show = (v: unknown): string => (v === null ? '(unset)' : typeof v === 'string' ? v : JSON.stringify(v))

/** Whether a change is for the better, the worse, or neither (perf diff's +/- marks). */
function mark(d: Diff, better: string): string {
  if (d.delta === 0) return ''
  return (d.delta < 0) === (better === 'lower') ? 'better' : 'worse'
}

function metricsTable(doc: DiffDoc): Table {
  const rows: string[][] = [['verdict', doc.baseline.verdict, doc.other.verdict, doc.other.verdict === doc.baseline.verdict ? '' : 'changed', '', '', '']]
  for (const m of doc.metrics) {
    const [a, b] = [doc.baseline.metrics[m.name] ?? 0, doc.other.metrics[m.name] ?? 0]
    // per-cause rows that are 0 on both sides say nothing (they stay in the JSON and CSV)
    if (m.name.startsWith(CAUSE_PREFIX) && a === 0 && b === 0) continue
    const d = doc.diff[m.name]!
    rows.push([m.name, num(a, digits(m.unit)), num(b, digits(m.unit)), signed(d.delta, digits(m.unit)), pctText(d), ratioText(d), mark(d, m.better)])
  }
  return {headers: ['metric', 'baseline', 'other', 'Δ', 'Δ%', 'ratio', ''], rows, right: [false, true, true, true, true, true, false]}
}

function settingsTable(doc: DiffDoc): Table | undefined {
  const e = Object.entries(doc.settingsChanged)
  if (e.length === 0) return undefined
  return {headers: ['setting', 'baseline', 'other'], rows: e.map(([k, [a, b]]) => [k, show(a), show(b)])}
}

function sources(doc: DiffDoc): string[][] {
  return [
    ['baseline', doc.baseline.file, doc.baseline.trace, doc.baseline.driver],
    ['other', doc.other.file, doc.other.trace, doc.other.driver],
  ]
}

export function diffText(doc: DiffDoc): string {
  const out = [`migtrace diff ${doc.baseline.file} ${doc.other.file}`, '', textTable({headers: ['', 'file', 'trace', 'driver'], rows: sources(doc)})]
  const st = settingsTable(doc)
  out.push('', st ? textTable(st) : 'settings: the same')
  out.push('', textTable(metricsTable(doc)))
  return `${out.join('\n')}\n`
}

export function diffMarkdown(doc: DiffDoc): string {
  const out = [`## migtrace diff: \`${doc.baseline.file}\` -> \`${doc.other.file}\``, '', mdTable({headers: ['', 'file', 'trace', 'driver'], rows: sources(doc)})]
  const st = settingsTable(doc)
  out.push('', st ? mdTable(st) : 'settings: the same')
  out.push('', mdTable(metricsTable(doc)))
  return `${out.join('\n')}\n`
}

/** One line per metric: name, unit, baseline, other, delta, ratio, pct. */
export function diffCsv(doc: DiffDoc): string {
  const rows: (string | number | null)[][] = [['verdict', '', doc.baseline.verdict, doc.other.verdict, null, null, null]]
  for (const m of doc.metrics) {
    const d = doc.diff[m.name]!
    rows.push([m.name, m.unit as MetricUnit, doc.baseline.metrics[m.name] ?? 0, doc.other.metrics[m.name] ?? 0, d.delta, d.ratio, d.pct])
  }
  return csvLines(['metric', 'unit', 'baseline', 'other', 'delta', 'ratio', 'pct'], rows)
}
