/**
 * A byte-level scanner for one JSON Lines event: `{"t_ns":5,"kind":"write","gpa":"0x1000",...}`.
 * It checks the whole line against the JSON grammar (RFC 8259) and records, for each known field,
 * where its value is and what type it has, parsing plain integers on the way. No string, object or
 * number is made for a row that takes the fast path; nested values (objects, arrays) are walked
 * with an explicit stack, so no depth of nesting can overflow the call stack. Semantics (which
 * field a kind needs, ranges) are RowDecoder's job; this file only knows JSON.
 */
import {FIELDS} from '../events.js'

/** Value types, as stored in `JsonEventScanner.type` (NONE: the field is absent). */
export const JT = {NONE: 0, NUMBER: 1, STRING: 2, NULL: 3, TRUE: 4, FALSE: 5, OBJECT: 6, ARRAY: 7} as const

/** A value that is a JSON object or array, kept as its text (no field accepts one). */
export class RawJson {
  constructor(readonly text: string) {}
}

/** A grammar error: what was expected and what was found where (a 1-based byte column). */
export class JsonSyntaxError {
  constructor(
    readonly expected: string,
    readonly found: string,
  ) {}
}

const NFIELDS = FIELDS.length
const QUOTE = 34
const BACKSLASH = 92
const COMMA = 44
const COLON = 58
const MINUS = 45
const LBRACE = 123
const RBRACE = 125
const LBRACKET = 91
const RBRACKET = 93

/**
 * Field names as bytes, found by (length, first byte) without making a string: no two fields
 * share both, so the table holds the one candidate (or -1).
 */
const FIELD_BYTES = FIELDS.map((f) => Buffer.from(f, 'latin1'))
const FIELD_TABLE = new Int8Array(16 * 128).fill(-1)
FIELD_BYTES.forEach((b, i) => {
  const slot = (b.length << 7) | b[0]!
  if (FIELD_TABLE[slot] !== -1) throw new Error('bug: two fields share length and first letter')
  FIELD_TABLE[slot] = i
})
const FIELD_BY_NAME = new Map<string, number>(FIELDS.map((f, i) => [f, i]))

function isWs(c: number | undefined): boolean {
  return c === 32 || c === 9 || c === 10 || c === 13
}

/** The type of a (valid) JSON value from its first byte. */
function typeOf(c: number): number {
  if (c === QUOTE) return JT.STRING
  if (c === LBRACE) return JT.OBJECT
  if (c === LBRACKET) return JT.ARRAY
  if (c === 110) return JT.NULL
  if (c === 116) return JT.TRUE
  if (c === 102) return JT.FALSE
  return JT.NUMBER
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 48 && c <= 57) || ((c | 32) >= 97 && (c | 32) <= 102))
}

export class JsonEventScanner {
  /** Per field (FIELDS order): value type (JT), byte range, and for a plain integer its value. */
  readonly type = new Uint8Array(NFIELDS)
  /** Bit f set when field f is in the line (type[f] and the rest are valid only then). */
  mask = 0
  readonly start = new Int32Array(NFIELDS)
  readonly end = new Int32Array(NFIELDS)
  /** A NUMBER that is a plain integer of at most 15 digits: its value; otherwise -1. */
  readonly int = new Float64Array(NFIELDS)
  /** Whether a STRING value holds escapes (its text needs decoding). */
  readonly escaped = new Uint8Array(NFIELDS)
  /** The whole line is a JSON object (false: valid JSON, but another value). */
  isObject = false
  /** The first key that is not a field name, or undefined. */
  unknownKey: string | undefined
  /** The bytes of the line last scanned (its values are ranges into them). */
  buf: Uint8Array = new Uint8Array(0)
  private lineStart = 0
  private lineEnd = 0
  /** Container stack for nested values: 1 = object, 2 = array. */
  private stack = new Uint8Array(64)

