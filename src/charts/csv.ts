/** CSV of chart rows (RFC 4180 quoting; numbers as JavaScript prints them, exactly). */
import type {Cell, ChartRow} from './types.js'

function field(v: Cell | undefined): string {
  if (v === null || v === undefined) return ''
  const s = String(v)
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

/** Columns: the union of keys, in first-seen order. Ends with a newline. */
export function rowsToCsv(rows: readonly ChartRow[]): string {
  const cols: string[] = []
  const seen = new Set<string>()
  for (const r of rows) for (const k of Object.keys(r)) if (!seen.has(k)) (seen.add(k), cols.push(k))
  const lines = [cols.map((c) => field(c)).join(',')]
  for (const r of rows) lines.push(cols.map((c) => field(r[c])).join(','))
  return `${lines.join('\n')}\n`
}
