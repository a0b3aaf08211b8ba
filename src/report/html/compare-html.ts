/** `compare --html`: the comparison table and the variants' charts overlaid, one self-contained page. */
import {resolve} from 'node:path'
import {compareTable, type CompareDoc} from '../../compare/compare-doc.js'
import type {IterationSeries} from '../../compare/sweep.js'
import {COMPARE_CHARTS} from '../../charts/compare/overlay.js'
import {renderCharts} from '../../charts/render.js'
import {writeFileAtomic} from '../../io/atomic-output.js'
import {chartSection} from './charts-section.js'
import {esc, page, table} from './page.js'

export async function compareHtml(doc: CompareDoc, series: {variant: string; rows: IterationSeries[]}[]): Promise<string> {
  const charts = await renderCharts(COMPARE_CHARTS, {doc, series})
  const t = compareTable(doc)
  const body = `<h1>migtrace compare: ${esc(doc.trace)}</h1>
<p class="sub">driver ${esc(doc.driver)}; ${doc.variants.length} variants; baseline ${esc(doc.baseline)}</p>
<h2 id="variants">Variants</h2>
${table(
  ['variant', 'settings'],
  doc.variants.map((v) => [v.name, Object.entries(v.settings).map(([k, x]) => `${k}=${x}`).join(', ') || '(base settings)']),
)}
<h2 id="charts">Charts</h2>
${charts.map((c) => chartSection(c, undefined)).join('\n')}
<h2 id="figures">Figures</h2>
<div class="scroll">${table(t.headers, t.rows.map((r) => r.map((c, j) => (t.right?.[j] ? {text: c, className: 'num'} : c))))}</div>`
  return page(`migtrace compare: ${doc.trace}`, body)
}

export async function writeCompareHtml(doc: CompareDoc, series: {variant: string; rows: IterationSeries[]}[], out: string): Promise<string> {
  const path = resolve(out)
  writeFileAtomic(path, await compareHtml(doc, series), 'the HTML page', '--html')
  return path
}