  /**
   * Scan the line buf[s..e). Throws JsonSyntaxError when it is not one JSON value. The byte at e,
   * if there is one, must be a line terminator (single-byte look-ahead relies on it).
   */
  scan(buf: Uint8Array, s: number, e: number): void {
    this.buf = buf
    this.lineStart = s
    this.lineEnd = e
    this.mask = 0
    this.unknownKey = undefined
    let i = this.ws(s)
    if (buf[i] !== LBRACE) {
      this.isObject = false
      i = this.ws(this.value(i))
      if (i < e) this.fail('the end of the line', i)
      return
    }
    this.isObject = true
    i = this.ws(i + 1)
    if (buf[i] === RBRACE) {
      i = this.ws(i + 1)
      if (i < e) this.fail('the end of the line after the object', i)
      return
    }
    // The usual line has no spaces, short plain keys and plain values: each step tries that first
    // and falls back to the general routines (which also name what is wrong).
    for (;;) {
      if (buf[i] !== QUOTE) this.fail('a field name in double quotes', i)
      const ks = i + 1
      let j = ks
      for (; j < e; j++) {
        const k = buf[j]!
        if (k === QUOTE || k === BACKSLASH || k < 0x20) break
      }
      if (j >= e || buf[j] !== QUOTE) j = this.string(i)
      const field = this.fieldOf(ks, j)
      i = j + 1
      if (buf[i] !== COLON) {
        i = this.ws(i)
        if (buf[i] !== COLON) this.fail("':' after the field name", i)
      }
      i++
      let c = buf[i]
      if (isWs(c)) {
        i = this.ws(i)
        c = buf[i]
      }
      if (c === QUOTE && i < e) {
        let k = i + 1
        for (; k < e; k++) {
          const d = buf[k]!
          if (d === QUOTE || d === BACKSLASH || d < 0x20) break
        }
        let escaped = 0
        if (k >= e || buf[k] !== QUOTE) {
          k = this.string(i)
          escaped = 1
        }
        if (field >= 0) this.set(field, JT.STRING, i + 1, k, -1, escaped)
        i = k + 1
      } else if (c !== undefined && c >= 48 && c <= 57 && i < e) {
        let v = 0
        let k = i
        for (; k < e; k++) {
          const d = buf[k]! - 48
          if (d < 0 || d > 9) break
          v = v * 10 + d
        }
        const n = buf[k]
        if ((k < e && (n === 46 || (n! | 32) === 101)) || (c === 48 && k > i + 1)) {
          // A fraction, an exponent or a leading zero: the general grammar (or its error).
          k = this.number(i)
          v = -1
        } else if (k - i > 15) v = -1
        if (field >= 0) this.set(field, JT.NUMBER, i, k, v, 0)
        i = k
      } else {
        const vs = i
        i = this.value(i)
        if (field >= 0) this.set(field, typeOf(c!), vs, i, -1, 0)
      }
      c = buf[i]
      if (c !== COMMA && c !== RBRACE) {
        i = this.ws(i)
        c = buf[i]
      }
      if (c === COMMA && i < e) {
        i++
        if (buf[i] !== QUOTE) i = this.ws(i)
        continue
      }
      if (c === RBRACE && i < e) break
      this.fail("',' or '}'", i)
    }
    i = this.ws(i + 1)
    if (i < e) this.fail('the end of the line after the object', i)
  }

  /** Whether field f was present in the line last scanned (with any value, null included). */
  has(f: number): boolean {
    return (this.mask & (1 << f)) !== 0
  }

  /** The value of a field as JSON.parse would give it (for the general decoding path). */
  valueOf(field: number): unknown {
    const t = this.has(field) ? this.type[field]! : JT.NONE
    const s = this.start[field]!
    const e = this.end[field]!
    switch (t) {
      case JT.NUMBER:
        return Number(this.text(s, e))
      case JT.STRING:
        return this.stringValue(field)
      case JT.NULL:
        return null
      case JT.TRUE:
        return true
      case JT.FALSE:
        return false
      case JT.OBJECT:
      case JT.ARRAY:
        return new RawJson(this.text(s, e))
      default:
        return undefined
    }
  }

  /** A STRING field's text, decoded. */
  stringValue(field: number): string {
    const s = this.start[field]!
    const e = this.end[field]!
    // A flat string literal: JSON.parse cannot recurse here.
    return this.escaped[field] === 1 ? (JSON.parse(this.text(s - 1, e + 1)) as string) : this.text(s, e)
  }

  /** The whole line as text (error messages). */
  lineText(): string {
    return this.text(this.lineStart, this.lineEnd)
  }

