/**
 * The HTML page shell shared by the report and grid pages: one self-contained file (inline CSS,
 * inline SVG, system fonts, no scripts, nothing fetched from the network).
 */
export function esc(s: string | number | boolean | null | undefined): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'})[c]!)
}

const CSS = `
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 24px auto; max-width: 1100px; padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.kv th { width: 14em; }
th.part { padding-left: 1.8em; font-weight: normal; }
.verdict-converged { color: #1a7f37; font-weight: bold; }
.verdict-not-converged, .verdict-cancelled { color: #cf222e; font-weight: bold; }
.verdict-inconclusive { color: #9a6700; font-weight: bold; }
.verdict-postcopy { color: #0550ae; font-weight: bold; }
.bad { color: #cf222e; font-weight: bold; }
.chart { margin: 16px 0 28px; }
.chart .caption, .chart .data { color: #555; font-size: 13px; margin: 4px 0; }
.chart svg { max-width: 100%; height: auto; }
nav ul { columns: 2; font-size: 13px; }
details { margin: 8px 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table.iterations { white-space: nowrap; font-size: 12px; }
table.iterations th { white-space: normal; vertical-align: bottom; min-width: 4em; }
code { font-size: 12px; }
`

export function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="migtrace">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
${body}
</body>
</html>
`
}

export type HtmlCell = string | number | {html: string} | {text: string | number; className?: string}

function cell(c: HtmlCell, tag: 'td' | 'th'): string {
  if (typeof c === 'number') return `<${tag} class="num">${esc(c.toLocaleString('en-US', {maximumFractionDigits: 3}))}</${tag}>`
  if (typeof c === 'string') return `<${tag}>${esc(c)}</${tag}>`
  if ('html' in c) return `<${tag}>${c.html}</${tag}>`
  const cls = [typeof c.text === 'number' ? 'num' : '', c.className ?? ''].filter(Boolean).join(' ')
  const text = typeof c.text === 'number' ? c.text.toLocaleString('en-US', {maximumFractionDigits: 3}) : c.text
  return `<${tag}${cls ? ` class="${cls}"` : ''}>${esc(text)}</${tag}>`
}

/** A table with a header row; numbers right-aligned. */
export function table(headers: string[], rows: HtmlCell[][], className = ''): string {
  const head = `<tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`
  const body = rows.map((r) => `<tr>${r.map((c) => cell(c, 'td')).join('')}</tr>`).join('\n')
  return `<table${className ? ` class="${className}"` : ''}>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`
}

/** A two-column key/value table. */
export function kvTable(rows: [string, HtmlCell][], id?: string): string {
  // a key written with leading spaces is a part of the row above it
  const key = (k: string): string => (k.startsWith(' ') ? `<th class="part">${esc(k.trim())}</th>` : `<th>${esc(k)}</th>`)
  const body = rows.map(([k, v]) => `<tr>${key(k)}${cell(v, 'td')}</tr>`).join('\n')
  return `<table class="kv"${id ? ` id="${id}"` : ''}>\n<tbody>\n${body}\n</tbody>\n</table>`
}
