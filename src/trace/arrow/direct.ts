/**
 * The direct path of the Arrow reader: a record batch's columns as typed-array views of the IPC
 * message's own buffers (no table object, no per-batch schema or dictionary decoding), converted
 * into EventBatch columns one column at a time and checked with the rules of the text formats.
 *
 * It takes the flat column types (Int of any width and sign, Dictionary<Int, Utf8>, Utf8) of an
 * uncompressed little-endian stream: what migtrace writes and what pyarrow, polars or DuckDB write
 * without options. Whatever it cannot take (another type, compressed buffers, an unaligned buffer)
 * and any slice in which a value breaks a rule goes to the flechette path of read.ts instead,
 * which names the problem exactly as for a text trace: this path only ever says "yes, these rows
 * are exactly what the general path makes of them" or "not me".
 *
 * Presence rules are checked column by column: the kinds present in a slice say whether a column
 * may, must or must not have a value; a column where the kinds of the slice disagree is checked
 * row by row against its validity bitmap. Time order is checked as the time column converts.
 */
import {decodeMessage} from '@uwdata/flechette/src/decode/message.js'
import type {DictionaryBatch, RecordBatch, Schema} from '@uwdata/flechette'
import {FIELDS, FIELD_INDEX, KINDS, KIND_CODE, OPS, type EventBatch, type FieldName} from '../events.js'
import type {TraceLayout} from '../layout.js'
import type {EventChecker} from '../read/checks.js'
import type {BodyRange} from './ipc.js'
import {PARAMS_RE} from '../read/values.js'

const F = FIELD_INDEX
const NFIELDS = FIELDS.length
const NKINDS = KINDS.length

/** flechette's type ids (constants.js Type). */
const T_DICTIONARY = -1
const T_INT = 2
const T_UTF8 = 5

const OP_CODE = new Map<string, number>(OPS.map((o, i) => [o, i]))
/** Per kind: bit c set when op code c is allowed. */
const OP_ALLOWED = Int32Array.from(KINDS, (k) => ((k as {ops?: readonly string[]}).ops ?? []).reduce((m, o) => m | (1 << OP_CODE.get(o)!), 0))
/** Kinds whose whole check is EventChecker.accessOk's rules (vCPU accesses and the dirtiers). */
const ACCESS_KIND = Uint8Array.from(KINDS, (k) => (k.name === 'write' || k.name === 'read' || k.name === 'dma_write' || k.name === 'vhost_write' ? 1 : 0))

/** Per field, per kind: 0 the kind must not set the field, 1 must set it, 2 may. */
const RULE: Uint8Array[] = FIELDS.map((f) =>
  Uint8Array.from(KINDS, (k) => {
    if (f === 't_ns' || f === 'kind') return 1
    const r = (k.fields as Partial<Record<FieldName, string>>)[f]
    return r === 'required' ? 1 : r === 'optional' ? 2 : 0
  }),
)

/** Column shapes the direct path takes. */
const C_INT64 = 0
const C_INT = 1
const C_DICT = 2
const C_UTF8 = 3

/** One column of one record batch, as views of the message's body. */
export interface DirectColumn {
  shape: number
  length: number
  nullCount: number
  /** The validity bitmap; undefined when no row is null. */
  valid: Uint8Array | undefined
  /** C_INT64: the values as little-endian 32-bit halves (lo, hi). */
  halves: Int32Array | undefined
  /** C_INT and C_DICT (the indices): the values. */
  ints: Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | undefined
  /** C_INT64 unsigned / C_INT. */
  signed: boolean
  /** C_DICT: the dictionary's words (null where the dictionary has a null). */
  words: (string | null)[] | undefined
  /** C_UTF8. */
  offsets: Int32Array | undefined
  data: Uint8Array | undefined
}

