/**
 * Comma-separated list flags (`--bandwidth 1G,2.5G,10G`, `--fail-if 'a>1,b<2'`), each possibly
 * given several times. An empty item (`1G,,10G`, a trailing comma) is a typo that silently
 * dropped a value before; it is refused, naming the flag and the value it was in.
 */
import {UserError, showValue} from './errors.js'

export function listFlagItems(values: readonly string[], field: string, example: string): string[] {
  const out: string[] = []
  for (const value of values) {
    const items = value.split(',').map((s) => s.trim())
    if (items.some((s) => s === '')) throw new UserError('an empty item in a comma-separated list', {field, expected: `items separated by single commas, e.g. ${example}`, found: showValue(value)})
    out.push(...items)
  }
  return out
}
