/** The grid as an HTML page: the heat maps (inline SVG) and the cell table, written atomically. */
import {resolve} from 'node:path'
import {GRID_CHARTS} from '../../charts/grid/heatmap.js'
import {renderCharts} from '../../charts/render.js'
import type {GridDoc} from '../../compare/grid-doc.js'
import {formatBytes, formatDurationNs} from '../../util/units.js'
import {writeFileAtomic} from '../../io/atomic-output.js'
import {chartSection} from './charts-section.js'
import {esc, page, table} from './page.js'

const ms = (v: number): string => formatDurationNs(v * 1e6)

export async function gridHtml(doc: GridDoc): Promise<string> {
  const charts = await renderCharts(GRID_CHARTS, doc)
  const cells = table(
    ['bandwidth', 'bytes/s', 'downtime-limit', 'verdict', 'stop reason', 'total time', 'downtime', 'iterations', 'bytes sent', 'double-copy ratio', 'lost writes'],
    doc.cells.map((c) => [
      c.bandwidth,
      `${formatBytes(c.bandwidthBytesPerSec)}/s`,
      c.downtimeLimit,
      {html: `<span class="verdict-${esc(c.verdict)}">${esc(c.verdict)}</span>`},
      c.stopReason,
      ms(c.totalTimeMs),
      ms(c.downtimeMs),
      c.metrics.iterations ?? 0,
      formatBytes(c.metrics.bytesSent ?? 0),
      c.metrics.redundant ?? 0,
      c.metrics.lostWrites ?? 0,
    ]),
  )
  const body = `<h1>migtrace grid: ${esc(doc.trace)}</h1>
<p class="sub">driver ${esc(doc.driver)}; ${doc.bandwidths.length} bandwidths x ${doc.downtimes.length} downtime limits; the bandwidth sets ${esc(doc.bandwidthSetting === 'both' ? 'max-bandwidth and link-bandwidth' : doc.bandwidthSetting)}</p>
<h2 id="charts">Heat maps</h2>
${charts.map((c) => chartSection(c, undefined)).join('\n')}
<h2 id="cells">Cells</h2>
<div class="scroll">${cells}</div>`
  return page(`migtrace grid: ${doc.trace}`, body)
}

export async function writeGridHtml(doc: GridDoc, out: string): Promise<string> {
  const path = resolve(out)
  writeFileAtomic(path, await gridHtml(doc), 'the HTML page', '--html')
  return path
}
