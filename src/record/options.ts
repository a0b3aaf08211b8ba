/**
 * Option values of `migtrace record`. --ips is a count per second, so its suffixes are decimal
 * (2G = 2e9 instructions/s, as CPU clock rates are quoted), unlike sizes.
 */
import {UserError, showValue} from '../util/errors.js'

const IPS = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)\s*(?:ips|\/s)?\s*$/i
const MULT: Record<string, number> = {'': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12}

export function parseIps(text: string): number {
  const m = IPS.exec(text)
  const v = m ? Number(m[1]) * MULT[m[2]!.toLowerCase()]! : NaN
  if (!Number.isFinite(v) || v < 1 || v > 1e13 || !Number.isInteger(Math.round(v)))
    throw new UserError('not a valid instruction rate', {field: 'ips', expected: 'instructions per second such as 2G, 3.5G or 800M (decimal)', found: showValue(text)})
  return Math.round(v)
}