/** What the direct path knows of a field of the schema. */
interface FieldPlan {
  /** FIELDS index of the column. */
  field: number
  shape: number
  bitWidth: number
  signed: boolean
  /** C_DICT: the dictionary id and its index type. */
  dictId: number
}

const utf8 = new TextDecoder('utf-8', {fatal: true})

/**
 * The record batches of one Arrow stream through the direct path: `plan` once the schema is known
 * (false: the stream's types are not for this path), `dictionary` for each dictionary message,
 * `columns` for each record batch (undefined: not this batch).
 */
export class DirectArrow {
  private plans: FieldPlan[] | undefined
  private readonly dicts = new Map<number, (string | null)[]>()
  /** The dictionaries are not all Utf8 (or one could not be read): nothing goes this way. */
  private off = false

  /** The schema message (as IpcMessage.bytes): false when its types are not for this path. */
  plan(schemaMessage: Uint8Array): boolean {
    let schema: Schema
    try {
      schema = decodeMessage(schemaMessage, 0).content as Schema
    } catch {
      return false
    }
    if (schema === undefined || schema.endianness !== 0) return false
    const plans: FieldPlan[] = []
    for (const f of schema.fields) {
      const field = (FIELD_INDEX as Record<string, number>)[f.name]
      if (field === undefined) return false
      const type = f.type as {typeId: number; bitWidth?: number; signed?: boolean; id?: number; dictionary?: {typeId: number}; indices?: {bitWidth: number; signed: boolean}; children?: unknown[]}
      if (type.typeId === T_INT) plans.push({field, shape: type.bitWidth === 64 ? C_INT64 : C_INT, bitWidth: type.bitWidth!, signed: type.signed!, dictId: -1})
      else if (type.typeId === T_UTF8) plans.push({field, shape: C_UTF8, bitWidth: 0, signed: false, dictId: -1})
      else if (type.typeId === T_DICTIONARY && type.dictionary?.typeId === T_UTF8 && type.indices !== undefined && type.indices.bitWidth <= 32)
        plans.push({field, shape: C_DICT, bitWidth: type.indices.bitWidth, signed: type.indices.signed, dictId: type.id!})
      else return false
    }
    this.plans = plans
    return true
  }

  /** Send every batch of this stream the other way. */
  disable(): void {
    this.off = true
  }

  /** A dictionary message: its words replace (or, a delta, extend) those of its id. */
  dictionary(message: Uint8Array): void {
    if (this.off) return
    try {
      const m = decodeMessage(message, 0).content as DictionaryBatch
      const d = m.data
      const body = m.body
      if (d.compression || body === undefined || d.nodes.length !== 1 || d.regions.length !== 3) throw new Error('not a flat utf8 dictionary')
      const n = d.nodes[0]!.length
      const valid = d.nodes[0]!.nullCount > 0 ? bytesOf(body, d.regions[0]!, Math.ceil(n / 8)) : undefined
      const offsets = int32sOf(body, d.regions[1]!, n + 1)
      const data = bytesOf(body, d.regions[2]!, 0)
      const words: (string | null)[] = []
      for (let i = 0; i < n; i++) words.push(valid !== undefined && ((valid[i >> 3]! >> (i & 7)) & 1) === 0 ? null : utf8.decode(data.subarray(offsets[i]!, offsets[i + 1]!)))
      const before = m.isDelta ? (this.dicts.get(m.id) ?? []) : []
      this.dicts.set(m.id, before.concat(words))
    } catch {
      this.off = true
    }
  }

  /** A record batch message's metadata, when the batch may be for this path (planned, uncompressed, a node per field). */
  private recordBatch(message: Uint8Array): RecordBatch | undefined {
    if (this.plans === undefined || this.off) return undefined
    let rb: RecordBatch
    try {
      rb = decodeMessage(message, 0).content as RecordBatch
    } catch {
      return undefined
    }
    if (rb === undefined || rb.compression || rb.nodes.length !== this.plans.length) return undefined
    return rb
  }

