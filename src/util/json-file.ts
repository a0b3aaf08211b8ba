/**
 * The one reader of JSON side files (trace headers and sidecars, generate specs, --stats, --layout,
 * --workload, --expect, scenario and shard files): a user's mistake in any of them is one line
 * naming the file, the line and (where it helps) the field, never a stack trace.
 *
 * Why not JSON.parse alone: V8 parses any nesting depth iteratively, but everything after it that
 * walks the value (zod, JSON.stringify in an error message, a canonical form) recurses, and ~5,000
 * levels overflow the stack (RangeError, exit 1). So the text is scanned for its depth first and
 * anything deeper than MAX_JSON_DEPTH is refused before it is parsed. A UTF-8 byte order mark is
 * skipped, as the CSV reader does.
 */
import {readFileSync, statSync} from 'node:fs'
import {UserError} from './errors.js'
import {fileErrorReason} from './fs-errors.js'

/** No migtrace JSON file nests deeper than a few levels; 64 leaves room and stays far from the stack limit. */
export const MAX_JSON_DEPTH = 64
/** Side files are small (a header, a spec, a shard of a sweep); a bigger file is a mistake, not a spec. */
export const MAX_JSON_FILE_BYTES = 256 * 2 ** 20

export interface JsonSource {
  /** The file named in errors. */
  file?: string
  /** Line of `file` the text starts on (a header line inside a trace); 1 when omitted. */
  line?: number
  /** What the text is, for messages: 'the spec file', 'the header'. */
  what: string
  /** What a correct file holds, shown when the JSON does not parse. */
  expected?: string
  /** The text is one line of a bigger file: always report `line`, never a line inside the text. */
  oneLine?: boolean
}

/** Where a too-deep value starts: its offset and the path of keys and indices leading to it. */
interface DepthProblem {
  offset: number
  path: string
}

const MAX_PATH_PARTS = 4

/**
 * The first place the text nests deeper than `max` levels of [ and {, or undefined. One pass,
 * no recursion; strings (with escapes) are skipped so brackets inside them do not count.
 */
export function findTooDeep(text: string, max = MAX_JSON_DEPTH): DepthProblem | undefined {
  // Per open container: its key (objects) or element index (arrays), for the path in the message.
  const keys: (string | number)[] = []
  const isArray: boolean[] = []
  let expectKey = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 34 /* " */) {
      const start = i + 1
      for (i = start; i < n; i++) {
        const d = text.charCodeAt(i)
        if (d === 92 /* \ */) i++
        else if (d === 34) break
      }
      if (expectKey && keys.length > 0) {
        keys[keys.length - 1] = text.slice(start, Math.min(i, start + 40))
        expectKey = false
      }
    } else if (c === 123 /* { */ || c === 91 /* [ */) {
      if (keys.length >= max) return {offset: i, path: pathOf(keys)}
      isArray.push(c === 91)
      keys.push(c === 91 ? 0 : '')
      expectKey = c === 123
    } else if (c === 125 /* } */ || c === 93 /* ] */) {
      keys.pop()
      isArray.pop()
      expectKey = false
    } else if (c === 44 /* , */ && keys.length > 0) {
      if (isArray[isArray.length - 1]) keys[keys.length - 1] = (keys[keys.length - 1] as number) + 1
      else expectKey = true
    }
  }
  return undefined
}

function pathOf(keys: (string | number)[]): string {
  const parts = keys.slice(0, MAX_PATH_PARTS).map(String)
  return keys.length > MAX_PATH_PARTS ? `${parts.join('.')}...` : parts.join('.')
}

function lineAt(text: string, offset: number): number {
  let line = 0
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) line++
  return line
}

/** Parse JSON text from a side file; any mistake becomes one UserError line. */
export function parseJsonText(raw: string, src: JsonSource): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw
  const first = src.line ?? 1
  const where = (offset: number): number | undefined => (src.file === undefined && src.line === undefined ? undefined : src.oneLine ? first : first + lineAt(text, offset))
  const deep = findTooDeep(text)
  if (deep !== undefined)
    throw new UserError(`${src.what} nests too deeply`, {file: src.file, line: where(deep.offset), field: deep.path || undefined, expected: `at most ${MAX_JSON_DEPTH} levels of [ and {`})
  try {
    return JSON.parse(text)
  } catch (e) {
    const message = (e as Error).message
    const at = /at position (\d+)/.exec(message)
    const line = at ? where(Number(at[1])) : src.oneLine ? first : undefined
    // V8's message already says where in the text; the file's own line number is added when known.
    // V8 quotes the text around the mistake, newlines included: one line, control characters shown.
    const found = message
      .replace(/\s*\(line \d+ column \d+\)$/, '')
      .replace(/\s*\n\s*/g, ' ')
      .replace(/[\u0000-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    throw new UserError(`${src.what} is not valid JSON`, {file: src.file, line, expected: src.expected, found})
  }
}

/** Read and parse a JSON side file: a missing, unreadable, too big or malformed file is one UserError line. */
export function readJsonFile(path: string, src: Omit<JsonSource, 'file' | 'line' | 'oneLine'>): unknown {
  let text: string
  try {
    const st = statSync(path)
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), {code: 'EISDIR'})
    if (st.size > MAX_JSON_FILE_BYTES) throw new UserError(`cannot read ${src.what}: too large (${st.size} bytes)`, {file: path, expected: `at most ${MAX_JSON_FILE_BYTES / 2 ** 20} MiB of JSON`})
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if (e instanceof UserError) throw e
    throw new UserError(`cannot read ${src.what}: ${fileErrorReason(e)}`, {file: path})
  }
  return parseJsonText(text, {...src, file: path})
}
