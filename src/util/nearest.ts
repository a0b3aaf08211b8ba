/**
 * "Did you mean ...?": the candidate nearest to a mistyped word, by edit distance (Levenshtein,
 * with a swap of two neighbours counted as one edit, so `repaly` is one edit from `replay`).
 * A suggestion is offered only when it is close enough to be a typo, not just the least far word.
 */

/** Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const n = a.length
  const m = b.length
  if (n === 0) return m
  if (m === 0) return n
  let prev2 = new Array<number>(m + 1).fill(0)
  let prev = Array.from({length: m + 1}, (_, j) => j)
  let cur = new Array<number>(m + 1).fill(0)
  for (let i = 1; i <= n; i++) {
    cur[0] = i
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1)
      cur[j] = d
    }
    ;[prev2, prev, cur] = [prev, cur, prev2]
  }
  return prev[m]!
}

/**
 * The candidate nearest to `word`, or undefined when none is within a typo's reach: at most a third
 * of the word's length in edits (at least 1, at most 3), or `word` is a prefix of exactly one candidate.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase()
  let best: string | undefined
  let bestD = Infinity
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase())
    if (d < bestD) {
      bestD = d
      best = c
    }
  }
  const reach = Math.min(3, Math.max(1, Math.floor(w.length / 3)))
  if (best !== undefined && bestD <= reach) return best
  const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(w))
  return w.length >= 2 && prefixed.length === 1 ? prefixed[0] : undefined
}