  /**
   * The parts of a record batch's body the direct path reads (IpcMessageReader's `bodyRanges`):
   * the buffers of the columns some row sets, a validity bitmap only where some rows are null.
   * Undefined (read it all) when the batch is not for this path. Neighbours less than MERGE_GAP
   * apart are one range: a read costs more than that many bytes.
   */
  bodyRanges(message: Uint8Array): BodyRange[] | undefined {
    const plans = this.plans
    const rb = this.recordBatch(message)
    if (plans === undefined || rb === undefined) return undefined
    const rows = rb.length ?? 0
    const want: BodyRange[] = []
    let r = 0
    for (let k = 0; k < plans.length; k++) {
      const nBuffers = plans[k]!.shape === C_UTF8 ? 3 : 2
      const node = rb.nodes[k]!
      if (r + nBuffers > rb.regions.length) return undefined
      if (node.nullCount < rows) {
        if (node.nullCount > 0) want.push(rb.regions[r]!)
        for (let j = 1; j < nBuffers; j++) want.push(rb.regions[r + j]!)
      }
      r += nBuffers
    }
    want.sort((a, b) => a.offset - b.offset)
    const out: BodyRange[] = []
    for (const w of want) {
      if (w.length === 0) continue
      const last = out[out.length - 1]
      if (last !== undefined && w.offset < last.offset + last.length + MERGE_GAP) {
        last.length = Math.max(last.length, w.offset + w.length - last.offset)
        continue
      }
      if (last !== undefined && w.offset < last.offset + last.length) return undefined
      out.push({offset: w.offset, length: w.length})
    }
    return out
  }

  /** A record batch message's columns (FIELDS order; undefined where the schema has none), or undefined. */
  columns(message: Uint8Array): {rows: number; cols: (DirectColumn | undefined)[]} | undefined {
    const plans = this.plans
    const rb = this.recordBatch(message)
    if (plans === undefined || rb === undefined) return undefined
    const body = rb.body
    if (body === undefined) return undefined
    const rows = rb.length ?? 0
    const cols: (DirectColumn | undefined)[] = new Array(NFIELDS).fill(undefined)
    let r = 0
    try {
      for (let k = 0; k < plans.length; k++) {
        const p = plans[k]!
        const node = rb.nodes[k]!
        if (node.length !== rows) return undefined
        const nBuffers = p.shape === C_UTF8 ? 3 : 2
        if (r + nBuffers > rb.regions.length) return undefined
        const vr = rb.regions[r]!
        const c: DirectColumn = {shape: p.shape, length: rows, nullCount: node.nullCount, valid: undefined, halves: undefined, ints: undefined, signed: p.signed, words: undefined, offsets: undefined, data: undefined}
        if (node.nullCount > 0 && node.nullCount < rows) c.valid = bytesOf(body, vr, Math.ceil(rows / 8))
        if (node.nullCount < rows) {
          const values = rb.regions[r + 1]!
          if (p.shape === C_INT64) c.halves = int32sOf(body, values, 2 * rows)
          else if (p.shape === C_UTF8) {
            c.offsets = int32sOf(body, values, rows + 1)
            c.data = bytesOf(body, rb.regions[r + 2]!, 0)
          } else c.ints = intView(body, values, p.bitWidth, p.signed, rows)
          if (p.shape === C_DICT) {
            c.words = this.dicts.get(p.dictId)
            if (c.words === undefined) return undefined
          }
        }
        cols[p.field] = c
        r += nBuffers
      }
    } catch {
      return undefined
    }
    return {rows, cols}
  }
}

/** Body ranges closer than this are read as one (bodyRanges). */
const MERGE_GAP = 16384

/** Where a buffer of the body starts, after checking it holds `bytes` bytes and is `align`-aligned. */
function regionAt(body: Uint8Array, r: {offset: number; length: number}, bytes: number, align: number): number {
  const at = body.byteOffset + r.offset
  if (r.offset < 0 || r.length < bytes || r.offset + r.length > body.length || at % align !== 0) throw new RangeError('bad buffer')
  return at
}

