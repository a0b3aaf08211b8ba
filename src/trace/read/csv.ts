/**
 * CSV events: one fixed column set (FIELDS) for every kind. Runs of canonical vCPU access rows
 * take the fastest path (RowDecoder.csvAccessRun), other plain rows the byte-level general one
 * (RowDecoder.csvRow); a row with a double quote goes through csv-parse so CSV quoting is
 * honoured and an unclosed quote is reported with the column where it opened.
 */
import type {EventBatch} from '../events.js'
import {FIELDS} from '../events.js'
import {UserError} from '../../util/errors.js'
import {RowDecoder} from './decode.js'
import {eventLines, type LineSource, type ReadOptions} from './lines.js'

type SyncParse = (input: string, options: {relax_column_count: boolean}) => string[][]

export async function* csvEvents(src: LineSource, decoder: RowDecoder, opts: ReadOptions): AsyncGenerator<EventBatch> {
  // Loaded once per pass (not per row): csv-parse is only needed for quoted rows but the decode
  // loop must stay synchronous.
  const {parse} = (await import('csv-parse/sync')) as unknown as {parse: SyncParse}
  const quoted = (b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean): void => {
    const text = buf.toString('utf8', s, e)
    let rows: string[][]
    try {
      rows = parse(text, {relax_column_count: true})
    } catch (err) {
      const code = (err as {code?: string}).code
      const at = text.indexOf('"')
      const field = FIELDS[text.slice(0, at).split(',').length - 1]
      if (code === 'CSV_QUOTE_NOT_CLOSED')
        throw new UserError(unterminated ? 'truncated last line: unclosed quote' : 'unclosed quote', {file: src.path, line, field, expected: 'a closing double quote'})
      throw new UserError('malformed quoting', {file: src.path, line, field, expected: 'a quote only around a whole field, doubled inside it', found: (err as Error).message})
    }
    const fields = rows[0] ?? []
    if (rows.length !== 1 || fields.length !== FIELDS.length) throw decoder.columnCountError(fields.length, line, unterminated)
    decoder.valuesRow(b, fields, line)
  }
  const decode = (b: EventBatch, buf: Buffer, s: number, e: number, line: number, unterminated: boolean): void => {
    if (!decoder.csvRow(b, buf, s, e, line, unterminated)) quoted(b, buf, s, e, line, unterminated)
  }
  const run = (b: EventBatch, buf: Buffer, s: number, end: number, line: number, room: number): number => decoder.csvAccessRun(b, buf, s, end, line, room)
  decoder.checker.reset()
  yield* eventLines(src, decode, opts, true, run)
}
