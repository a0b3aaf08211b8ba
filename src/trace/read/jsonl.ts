/**
 * JSON Lines events: after the header line, one JSON object per line with the fields by name
 * (addresses as numbers or "0x..." strings). Runs of vCPU accesses as the writer puts them take
 * the fastest path (RowDecoder.jsonAccessRun); any other line is checked and split by JsonEventScanner
 * on its bytes; a plain event is decoded straight from them (RowDecoder.jsonRow), anything else
 * through the same rules as a quoted CSV row (RowDecoder.valuesRow).
 */
import type {EventBatch} from '../events.js'
import {FIELDS} from '../events.js'
import {UserError, showValue} from '../../util/errors.js'
import type {RowDecoder} from './decode.js'
import {JsonEventScanner, JsonSyntaxError} from './json-scan.js'
import {eventLines, type LineSource, type ReadOptions} from './lines.js'

export async function* jsonlEvents(src: LineSource, decoder: RowDecoder, opts: ReadOptions): AsyncGenerator<EventBatch> {
  const scanner = new JsonEventScanner()
  const values: unknown[] = new Array(FIELDS.length)
  const decode = (b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean): void => {
    try {
      scanner.scan(buf, s, e)
    } catch (err) {
      if (!(err instanceof JsonSyntaxError)) throw err
      throw new UserError(unterminated ? 'truncated last line: not complete JSON' : 'not valid JSON', {file: src.path, line, expected: err.expected, found: err.found})
    }
    if (!scanner.isObject) throw new UserError('not a JSON object', {file: src.path, line, expected: 'one JSON object per line', found: showValue(scanner.lineText())})
    const key = scanner.unknownKey
    if (key !== undefined) throw new UserError('unknown field', {file: src.path, line, field: key, expected: `one of ${FIELDS.join(', ')}`, found: showValue(key)})
    if (decoder.jsonRow(b, scanner, line)) return
    for (let f = 0; f < values.length; f++) values[f] = scanner.valueOf(f)
    decoder.valuesRow(b, values, line)
  }
  const run = (b: EventBatch, buf: Buffer, s: number, end: number, line: number, room: number): number => decoder.jsonAccessRun(b, buf, s, end, line, room)
  decoder.checker.reset()
  yield* eventLines(src, decode, opts, false, run)
}
