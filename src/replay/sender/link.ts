/**
 * The link the migration stream runs over, from the settings: the rate bytes move at when the
 * stream sends, and QEMU's rate limit (migration_rate_limit: `max-bandwidth` bytes per 100 ms
 * window, BUFFER_DELAY). QEMU sends at link speed until the window's budget is spent, then sleeps
 * to the window's end (qemu-semantics.md §3.8), so the limit shapes bursts, not the link rate.
 */
import type {ReplaySettings} from '../settings.js'

/** BUFFER_DELAY: the rate-limit and counters window. */
export const WINDOW_NS = 100e6

/** What the network carries (bytes/s): link-bandwidth, or max-bandwidth when the link is not given. */
export function linkRate(s: ReplaySettings): number {
  return s['link-bandwidth'] > 0 ? s['link-bandwidth'] : s['max-bandwidth']
}

/** Bytes the rate limit allows per window (rate_limit_max), Infinity when unlimited. */
export function windowBudget(s: ReplaySettings): number {
  return s['max-bandwidth'] > 0 ? (s['max-bandwidth'] * WINDOW_NS) / 1e9 : Infinity
}

/** The rate the stream sustains on average while rate-limited: the link, capped by the limit. */
export function sustainedRate(s: ReplaySettings): number {
  const link = s['link-bandwidth']
  const max = s['max-bandwidth']
  if (link === 0) return max
  if (max === 0) return link
  return Math.min(link, max)
}
