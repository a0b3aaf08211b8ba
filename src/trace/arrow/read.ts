/**
 * Reading the events of an Arrow trace: record batch by record batch (IpcMessageReader), each
 * decoded by flechette into typed-array columns, then converted column by column into EventBatch
 * columns and checked row by row with the rules of the text formats (presence of fields by kind,
 * op words, params, EventChecker).
 *
 * The column-wise fast path takes the types migtrace writes and any integer or dictionary-of-utf8
 * column another tool may have written. When a batch has anything else (another column type, a
 * negative or too large number, a word no dictionary maps, a row that breaks a rule), the batch
 * is decoded again row by row through RowDecoder.valuesRow, the path JSON Lines uses: that names
 * the problem exactly as for a text trace, with the event's row number (from 1) as its line.
 */
import type {Table} from '@uwdata/flechette'
import {FIELDS, FIELD_INDEX, KINDS, KIND_CODE, KIND_FIELD_MASK, KIND_REQUIRED_MASK, OPS, resetBatch, type EventBatch} from '../events.js'
import type {TraceLayout} from '../layout.js'
import {UserError} from '../../util/errors.js'
import type {RowDecoder} from '../read/decode.js'
import {firstBatch, type ReadOptions} from '../read/lines.js'
import {PARAMS_RE} from '../read/values.js'
import {IpcMessageReader, MSG_DICTIONARY, MSG_RECORD_BATCH, MSG_SCHEMA} from './ipc.js'
import {WIDE_FIELDS} from './constants.js'
import {DirectArrow, DirectDecoder} from './direct.js'

const F = FIELD_INDEX
/** flechette's type ids (constants.js Type), as direct.ts has them. */
const T_INT = 2
const T_DICTIONARY = -1
const NFIELDS = FIELDS.length
const M_OP = 1 << F.op
const M_PARAMS = 1 << F.params
const OP_CODE = new Map<string, number>(OPS.map((o, i) => [o, i]))
/** Per kind: bit c set when op code c is allowed. */
const OP_ALLOWED = KINDS.map((k) => ((k as {ops?: readonly string[]}).ops ?? []).reduce((m, o) => m | (1 << OP_CODE.get(o)!), 0))

/**
 * Kinds whose whole check is EventChecker.accessOk's (time, vCPU if set, len >= 1, the range inside
 * one memslot): the guest's accesses and the dirtiers, whose `dev` may name any device.
 */
const ACCESS_KIND = Uint8Array.from(KINDS, (k) => (k.name === 'write' || k.name === 'read' || k.name === 'dma_write' || k.name === 'vhost_write' ? 1 : 0))

/** A column's data in one record batch (flechette's Batch, with the fields this file reads). */
interface ColumnData {
  type: unknown
  at(index: number): unknown
  length: number
  nullCount: number
  validity?: Uint8Array
  values?: ArrayLike<number | bigint> & ArrayBufferView
  offsets?: Int32Array
  cache?: unknown[]
}

/**
 * An Arrow trace's pass over its events. Each record batch goes the direct path (direct.ts: views
 * of the message's buffers) when it can, else through flechette's table; a slice the direct path
 * does not take is decoded again from flechette's columns (ArrowBatchDecoder), which names any
 * problem. `direct: false` (tests) sends everything through flechette.
 */
