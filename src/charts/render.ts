/**
 * vega-lite -> vega -> SVG in Node, with no canvas package (text widths are estimated). vega and
 * vega-lite cost ~200 ms each to import, so they are loaded on first use only.
 */
import type {ChartDef, RenderedChart, TopLevelSpec} from './types.js'

type VegaModules = {vega: typeof import('vega'); vl: typeof import('vega-lite')}
let modules: Promise<VegaModules> | undefined

function loadVega(): Promise<VegaModules> {
  modules ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vl]) => ({vega, vl}))
  return modules
}

/** Render one vega-lite spec to an SVG document string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const {vega, vl} = await loadVega()
  const compiled = vl.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), {renderer: 'none', logLevel: vega.Warn})
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/** The charts of `defs` that apply to `input`, rendered in registry order. */
export async function renderCharts<I>(defs: readonly ChartDef<I>[], input: I): Promise<RenderedChart[]> {
  const out: RenderedChart[] = []
  for (const def of defs) {
    if (!def.appliesTo(input)) continue
    const rows = def.rows(input)
    const svg = await renderSvg(def.spec(rows, input))
    out.push({id: def.id, title: def.title, caption: def.caption, rows, svg})
  }
  return out
}
