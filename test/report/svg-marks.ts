/**
 * Structure of vega's SVG output: each mark set is a `<g class="mark-<type> role-mark <name>">`
 * whose direct children are its items (a `<path>` per rect/symbol/line/area, a `<line>` per rule,
 * a `<text>` per text). Counting those children counts the drawn marks.
 */
export interface MarkGroup {
  type: string
  name: string
  items: number
}

const TAG = /<(\/?)([a-zA-Z][\w:-]*)([^>]*?)(\/?)>/g

export function markGroups(svg: string): MarkGroup[] {
  const out: MarkGroup[] = []
  const open = /<g class="mark-([a-z]+) role-mark ([^"]*)"[^>]*>/g
  let m: RegExpExecArray | null
  while ((m = open.exec(svg))) {
    let depth = 1
    let items = 0
    TAG.lastIndex = m.index + m[0].length
    let t: RegExpExecArray | null
    while (depth > 0 && (t = TAG.exec(svg))) {
      const [, closing, , , selfClosing] = t
      if (closing) depth--
      else {
        if (depth === 1) items++
        if (!selfClosing) depth++
      }
    }
    out.push({type: m[1]!, name: m[2]!.trim(), items})
  }
  return out
}

/** Items per mark type (summed over groups of that type). */
export function marksByType(svg: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const g of markGroups(svg)) out[g.type] = (out[g.type] ?? 0) + g.items
  return out
}

/** The chart sections of a report: id -> the section's HTML. */
export function chartSections(html: string): Map<string, string> {
  const out = new Map<string, string>()
  const re = /<section class="chart" id="chart-([^"]+)" data-chart="[^"]+">([\s\S]*?)<\/section>/g
  let m: RegExpExecArray | null
  while ((m = re.exec(html))) out.set(m[1]!, m[2]!)
  return out
}