export async function* arrowEvents(src: {path: string; gzip: boolean; kind: 'file' | 'stream'}, layout: TraceLayout, decoder: RowDecoder, opts: ReadOptions & {direct?: boolean}): AsyncGenerator<EventBatch> {
  let b = firstBatch(opts)
  const supply = opts.supply
  const dec = new ArrowBatchDecoder(layout, decoder, src.path, b.t.length)
  const checker = decoder.checker
  const direct = opts.direct === false ? undefined : new DirectArrow()
  const fast = new DirectDecoder(layout, checker, layout.header.vcpus)
  let planned = false
  const onError = opts.onError
  const report = (e: unknown): boolean => {
    if (!(e instanceof UserError) || onError === undefined) throw e
    return onError(e) !== false
  }
  // Only the buffers the direct path reads, while it takes the batches.
  const reader = await IpcMessageReader.open(src.path, src.gzip, src.kind, {bodyRanges: direct === undefined ? undefined : (m) => (planned ? direct.bodyRanges(m) : undefined)})
  checker.reset()
  let schema: Uint8Array | undefined
  /** Dictionary messages in stream order: a replacement drops the earlier ones of its id. */
  let dicts: {id: number; bytes: Uint8Array}[] = []
  let rows = 0
  try {
    for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
      if (m.type === MSG_SCHEMA) {
        schema ??= m.bytes.slice()
        continue
      }
      if (m.type === MSG_DICTIONARY) {
        if (!m.isDelta) dicts = dicts.filter((d) => d.id !== m.dictId)
        const bytes = m.bytes.slice()
        dicts.push({id: m.dictId, bytes})
        direct?.dictionary(bytes)
        continue
      }
      if (m.type !== MSG_RECORD_BATCH) continue
      schema ??= await (await import('./open.js')).schemaFromFooter(src)
      if (schema === undefined) throw new UserError('not a valid Arrow IPC file: a record batch before the schema', {file: src.path})
      if (!planned) {
        planned = true
        if (direct !== undefined && !direct.plan(schema)) direct.disable()
      }
      const views = direct?.columns(m.bytes)
      /** flechette's columns of the batch, made when first needed. */
      let cols: (ColumnData | undefined)[] | undefined
      let n = views?.rows ?? 0
      const table = async (): Promise<(ColumnData | undefined)[]> => {
        // flechette's whole table decoder, loaded when a batch first needs it (the direct path
        // takes every batch migtrace writes; the reader's thread starts faster without it).
        const {tableFromIPC} = await import('@uwdata/flechette')
        await m.complete()
        let t: Table
        try {
          t = tableFromIPC([schema!, ...dicts.map((d) => d.bytes), m.bytes], {useBigInt: true})
        } catch (e) {
          throw new UserError(`not a valid Arrow record batch (${(e as Error).message})`, {file: src.path, line: rows + 1})
        }
        n = t.numRows
        return FIELDS.map((f) => t.getChild(f)?.data[0] as unknown as ColumnData | undefined)
      }
      if (views === undefined) cols = await table()
      for (let from = 0; from < n; from += b.t.length) {
        const count = Math.min(b.t.length, n - from)
        let done = false
        if (views !== undefined) {
          const saved = checker.state()
          if (fast.decode(views.cols, from, count, b, rows + from + 1)) {
            b.length = count
            done = true
          } else {
            checker.restore(saved)
            b.params.clear()
            fast.forget(b)
          }
        }
        if (!done) {
          fast.forget(b)
          if (!dec.decode((cols ??= await table()), from, count, b, rows, report)) return
        }
        if (b.length > 0) {
          yield b
          if (supply !== undefined) b = supply.next(b)
          // Every column of the next slice is written whole (or reset by the general path).
          b.length = 0
          b.params.clear()
        }
      }
      rows += n
    }
  } finally {
    await reader.close()
  }
}

export class ArrowBatchDecoder {
  /** Per row of a slice: bits of the fields set (FIELDS order). */
  private readonly present: Int32Array
  private readonly values: unknown[] = new Array(NFIELDS)

  constructor(
    private readonly layout: TraceLayout,
    private readonly decoder: RowDecoder,
    private readonly file: string,
    capacity: number,
  ) {
    this.present = new Int32Array(capacity)
  }

  /**
   * Decode rows [from, from+n) of a record batch's columns into the empty batch b; `row0` is the
   * number of rows before the record batch. Returns false when reading must stop (onError said so).
   */
  decode(cols: (ColumnData | undefined)[], from: number, n: number, b: EventBatch, row0: number, report: (e: unknown) => boolean): boolean {
    const saved = this.decoder.checker.state()
    if (this.fast(cols, from, n, b, row0)) return true
    // Something in this slice needs the general path: start it over, row by row.
    this.decoder.checker.restore(saved)
    b.length = n
    resetBatch(b)
    const values = this.values
    for (let i = 0; i < n; i++) {
      for (let f = 0; f < NFIELDS; f++) values[f] = valueAt(cols[f], from + i)
      try {
        this.decoder.valuesRow(b, values, row0 + from + i + 1)
      } catch (e) {
        if (!report(e)) return false
      }
    }
    return true
  }

