/**
 * Nelder-Mead simplex minimisation (Nelder & Mead 1965, with the usual coefficients: reflection 1,
 * expansion 2, contraction 1/2, shrink 1/2), deterministic: the same start gives the same path.
 * Small and derivative-free, for `migtrace calibrate`'s few log-parameters, whose objective (a
 * replay per run) is piecewise smooth: sync counts jump.
 */

export interface NelderMeadOptions {
  /** Initial simplex: x0 and x0 + step along each axis. */
  step: number
  maxEvals: number
  /** Stop when the simplex's values differ by less than this (absolute)... */
  fTol: number
  /** ...and its vertices by less than this along every axis. */
  xTol: number
}

export interface NelderMeadResult {
  x: number[]
  f: number
  evals: number
  converged: boolean
}

export async function nelderMead(f: (x: number[]) => Promise<number>, x0: readonly number[], opts: NelderMeadOptions): Promise<NelderMeadResult> {
  const n = x0.length
  let evals = 0
  const ev = async (x: number[]): Promise<number> => {
    evals++
    const v = await f(x)
    return Number.isFinite(v) ? v : Infinity
  }
  const simplex: {x: number[]; f: number}[] = []
  simplex.push({x: [...x0], f: await ev([...x0])})
  for (let i = 0; i < n; i++) {
    const x = [...x0]
    x[i]! += opts.step
    simplex.push({x, f: await ev(x)})
  }
  const combine = (a: number[], b: number[], t: number): number[] => a.map((v, i) => v + t * (b[i]! - v))
  let converged = false
  while (evals < opts.maxEvals) {
    // Stable order: ties keep their earlier place, so the path is deterministic.
    simplex.sort((a, b) => a.f - b.f)
    const best = simplex[0]!
    const worst = simplex[n]!
    const spreadF = worst.f - best.f
    const spreadX = Math.max(...simplex.slice(1).map((v) => Math.max(...v.x.map((c, i) => Math.abs(c - best.x[i]!)))))
    if (spreadF <= opts.fTol && spreadX <= opts.xTol) {
      converged = true
      break
    }
    const centroid = Array.from({length: n}, (_, i) => simplex.slice(0, n).reduce((s, v) => s + v.x[i]!, 0) / n)
    // Reflection: centroid + (centroid - worst).
    const xr = combine(centroid, worst.x, -1)
    const fr = await ev(xr)
    if (fr < best.f) {
      const xe = combine(centroid, worst.x, -2)
      const fe = await ev(xe)
      simplex[n] = fe < fr ? {x: xe, f: fe} : {x: xr, f: fr}
      continue
    }
    if (fr < simplex[n - 1]!.f) {
      simplex[n] = {x: xr, f: fr}
      continue
    }
    // Contraction, outside (toward the reflected point) or inside (toward the worst).
    const outside = fr < worst.f
    const xc = combine(centroid, outside ? xr : worst.x, 0.5)
    const fc = await ev(xc)
    if (fc < (outside ? fr : worst.f)) {
      simplex[n] = {x: xc, f: fc}
      continue
    }
    // Shrink toward the best vertex.
    for (let i = 1; i <= n; i++) {
      const x = combine(best.x, simplex[i]!.x, 0.5)
      simplex[i] = {x, f: await ev(x)}
    }
  }
  simplex.sort((a, b) => a.f - b.f)
  return {x: simplex[0]!.x, f: simplex[0]!.f, evals, converged}
}
