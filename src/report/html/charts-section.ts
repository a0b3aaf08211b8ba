/** Rendered charts as HTML sections: title, caption, the inline SVG, and a link to the CSV behind it. */
import {relative, sep} from 'node:path'
import type {RenderedChart} from '../../charts/types.js'
import {esc} from './page.js'

/** `href` from the HTML file's folder to a CSV (relative, URL-safe). */
export function relativeHref(fromDir: string, file: string): string {
  return relative(fromDir, file).split(sep).map(encodeURIComponent).join('/')
}

export function chartSection(c: RenderedChart, csvHref: string | undefined): string {
  const data = csvHref ? `<p class="data">Data: <a href="${esc(csvHref)}">${esc(csvHref)}</a> (${c.rows.length} rows)</p>` : ''
  return `<section class="chart" id="chart-${esc(c.id)}" data-chart="${esc(c.id)}">
<h3>${esc(c.title)}</h3>
<p class="caption">${esc(c.caption)}</p>
<div class="svg">${c.svg.replace(/^<\?xml[^>]*>\s*/, '')}</div>
${data}
</section>`
}