  /** The column-wise path: false (with b and the checker in some state) when it cannot take the slice. */
  private fast(cols: (ColumnData | undefined)[], from: number, n: number, b: EventBatch, row0: number): boolean {
    const present = this.present
    present.fill(0, 0, n)
    const t = cols[F.t_ns]
    const kind = cols[F.kind]
    if (t === undefined || kind === undefined || t.nullCount > 0 || kind.nullCount > 0) return false
    // Bits of the fields every row of the slice has; the others are per row in present[].
    let all = 0b11
    const add = (r: number, bit: number): boolean => {
      if (r === ALL) all |= bit
      return r !== FAIL
    }
    if (!add(intColumn(t, from, n, b.t, present, 1), 1)) return false
    if (!add(dictColumn(kind, from, n, b.kind, KIND_CODE, -1, present, 2), 2)) return false
    for (const f of ['vcpu', 'slot'] as const) if (!add(intColumn(cols[F[f]], from, n, b[f], present, 1 << F[f]), 1 << F[f])) return false
    for (const f of WIDE_FIELDS) if (!add(intColumn(cols[F[f]], from, n, b[f], present, 1 << F[f]), 1 << F[f])) return false
    if (!add(dictColumn(cols[F.dev], from, n, b.dev, this.layout.deviceIndex, -1, present, 1 << F.dev), 1 << F.dev)) return false
    if (!add(dictColumn(cols[F.op], from, n, b.op, OP_CODE, 0, present, M_OP), M_OP)) return false
    const params = cols[F.params]
    if (params !== undefined && params.nullCount < params.length) {
      for (let i = 0; i < n; i++) {
        const v = params.at(from + i)
        if (v === null) continue
        if (typeof v !== 'string' || !PARAMS_RE.test(v)) return false
        b.params.set(i, v)
        present[i]! |= M_PARAMS
      }
    }
    const kinds = b.kind
    const ops = b.op
    const tCol = b.t
    const vcpuCol = b.vcpu
    const gpaCol = b.gpa
    const lenCol = b.len
    const line = b.line
    const checker = this.decoder.checker
    const first = row0 + from + 1
    b.length = n
    try {
      for (let i = 0; i < n; i++) {
        const k = kinds[i]!
        const p = present[i]! | all
        if ((p & ~KIND_FIELD_MASK[k]!) !== 0 || (KIND_REQUIRED_MASK[k]! & ~p) !== 0) return false
        if ((p & M_OP) !== 0 && ((OP_ALLOWED[k]! >> ops[i]!) & 1) === 0) return false
        line[i] = first + i
        // Accesses (most rows) through the checker's yes/no test of the same rules, the full
        // check only to name a problem: half the cost per row of `check`'s switch and calls.
        if (ACCESS_KIND[k] === 1 && checker.accessOk(tCol[i]!, vcpuCol[i]!, gpaCol[i]!, lenCol[i]!, first + i)) continue
        checker.check(b, i, first + i)
      }
    } catch (e) {
      if (e instanceof UserError) return false
      throw e
    }
    return true
  }
}

/** What a column conversion found: it cannot convert, no row has a value, all do, some do. */
const FAIL = -1
const NONE = 0
const ALL = 1
const SOME = 2

/**
 * An integer column into a batch column (-1 where null); for SOME, sets `bit` in present[] for the
 * rows that have a value. FAIL for another type or a value outside 0 .. 2^53-1 (an int32
 * destination: 0 .. 2^31-1). A missing column is all null.
 */
