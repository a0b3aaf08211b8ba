/**
 * The prediction-vs-observation table (rows of compareWithObserved) as text and as JSON.
 * Text: one line per metric, numbers grouped by thousands, relative error in %, the target and
 * PASS / MISS (blank when the metric has no target, `n/a` when a side is missing).
 */
import type {ExpectRow} from './expect.js'

const group = (n: number): string => {
  const s = Math.abs(n) >= 1000 || Number.isInteger(n) ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)
  return s
}

function fmtValue(v: number | null, unit: ExpectRow['unit']): string {
  if (v === null) return '-'
  if (unit === 'ms') return Number.isInteger(v) ? `${group(v)}` : v.toFixed(1)
  return group(v)
}

function fmtError(r: ExpectRow): string {
  if (r.error === null) return '-'
  const sign = r.error > 0 ? '+' : r.error < 0 ? '-' : ''
  return sign + fmtValue(Math.abs(r.error), r.unit)
}

function fmtRel(r: ExpectRow): string {
  if (r.relError === null) return '-'
  const pct = r.relError * 100
  return `${pct > 0 ? '+' : ''}${pct.toFixed(1)} %`
}

const verdict = (r: ExpectRow): string => (r.target === null ? '' : r.pass === null ? 'n/a' : r.pass ? 'PASS' : 'MISS')

/** Fixed-width table; a title line first when given, then the notes of rows that have one. */
export function renderExpectText(rows: readonly ExpectRow[], title = 'prediction vs QEMU (query-migrate)'): string {
  const head = ['metric', 'unit', 'observed', 'predicted', 'error', 'rel. error', 'target', 'check']
  const body = rows.map((r) => [r.metric, r.unit, fmtValue(r.observed, r.unit), fmtValue(r.predicted, r.unit), fmtError(r), fmtRel(r), r.target ?? '', verdict(r)])
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const right = new Set([2, 3, 4, 5])
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(w[i]!) : c.padEnd(w[i]!)))
      .join('  ')
      .trimEnd()
  const out = [title, '', line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)]
  const checked = rows.filter((r) => r.pass !== null)
  if (checked.length > 0) out.push('', `targets met: ${checked.filter((r) => r.pass).length} of ${checked.length}`)
  for (const r of rows) if (r.note) out.push(`${r.metric}: ${r.note}`)
  return out.join('\n') + '\n'
}

/** JSON rows (the same objects, with relError also in percent for readers). */
export function expectRowsJson(rows: readonly ExpectRow[]): Record<string, unknown>[] {
  return rows.map((r) => ({...r, relErrorPct: r.relError === null ? null : r.relError * 100}))
}
