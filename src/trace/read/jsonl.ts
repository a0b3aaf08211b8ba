/**
 * JSON Lines events: after the header line, one JSON object per line with the fields by name
 * (addresses as numbers or "0x..." strings). JSON.parse per line is fast enough here; the field
 * rules are the CSV ones (RowDecoder.valuesRow).
 */
import type {EventBatch} from '../events.js'
import {FIELDS, FIELD_INDEX} from '../events.js'
import {UserError, showValue} from '../../util/errors.js'
import type {RowDecoder} from './decode.js'
import {eventLines, type LineSource, type ReadOptions} from './lines.js'

const INDEX = new Map<string, number>(Object.entries(FIELD_INDEX))

export async function* jsonlEvents(src: LineSource, decoder: RowDecoder, opts: ReadOptions): AsyncGenerator<EventBatch> {
  const values: unknown[] = new Array(FIELDS.length)
  const decode = (b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean): void => {
    const text = buf.toString('utf8', s, e)
    let obj: unknown
    try {
      obj = JSON.parse(text)
    } catch (err) {
      throw new UserError(unterminated ? 'truncated last line: not complete JSON' : 'not valid JSON', {
        file: src.path,
        line,
        expected: 'one JSON object per line',
        found: (err as Error).message,
      })
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      throw new UserError('not a JSON object', {file: src.path, line, expected: 'one JSON object per line', found: showValue(text)})
    values.fill(undefined)
    for (const key in obj) {
      const fi = INDEX.get(key)
      if (fi === undefined) throw new UserError('unknown field', {file: src.path, line, field: key, expected: `one of ${FIELDS.join(', ')}`, found: showValue(key)})
      values[fi] = (obj as Record<string, unknown>)[key]
    }
    decoder.valuesRow(b, values, line)
  }
  decoder.checker.reset()
  yield* eventLines(src, decode, opts, false)
}
