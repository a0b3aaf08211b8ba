/**
 * One line of a QEMU log-backend trace, split into its parts without regular expressions (the
 * prefix is parsed on every line). Forms accepted:
 *   `TID@SECONDS.MICROS:name args`  (-msg timestamp=on; scripts/tracetool/backend/log.py)
 *   `name args`                      (no timestamp: newer QEMU prints no prefix without -msg timestamp=on)
 * Anything else (QEMU's own log messages in the same -D file) is reported as not an event line.
 */
import type {CompiledEvent} from './formats.js'
import {UserError} from '../../util/errors.js'

export interface LinePrefix {
  /** Microseconds since the epoch, or -1 when the line has no timestamp. */
  tUs: number
  /** Index of the event name's first character. */
  nameStart: number
  /** Index just past the name. */
  nameEnd: number
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57
const isNameChar = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 95

/** Fill `out` from a line; false when the line is not a trace-event line. */
export function parsePrefix(line: string, out: LinePrefix): boolean {
  let i = 0
  const n = line.length
  out.tUs = -1
  while (i < n && isDigit(line.charCodeAt(i))) i++
  if (i > 0 && i < n && line.charCodeAt(i) === 64 /* @ */) {
    let j = i + 1
    let sec = 0
    const secStart = j
    while (j < n && isDigit(line.charCodeAt(j))) sec = sec * 10 + (line.charCodeAt(j++) - 48)
    if (j === secStart || line.charCodeAt(j) !== 46 /* . */) return false
    j++
    let usec = 0
    let digits = 0
    while (j < n && isDigit(line.charCodeAt(j))) {
      usec = usec * 10 + (line.charCodeAt(j++) - 48)
      digits++
    }
    if (digits === 0 || line.charCodeAt(j) !== 58 /* : */) return false
    // %06zu: always six digits; scale anything else to microseconds all the same.
    out.tUs = sec * 1e6 + (digits === 6 ? usec : Math.round(usec * 10 ** (6 - digits)))
    i = j + 1
  } else {
    i = 0
  }
  const start = i
  while (i < n && isNameChar(line.charCodeAt(i))) i++
  if (i === start || (i < n && line.charCodeAt(i) !== 32)) return false
  out.nameStart = start
  out.nameEnd = i
  return true
}

/**
 * Parsed arguments of one event, reused from line to line: numbers in `num`, strings in `str`,
 * by the spec's field index. NaN marks a field the matched variant does not print.
 */
export interface ParsedArgs {
  num: Float64Array
  str: (string | undefined)[]
  /** The variant that matched (its versions string). */
  versions: string
}

export function createArgs(): ParsedArgs {
  return {num: new Float64Array(16), str: new Array<string | undefined>(16), versions: ''}
}

/** Parse the argument text of a used event; a line matching no variant is the user's error. */
export function parseArgs(ev: CompiledEvent, text: string, out: ParsedArgs, file: string, line: number): void {
  for (const v of ev.variants) {
    const m = v.compiled.pattern.exec(text)
    if (m === null) continue
    out.num.fill(Number.NaN, 0, ev.spec.fields.length)
    out.str.fill(undefined, 0, ev.spec.fields.length)
    for (let k = 0; k < v.order.length; k++) {
      const f = v.order[k]!
      const s = m[k + 1]!
      switch (v.compiled.args[k]) {
        case 'int':
          out.num[f] = Number(s)
          break
        case 'hex':
          out.num[f] = Number.parseInt(s, 16)
          break
        case 'ptr':
          out.num[f] = s === '(nil)' ? 0 : Number.parseInt(s.slice(2), 16)
          break
        default:
          out.str[f] = s
      }
    }
    out.versions = v.compiled.versions
    return
  }
  const expected = ev.variants.map((v) => `'${ev.spec.name} ${v.compiled.format}' (QEMU ${v.compiled.versions})`).join(' or ')
  throw new UserError(`malformed ${ev.spec.name} line`, {file, line, expected, found: `'${ev.spec.name} ${text.length > 80 ? `${text.slice(0, 77)}...` : text}'`})
}