  private text(s: number, e: number): string {
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + s, e - s).toString('utf8')
  }

  /** A repeated field: the last one wins, as with JSON.parse. */
  private set(field: number, type: number, s: number, e: number, int: number, escaped: number): void {
    this.mask |= 1 << field
    this.type[field] = type
    this.start[field] = s
    this.end[field] = e
    this.int[field] = int
    this.escaped[field] = escaped
  }

  /** The field index of the key buf[s..e) (inside the quotes), or -1 (noted in unknownKey). */
  private fieldOf(s: number, e: number): number {
    const buf = this.buf
    const n = e - s
    const f = n < 16 && buf[s]! < 128 ? FIELD_TABLE[(n << 7) | buf[s]!]! : -1
    if (f >= 0) {
      const name = FIELD_BYTES[f]!
      let j = 1
      while (j < n && buf[s + j] === name[j]) j++
      if (j === n) return f
    }
    let key = this.text(s, e)
    if (key.includes('\\')) {
      key = JSON.parse(`"${key}"`) as string
        const known = FIELD_BY_NAME.get(key)
      if (known !== undefined) return known
    }
    this.unknownKey ??= key
    return -1
  }

  private ws(i: number): number {
    while (i < this.lineEnd && isWs(this.buf[i])) i++
    return i
  }

  /** Index of the closing quote of the string opening at i. */
  private string(i: number): number {
    const buf = this.buf
    const e = this.lineEnd
    let j = i + 1
    for (;;) {
      if (j >= e) this.fail('a closing double quote', j, `an unterminated string (opened at column ${i - this.lineStart + 1})`)
      const c = buf[j]!
      if (c === QUOTE) return j
      if (c === BACKSLASH) {
        const n = buf[j + 1]
        if (n === 117) {
          if (!(isHex(buf[j + 2]) && isHex(buf[j + 3]) && isHex(buf[j + 4]) && isHex(buf[j + 5]))) this.fail('four hex digits after \\u', j + 2)
          j += 6
        } else if (n === QUOTE || n === BACKSLASH || n === 47 || n === 98 || n === 102 || n === 110 || n === 114 || n === 116) j += 2
        else this.fail('an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)', j + 1)
      } else if (c < 0x20) this.fail('no control character inside a string', j, `a control character (0x${c.toString(16).padStart(2, '0')}) at column ${j - this.lineStart + 1}`)
      else j++
    }
  }

  /** Index just past the number starting at i (the JSON number grammar). */
  private number(i: number): number {
    const buf = this.buf
    let j = i
    if (buf[j] === MINUS) j++
    const c = buf[j]
    if (c === 48) {
      j++
      const n = buf[j]
      if (n !== undefined && n >= 48 && n <= 57 && j < this.lineEnd) this.fail('no leading zero in a number', j, `a leading zero at column ${j - this.lineStart}`)
    } else if (c !== undefined && c >= 49 && c <= 57 && j < this.lineEnd) {
      while (j < this.lineEnd && buf[j]! >= 48 && buf[j]! <= 57) j++
    } else this.fail('a digit', j)
    if (j < this.lineEnd && buf[j] === 46) {
      j++
      const d0 = j
      while (j < this.lineEnd && buf[j]! >= 48 && buf[j]! <= 57) j++
      if (j === d0) this.fail('a digit after the decimal point', j)
    }
    if (j < this.lineEnd && (buf[j]! | 32) === 101) {
      j++
      if (buf[j] === 43 || buf[j] === MINUS) j++
      const d0 = j
      while (j < this.lineEnd && buf[j]! >= 48 && buf[j]! <= 57) j++
      if (j === d0) this.fail('a digit in the exponent', j)
    }
    return j
  }

  private literal(i: number, word: string): number {
    for (let k = 0; k < word.length; k++) if (i + k >= this.lineEnd || this.buf[i + k] !== word.charCodeAt(k)) this.fail(`'${word}'`, i)
    return i + word.length
  }

  /** Index just past the JSON value starting at i; nested values without recursion. */
  private value(i: number): number {
    const buf = this.buf
    let depth = 0
    for (;;) {
      // One value at i.
      const c = i < this.lineEnd ? buf[i] : undefined
      if (c === QUOTE) i = this.string(i) + 1
      else if (c === MINUS || (c !== undefined && c >= 48 && c <= 57)) i = this.number(i)
      else if (c === 116) i = this.literal(i, 'true')
      else if (c === 102) i = this.literal(i, 'false')
      else if (c === 110) i = this.literal(i, 'null')
      else if (c === LBRACE || c === LBRACKET) {
        if (depth === this.stack.length) {
          const bigger = new Uint8Array(depth * 2)
          bigger.set(this.stack)
          this.stack = bigger
        }
        this.stack[depth++] = c === LBRACE ? 1 : 2
        i = this.ws(i + 1)
        const close = c === LBRACE ? RBRACE : RBRACKET
        if (buf[i] === close && i < this.lineEnd) {
          depth--
          i++
        } else {
          if (c === LBRACE) i = this.key(i)
          continue
        }
      } else this.fail('a JSON value', i)
      // After a value: close containers or move to the next element.
      for (;;) {
        if (depth === 0) return i
        i = this.ws(i)
        const inObject = this.stack[depth - 1] === 1
        const n = i < this.lineEnd ? buf[i] : undefined
        if (n === COMMA) {
          i = this.ws(i + 1)
          if (inObject) i = this.key(i)
          break
        }
        if (n === (inObject ? RBRACE : RBRACKET)) {
          depth--
          i++
          continue
        }
        this.fail(inObject ? "',' or '}'" : "',' or ']'", i)
      }
    }
  }

  /** A key and its colon inside a nested object; returns where the value starts. */
  private key(i: number): number {
    if (i >= this.lineEnd || this.buf[i] !== QUOTE) this.fail('a field name in double quotes', i)
    i = this.ws(this.string(i) + 1)
    if (i >= this.lineEnd || this.buf[i] !== COLON) this.fail("':' after the field name", i)
    return this.ws(i + 1)
  }

  private fail(expected: string, i: number, found?: string): never {
    const col = i - this.lineStart + 1
    if (found === undefined) {
      if (i >= this.lineEnd) found = `the end of the line at column ${col}`
      else {
        const c = this.buf[i]!
        found = c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}' at column ${col}` : `byte 0x${c.toString(16).padStart(2, '0')} at column ${col}`
      }
    }
    throw new JsonSyntaxError(expected, found)
  }
}
