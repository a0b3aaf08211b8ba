/**
 * Encoding of events as text, one line each, for the two formats. Both encoders write the canonical
 * form: addresses in lowercase 0x hex, other numbers in decimal, unused fields empty (CSV) or absent
 * (JSONL). A trace read and written once is therefore stable byte for byte under further round trips.
 */
import type {EventBatch, EventRecord} from '../events.js'
import {FIELDS, KINDS, OPS} from '../events.js'

const hex = (v: number): string => `0x${v.toString(16)}`

/** The CSV column-header row (fixed for every trace). */
export const CSV_COLUMNS_LINE = FIELDS.join(',')

/**
 * Appends the CSV line of event i of a batch (with its newline) to `out`. `devNames` maps the batch's
 * device indices back to ids. Params never contain commas or quotes (validated on read), so no
 * quoting is ever needed.
 */
export function csvLine(b: EventBatch, i: number, devNames: readonly string[]): string {
  const k = b.kind[i]!
  const v = b.vcpu[i]!
  const d = b.dev[i]!
  const s = b.slot[i]!
  const g = b.gpa[i]!
  const io = b.iova[i]!
  const l = b.len[i]!
  const p = b.page[i]!
  const c = b.count[i]!
  const val = b.value[i]!
  const op = b.op[i]!
  const params = b.params.get(i)
  return (
    `${b.t[i]},${KINDS[k]!.name},${v < 0 ? '' : v},${d < 0 ? '' : devNames[d]},${s < 0 ? '' : s},` +
    `${g < 0 ? '' : hex(g)},${io < 0 ? '' : hex(io)},${l < 0 ? '' : l},${p < 0 ? '' : p},${c < 0 ? '' : c},` +
    `${val < 0 ? '' : val},${op === 0 ? '' : OPS[op]},${params ?? ''}\n`
  )
}

/** The JSON Lines line of event i of a batch (with its newline). */
export function jsonlLine(b: EventBatch, i: number, devNames: readonly string[]): string {
  let s = `{"t_ns":${b.t[i]},"kind":"${KINDS[b.kind[i]!]!.name}"`
  const v = b.vcpu[i]!
  if (v >= 0) s += `,"vcpu":${v}`
  const d = b.dev[i]!
  if (d >= 0) s += `,"dev":${JSON.stringify(devNames[d])}`
  const sl = b.slot[i]!
  if (sl >= 0) s += `,"slot":${sl}`
  const g = b.gpa[i]!
  if (g >= 0) s += `,"gpa":"${hex(g)}"`
  const io = b.iova[i]!
  if (io >= 0) s += `,"iova":"${hex(io)}"`
  const l = b.len[i]!
  if (l >= 0) s += `,"len":${l}`
  const p = b.page[i]!
  if (p >= 0) s += `,"page":${p}`
  const c = b.count[i]!
  if (c >= 0) s += `,"count":${c}`
  const val = b.value[i]!
  if (val >= 0) s += `,"value":${val}`
  const op = b.op[i]!
  if (op !== 0) s += `,"op":"${OPS[op]}"`
  const params = b.params.get(i)
  if (params !== undefined) s += `,"params":${JSON.stringify(params)}`
  return `${s}}\n`
}

/** Put one record into a batch (for tests, small tools and importers; not a hot path). */
export function pushRecord(b: EventBatch, r: EventRecord, devIndex: ReadonlyMap<string, number>, line = 0): void {
  const i = b.length++
  b.t[i] = r.t_ns
  const code = KINDS.findIndex((k) => k.name === r.kind)
  if (code < 0) throw new Error(`bug: unknown kind ${r.kind}`)
  b.kind[i] = code
  if (r.vcpu !== undefined) b.vcpu[i] = r.vcpu
  if (r.dev !== undefined) {
    const d = devIndex.get(r.dev)
    if (d === undefined) throw new Error(`bug: unknown device ${r.dev}`)
    b.dev[i] = d
  }
  if (r.slot !== undefined) b.slot[i] = r.slot
  if (r.gpa !== undefined) b.gpa[i] = r.gpa
  if (r.iova !== undefined) b.iova[i] = r.iova
  if (r.len !== undefined) b.len[i] = r.len
  if (r.page !== undefined) b.page[i] = r.page
  if (r.count !== undefined) b.count[i] = r.count
  if (r.value !== undefined) b.value[i] = r.value
  if (r.op !== undefined) b.op[i] = OPS.indexOf(r.op)
  if (r.params !== undefined) b.params.set(i, r.params)
  b.line[i] = line
}

/** Event i of a batch as a plain record (tests and error paths). */
export function toRecord(b: EventBatch, i: number, devNames: readonly string[]): EventRecord {
  const r: EventRecord = {t_ns: b.t[i]!, kind: KINDS[b.kind[i]!]!.name}
  if (b.vcpu[i]! >= 0) r.vcpu = b.vcpu[i]!
  if (b.dev[i]! >= 0) r.dev = devNames[b.dev[i]!]!
  if (b.slot[i]! >= 0) r.slot = b.slot[i]!
  if (b.gpa[i]! >= 0) r.gpa = b.gpa[i]!
  if (b.iova[i]! >= 0) r.iova = b.iova[i]!
  if (b.len[i]! >= 0) r.len = b.len[i]!
  if (b.page[i]! >= 0) r.page = b.page[i]!
  if (b.count[i]! >= 0) r.count = b.count[i]!
  if (b.value[i]! >= 0) r.value = b.value[i]!
  if (b.op[i] !== 0) r.op = OPS[b.op[i]!] as EventRecord['op']
  const p = b.params.get(i)
  if (p !== undefined) r.params = p
  return r
}