function intColumn(c: ColumnData | undefined, from: number, n: number, dst: Float64Array | Int32Array, present: Int32Array, bit: number): number {
  if (c === undefined || c.nullCount === c.length) {
    dst.fill(-1, 0, n)
    return NONE
  }
  const type = c.type as {typeId: number; bitWidth?: number; signed?: boolean}
  const vals = c.values
  if (type.typeId !== T_INT || vals === undefined) return FAIL
  const valid = c.nullCount > 0 ? c.validity : undefined
  const narrow = dst instanceof Int32Array
  if (type.bitWidth === 64) {
    // As 32-bit halves: a negative high half is a negative int64 or a uint64 of 2^63 or more,
    // out of range either way.
    const w = new Int32Array(vals.buffer, vals.byteOffset, 2 * c.length)
    const hiEnd = narrow ? 1 : 0x200000
    const loMax = narrow ? 0x7fffffff : 0xffffffff
    if (valid === undefined) {
      for (let i = 0, j = 2 * from; i < n; i++, j += 2) {
        const lo = w[j]! >>> 0
        const hi = w[j + 1]!
        if (hi < 0 || hi >= hiEnd || lo > loMax) return FAIL
        dst[i] = hi * 4294967296 + lo
      }
      return ALL
    }
    for (let i = 0, j = from; i < n; i++, j++) {
      if (((valid[j >> 3]! >> (j & 7)) & 1) === 0) {
        dst[i] = -1
        continue
      }
      const lo = w[2 * j]! >>> 0
      const hi = w[2 * j + 1]!
      if (hi < 0 || hi >= hiEnd || lo > loMax) return FAIL
      dst[i] = hi * 4294967296 + lo
      present[i]! |= bit
    }
    return SOME
  }
  const v = vals as unknown as ArrayLike<number>
  const max = narrow ? 0x7fffffff : Number.MAX_SAFE_INTEGER
  if (valid === undefined) {
    for (let i = 0, j = from; i < n; i++, j++) {
      const x = v[j]!
      if (x < 0 || x > max) return FAIL
      dst[i] = x
    }
    return ALL
  }
  for (let i = 0, j = from; i < n; i++, j++) {
    if (((valid[j >> 3]! >> (j & 7)) & 1) === 0) {
      dst[i] = -1
      continue
    }
    const x = v[j]!
    if (x < 0 || x > max) return FAIL
    dst[i] = x
    present[i]! |= bit
  }
  return SOME
}

/**
 * A dictionary-of-utf8 column into codes through `codes` (word -> code), `none` where null; for
 * SOME, sets `bit` in present[] for the rows that have a value. FAIL for another type, or a word
 * in use that `codes` does not know or that maps to `none` (the empty op word). A missing column
 * is all null.
 */
function dictColumn(c: ColumnData | undefined, from: number, n: number, dst: Uint8Array | Int32Array, codes: ReadonlyMap<string, number>, none: number, present: Int32Array, bit: number): number {
  if (c === undefined || c.nullCount === c.length) {
    dst.fill(none, 0, n)
    return NONE
  }
  const type = c.type as {typeId: number}
  const words = c.cache
  const idx = c.values as unknown as ArrayLike<number> | undefined
  if (type.typeId !== T_DICTIONARY || words === undefined || idx === undefined || typeof idx[0] === 'bigint') return FAIL
  const map = new Int32Array(words.length)
  for (let w = 0; w < words.length; w++) {
    const word = words[w]
    const code = typeof word === 'string' ? codes.get(word) : undefined
    map[w] = code === undefined || code === none ? -1 : code
  }
  const valid = c.nullCount > 0 ? c.validity : undefined
  const m = map.length
  for (let i = 0, j = from; i < n; i++, j++) {
    if (valid !== undefined && ((valid[j >> 3]! >> (j & 7)) & 1) === 0) {
      dst[i] = none
      continue
    }
    const w = idx[j]!
    const code = w >= 0 && w < m ? map[w]! : -1
    if (code < 0) return FAIL
    dst[i] = code
    if (valid !== undefined) present[i]! |= bit
  }
  return valid === undefined ? ALL : SOME
}

/** A row's value of a column for RowDecoder.valuesRow: null when not set, 64-bit integers exact. */
function valueAt(c: ColumnData | undefined, i: number): unknown {
  if (c === undefined) return null
  const v = c.at(i)
  if (typeof v === 'bigint') return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : String(v)
  return v
}
