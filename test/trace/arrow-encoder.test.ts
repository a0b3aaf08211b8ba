// The Arrow encoder's column paths (src/trace/arrow/write.ts): a column no event of a record batch
// sets is written from a shared zero buffer without being filled, one that some events set is
// filled from its first set value on, and the validity bits go in all at once when no event of a
// piece leaves the field unset. The reference Arrow library (apache-arrow) reads back every value
// and null as the batches held them, with columns that switch between unset and set inside one
// record batch, across pieces of every size; and EventBatch.unset, a producer's word that a
// column is unset, changes nothing in the bytes.
import test from 'ava'
import * as AA from 'apache-arrow'
import {createBatch, FIELD_INDEX, KINDS, OPS, type EventBatch} from '../../src/trace/events.js'
import {ArrowTraceEncoder} from '../../src/trace/arrow/write.js'
import {WIDE_FIELDS} from '../../src/trace/arrow/schema.js'

const DEVS = ['d0', 'd1', 'd2']

/** A small deterministic generator (xorshift32), so a failure can be reproduced. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 4294967296
  }
}

interface Rows {
  n: number
  t: number[]
  kind: number[]
  vcpu: number[]
  dev: number[]
  slot: number[]
  wide: number[][]
  op: number[]
  params: Map<number, string>
}

/**
 * Events whose optional columns come in runs of set and unset (lengths 1-200), so that record
 * batches of 64 rows hold columns all unset, all set and mixed, and a column's first set value
 * comes after unset rows of the same record batch. `never`: columns no event sets.
 */
function rows(n: number, seed: number, never: ReadonlySet<string>): Rows {
  const r = rng(seed)
  const runs = (): boolean[] => {
    const out: boolean[] = []
    let on = r() < 0.5
    while (out.length < n) {
      const len = 1 + Math.floor(r() * 200)
      for (let i = 0; i < len && out.length < n; i++) out.push(on)
      on = !on
    }
    return out
  }
  const col = (name: string, value: (i: number) => number): number[] => {
    if (never.has(name)) return Array(n).fill(name === 'op' ? 0 : -1)
    const on = runs()
    return on.map((s, i) => (s ? value(i) : name === 'op' ? 0 : -1))
  }
  const params = new Map<number, string>()
  const pOn = runs()
  pOn.forEach((s, i) => s && r() < 0.1 && params.set(i, `k=${i}`))
  return {
    n,
    t: Array.from({length: n}, (_, i) => i * 1_000_003 + 2 ** 40),
    kind: Array.from({length: n}, () => Math.floor(r() * KINDS.length)),
    vcpu: col('vcpu', () => Math.floor(r() * 64)),
    dev: col('dev', () => Math.floor(r() * DEVS.length)),
    slot: col('slot', () => Math.floor(r() * 1000)),
    // Up to 2^53 - 1: both int64 halves used.
    wide: WIDE_FIELDS.map((f) => col(f, () => Math.floor(r() * 2 ** 53))),
    op: col('op', () => 1 + Math.floor(r() * (OPS.length - 1))),
    params,
  }
}

/** rows[from, to) as an EventBatch (unset: its EventBatch.unset). */
function piece(x: Rows, from: number, to: number, unset?: number): EventBatch {
  const b = createBatch(to - from)
  for (let i = from; i < to; i++) {
    const k = i - from
    b.t[k] = x.t[i]!
    b.kind[k] = x.kind[i]!
    b.vcpu[k] = x.vcpu[i]!
    b.dev[k] = x.dev[i]!
    b.slot[k] = x.slot[i]!
    WIDE_FIELDS.forEach((f, w) => (b[f][k] = x.wide[w]![i]!))
    b.op[k] = x.op[i]!
    const p = x.params.get(i)
    if (p !== undefined) b.params.set(k, p)
  }
  b.length = to - from
  if (unset !== undefined) b.unset = unset
  return b
}

