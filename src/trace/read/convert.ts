/**
 * Trace conversion: read one trace, write it again through TraceWriter (format from the output
 * name). Streaming, so any size works; on any error the writer is aborted and no output is left.
 */
import {resolve} from 'node:path'
import {UserError} from '../../util/errors.js'
import {OUTPUT_NAMES, TraceWriter, formatFromPath} from '../write/writer.js'
import {openTrace} from './open.js'

export async function convertTrace(input: string, output: string): Promise<number> {
  if (!formatFromPath(output))
    throw new UserError('cannot tell the output format from the file name', {file: output, expected: OUTPUT_NAMES})
  if (resolve(input) === resolve(output)) throw new UserError('the output would overwrite the input', {file: output, expected: 'another file name'})
  const trace = await openTrace(input)
  const writer = await TraceWriter.open(output, trace.header, trace.deviceIds)
  try {
    for await (const b of trace.events()) await writer.writeBatch(b)
    await writer.close()
  } catch (e) {
    await writer.abort()
    throw e
  }
  return writer.eventsWritten
}