/** A buffer of the body as bytes (at least `count` of them). */
function bytesOf(body: Uint8Array, r: {offset: number; length: number}, count: number): Uint8Array {
  return new Uint8Array(body.buffer, regionAt(body, r, count, 1), r.length)
}

/** A buffer of the body as `count` 32-bit integers. */
function int32sOf(body: Uint8Array, r: {offset: number; length: number}, count: number): Int32Array {
  return new Int32Array(body.buffer, regionAt(body, r, 4 * count, 4), count)
}

function intView(body: Uint8Array, r: {offset: number; length: number}, bits: number, signed: boolean, rows: number): DirectColumn['ints'] {
  const size = bits >> 3
  const at = regionAt(body, r, rows * size, size)
  switch (bits) {
    case 8:
      return signed ? new Int8Array(body.buffer, at, rows) : new Uint8Array(body.buffer, at, rows)
    case 16:
      return signed ? new Int16Array(body.buffer, at, rows) : new Uint16Array(body.buffer, at, rows)
    case 32:
      return signed ? new Int32Array(body.buffer, at, rows) : new Uint32Array(body.buffer, at, rows)
    default:
      throw new RangeError('bad width')
  }
}

/**
 * Rows [from, from+n) of a record batch's columns into the empty batch b, checked; `first` is the
 * line (row number from 1) of row `from`. False when the slice is not for this path: b and the
 * checker are then in some state the caller resets, and calls `forget`.
 *
 * A column no row of the slice sets is not filled with its "unset" value again when the batch
 * already holds it from an earlier slice (most columns of most slices: a trace of guest writes uses
 * 5 of the 13): those fills were 40 bytes a row of stores, and the cache lines they evicted were
 * the model's bitmaps. This relies on what every consumer of a batch does: read it, never write it.
 */
export class DirectDecoder {
  /** Per kind code: whether the slice has a row of it. */
  private readonly seen = new Uint8Array(NKINDS)
  private readonly vcpus: number
  /** The batch the decoder last wrote, and per field how many of its first rows hold the unset value. */
  private batch: EventBatch | undefined
  private unset: Int32Array = new Int32Array(NFIELDS)
  /** The same per batch, when the reader fills several in turn (the pipeline's slots). */
  private readonly unsets = new WeakMap<EventBatch, Int32Array>()

  constructor(
    private readonly layout: TraceLayout,
    private readonly checker: EventChecker,
    vcpus: number,
  ) {
    this.vcpus = vcpus
  }

  /** Something else wrote batch b: no column of it is known to hold its unset value any more. */
  forget(b: EventBatch): void {
    this.unsets.get(b)?.fill(0)
  }

  /** Column f of b (rows 0..n) all unset: filled unless it already is. */
  private clear(dst: Int32Array | Float64Array | Uint8Array, f: number, none: number, n: number): void {
    if (this.unset[f]! >= n) return
    dst.fill(none, 0, n)
    this.unset[f] = n
  }

