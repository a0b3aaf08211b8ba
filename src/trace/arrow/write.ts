/**
 * Writing a trace as an Arrow IPC file, batch by batch. Events are converted column by column
 * from EventBatch's typed arrays into the Arrow layout (int64 as two 32-bit halves, a validity
 * bitmap where a field is not set) in one of two staging sets of buffers: while one set's record
 * batch is on its way to the file, the next one fills the other. Memory stays at two record
 * batches however long the trace.
 *
 * Flechette's message-level encoder writes the flatbuffers (schema, dictionaries, record batches,
 * footer); see flechette-internals.d.ts for why those pieces and not tableToIPC.
 */
import {Builder} from '@uwdata/flechette/src/encode/builder.js'
import {encodeDictionaryBatch} from '@uwdata/flechette/src/encode/dictionary-batch.js'
import {writeFooter} from '@uwdata/flechette/src/encode/footer.js'
import {writeMessage} from '@uwdata/flechette/src/encode/message.js'
import {encodeRecordBatch} from '@uwdata/flechette/src/encode/record-batch.js'
import {encodeSchema} from '@uwdata/flechette/src/encode/schema.js'
import type {Schema} from '@uwdata/flechette'
import {FIELD_INDEX, KINDS, type EventBatch} from '../events.js'
import {ARROW_FILE_MAGIC, ARROW_KINDS_KEY, DICT_DEV, DICT_KIND, DICT_OP, KIND_WORDS, OP_WORDS, WIDE_FIELDS, devIndexBits, traceSchema} from './schema.js'

/** Arrow IPC message types (MessageHeader in Message.fbs). */
const MSG_SCHEMA = 1
const MSG_DICTIONARY = 2
const MSG_RECORD_BATCH = 3
/** End of stream: continuation marker and a zero metadata length. */
const EOS = Uint8Array.of(255, 255, 255, 255, 0, 0, 0, 0)

/** Events per record batch: large enough that per-batch costs vanish, small enough to stream. */
export const ARROW_BATCH_ROWS = 65536

/** Hands encoded bytes to the file; resolves once they were consumed (their memory may be reused). */
export type ChunkSink = (chunks: Uint8Array[]) => Promise<void>

interface Block {
  offset: number
  metadataLength: number
  bodyLength: number
}

interface RecordBatchData {
  length: number
  nodes: {length: number; nullCount: number}[]
  regions: {offset: number; length: number}[]
  variadic: number[]
  buffers: Uint8Array[]
  byteLength: number
}

/** One set of column buffers, filled row by row range and written as one record batch. */
class Staging {
  rows = 0
  /** Its rows went out as a record batch: wait for `written`, then reset, before filling it again. */
  sent = false
  /** Resolves when the last record batch made from this set was written. */
  written: Promise<void> = Promise.resolve()
  readonly t: Int32Array
  readonly kind: Int8Array
  readonly vcpu: Int32Array
  readonly slot: Int32Array
  readonly dev: Int16Array | Int32Array
  readonly op: Int8Array
  readonly wide: Int32Array[]
  readonly paramsOffsets: Int32Array
  paramsData: Uint8Array
  paramsBytes = 0
  /** Validity bitmaps and null counts, by column: vcpu, dev, slot, the wide ones, op, params. */
  readonly valid: Uint8Array[]
  readonly nulls: Int32Array
  /**
   * By the same index (params excepted): whether the column's values buffer holds its rows. While
   * every row so far is null it does not (its contents are stale) and the record batch takes its
   * zeros from the encoder's shared zero buffer: a column no event sets is never filled or scanned
   * twice, and the kernel copies its bytes from one buffer that stays in cache.
   */
  readonly dense: Uint8Array

