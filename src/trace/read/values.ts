/**
 * Field values as they appear in trace files, and the errors a bad one gets. Both readers (the CSV
 * byte scanner and the JSON Lines reader) share these, so a mistake gets the same message whatever
 * the encoding. Only the error paths here allocate; the happy paths work on bytes or numbers.
 */
import {KINDS, type FieldName} from '../events.js'
import {UserError, showValue} from '../../util/errors.js'
import {RawJson} from './json-scan.js'

/** Returned by the parsers for a value that is not a plain non-negative integer below 2^53. */
export const BAD = -2

/** Where an event came from, for error messages. */
export interface RowPlace {
  file: string
  line: number
}

const DECIMAL = /^[0-9]+$/
const HEX = /^0x[0-9a-f]+$/i

/** A non-negative integer from text (decimal or 0x hex), as quoted CSV rows and JSON Lines give it: the value or BAD. */
export function parseUintText(text: string): number {
  let v: number
  if (DECIMAL.test(text)) v = Number(text)
  else if (HEX.test(text)) v = Number.parseInt(text.slice(2), 16)
  else return BAD
  return Number.isSafeInteger(v) ? v : BAD
}

const MAX_SAFE = `at most ${Number.MAX_SAFE_INTEGER} (2^53-1)`
const WHOLE = 'a whole number >= 0 (decimal, or 0x hex)'

/** Why a value is not a valid integer field: negative, fractional, too large or not a number. */
export function numberError(value: unknown, field: FieldName, at: RowPlace): UserError {
  const found = typeof value === 'number' ? String(value) : showValue(value)
  const where = {file: at.file, line: at.line, field, found}
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return new UserError('not a number', {...where, expected: WHOLE})
    if (value < 0) return new UserError('negative value', {...where, expected: WHOLE})
    if (!Number.isInteger(value)) return new UserError('not a whole number', {...where, expected: WHOLE})
    return new UserError('number too large', {...where, expected: MAX_SAFE})
  }
  if (value instanceof RawJson) return new UserError('not a number', {...where, expected: WHOLE, found: showValue(value.text)})
  if (typeof value !== 'string') return new UserError('not a number', {...where, expected: WHOLE, found: value === null ? 'null' : typeof value})
  const text = value.trim()
  if (text !== value) return new UserError('spaces around a number', {...where, expected: WHOLE})
  if (/^-(?:[0-9]+(?:\.[0-9]*)?|0x[0-9a-f]+)$/i.test(text)) return new UserError('negative value', {...where, expected: WHOLE})
  if (/^[0-9]*\.[0-9]+$|^[0-9]+\.$/.test(text)) {
    const n = Number(text)
    return Number.isInteger(n)
      ? new UserError('not a plain integer', {...where, expected: WHOLE})
      : new UserError('not a whole number', {...where, expected: WHOLE})
  }
  if (/^[0-9]+(?:\.[0-9]+)?e[+-]?[0-9]+$/i.test(text)) return new UserError('not a plain integer (no exponents)', {...where, expected: WHOLE})
  if (DECIMAL.test(text) || HEX.test(text)) return new UserError('number too large', {...where, expected: MAX_SAFE})
  return new UserError('not a number', {...where, expected: WHOLE})
}

const KIND_NAMES: readonly string[] = KINDS.map((k) => k.name)

/** Levenshtein distance, for "did you mean" on unknown kinds (error path only). */
function distance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length]!
}

export function unknownKindError(name: string, at: RowPlace): UserError {
  if (name === '') return new UserError('missing value: every event needs a kind', {file: at.file, line: at.line, field: 'kind', expected: 'an event kind such as write', found: 'an empty value'})
  let best = ''
  let bestD = Infinity
  for (const k of KIND_NAMES) {
    const d = distance(name.toLowerCase(), k)
    if (d < bestD) {
      best = k
      bestD = d
    }
  }
  const hint = bestD <= 2 ? `a known kind (did you mean '${best}'?)` : `one of the ${KIND_NAMES.length} kinds of the trace format (README.md) (write, read, dma_write, ...)`
  return new UserError('unknown event kind', {file: at.file, line: at.line, field: 'kind', expected: hint, found: showValue(name)})
}

export function missingFieldError(kind: string, field: FieldName, at: RowPlace): UserError {
  return new UserError(`missing value: a ${kind} event needs ${field}`, {file: at.file, line: at.line, field, expected: FIELD_EXPECT[field], found: 'an empty value'})
}

export function extraFieldError(kind: string, field: FieldName, value: unknown, at: RowPlace): UserError {
  return new UserError(`a ${kind} event does not use this field`, {file: at.file, line: at.line, field, expected: 'an empty value', found: showValue(typeof value === 'string' ? value : jsonText(value))})
}

/** A JSON value as text for a message; a nested object or array as it was written. */
export function jsonText(value: unknown): string {
  return value instanceof RawJson ? value.text : JSON.stringify(value)
}

/** A short "expected" text for each field, for missing-value messages. */
const FIELD_EXPECT: Record<FieldName, string> = {
  t_ns: 'a time in ns',
  kind: 'an event kind',
  vcpu: 'a vCPU index',
  dev: 'a device id from the header',
  slot: 'a memslot id from the header',
  gpa: 'a guest-physical address',
  iova: 'an IO virtual address',
  len: 'a length in bytes',
  page: 'a page index',
  count: 'a count',
  value: 'a number',
  op: 'an op word',
  params: 'key=value;key=value',
}

/**
 * Migration parameters: `key=value` pairs joined by `;`, with QEMU's parameter names
 * (migrate-set-parameters) as keys. The character set keeps CSV cells free of quotes and commas.
 */
export const PARAMS_RE = /^[A-Za-z0-9_-]+=[A-Za-z0-9_.:/+@-]*(?:;[A-Za-z0-9_-]+=[A-Za-z0-9_.:/+@-]*)*$/

export function paramsError(text: string, at: RowPlace): UserError {
  return new UserError('malformed parameters', {
    file: at.file,
    line: at.line,
    field: 'params',
    expected: "key=value pairs joined by ';' (letters, digits and - _ . : / + @ only)",
    found: showValue(text),
  })
}
