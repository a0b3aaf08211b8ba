/** Plain text, Markdown and CSV tables of strings (the caller formats numbers). */
export interface Table {
  headers: string[]
  rows: string[][]
  /** Columns aligned right (numbers). */
  right?: boolean[]
}

export function textTable(t: Table): string {
  const widths = t.headers.map((h, j) => Math.max(h.length, ...t.rows.map((r) => (r[j] ?? '').length)))
  const line = (r: string[]): string =>
    r
      .map((c, j) => (t.right?.[j] ? c.padStart(widths[j]!) : c.padEnd(widths[j]!)))
      .join('  ')
      .trimEnd()
  return [line(t.headers), line(widths.map((w) => '-'.repeat(w))), ...t.rows.map(line)].join('\n')
}

const mdCell = (s: string): string => s.replace(/\|/g, '\\|')

export function mdTable(t: Table): string {
  const head = `| ${t.headers.map(mdCell).join(' | ')} |`
  const sep = `|${t.headers.map((_, j) => (t.right?.[j] ? '---:' : ':---')).join('|')}|`
  return [head, sep, ...t.rows.map((r) => `| ${r.map(mdCell).join(' | ')} |`)].join('\n')
}

export function csvField(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return ''
  const s = String(v)
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

export function csvLines(headers: string[], rows: (string | number | boolean | null)[][]): string {
  return `${[headers, ...rows].map((r) => r.map(csvField).join(',')).join('\n')}\n`
}

/** A number as shown in tables: thousands separators, at most `digits` decimals. */
export function num(v: number, digits = 3): string {
  return v.toLocaleString('en-US', {maximumFractionDigits: digits})
}

export function signed(v: number, digits = 3): string {
  const s = num(Math.abs(v), digits)
  return v > 0 ? `+${s}` : v < 0 ? `-${s}` : '0'
}
