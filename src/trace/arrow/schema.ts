/**
 * The Arrow form of a trace: one record batch per block of events, one column per event field
 * (FIELDS order and names, as in CSV), a null where a kind does not use a field. Types are the
 * narrowest that hold every value the text formats allow, and that other tools read without
 * options (pyarrow, polars, DuckDB, pandas):
 *
 * | column | Arrow type | notes |
 * |---|---|---|
 * | t_ns | int64, never null | |
 * | kind | dictionary<int8, utf8>, never null | the dictionary is the kind names in code order |
 * | vcpu, slot | int32 | |
 * | dev | dictionary<int16, utf8> | the device ids of the header, in its order |
 * | gpa, iova, len, page, count, value | int64 | |
 * | op | dictionary<int8, utf8> | start, stop, get, normal, zero, xbzrle |
 * | params | utf8 | |
 *
 * The header (the same JSON as a CSV trace's first line) is the schema's metadata under
 * `migtrace.header`; the file footer's metadata holds `migtrace.kinds`, the count of events of
 * each kind, written once the events are known (so a reader can tell, without reading the events,
 * whether a trace holds a mig_start).
 */
import {dictionary, field, int8, int16, int32, int64, utf8} from '@uwdata/flechette'
import type {Field, Schema} from '@uwdata/flechette'
import {FIELDS, FIELD_DOC, KINDS, OPS, type FieldName} from '../events.js'
import {ARROW_HEADER_KEY, WIDE_FIELDS} from './constants.js'

export {ARROW_FILE_MAGIC, ARROW_HEADER_KEY, ARROW_KINDS_KEY, WIDE_FIELDS, type WideField} from './constants.js'

/** Dictionary ids of the three dictionary-encoded columns. */
export const DICT_KIND = 0
export const DICT_DEV = 1
export const DICT_OP = 2

/** The op words in the op column's dictionary: OPS without the empty word (index = op code - 1). */
export const OP_WORDS: readonly string[] = OPS.slice(1)
export const KIND_WORDS: readonly string[] = KINDS.map((k) => k.name)

/** Whether the dev column needs 32-bit indices (more devices than int16 can count). */
export function devIndexBits(devices: number): 16 | 32 {
  return devices > 0x7fff ? 32 : 16
}

function meta(name: FieldName): Map<string, string> {
  const doc = FIELD_DOC[name]
  return new Map([
    ['unit', doc.unit],
    ['description', doc.meaning],
  ])
}

/** The schema migtrace writes, with the header JSON in its metadata. */
export function traceSchema(headerJson: string, devices: number): Schema {
  const fields: Field[] = FIELDS.map((name): Field => {
    switch (name) {
      case 't_ns':
        return field(name, int64(), false, meta(name))
      case 'kind':
        return field(name, dictionary(utf8(), int8(), false, DICT_KIND), false, meta(name))
      case 'vcpu':
      case 'slot':
        return field(name, int32(), true, meta(name))
      case 'dev':
        return field(name, dictionary(utf8(), devIndexBits(devices) === 16 ? int16() : int32(), false, DICT_DEV), true, meta(name))
      case 'op':
        return field(name, dictionary(utf8(), int8(), false, DICT_OP), true, meta(name))
      case 'params':
        return field(name, utf8(), true, meta(name))
      default:
        return field(name, int64(), true, meta(name))
    }
  })
  return {fields, metadata: new Map([[ARROW_HEADER_KEY, headerJson]])}
}
