/**
 * The parts of opening an Arrow trace that are not its events: the header from the schema's
 * metadata (checked by zod like any header), the columns (the event fields, t_ns and kind at
 * least), and the kind counts of the footer.
 */
import {tableFromIPC} from '@uwdata/flechette'
import {FIELDS, type FieldName} from '../events.js'
import {parseHeader, type TraceHeader} from '../header.js'
import {UserError, showValue} from '../../util/errors.js'
import {parseJsonText} from '../../util/json-file.js'
import {Builder} from '@uwdata/flechette/src/encode/builder.js'
import {writeMessage} from '@uwdata/flechette/src/encode/message.js'
import {encodeSchema} from '@uwdata/flechette/src/encode/schema.js'
import {decodeSchema} from '@uwdata/flechette/src/decode/schema.js'
import {IpcMessageReader, MSG_DICTIONARY, MSG_RECORD_BATCH, MSG_SCHEMA, deref, fieldAt, footerMetadata, readFooter} from './ipc.js'
import {collector} from './write.js'
import {ARROW_HEADER_KEY, ARROW_KINDS_KEY} from './schema.js'

export interface ArrowSource {
  path: string
  gzip: boolean
  kind: 'file' | 'stream'
}

const KNOWN = new Set<string>(FIELDS)

/** The header and columns of an Arrow trace (reads only its first message). */
export async function readArrowHeader(src: ArrowSource): Promise<TraceHeader> {
  const reader = await IpcMessageReader.open(src.path, src.gzip, src.kind)
  let schemaBytes: Uint8Array | undefined
  try {
    const m = await reader.next()
    if (m?.type === MSG_SCHEMA) schemaBytes = m.bytes.slice()
  } finally {
    await reader.close()
  }
  if (schemaBytes === undefined && src.kind === 'file' && !src.gzip) {
    const footer = await readFooter(src.path)
    if (footer !== undefined) schemaBytes = footerSchemaMessage(footer)
  }
  if (schemaBytes === undefined) throw new UserError('not a valid Arrow IPC file: it does not start with a schema', {file: src.path})
  let schema
  try {
    schema = tableFromIPC([schemaBytes]).schema
  } catch (e) {
    throw new UserError(`not a valid Arrow IPC file: unreadable schema (${(e as Error).message})`, {file: src.path})
  }
  const names = schema.fields.map((f) => f.name)
  const unknown = names.find((n) => !KNOWN.has(n))
  if (unknown !== undefined) throw new UserError('unknown column', {file: src.path, field: unknown, expected: `columns named as the event fields: ${FIELDS.join(', ')}`, found: showValue(unknown)})
  for (const need of ['t_ns', 'kind'] as FieldName[])
    if (!names.includes(need)) throw new UserError(`the ${need} column is missing`, {file: src.path, field: need, expected: 'a t_ns and a kind column at least'})
  const text = schema.metadata?.get(ARROW_HEADER_KEY)
  if (text === undefined)
    throw new UserError('header missing: the schema has no migtrace header', {file: src.path, expected: `the header JSON as the schema metadata '${ARROW_HEADER_KEY}' (as migtrace writes it; pyarrow keeps it when the schema is kept)`})
  return parseHeader(parseJsonText(text, {file: src.path, what: 'the header', expected: 'one JSON object', oneLine: false}), src.path)
}

/**
 * Whether the trace has an event of this kind: from the footer's kind counts when the file has
 * them, else from the kind column alone (no other column is looked at).
 */
export async function arrowContainsKind(src: ArrowSource, kind: string): Promise<boolean> {
  if (src.kind === 'file' && !src.gzip) {
    const footer = await readFooter(src.path)
    const text = footer === undefined ? undefined : footerMetadata(footer).get(ARROW_KINDS_KEY)
    if (text !== undefined) {
      try {
        const counts = JSON.parse(text) as Record<string, unknown>
        if (typeof counts === 'object' && counts !== null) return typeof counts[kind] === 'number' && (counts[kind] as number) > 0
      } catch {
        // not ours: look at the events
      }
    }
  }
  const reader = await IpcMessageReader.open(src.path, src.gzip, src.kind)
  try {
    let schema: Uint8Array | undefined
    let dicts: {id: number; bytes: Uint8Array}[] = []
    for (let m = await reader.next(); m !== undefined; m = await reader.next()) {
      if (m.type === MSG_SCHEMA) schema ??= m.bytes.slice()
      else if (m.type === MSG_DICTIONARY) {
        if (!m.isDelta) dicts = dicts.filter((d) => d.id !== m.dictId)
        dicts.push({id: m.dictId, bytes: m.bytes.slice()})
      } else if (m.type === MSG_RECORD_BATCH) {
        schema ??= await schemaFromFooter(src)
        if (schema === undefined) return false
        let column
        try {
          column = tableFromIPC([schema, ...dicts.map((d) => d.bytes), m.bytes]).getChild('kind')
        } catch {
          return false // the pass over the events will name what is wrong
        }
        const batch = column?.data[0] as {cache?: unknown[]; values?: ArrayLike<number>; length: number; at(i: number): unknown} | undefined
        if (batch === undefined) continue
        if (batch.cache !== undefined && batch.values !== undefined) {
          const w = batch.cache.indexOf(kind)
          if (w < 0) continue
          for (let i = 0; i < batch.length; i++) if (batch.values[i] === w) return true
        } else for (let i = 0; i < batch.length; i++) if (batch.at(i) === kind) return true
      }
    }
    return false
  } finally {
    await reader.close()
  }
}

/** A file's schema message from its footer (when its stream does not start with one). */
export async function schemaFromFooter(src: ArrowSource): Promise<Uint8Array | undefined> {
  if (src.kind !== 'file' || src.gzip) return undefined
  const footer = await readFooter(src.path)
  return footer === undefined ? undefined : footerSchemaMessage(footer)
}

/**
 * The schema of an Arrow file's footer as a Schema message. A file need not repeat its schema at
 * the start of its stream (the reference JS library writes it in the footer only).
 */
export function footerSchemaMessage(footer: Uint8Array): Uint8Array | undefined {
  try {
    const p = fieldAt(footer, deref(footer, 0), 1)
    if (p === 0) return undefined
    const parts: Uint8Array[] = []
    const b = new Builder(collector(parts))
    writeMessage(b, MSG_SCHEMA, encodeSchema(b, decodeSchema(footer, p, 4)), 0)
    return Buffer.concat(parts)
  } catch {
    return undefined
  }
}
