/**
 * A full check of a trace: the header through zod, then every event through the reader's checks,
 * collecting up to `maxErrors` problems instead of stopping at the first.
 */
import {UserError} from '../../util/errors.js'
import {openTrace} from './open.js'
import type {TraceFormat} from '../write/writer.js'

export interface ValidationResult {
  file: string
  format?: TraceFormat
  gzip?: boolean
  /** Where the header was read from (the trace, or its sidecar). */
  headerFile?: string
  valid: boolean
  /** Good events read (bad rows are not counted). */
  events: number
  errors: UserError[]
  /** True when reading stopped at maxErrors: there may be more. */
  stoppedEarly: boolean
}

export async function validateTrace(path: string, opts: {maxErrors?: number} = {}): Promise<ValidationResult> {
  const maxErrors = Math.max(1, opts.maxErrors ?? 20)
  const errors: UserError[] = []
  let stoppedEarly = false
  let trace
  try {
    trace = await openTrace(path)
  } catch (e) {
    if (!(e instanceof UserError)) throw e
    return {file: path, valid: false, events: 0, errors: [e], stoppedEarly: false}
  }
  let events = 0
  const onError = (e: UserError): boolean => {
    errors.push(e)
    if (errors.length >= maxErrors) {
      stoppedEarly = true
      return false
    }
    return true
  }
  for await (const b of trace.events({onError})) events += b.length
  return {file: path, format: trace.format, gzip: trace.gzip, headerFile: trace.headerFile, valid: errors.length === 0, events, errors, stoppedEarly}
}
