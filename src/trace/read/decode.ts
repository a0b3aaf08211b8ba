/**
 * Decoding one event into the next row of an EventBatch, with every per-field check. Two entry
 * points share the rules and messages:
 * - `csvRow`: the fast path, straight from the bytes of a CSV line (no string, no object per row);
 * - `valuesRow`: field values already split out (a quoted CSV row through csv-parse, a JSON Lines
 *   object), as strings or numbers.
 * After the fields, `EventChecker` checks the event against the header. A bad row throws a
 * UserError and leaves the batch as it was.
 */
import {FIELDS, FIELD_INDEX, KINDS, KIND_FIELD_MASK, KIND_REQUIRED_MASK, OPS, type EventBatch, type FieldName} from '../events.js'
import type {TraceLayout} from '../layout.js'
import {UserError, showValue} from '../../util/errors.js'
import {EventChecker, unknownDeviceError} from './checks.js'
import {BAD, PARAMS_RE, extraFieldError, missingFieldError, numberError, paramsError, parseUintText, unknownKindError} from './values.js'

const NFIELDS = FIELDS.length
const COMMA = 44
const QUOTE = 34

const F = FIELD_INDEX
/** Numeric field columns and where they go in a batch. */
type NumColumn = 'vcpu' | 'slot' | 'gpa' | 'iova' | 'len' | 'page' | 'count' | 'value'
const NUM_FIELDS: readonly NumColumn[] = ['vcpu', 'slot', 'gpa', 'iova', 'len', 'page', 'count', 'value']
const NUM_INDEX = NUM_FIELDS.map((f) => F[f])
const M_VCPU = 1 << F.vcpu
const M_SLOT = 1 << F.slot
const M_GPA = 1 << F.gpa
const M_IOVA = 1 << F.iova
const M_LEN = 1 << F.len
const M_PAGE = 1 << F.page
const M_COUNT = 1 << F.count
const M_VALUE = 1 << F.value
const M_DEV = 1 << F.dev
const M_OP = 1 << F.op
const M_PARAMS = 1 << F.params
const M_RARE = M_DEV | M_OP | M_PARAMS
/** 1 for columns holding integers (everything but kind, dev, op, params). */
const IS_NUMERIC = Uint8Array.from(FIELDS, (f) => (f === 'kind' || f === 'dev' || f === 'op' || f === 'params' ? 0 : 1))

/** Kind lookup from bytes without making a string: candidates by (length, first byte). */
const KIND_BYTES = KINDS.map((k) => Buffer.from(k.name, 'latin1'))
const KIND_BY_LEN_FIRST = new Map<number, number[]>()
KIND_BYTES.forEach((b, code) => {
  const key = b.length * 256 + b[0]!
  const list = KIND_BY_LEN_FIRST.get(key) ?? []
  list.push(code)
  KIND_BY_LEN_FIRST.set(key, list)
})

function kindFromBytes(buf: Uint8Array, s: number, e: number): number {
  const cands = KIND_BY_LEN_FIRST.get((e - s) * 256 + (buf[s] ?? 0))
  if (cands === undefined) return -1
  outer: for (const code of cands) {
    const name = KIND_BYTES[code]!
    for (let j = 1; j < name.length; j++) if (buf[s + j] !== name[j]) continue outer
    return code
  }
  return -1
}

const OP_CODE = new Map<string, number>(OPS.map((o, i) => [o, i]))

export class RowDecoder {
  /** Where the text fields of the current CSV line are: start of field f at 2f, end at 2f+1. */
  private readonly bounds = new Int32Array(NFIELDS * 2)
  /** Numeric values of the current CSV line, by column. */
  private readonly vals = new Float64Array(NFIELDS)
  readonly checker: EventChecker

  constructor(
    private readonly layout: TraceLayout,
    private readonly file: string,
  ) {
    this.checker = new EventChecker(layout.header, layout, file)
  }

  private place(line: number): {file: string; line: number} {
    return {file: this.file, line}
  }

