/**
 * oclif's flag and argument errors (unknown flag, missing argument, bad option value) as one line
 * and a pointer to --help, instead of the message plus the whole help text (33-39 lines) that
 * oclif prints by default. An unknown flag gets the nearest real flag as a suggestion.
 */
import {nearest} from '../util/nearest.js'

export interface ParseErrorLike extends Error {
  oclif?: {exit?: number}
  parse?: unknown
  flags?: string[]
  args?: Array<{name?: string; description?: string} | string>
}

/**
 * True for the errors oclif's parser throws: exit code 2 and either the parser's `parse` context
 * or its "See more help with --help" tail (a flag's own parse function failing has only the tail).
 */
export function isParseError(err: Error & {oclif?: {exit?: number}}): boolean {
  return err.oclif?.exit === 2 && ('parse' in err || /See more help with --help/.test(err.message))
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g

/**
 * The one line for a parse error of `command` (e.g. "replay"), given the names of its flags.
 * "unknown flag --ot (did you mean --out?); see 'migtrace replay --help'".
 */
export function usageLine(err: ParseErrorLike, bin: string, command: string, flagNames: readonly string[]): string {
  const help = `see '${bin} ${command} --help'`
  const name = err.constructor.name
  if (name === 'NonExistentFlagsError' && err.flags) {
    const parts = err.flags.map((f) => {
      const bare = f.replace(/^-+/, '').replace(/=.*$/, '')
      const near = nearest(bare, flagNames)
      return near !== undefined ? `${f} (did you mean --${near}?)` : f
    })
    return `unknown flag${parts.length > 1 ? 's' : ''} ${parts.join(', ')}; ${help}`
  }
  if (name === 'RequiredArgsError' && err.args) {
    const names = err.args.map((a) => (typeof a === 'string' ? a : (a.name ?? '?').toUpperCase()))
    return `missing argument${names.length > 1 ? 's' : ''} ${names.join(', ')}; ${help}`
  }
  if (name === 'UnexpectedArgsError' && err.args) {
    return `unexpected argument${err.args.length > 1 ? 's' : ''} ${err.args.map((a) => `'${String(a)}'`).join(', ')}; ${help}`
  }
  const text = err.message
    .replace(ANSI, '')
    .replace(/See more help with --help/g, '')
    .replace(/^The following errors? occurred:/, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(': ')
    .replace(/: :/g, ':')
  return `${text}; ${help}`
}