  decode(cols: (DirectColumn | undefined)[], from: number, n: number, b: EventBatch, first: number): boolean {
    if (b !== this.batch) {
      this.batch = b
      let unset = this.unsets.get(b)
      if (unset === undefined) this.unsets.set(b, (unset = new Int32Array(NFIELDS)))
      this.unset = unset
    }
    const unset = this.unset
    const seen = this.seen
    seen.fill(0)
    if (!kindColumn(cols[F.kind], from, n, b.kind, seen)) return false
    const prev = this.checker.prevTime()
    if (!timeColumn(cols[F.t_ns], from, n, b.t, prev)) return false
    const kinds = b.kind
    for (const f of NUMERIC) {
      const c = cols[f]
      const dst = b[FIELDS[f] as 'vcpu'] as Int32Array | Float64Array
      const mode = ruleMode(seen, f)
      if (c === undefined || c.nullCount === c.length) {
        if ((mode & MUST) !== 0) return false
        this.clear(dst, f, -1, n)
        continue
      }
      unset[f] = 0
      if (c.shape === C_INT64) {
        if (!int64Column(c, from, n, dst, kinds, RULE[f]!, mode, dst instanceof Int32Array ? 1 : 0x200000, dst instanceof Int32Array ? 0x7fffffff : -1)) return false
      } else if (c.shape === C_INT) {
        if (!intColumn(c, from, n, dst, kinds, RULE[f]!, mode, dst instanceof Int32Array ? 0x7fffffff : Number.MAX_SAFE_INTEGER)) return false
      } else return false
    }
    for (const [f, dst, codes, none] of [
      [F.dev, b.dev, this.layout.deviceIndex, -1],
      [F.op, b.op, OP_CODE, 0],
    ] as const) {
      const c = cols[f]
      if (c === undefined || c.nullCount === c.length) {
        if ((ruleMode(seen, f) & MUST) !== 0) return false
        this.clear(dst, f, none, n)
        continue
      }
      unset[f] = 0
      if (!dictField(c, from, n, dst, codes, none, kinds, seen, f)) return false
    }
    const opc = cols[F.op]
    if (opc !== undefined && opc.nullCount < opc.length) {
      const op = b.op
      for (let i = 0; i < n; i++) {
        const o = op[i]!
        if (o !== 0 && ((OP_ALLOWED[kinds[i]!]! >> o) & 1) === 0) return false
      }
    }
    if (!paramsColumn(cols[F.params], from, n, b, kinds, seen)) return false
    const line = b.line
    for (let i = 0; i < n; i++) line[i] = first + i
    return this.rows(b, n, first, prev)
  }

  /** The rules of each row beyond presence and time order (EventChecker's). */
  private rows(b: EventBatch, n: number, first: number, prevT: number): boolean {
    const kinds = b.kind
    const t = b.t
    const vcpu = b.vcpu
    const gpa = b.gpa
    const len = b.len
    const layout = this.layout
    const checker = this.checker
    const vcpus = this.vcpus
    // The memslots of the last accesses (EventChecker.accessOk's slotEndOf, with a two-slot cache:
    // a guest above 4 GiB has two RAM slots, and random writes alternate between them).
    // (The replay's write loop finds pages in TraceLayout.granulePage instead: src/replay/session.ts.)
    let sStart = 0
    let sEnd = 0
    let oStart = 0
    let oEnd = 0
    const prevLine = checker.prevLineNumber()
    for (let i = 0; i < n; i++) {
      const k = kinds[i]!
      if (ACCESS_KIND[k] === 1) {
        const l = len[i]!
        const g = gpa[i]!
        if (vcpu[i]! >= vcpus || l < 1) return false
        if (g < sStart || g >= sEnd) {
          const s0 = sStart
          const e0 = sEnd
          if (g >= oStart && g < oEnd) {
            sStart = oStart
            sEnd = oEnd
          } else {
            const si = layout.slotIndexOf(g)
            if (si < 0) return false
            sStart = layout.slotStartAt(si)
            sEnd = layout.slotEndAt(si)
          }
          oStart = s0
          oEnd = e0
        }
        if (g + l > sEnd) return false
        continue
      }
      // Another kind: EventChecker.check, after the row before it (the time is already checked).
      checker.setPrevious(i === 0 ? prevT : t[i - 1]!, i === 0 ? prevLine : first + i - 1)
      try {
        checker.check(b, i, first + i)
      } catch {
        return false
      }
    }
    if (n > 0) checker.setPrevious(t[n - 1]!, first + n - 1)
    return true
  }
}

