/**
 * A chart of a report: the table behind it (written as CSV next to the HTML, so every plotted number
 * can be checked), a vega-lite spec built from that table, and whether it applies to a given input
 * (a chart about VFIO pins has nothing to say about a trace without VFIO).
 * `I` is what the chart is drawn from: a ReplayResult for the replay report, a grid document for the
 * grid heat maps.
 */
import type {TopLevelSpec} from 'vega-lite'

export type Cell = number | string | boolean | null
export type ChartRow = Record<string, Cell>

export interface ChartDef<I> {
  /** File-safe id: the CSV name (`<id>.csv`) and the HTML anchor (`#chart-<id>`). */
  id: string
  title: string
  /** One or two sentences under the chart: what it shows and how to read it. */
  caption: string
  appliesTo(input: I): boolean
  /** The table behind the chart, complete (the CSV); column order is the first row's key order. */
  rows(input: I): ChartRow[]
  /** The vega-lite spec for these rows (already downsampled by the chart when it has to be). */
  spec(rows: ChartRow[], input: I): TopLevelSpec
}

export interface RenderedChart {
  id: string
  title: string
  caption: string
  rows: ChartRow[]
  svg: string
}

export type {TopLevelSpec}