  constructor(readonly capacity: number, devBits: 16 | 32) {
    this.t = new Int32Array(2 * capacity)
    this.kind = new Int8Array(capacity)
    this.vcpu = new Int32Array(capacity)
    this.slot = new Int32Array(capacity)
    this.dev = devBits === 16 ? new Int16Array(capacity) : new Int32Array(capacity)
    this.op = new Int8Array(capacity)
    this.wide = WIDE_FIELDS.map(() => new Int32Array(2 * capacity))
    this.paramsOffsets = new Int32Array(capacity + 1)
    this.paramsData = new Uint8Array(1024)
    this.valid = Array.from({length: NULLABLE}, () => new Uint8Array((capacity + 7) >> 3))
    this.nulls = new Int32Array(NULLABLE)
    this.dense = new Uint8Array(NULLABLE)
  }

  reset(): void {
    this.rows = 0
    this.sent = false
    this.paramsBytes = 0
    for (const v of this.valid) v.fill(0)
    this.nulls.fill(0)
    this.dense.fill(0)
  }
}

/** Indices into Staging.valid / nulls. */
const V_VCPU = 0
const V_DEV = 1
const V_SLOT = 2
const V_WIDE = 3
const V_OP = V_WIDE + WIDE_FIELDS.length
const V_PARAMS = V_OP + 1
const NULLABLE = V_PARAMS + 1

/** EventBatch.unset bits of the nullable fixed-width columns. */
const F_VCPU = 1 << FIELD_INDEX.vcpu
const F_DEV = 1 << FIELD_INDEX.dev
const F_SLOT = 1 << FIELD_INDEX.slot
const F_OP = 1 << FIELD_INDEX.op
const F_WIDE: readonly number[] = WIDE_FIELDS.map((f) => 1 << FIELD_INDEX[f])

/** Whether no event of op[from, to) has an op (all 0). */
function allNone(op: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (op[i] !== 0) return false
  return true
}

/** A flechette Sink that collects what the builder writes (the builder's own buffers are fresh each time). */
export function collector(into: Uint8Array[]): ConstructorParameters<typeof Builder>[0] {
  return {write: (bytes: Uint8Array) => void into.push(bytes), pad: (n: number) => void into.push(new Uint8Array(n)), finish: () => null}
}

const bytesOf = (a: ArrayBufferView, n: number): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, n)

/** Whether no event of src[from, to) sets the field (all -1). */
function allUnset(src: Float64Array | Int32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (src[i]! >= 0) return false
  return true
}

/** Set bits [from, to) of a bitmap (LSB first, as Arrow's validity). */
function setBits(bits: Uint8Array, from: number, to: number): void {
  let i = from
  while (i < to && (i & 7) !== 0) {
    bits[i >> 3]! |= 1 << (i & 7)
    i++
  }
  const whole = (to - i) >> 3
  if (whole > 0) {
    bits.fill(255, i >> 3, (i >> 3) + whole)
    i += whole << 3
  }
  for (; i < to; i++) bits[i >> 3]! |= 1 << (i & 7)
}

/**
 * The validity bits of src[from, to) from row r, once the values are in: all at once when no
 * event left the field unset (the common case: a column either always or never set), else the
 * set ones one by one.
 */
function putValid(src: Float64Array | Int32Array | Uint8Array, unsetBelow: number, from: number, to: number, valid: Uint8Array, r: number, nulls: number): void {
  if (nulls === 0) return setBits(valid, r, r + to - from)
  for (let i = from, k = r; i < to; i++, k++) if (src[i]! >= unsetBelow) valid[k >> 3]! |= 1 << (k & 7)
}

/**
 * int32 column with -1 for "not set": values, validity bits; returns the null count. `unset`: the
 * producer says no event sets it (EventBatch.unset).
 */
function putInt32(s: Staging, c: number, src: Int32Array, from: number, to: number, dst: Int32Array | Int16Array, unset: boolean): void {
  const r = s.rows
  const n = to - from
  if (unset || allUnset(src, from, to)) {
    // The validity bits stay clear (reset); the values are zeros, written only once the column has
    // some (dense).
    if (s.dense[c]) dst.fill(0, r, r + n)
    s.nulls[c]! += n
    return
  }
  if (!s.dense[c]) {
    dst.fill(0, 0, r)
    s.dense[c] = 1
  }
  let nulls = 0
  for (let i = from, k = r; i < to; i++, k++) {
    const v = src[i]!
    // v, or 0 for -1 (unset values are -1: `v >> 31` is all ones for them, 0 for set ones).
    dst[k] = v & ~(v >> 31)
    nulls += v >>> 31
  }
  putValid(src, 0, from, to, s.valid[c]!, r, nulls)
  s.nulls[c]! += nulls
}