/** The numeric fields other than t_ns (FIELDS indices). */
const NUMERIC = (['vcpu', 'slot', 'gpa', 'iova', 'len', 'page', 'count', 'value'] as const).map((f) => F[f])

/** Bits of ruleMode: some kind of the slice must set the field, must not, or may. */
const MUST = 1
const FORBID = 2

/** What the kinds of a slice say of field f: MUST and FORBID bits. */
function ruleMode(seen: Uint8Array, f: number): number {
  const rule = RULE[f]!
  let mode = 0
  for (let k = 0; k < NKINDS; k++) {
    if (seen[k] === 0) continue
    const r = rule[k]!
    if (r === 0) mode |= FORBID
    else if (r === 1) mode |= MUST
  }
  return mode
}

/** The kind column: dictionary words to kind codes, never null; marks the kinds seen. */
function kindColumn(c: DirectColumn | undefined, from: number, n: number, dst: Uint8Array, seen: Uint8Array): boolean {
  if (c === undefined || c.shape !== C_DICT || c.nullCount > 0) return false
  const map = codeMap(c.words!, KIND_CODE, -1)
  const idx = c.ints!
  const m = map.length
  for (let i = 0, j = from; i < n; i++, j++) {
    const w = idx[j]!
    const code = w >= 0 && w < m ? map[w]! : -1
    if (code < 0) return false
    dst[i] = code
    seen[code] = 1
  }
  return true
}

/** Dictionary words -> codes (-1 for a word `codes` does not know or that maps to `none`). */
function codeMap(words: readonly (string | null)[], codes: ReadonlyMap<string, number>, none: number): Int32Array {
  const map = new Int32Array(words.length)
  for (let w = 0; w < words.length; w++) {
    const word = words[w]
    const code = typeof word === 'string' ? codes.get(word) : undefined
    map[w] = code === undefined || code === none ? -1 : code
  }
  return map
}

/** The time column: never null, 0 .. 2^53-1, never below the row before (the first: `prev`). */
function timeColumn(c: DirectColumn | undefined, from: number, n: number, dst: Float64Array, prev: number): boolean {
  if (c === undefined || c.nullCount > 0) return false
  if (c.shape === C_INT64) {
    const w = c.halves!
    for (let i = 0, j = from; i < n; i++, j++) {
      const v = int64At(w, j, 0x200000, -1)
      if (v < 0 || v < prev) return false
      dst[i] = v
      prev = v
    }
    return true
  }
  if (c.shape !== C_INT) return false
  const v = c.ints!
  for (let i = 0, j = from; i < n; i++, j++) {
    const x = v[j]!
    if (x < 0 || x < prev) return false
    dst[i] = x
    prev = x
  }
  return true
}

/**
 * An int64 column with values: each 0 .. 2^53-1 (an int32 destination: hiEnd 1, loMax 2^31-1),
 * -1 where null; a row's validity checked against its kind's rule when the slice's kinds need it.
 * (An unsigned 64-bit value of 2^63 or more has a negative high half: out of range either way.)
 */
function int64Column(c: DirectColumn, from: number, n: number, dst: Int32Array | Float64Array, kinds: Uint8Array, rule: Uint8Array, mode: number, hiEnd: number, loMax: number): boolean {
  const w = c.halves!
  const valid = c.valid
  if (valid === undefined) {
    if ((mode & FORBID) !== 0) return false
    for (let i = 0, j = from; i < n; i++, j++) {
      const x = int64At(w, j, hiEnd, loMax)
      if (x < 0) return false
      dst[i] = x
    }
    return true
  }
  const check = mode !== 0
  for (let i = 0, j = from; i < n; i++, j++) {
    const bit = (valid[j >> 3]! >> (j & 7)) & 1
    if (check) {
      const r = rule[kinds[i]!]!
      if (r !== 2 && r !== bit) return false
    }
    if (bit === 0) {
      dst[i] = -1
      continue
    }
    const x = int64At(w, j, hiEnd, loMax)
    if (x < 0) return false
    dst[i] = x
  }
  return true
}

