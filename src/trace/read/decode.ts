/**
 * Decoding one event into the next row of an EventBatch, with every per-field check. Two entry
 * points share the rules and messages:
 * - `csvRow`: the fast path, straight from the bytes of a CSV line (no string, no object per row);
 * - `valuesRow`: field values already split out (a quoted CSV row through csv-parse, a JSON Lines
 *   object), as strings or numbers.
 * After the fields, `EventChecker` checks the event against the header. A bad row throws a
 * UserError and leaves the batch as it was.
 */
import {FIELDS, FIELD_INDEX, KINDS, KIND_CODE, KIND_FIELD_MASK, KIND_REQUIRED_MASK, OPS, type EventBatch, type FieldName} from '../events.js'
import type {TraceLayout} from '../layout.js'
import {UserError, showValue} from '../../util/errors.js'
import {EventChecker, unknownDeviceError} from './checks.js'
import {JT, type JsonEventScanner} from './json-scan.js'
import {BAD, PARAMS_RE, extraFieldError, jsonText, missingFieldError, numberError, paramsError, parseUintText, unknownKindError} from './values.js'

const NFIELDS = FIELDS.length
const COMMA = 44
const QUOTE = 34
const NL = 10

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
const KIND_MAX_LEN = Math.max(...KIND_BYTES.map((b) => b.length))
const KIND_CANDIDATES: (number[] | undefined)[] = []
KIND_BYTES.forEach((b, code) => {
  const slot = (b.length << 7) | b[0]!
  ;(KIND_CANDIDATES[slot] ??= []).push(code)
})

function kindFromBytes(buf: Uint8Array, s: number, e: number): number {
  const n = e - s
  const first = buf[s]!
  if (n <= 0 || n > KIND_MAX_LEN || first >= 128) return -1
  const cands = KIND_CANDIDATES[(n << 7) | first]
  if (cands === undefined) return -1
  outer: for (const code of cands) {
    const name = KIND_BYTES[code]!
    for (let j = 1; j < name.length; j++) if (buf[s + j] !== name[j]) continue outer
    return code
  }
  return -1
}

const K_WRITE = KIND_CODE.get('write')!
const K_READ = KIND_CODE.get('read')!
const K_DMA_WRITE = KIND_CODE.get('dma_write')!
const K_VHOST_WRITE = KIND_CODE.get('vhost_write')!

/** The fixed parts of the canonical JSON Lines access row (see jsonAccessRow). */
const J_T = Buffer.from('{"t_ns":', 'latin1')
const J_WRITE = Buffer.from(',"kind":"write","vcpu":', 'latin1')
const J_READ = Buffer.from(',"kind":"read","vcpu":', 'latin1')
const J_DMA = Buffer.from(',"kind":"dma_write"', 'latin1')
const J_VHOST = Buffer.from(',"kind":"vhost_write"', 'latin1')
const J_GPA = Buffer.from(',"gpa":"0x', 'latin1')
const J_LEN = Buffer.from('","len":', 'latin1')

/** A literal as little-endian 32-bit words and the bytes after the last whole word (wordsAt). */
interface Words {
  words: Uint32Array
  tail: Uint8Array
}
const wordsOf = (bytes: Uint8Array): Words => {
  const n = bytes.length >> 2
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length)
  return {words: Uint32Array.from({length: n}, (_, k) => dv.getUint32(4 * k, true)), tail: bytes.slice(4 * n)}
}

/**
 * Whether the bytes at `at` are the literal, four bytes per compare (a loop over single bytes was
 * a third of jsonAccessRun's time). A word read may reach 3 bytes past the first byte that
 * differs (a newline, say): the caller keeps `at` far enough from the end of the DataView.
 */