/** A Float64 column with -1 for "not set" as int64 (low and high 32-bit halves, little-endian). */
function putInt64(s: Staging, c: number, src: Float64Array, from: number, to: number, dst: Int32Array, unset: boolean): void {
  const r = s.rows
  const n = to - from
  if (unset || allUnset(src, from, to)) {
    if (s.dense[c]) dst.fill(0, 2 * r, 2 * (r + n))
    s.nulls[c]! += n
    return
  }
  if (!s.dense[c]) {
    dst.fill(0, 0, 2 * r)
    s.dense[c] = 1
  }
  let nulls = 0
  for (let i = from, k = 2 * r; i < to; i++, k += 2) {
    const v = src[i]!
    if (v >= 0) {
      // v < 2^53: `>>> 0` is exactly its low 32 bits.
      dst[k] = v >>> 0
      dst[k + 1] = (v / 4294967296) | 0
    } else {
      dst[k] = 0
      dst[k + 1] = 0
      nulls++
    }
  }
  putValid(src, 0, from, to, s.valid[c]!, r, nulls)
  s.nulls[c]! += nulls
}

/** A utf8 column of all the given strings (a dictionary's values). */
function utf8Column(words: readonly string[]): RecordBatchData {
  const offsets = new Int32Array(words.length + 1)
  const parts = words.map((w) => Buffer.from(w, 'utf8'))
  parts.forEach((p, i) => (offsets[i + 1] = offsets[i]! + p.length))
  return assemble(words.length, [{nullCount: 0, buffers: [new Uint8Array(0), bytesOf(offsets, offsets.byteLength), Buffer.concat(parts)]}])
}

/** Nodes, buffers and their 8-byte-aligned places in the message body. */
function assemble(length: number, columns: {nullCount: number; buffers: Uint8Array[]}[]): RecordBatchData {
  const nodes: RecordBatchData['nodes'] = []
  const regions: RecordBatchData['regions'] = []
  const buffers: Uint8Array[] = []
  let offset = 0
  for (const c of columns) {
    nodes.push({length, nullCount: c.nullCount})
    for (const b of c.buffers) {
      regions.push({offset, length: b.byteLength})
      buffers.push(b)
      offset += (b.byteLength + 7) & ~7
    }
  }
  return {length, nodes, regions, variadic: [], buffers, byteLength: offset}
}

export class ArrowTraceEncoder {
  private readonly builder: Builder
  /** Bytes the builder produced and not yet handed to the sink. */
  private pending: Uint8Array[] = []
  private schema?: Schema
  private dictBlocks: Block[] = []
  private readonly recordBlocks: Block[] = []
  private readonly sets: Staging[]
  private cur = 0
  private readonly kindCounts = new Float64Array(KINDS.length)
  private readonly devBits: 16 | 32
  /** Zeros, as long as the widest column of a full record batch: the values of an all-null column. */
  private readonly zeros: Uint8Array
  /** Where the record batches start when the file's start is put in front at the end (prefix()). */
  private blockShift = 0

  /** @param devNames device ids by index (EventBatch.dev values) */
  constructor(
    private readonly sink: ChunkSink,
    private readonly devNames: readonly string[],
    batchRows = ARROW_BATCH_ROWS,
  ) {
    this.devBits = devIndexBits(devNames.length)
    this.builder = new Builder(collector(this.pending))
    this.sets = [new Staging(batchRows, this.devBits), new Staging(batchRows, this.devBits)]
    this.zeros = new Uint8Array(8 * batchRows)
  }

  /**
   * The file's start: magic, schema (with the header, serialized as a CSV trace's first line
   * holds it) and the three dictionaries.
   */
  async start(headerJson: string): Promise<void> {
    this.writePrefix(this.builder, headerJson)
    await this.handOver()
  }

