/**
 * QEMU's `query-migrate` reply (qapi MigrationInfo), kept as the observed outcome of a run in the
 * trace header (`header.observed`). Accepts the bare reply object (qemu-lab's final-src.json) or a
 * raw QMP response `{"return": {...}}`.
 */
import {readJsonFile} from '../../util/json-file.js'
import {UserError} from '../../util/errors.js'

export function readQueryMigrate(path: string): Record<string, unknown> {
  let raw = readJsonFile(path, {what: 'the query-migrate file', expected: "QEMU's query-migrate reply as JSON"})
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'return' in raw) raw = (raw as {return: unknown}).return
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new UserError('not a query-migrate reply', {file: path, expected: 'a JSON object', found: Array.isArray(raw) ? 'an array' : typeof raw})
  const o = raw as Record<string, unknown>
  if (typeof o.status !== 'string') throw new UserError('not a query-migrate reply', {file: path, field: 'status', expected: 'a migration status string such as "completed"', found: JSON.stringify(o.status)})
  if (o.ram !== undefined && (typeof o.ram !== 'object' || o.ram === null))
    throw new UserError('not a query-migrate reply', {file: path, field: 'ram', expected: 'an object of RAM statistics', found: JSON.stringify(o.ram)})
  return o
}