  /**
   * Decode the CSV line buf[s..e) (no line terminator) into row b.length of b. Returns false if the
   * line holds a quote and must go through the csv-parse path instead.
   */
  csvRow(b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean): boolean {
    // One pass over the bytes: split at commas and parse numeric fields as we go. Empty fields
    // (most of them) cost one compare; only text fields record where they are.
    const vals = this.vals
    const bounds = this.bounds
    let j = s
    let f = 0
    let present = 0
    let anyBad = false
    for (;;) {
      if (j < e && buf[j] !== COMMA) {
        present |= 1 << f
        const start = j
        if (IS_NUMERIC[f] === 1) {
          let v = 0
          if (buf[j] === 48 && j + 2 < e && (buf[j + 1]! | 32) === 120) {
            // 0x hex
            j += 2
            for (; j < e; j++) {
              const c = buf[j]!
              if (c === COMMA) break
              if (c >= 48 && c <= 57) v = v * 16 + (c - 48)
              else if ((c | 32) >= 97 && (c | 32) <= 102) v = v * 16 + ((c | 32) - 87)
              else {
                v = BAD
                break
              }
            }
            if (j === start + 2) v = BAD
          } else {
            for (; j < e; j++) {
              const c = buf[j]!
              if (c === COMMA) break
              const d = c - 48
              if (d < 0 || d > 9) {
                v = BAD
                break
              }
              v = v * 10 + d
            }
          }
          if (v === BAD) {
            anyBad = true
            while (j < e && buf[j] !== COMMA) j++
          } else if (j - start > 15 && !Number.isSafeInteger(v)) {
            anyBad = true
            v = BAD
          }
          vals[f] = v
        } else {
          for (; j < e; j++) {
            const c = buf[j]!
            if (c === COMMA) break
            if (c === QUOTE) return false
          }
          bounds[2 * f] = start
          bounds[2 * f + 1] = j
        }
      }
      if (j >= e || f === NFIELDS - 1) break
      j++
      f++
    }
    if (anyBad && buf.subarray(s, e).includes(QUOTE)) return false
    if (f !== NFIELDS - 1 || j !== e) {
      let n = f + 1
      for (; j < e; j++) if (buf[j] === COMMA) n++
      throw this.columnCountError(n, line, unterminated)
    }
    if ((present & 2) === 0) {
      bounds[2] = 0
      bounds[3] = 0
    }

    const i = b.length
    try {
      // The kind first: it decides which other fields must and may be set.
      const kind = kindFromBytes(buf, bounds[2]!, bounds[3]!)
      if (kind < 0) throw unknownKindError(buf.toString('utf8', bounds[2]!, bounds[3]!), this.place(line))
      if ((present & 1) === 0) throw missingFieldError(KINDS[kind]!.name, 't_ns', this.place(line))
      present |= 0b11
      if ((present & ~KIND_FIELD_MASK[kind]!) !== 0 || (KIND_REQUIRED_MASK[kind]! & ~present) !== 0)
        throw this.presenceError(kind, present, line, (fi) => fieldText(buf, s, e, fi))
      if (anyBad) throw this.firstBadNumber(buf, s, e, present, line)
      b.t[i] = vals[0]!
      b.kind[i] = kind
      // Explicit per-column stores: no keyed property access in the hot loop.
      if ((present & M_VCPU) !== 0) b.vcpu[i] = vals[F.vcpu]!
      if ((present & M_SLOT) !== 0) b.slot[i] = vals[F.slot]!
      if ((present & M_GPA) !== 0) b.gpa[i] = vals[F.gpa]!
      if ((present & M_IOVA) !== 0) b.iova[i] = vals[F.iova]!
      if ((present & M_LEN) !== 0) b.len[i] = vals[F.len]!
      if ((present & M_PAGE) !== 0) b.page[i] = vals[F.page]!
      if ((present & M_COUNT) !== 0) b.count[i] = vals[F.count]!
      if ((present & M_VALUE) !== 0) b.value[i] = vals[F.value]!
      if ((present & M_RARE) !== 0) {
        if ((present & M_DEV) !== 0) this.setDev(b, i, this.csvText(buf, F.dev), line)
        if ((present & M_OP) !== 0) this.setOp(b, i, kind, this.csvText(buf, F.op), line)
        if ((present & M_PARAMS) !== 0) this.setParams(b, i, this.csvText(buf, F.params), line)
      }
      b.line[i] = line
      this.checker.check(b, i, line)
    } catch (err) {
      clearRow(b, i)
      throw err
    }
    b.length = i + 1
    return true
  }

  /** The error for the first numeric field (in column order) that did not parse. */
  private firstBadNumber(buf: Buffer, s: number, e: number, present: number, line: number): UserError {
    for (let fi = 0; fi < NFIELDS; fi++) {
      if (IS_NUMERIC[fi] !== 1 || (present & (1 << fi)) === 0) continue
      const text = fieldText(buf, s, e, fi)
      if (parseUintText(text) === BAD) return numberError(text, FIELDS[fi]!, this.place(line))
    }
    return new UserError('bug: no bad number found', {file: this.file, line})
  }