function wordsAt(dv: DataView, at: number, w: Words): boolean {
  const words = w.words
  let p = at
  for (let k = 0; k < words.length; k++, p += 4) if (dv.getUint32(p, true) !== words[k]) return false
  const tail = w.tail
  for (let k = 0; k < tail.length; k++) if (dv.getUint8(p + k) !== tail[k]) return false
  return true
}
const W_T = wordsOf(J_T)
const W_WRITE = wordsOf(J_WRITE)
const W_READ = wordsOf(J_READ)
const W_DMA = wordsOf(J_DMA)
const W_VHOST = wordsOf(J_VHOST)
const W_GPA = wordsOf(J_GPA)
const W_LEN = wordsOf(J_LEN)
/**
 * The most bytes jsonAccessRun reads from a line's start: the literals, the longest numbers it
 * takes (t 15 digits, vcpu 9, gpa 13, len 15: it stops at a longer one before reading on), the
 * line's end and a word's overrun.
 */
const J_RUN_REACH = J_T.length + 15 + J_WRITE.length + 9 + J_GPA.length + 13 + J_LEN.length + 15 + 2 + 3

const OP_CODE = new Map<string, number>(OPS.map((o, i) => [o, i]))

/** Value of a hex digit by byte (either case), -1 for any other byte: one load per digit. */
const HEX_VALUE = new Int8Array(256).fill(-1)
for (let c = 0; c < 10; c++) HEX_VALUE[48 + c] = c
for (let c = 0; c < 6; c++) {
  HEX_VALUE[97 + c] = 10 + c
  HEX_VALUE[65 + c] = 10 + c
}