/** Row j of an int64 column held as int32 halves (little-endian): its value, or -1 when out of range (int64Column's bounds). */
function int64At(w: Int32Array, j: number, hiEnd: number, loMax: number): number {
  const lo = w[2 * j]! >>> 0
  const hi = w[2 * j + 1]!
  if (hi < 0 || hi >= hiEnd || (loMax >= 0 && lo > loMax)) return -1
  return hi * 4294967296 + lo
}

/** A column of 8-, 16- or 32-bit integers, as int64Column; `max` the destination's largest value. */
function intColumn(c: DirectColumn, from: number, n: number, dst: Int32Array | Float64Array, kinds: Uint8Array, rule: Uint8Array, mode: number, max: number): boolean {
  const v = c.ints!
  const valid = c.valid
  if (valid === undefined && (mode & FORBID) !== 0) return false
  const check = valid !== undefined && mode !== 0
  for (let i = 0, j = from; i < n; i++, j++) {
    if (valid !== undefined) {
      const bit = (valid[j >> 3]! >> (j & 7)) & 1
      if (check) {
        const r = rule[kinds[i]!]!
        if (r !== 2 && r !== bit) return false
      }
      if (bit === 0) {
        dst[i] = -1
        continue
      }
    }
    const x = v[j]!
    if (x < 0 || x > max) return false
    dst[i] = x
  }
  return true
}

/** A dictionary column with values (dev, op) into codes through `codes`, `none` where null, with the presence rules of field f. */
function dictField(c: DirectColumn, from: number, n: number, dst: Uint8Array | Int32Array, codes: ReadonlyMap<string, number>, none: number, kinds: Uint8Array, seen: Uint8Array, f: number): boolean {
  const mode = ruleMode(seen, f)
  if (c.shape !== C_DICT) return false
  const valid = c.valid
  if (valid === undefined && (mode & FORBID) !== 0) return false
  const rule = RULE[f]!
  const check = valid !== undefined && mode !== 0
  const map = codeMap(c.words!, codes, none)
  const m = map.length
  const idx = c.ints!
  for (let i = 0, j = from; i < n; i++, j++) {
    if (valid !== undefined) {
      const bit = (valid[j >> 3]! >> (j & 7)) & 1
      if (check) {
        const r = rule[kinds[i]!]!
        if (r !== 2 && r !== bit) return false
      }
      if (bit === 0) {
        dst[i] = none
        continue
      }
    }
    const w = idx[j]!
    const code = w >= 0 && w < m ? map[w]! : -1
    if (code < 0) return false
    dst[i] = code
  }
  return true
}

/** The params column: each value a params text (PARAMS_RE), with the presence rules. */
function paramsColumn(c: DirectColumn | undefined, from: number, n: number, b: EventBatch, kinds: Uint8Array, seen: Uint8Array): boolean {
  const mode = ruleMode(seen, F.params)
  if (c === undefined || c.nullCount === c.length) return (mode & MUST) === 0
  if (c.shape !== C_UTF8) return false
  const valid = c.valid
  if (valid === undefined && (mode & FORBID) !== 0) return false
  const rule = RULE[F.params]!
  const offsets = c.offsets!
  const data = c.data!
  for (let i = 0, j = from; i < n; i++, j++) {
    const bit = valid === undefined ? 1 : (valid[j >> 3]! >> (j & 7)) & 1
    const r = rule[kinds[i]!]!
    if (r !== 2 && r !== bit) return false
    if (bit === 0) continue
    const s = offsets[j]!
    const e = offsets[j + 1]!
    if (s < 0 || e < s || e > data.length) return false
    let v: string
    try {
      v = utf8.decode(data.subarray(s, e))
    } catch {
      return false
    }
    if (!PARAMS_RE.test(v)) return false
    b.params.set(i, v)
  }
  return true
}
