/**
 * Keep charts small: vega renders ~10 k marks in ~100 ms and 100 k in ~1 s (1.5 MB of SVG), so a
 * chart plots at most MAX_POINTS points. The CSV keeps every row; only the picture is thinned.
 */
export const MAX_POINTS = 10_000

/** At most `max` items, evenly spaced, always keeping the first and the last. */
export function evenly<T>(items: readonly T[], max = MAX_POINTS): T[] {
  if (items.length <= max) return items.slice()
  const out: T[] = []
  const step = (items.length - 1) / (max - 1)
  for (let i = 0; i < max; i++) out.push(items[Math.round(i * step)]!)
  return out
}

/**
 * Group consecutive integer keys into at most `maxGroups` bins of equal width: returns the bin
 * width (1 when no binning is needed). Bars of binned iterations are summed per bin.
 */
export function binWidth(distinctKeys: number, maxGroups: number): number {
  return distinctKeys <= maxGroups ? 1 : Math.ceil(distinctKeys / maxGroups)
}