  /**
   * For a writer that learns its header only at the end: the file's start as bytes, to be put in
   * front of everything written so far (which then began with the first record batch). Call it
   * instead of start(), before finish().
   */
  prefix(headerJson: string): Uint8Array {
    const parts: Uint8Array[] = []
    const b = new Builder(collector(parts))
    this.writePrefix(b, headerJson)
    this.blockShift = b.outputBytes
    return Buffer.concat(parts)
  }

  private writePrefix(b: Builder, headerJson: string): void {
    this.schema = traceSchema(headerJson, this.devNames.length)
    b.addBuffer(ARROW_FILE_MAGIC)
    writeMessage(b, MSG_SCHEMA, encodeSchema(b, this.schema), 0)
    const dicts: [number, readonly string[]][] = [
      [DICT_KIND, KIND_WORDS],
      [DICT_DEV, this.devNames],
      [DICT_OP, OP_WORDS],
    ]
    this.dictBlocks = []
    for (const [id, words] of dicts) {
      const data = utf8Column(words)
      writeMessage(b, MSG_DICTIONARY, encodeDictionaryBatch(b, {id, isDelta: false, data}, null), data.byteLength, this.dictBlocks)
      for (const buf of data.buffers) b.addBuffer(buf)
    }
  }

  /** Append a batch's events; full record batches go to the sink. */
  async write(b: EventBatch): Promise<void> {
    let from = 0
    while (from < b.length) {
      const s = this.sets[this.cur]!
      if (s.sent) {
        await s.written
        s.reset()
      }
      const n = Math.min(b.length - from, s.capacity - s.rows)
      this.append(s, b, from, from + n)
      from += n
      if (s.rows === s.capacity) this.flush(s)
    }
  }

  /** The last record batch, the end-of-stream marker and the footer (with the kind counts). */
  async finish(): Promise<void> {
    const s = this.sets[this.cur]!
    if (!s.sent && s.rows > 0) this.flush(s)
    const counts: Record<string, number> = {}
    this.kindCounts.forEach((n, k) => {
      if (n > 0) counts[KIND_WORDS[k]!] = n
    })
    if (this.schema === undefined) throw new Error('bug: finish() before start() or prefix()')
    const b = this.builder
    b.addBuffer(EOS)
    const records = this.recordBlocks.map((r) => ({...r, offset: r.offset + this.blockShift}))
    writeFooter(b, this.schema, this.dictBlocks, records, new Map([[ARROW_KINDS_KEY, JSON.stringify(counts)]]))
    await this.handOver()
    await Promise.all(this.sets.map((x) => x.written))
  }

  private async handOver(): Promise<void> {
    const chunks = this.pending.splice(0)
    await this.sink(chunks)
  }