/** The file the encoder writes for `x`, in pieces of the given sizes, record batches of `batchRows`. */
async function encode(x: Rows, sizes: number[], batchRows: number, unset?: number): Promise<Buffer> {
  const parts: Buffer[] = []
  // Copies: the encoder reuses its buffers once the sink's promise resolved.
  const enc = new ArrowTraceEncoder(async (chunks) => void parts.push(...chunks.map((c) => Buffer.from(c))), DEVS, batchRows)
  await enc.start('{"format":"migtrace"}')
  let at = 0
  for (let k = 0; at < x.n; k++) {
    const to = Math.min(x.n, at + sizes[k % sizes.length]!)
    await enc.write(piece(x, at, to, unset))
    at = to
  }
  await enc.finish()
  return Buffer.concat(parts)
}

/**
 * Every column as the reference library reads it, with null where it reads a null; and under every
 * null of a fixed-width column, its raw value must be 0 (what migtrace writes there, so that the
 * same events always give the same bytes), else the column's name is listed in `dirty`.
 */
function readBack(bytes: Buffer): Record<string, (number | string | null)[]> {
  const table = AA.tableFromIPC(bytes)
  const out: Record<string, (number | string | null)[]> = {dirty: []}
  for (const f of table.schema.fields) {
    const v = table.getChild(f.name)!
    if (f.name !== 'params') {
      let row = 0
      for (const d of v.data) {
        for (let i = 0; i < d.length; i++, row++) if (!v.isValid(row) && Number(d.values[d.offset + i]) !== 0 && !out.dirty!.includes(f.name)) out.dirty!.push(f.name)
      }
    }
    out[f.name] = Array.from({length: table.numRows}, (_, i) => {
      const x = v.get(i) as bigint | number | string | null
      return typeof x === 'bigint' ? Number(x) : x
    })
  }
  return out
}

function expected(x: Rows): Record<string, (number | string | null)[]> {
  const nul = (v: number): number | null => (v < 0 ? null : v)
  const out: Record<string, (number | string | null)[]> = {
    dirty: [],
    t_ns: x.t,
    kind: x.kind.map((k) => KINDS[k]!.name),
    vcpu: x.vcpu.map(nul),
    dev: x.dev.map((d) => (d < 0 ? null : DEVS[d]!)),
    slot: x.slot.map(nul),
  }
  WIDE_FIELDS.forEach((f, w) => (out[f] = x.wide[w]!.map(nul)))
  out.op = x.op.map((o) => (o === 0 ? null : OPS[o]!))
  out.params = Array.from({length: x.n}, (_, i) => x.params.get(i) ?? null)
  return out
}

test('columns that switch between unset and set inside record batches read back exactly, in pieces of every size', async (t) => {
  const x = rows(5000, 7, new Set())
  for (const sizes of [[1], [7, 150, 3], [64], [65], [5000]]) {
    const got = readBack(await encode(x, sizes, 64))
    t.deepEqual(got, expected(x), `pieces ${sizes.join(',')}`)
  }
})

test('columns no event sets are nulls (zeros underneath), and a producer saying so (EventBatch.unset) changes no byte', async (t) => {
  const never = new Set(['dev', 'slot', 'iova', 'page', 'count', 'value', 'op'])
  const x = rows(3000, 11, never)
  const plain = await encode(x, [100, 37], 64)
  const got = readBack(plain)
  t.deepEqual(got, expected(x))
  for (const f of never) t.true(got[f]!.every((v) => v === null), f)
  const bit = (f: keyof typeof FIELD_INDEX): number => 1 << FIELD_INDEX[f]
  const hinted = await encode(x, [100, 37], 64, bit('dev') | bit('slot') | bit('iova') | bit('page') | bit('count') | bit('value') | bit('op'))
  t.true(hinted.equals(plain))
  // The same events with every column set somewhere give another file: the comparison can fail.
  t.false((await encode(rows(3000, 11, new Set()), [100, 37], 64)).equals(plain))
})