  /**
   * Decode an event from field values (indexed like FIELDS; undefined, null or '' = not set):
   * strings from a quoted CSV row, strings or numbers from JSON Lines.
   */
  valuesRow(b: EventBatch, values: readonly unknown[], line: number): void {
    const i = b.length
    try {
      const kindValue = values[F.kind]
      if (typeof kindValue !== 'string' && isSet(kindValue)) throw new UserError('not a kind name', {file: this.file, line, field: 'kind', expected: 'a string such as "write"', found: JSON.stringify(kindValue)})
      const kind = KINDS.findIndex((k) => k.name === kindValue)
      if (kind < 0) throw unknownKindError(typeof kindValue === 'string' ? kindValue : '', this.place(line))
      if (!isSet(values[F.t_ns])) throw missingFieldError(KINDS[kind]!.name, 't_ns', this.place(line))
      b.t[i] = this.number(values[F.t_ns], 't_ns', line)
      b.kind[i] = kind
      let present = 0b11
      for (let k = 2; k < NFIELDS; k++) if (isSet(values[k])) present |= 1 << k
      if ((present & ~KIND_FIELD_MASK[kind]!) !== 0 || (KIND_REQUIRED_MASK[kind]! & ~present) !== 0)
        throw this.presenceError(kind, present, line, (fi) => values[fi])
      for (let n = 0; n < NUM_INDEX.length; n++) {
        const fi = NUM_INDEX[n]!
        if ((present & (1 << fi)) !== 0) b[NUM_FIELDS[n]!][i] = this.number(values[fi], FIELDS[fi]!, line)
      }
      if ((present & (1 << F.dev)) !== 0) {
        this.setDev(b, i, this.string(values[F.dev], 'dev', line), line)
      }
      if ((present & (1 << F.op)) !== 0) this.setOp(b, i, kind, this.string(values[F.op], 'op', line), line)
      if ((present & (1 << F.params)) !== 0) this.setParams(b, i, this.string(values[F.params], 'params', line), line)
      b.line[i] = line
      this.checker.check(b, i, line)
    } catch (err) {
      clearRow(b, i)
      throw err
    }
    b.length = i + 1
  }

  columnCountError(found: number, line: number, unterminated: boolean): UserError {
    return new UserError(unterminated ? 'truncated last line: wrong number of columns' : 'wrong number of columns', {
      file: this.file,
      line,
      expected: `${NFIELDS} (${FIELDS.join(',')})`,
      found: String(found),
    })
  }

  /** The error for a row whose set fields do not match its kind (an extra field first). */
  private presenceError(kind: number, present: number, line: number, valueOf: (field: number) => unknown): UserError {
    const extra = present & ~KIND_FIELD_MASK[kind]!
    if (extra !== 0) {
      const fi = lowestBit(extra)
      return extraFieldError(KINDS[kind]!.name, FIELDS[fi]!, valueOf(fi), this.place(line))
    }
    return missingFieldError(KINDS[kind]!.name, FIELDS[lowestBit(KIND_REQUIRED_MASK[kind]! & ~present)]!, this.place(line))
  }

  private csvText(buf: Buffer, fi: number): string {
    return buf.toString('utf8', this.bounds[2 * fi]!, this.bounds[2 * fi + 1]!)
  }

  private number(v: unknown, field: FieldName, line: number): number {
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && v >= 0) return v
    } else if (typeof v === 'string') {
      const n = parseUintText(v)
      if (n !== BAD) return n
    }
    throw numberError(v, field, this.place(line))
  }

  private string(v: unknown, field: FieldName, line: number): string {
    if (typeof v === 'string') return v
    throw new UserError('not a string', {file: this.file, line, field, expected: 'a string', found: JSON.stringify(v)})
  }

  private setDev(b: EventBatch, i: number, id: string, line: number): void {
    const d = this.layout.deviceIndex.get(id)
    if (d === undefined) throw unknownDeviceError(id, this.layout, this.file, line)
    b.dev[i] = d
  }

  private setOp(b: EventBatch, i: number, kind: number, word: string, line: number): void {
    const allowed = (KINDS[kind]! as {ops?: readonly string[]}).ops ?? []
    const code = OP_CODE.get(word)
    if (code === undefined || !allowed.includes(word))
      throw new UserError(`not an op of ${KINDS[kind]!.name}`, {file: this.file, line, field: 'op', expected: `one of ${allowed.join(', ')}`, found: showValue(word)})
    b.op[i] = code
  }

  private setParams(b: EventBatch, i: number, text: string, line: number): void {
    if (!PARAMS_RE.test(text)) throw paramsError(text, this.place(line))
    b.params.set(i, text)
  }
}

/** The text of column fi of the CSV line buf[s..e) (error paths only). */
function fieldText(buf: Buffer, s: number, e: number, fi: number): string {
  return buf.toString('utf8', s, e).split(',')[fi] ?? ''
}

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== ''
}

function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask)
}

/** Put row i of a batch back to "nothing set" after a bad row left part of it written. */
export function clearRow(b: EventBatch, i: number): void {
  b.vcpu[i] = -1
  b.dev[i] = -1
  b.slot[i] = -1
  b.gpa[i] = -1
  b.iova[i] = -1
  b.len[i] = -1
  b.page[i] = -1
  b.count[i] = -1
  b.value[i] = -1
  b.op[i] = 0
  b.line[i] = 0
  b.params.delete(i)
}