export class RowDecoder {
  /** Where the text fields of the current CSV line are: start of field f at 2f, end at 2f+1. */
  private readonly bounds = new Int32Array(NFIELDS * 2)
  /** Numeric values of the current CSV line, by column. */
  private readonly vals = new Float64Array(NFIELDS)
  readonly checker: EventChecker
  /** A DataView of the last buffer jsonAccessRun read (the reader reuses its two chunk buffers). */
  private dv?: DataView
  private dvOf?: Buffer

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
   * The fast path for the rows most traces are made of: decodes consecutive lines from buf[s] on
   * while each is a vCPU access in canonical form, `t,write,vcpu,,,gpa,,len,,,,,\n` (or `read`,
   * numbers in decimal or 0x hex), or a `dma_write` / `vhost_write` with the vcpu and dev empty,
   * and passes the checks, up to `room` rows, before `end` (just
   * after a newline: see RunDecoder, which is why no loop here tests the bounds). Returns where it
   * stopped: the general path (`csvRow`) takes the next line, and names its problem if it has one.
   * One loop for the whole run, the columns in locals and the row count stored once: about half
   * the cost per row of a call per line (41 against 75 ns once compiled).
   */
  csvAccessRun(b: EventBatch, buf: Buffer, s: number, end: number, line: number, room: number): number {
    const checker = this.checker
    const tCol = b.t
    const kindCol = b.kind
    const vcpuCol = b.vcpu
    const gpaCol = b.gpa
    const lenCol = b.len
    const lineCol = b.line
    let i = b.length
    const stop = i + room
    while (i < stop && s < end) {
      // t_ns: decimal, at most 15 digits (always below 2^53)
      let j = s
      let c = buf[j]!
      let t = 0
      while (c >= 48 && c <= 57) {
        t = t * 10 + (c - 48)
        c = buf[++j]!
      }
      if (j === s || j - s > 15 || c !== COMMA) break
      // kind: "write," or "read," (each compare runs only if the one before matched, so none
      // reads past the newline)
      let kind: number
      let access = true
      if (buf[j + 1] === 119 && buf[j + 2] === 114 && buf[j + 3] === 105 && buf[j + 4] === 116 && buf[j + 5] === 101 && buf[j + 6] === COMMA) {
        kind = K_WRITE
        j += 7
      } else if (buf[j + 1] === 114 && buf[j + 2] === 101 && buf[j + 3] === 97 && buf[j + 4] === 100 && buf[j + 5] === COMMA) {
        kind = K_READ
        j += 6
      } else if (
        buf[j + 1] === 100 && buf[j + 2] === 109 && buf[j + 3] === 97 && buf[j + 4] === 95 && buf[j + 5] === 119 &&
        buf[j + 6] === 114 && buf[j + 7] === 105 && buf[j + 8] === 116 && buf[j + 9] === 101 && buf[j + 10] === COMMA
      ) {
        // dma_write (and vhost_write below) without a device: the same row with the vcpu empty,
        // and the same checks as an access with no vCPU (as jsonAccessRun takes them), so the run
        // goes on through the few of them a guest's writes come mixed with.
        kind = K_DMA_WRITE
        access = false
        j += 11
      } else if (
        buf[j + 1] === 118 && buf[j + 2] === 104 && buf[j + 3] === 111 && buf[j + 4] === 115 && buf[j + 5] === 116 && buf[j + 6] === 95 &&
        buf[j + 7] === 119 && buf[j + 8] === 114 && buf[j + 9] === 105 && buf[j + 10] === 116 && buf[j + 11] === 101 && buf[j + 12] === COMMA
      ) {
        kind = K_VHOST_WRITE
        access = false
        j += 13
      } else break
      // vcpu (none for a device write), then empty dev and slot
      const v0 = j
      let vcpu = -1
      if (access) {
        vcpu = 0
        c = buf[j]!
        while (c >= 48 && c <= 57) {
          vcpu = vcpu * 10 + (c - 48)
          c = buf[++j]!
        }
        if (j === v0 || j - v0 > 9) break
      } else c = buf[j]!
      if (c !== COMMA || buf[j + 1] !== COMMA || buf[j + 2] !== COMMA) break
      j += 3
      // gpa: 0x hex (at most 13 digits) or decimal (at most 15), then an empty iova
      const g0 = j
      let gpa = 0
      if (buf[j] === 48 && (buf[j + 1]! | 32) === 120) {
        j += 2
        let h = HEX_VALUE[buf[j]!]!
        while (h >= 0) {
          gpa = gpa * 16 + h
          h = HEX_VALUE[buf[++j]!]!
        }
        if (j === g0 + 2 || j - g0 > 15) break
      } else {
        c = buf[j]!
        while (c >= 48 && c <= 57) {
          gpa = gpa * 10 + (c - 48)
          c = buf[++j]!
        }
        if (j === g0 || j - g0 > 15) break
      }
      if (buf[j] !== COMMA || buf[j + 1] !== COMMA) break
      j += 2
      // len (decimal), then five empty fields and the end of the line
      const l0 = j
      let len = 0
      c = buf[j]!
      while (c >= 48 && c <= 57) {
        len = len * 10 + (c - 48)
        c = buf[++j]!
      }
      if (j === l0 || j - l0 > 15) break
      if (c !== COMMA || buf[j + 1] !== COMMA || buf[j + 2] !== COMMA || buf[j + 3] !== COMMA || buf[j + 4] !== COMMA || buf[j + 5] !== NL) break
      if (!checker.accessOk(t, vcpu, gpa, len, line)) break
      tCol[i] = t
      kindCol[i] = kind
      vcpuCol[i] = vcpu
      gpaCol[i] = gpa
      lenCol[i] = len
      lineCol[i] = line
      i++
      line++
      s = j + 6
    }
    b.length = i
    return s
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

  /**
   * The fast path for the JSON Lines rows most traces are made of, vCPU accesses exactly as the
   * trace writer puts them: `{"t_ns":T,"kind":"write","vcpu":V,"gpa":"0xG","len":L}\n` (or
   * "read"), and the device writes with no device, `{"t_ns":T,"kind":"dma_write","gpa":"0xG","len":L}`
   * (or "vhost_write": the same checks as an access with no vCPU, so the run goes on through the
   * few of them a guest's writes come mixed with). Like csvAccessRun: consecutive lines from buf[s] on, up to `room`, until one is
   * anything else; returns where it stopped, and the scanner takes the next line.
   */
  jsonAccessRun(b: EventBatch, buf: Buffer, s: number, end: number, line: number, room: number): number {
    // As csvAccessRun: one loop, columns in locals, no bounds tests before `end` (RunDecoder).
    const checker = this.checker
    const tCol = b.t
    const kindCol = b.kind
    const vcpuCol = b.vcpu
    const gpaCol = b.gpa
    const lenCol = b.len
    const lineCol = b.line
    let i = b.length
    const stop = i + room
    if (buf !== this.dvOf) {
      // To the end of the buffer's memory, not of the chunk: the reader's chunks are views of
      // 1 MiB buffers, so even a short last chunk has room for a word read past its end.
      this.dv = new DataView(buf.buffer, buf.byteOffset)
      this.dvOf = buf
    }
    const dv = this.dv!
    // No word compare within reach of that end: the lines there go to the general path.
    const last = Math.min(end, dv.byteLength - J_RUN_REACH)
    while (i < stop && s < last) {
      if (!wordsAt(dv, s, W_T)) break
      let j = s + J_T.length
      const t0 = j
      let t = 0
      let c = buf[j]!
      while (c >= 48 && c <= 57) {
        t = t * 10 + (c - 48)
        c = buf[++j]!
      }
      if (j === t0 || j - t0 > 15 || (buf[t0] === 48 && j > t0 + 1)) break
      let kind: number
      let vcpu = -1
      let access = true
      if (wordsAt(dv, j, W_WRITE)) {
        kind = K_WRITE
        j += J_WRITE.length
      } else if (wordsAt(dv, j, W_READ)) {
        kind = K_READ
        j += J_READ.length
      } else if (wordsAt(dv, j, W_DMA)) {
        kind = K_DMA_WRITE
        j += J_DMA.length
        access = false
      } else if (wordsAt(dv, j, W_VHOST)) {
        kind = K_VHOST_WRITE
        j += J_VHOST.length
        access = false
      } else break
      if (access) {
        const v0 = j
        vcpu = 0
        c = buf[j]!
        while (c >= 48 && c <= 57) {
          vcpu = vcpu * 10 + (c - 48)
          c = buf[++j]!
        }
        if (j === v0 || j - v0 > 9 || (buf[v0] === 48 && j > v0 + 1)) break
      }
      if (!wordsAt(dv, j, W_GPA)) break
      j += J_GPA.length
      const g0 = j
      let gpa = 0
      let h = HEX_VALUE[buf[j]!]!
      while (h >= 0) {
        gpa = gpa * 16 + h
        h = HEX_VALUE[buf[++j]!]!
      }
      if (j === g0 || j - g0 > 13 || !wordsAt(dv, j, W_LEN)) break
      j += J_LEN.length
      const l0 = j
      let len = 0
      c = buf[j]!
      while (c >= 48 && c <= 57) {
        len = len * 10 + (c - 48)
        c = buf[++j]!
      }
      if (j === l0 || j - l0 > 15 || (buf[l0] === 48 && j > l0 + 1) || c !== 125 || buf[j + 1] !== NL) break
      if (!checker.accessOk(t, vcpu, gpa, len, line)) break
      tCol[i] = t
      kindCol[i] = kind
      vcpuCol[i] = vcpu
      gpaCol[i] = gpa
      lenCol[i] = len
      lineCol[i] = line
      i++
      line++
      s = j + 2
    }
    b.length = i
    return s
  }

  /**
   * The fast path for a JSON Lines event (scanned by JsonEventScanner) whose values are all plain:
   * integers or unescaped strings, no nested values. Returns false, with the batch unchanged, for
   * anything else and for an event that breaks a rule: `valuesRow` then decodes it and names the
   * problem, so both paths give the same result.
   */
  jsonRow(b: EventBatch, sc: JsonEventScanner, line: number): boolean {
    const type = sc.type
    const start = sc.start
    const end = sc.end
    const buf = sc.buf
    if (!sc.has(F.kind) || type[F.kind] !== JT.STRING || sc.escaped[F.kind] === 1) return false
    const kind = kindFromBytes(buf, start[F.kind]!, end[F.kind]!)
    if (kind < 0) return false
    const vals = this.vals
    let present = 0b10
    for (let m = sc.mask & ~0b10; m !== 0; m &= m - 1) {
      const f = lowestBit(m)
      const t = type[f]!
      if (t === JT.NULL) continue
      if (t === JT.STRING) {
        if (start[f] === end[f]) continue // "" is "not set", as in CSV
        if (sc.escaped[f] === 1) return false
        if (IS_NUMERIC[f] === 1) {
          const v = uintFromBytes(buf, start[f]!, end[f]!)
          if (v === BAD) return false
          vals[f] = v
        }
      } else if (t === JT.NUMBER && IS_NUMERIC[f] === 1) {
        const v = sc.int[f]!
        if (v < 0) return false
        vals[f] = v
      } else return false
      present |= 1 << f
    }
    if ((present & 1) === 0 || (present & ~KIND_FIELD_MASK[kind]!) !== 0 || (KIND_REQUIRED_MASK[kind]! & ~present) !== 0) return false
    const i = b.length
    try {
      b.t[i] = vals[0]!
      b.kind[i] = kind
      if ((present & M_VCPU) !== 0) b.vcpu[i] = vals[F.vcpu]!
      if ((present & M_SLOT) !== 0) b.slot[i] = vals[F.slot]!
      if ((present & M_GPA) !== 0) b.gpa[i] = vals[F.gpa]!
      if ((present & M_IOVA) !== 0) b.iova[i] = vals[F.iova]!
      if ((present & M_LEN) !== 0) b.len[i] = vals[F.len]!
      if ((present & M_PAGE) !== 0) b.page[i] = vals[F.page]!
      if ((present & M_COUNT) !== 0) b.count[i] = vals[F.count]!
      if ((present & M_VALUE) !== 0) b.value[i] = vals[F.value]!
      if ((present & M_RARE) !== 0) {
        if ((present & M_DEV) !== 0) this.setDev(b, i, sc.stringValue(F.dev), line)
        if ((present & M_OP) !== 0) this.setOp(b, i, kind, sc.stringValue(F.op), line)
        if ((present & M_PARAMS) !== 0) this.setParams(b, i, sc.stringValue(F.params), line)
      }
      b.line[i] = line
      this.checker.check(b, i, line)
    } catch (err) {
      clearRow(b, i)
      if (err instanceof UserError) return false
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
      if (typeof kindValue !== 'string' && isSet(kindValue)) throw new UserError('not a kind name', {file: this.file, line, field: 'kind', expected: 'a string such as "write"', found: showValue(jsonText(kindValue))})
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
    throw new UserError('not a string', {file: this.file, line, field, expected: 'a string', found: showValue(jsonText(v))})
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

/**
 * A non-negative integer from the bytes buf[s..e): decimal (at most 15 digits) or 0x hex (at most
 * 13 digits), so always below 2^53; BAD for anything else, longer numbers included (the general
 * path, parseUintText, then decides).
 */
function uintFromBytes(buf: Uint8Array, s: number, e: number): number {
  let v = 0
  if (e - s > 2 && buf[s] === 48 && (buf[s + 1]! | 32) === 120) {
    if (e - s > 15) return BAD
    for (let j = s + 2; j < e; j++) {
      const c = buf[j]!
      if (c >= 48 && c <= 57) v = v * 16 + (c - 48)
      else if ((c | 32) >= 97 && (c | 32) <= 102) v = v * 16 + ((c | 32) - 87)
      else return BAD
    }
    return v
  }
  if (e === s || e - s > 15) return BAD
  for (let j = s; j < e; j++) {
    const d = buf[j]! - 48
    if (d < 0 || d > 9) return BAD
    v = v * 10 + d
  }
  return v
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