  private append(s: Staging, b: EventBatch, from: number, to: number): void {
    const r = s.rows
    const n = to - from
    const t = s.t
    const bt = b.t
    for (let i = from, k = 2 * r; i < to; i++, k += 2) {
      const v = bt[i]!
      t[k] = v >>> 0
      t[k + 1] = (v / 4294967296) | 0
    }
    // Kind counts by runs of one kind (a trace is mostly long runs of writes): a counter in a
    // register rather than a load and store per event.
    const kinds = b.kind
    const counts = this.kindCounts
    let run = kinds[from]!
    let runFrom = from
    for (let i = from + 1; i < to; i++) {
      const k = kinds[i]!
      if (k !== run) {
        counts[run]! += i - runFrom
        run = k
        runFrom = i
      }
    }
    if (to > from) counts[run]! += to - runFrom
    s.kind.set(kinds.subarray(from, to), r)
    const unset = b.unset ?? 0
    putInt32(s, V_VCPU, b.vcpu, from, to, s.vcpu, (unset & F_VCPU) !== 0)
    putInt32(s, V_DEV, b.dev, from, to, s.dev, (unset & F_DEV) !== 0)
    putInt32(s, V_SLOT, b.slot, from, to, s.slot, (unset & F_SLOT) !== 0)
    for (let w = 0; w < WIDE_FIELDS.length; w++) putInt64(s, V_WIDE + w, b[WIDE_FIELDS[w]!], from, to, s.wide[w]!, (unset & F_WIDE[w]!) !== 0)
    // op: code 0 is "none" (null); the dictionary holds the words from code 1 on.
    const op = b.op
    if ((unset & F_OP) !== 0 || allNone(op, from, to)) {
      if (s.dense[V_OP]) s.op.fill(0, r, r + n)
      s.nulls[V_OP]! += n
    } else {
      if (!s.dense[V_OP]) {
        s.op.fill(0, 0, r)
        s.dense[V_OP] = 1
      }
      const dst = s.op
      let opNulls = 0
      for (let i = from, k = r; i < to; i++, k++) {
        const c = op[i]! - 1
        // c, or 0 for "none" (-1).
        dst[k] = c & ~(c >> 31)
        opNulls += c >>> 31
      }
      putValid(op, 1, from, to, s.valid[V_OP]!, r, opNulls)
      s.nulls[V_OP]! += opNulls
    }
    // params: sparse in the batch (a Map), an offsets column in Arrow.
    const offsets = s.paramsOffsets
    if (b.params.size === 0) {
      offsets.fill(s.paramsBytes, r + 1, r + n + 1)
      s.nulls[V_PARAMS]! += n
    } else {
      const pValid = s.valid[V_PARAMS]!
      for (let i = from, k = r; i < to; i++, k++) {
        const p = b.params.get(i)
        if (p !== undefined) {
          const bytes = Buffer.from(p, 'utf8')
          if (s.paramsBytes + bytes.length > s.paramsData.length) {
            const bigger = new Uint8Array(Math.max(2 * s.paramsData.length, s.paramsBytes + bytes.length))
            bigger.set(s.paramsData.subarray(0, s.paramsBytes))
            s.paramsData = bigger
          }
          s.paramsData.set(bytes, s.paramsBytes)
          s.paramsBytes += bytes.length
          pValid[k >> 3]! |= 1 << (k & 7)
        } else s.nulls[V_PARAMS]!++
        offsets[k + 1] = s.paramsBytes
      }
    }
    if (r === 0) offsets[0] = 0
    s.rows = r + n
  }

  /** Encode the set's rows as one record batch, hand it to the sink, switch to the other set. */
  private flush(s: Staging): void {
    const n = s.rows
    const none = new Uint8Array(0)
    const zeros = this.zeros
    // No nulls: no bitmap. All null: the bitmap is all zeros (the set's was reset and never set).
    const validity = (v: number): Uint8Array => (s.nulls[v] === 0 ? none : s.nulls[v] === n ? zeros.subarray(0, (n + 7) >> 3) : bytesOf(s.valid[v]!, (n + 7) >> 3))
    const col = (v: number, values: ArrayBufferView, width: number) => ({
      nullCount: s.nulls[v]!,
      buffers: [validity(v), s.dense[v] ? bytesOf(values, n * width) : zeros.subarray(0, n * width)],
    })
    const data = assemble(n, [
      {nullCount: 0, buffers: [none, bytesOf(s.t, 8 * n)]},
      {nullCount: 0, buffers: [none, bytesOf(s.kind, n)]},
      col(V_VCPU, s.vcpu, 4),
      col(V_DEV, s.dev, this.devBits / 8),
      col(V_SLOT, s.slot, 4),
      ...WIDE_FIELDS.map((_, w) => col(V_WIDE + w, s.wide[w]!, 8)),
      col(V_OP, s.op, 1),
      {nullCount: s.nulls[V_PARAMS]!, buffers: [validity(V_PARAMS), bytesOf(s.paramsOffsets, 4 * (n + 1)), s.paramsData.subarray(0, s.paramsBytes)]},
    ])
    const b = this.builder
    writeMessage(b, MSG_RECORD_BATCH, encodeRecordBatch(b, data, null), data.byteLength, this.recordBlocks)
    for (const buf of data.buffers) b.addBuffer(buf)
    s.sent = true
    s.written = this.sink(this.pending.splice(0))
    // A failed write is reported when the set is next awaited (or at finish).
    s.written.catch(() => {})
    this.cur ^= 1
  }
}
