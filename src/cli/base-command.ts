/**
 * The base of every migtrace command: a user's mistake (UserError, or oclif's own flag and argument
 * errors) becomes one line on stderr and exit code 2, never a stack trace. Anything else is a bug
 * and keeps oclif's default handling (exit 1 with the stack).
 *
 * Commands import oclif's subpath modules (@oclif/core/command, /flags, /args, /errors), never its
 * index: the index also loads the rest of oclif (semver for its engine check, constraints, ux, the
 * module loader's exports...), about 50 more files at every command's start (issue 15).
 */
import {Command} from '@oclif/core/command'
import * as Errors from '@oclif/core/errors'
import {installInterruptHandler} from '../io/interrupt.js'
import {UserError} from '../util/errors.js'
import {isParseError, usageLine, type ParseErrorLike} from './usage-error.js'

/** The document --json prints for a user's mistake (docs/schemas/error.schema.json). */
export const ERROR_SCHEMA = 'migtrace.error/1'

export abstract class BaseCommand extends Command {
  public override async init(): Promise<void> {
    await super.init()
    // Ctrl-C or SIGTERM: unfinished outputs removed, one line, the conventional exit status.
    installInterruptHandler()
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // this.exit(n): the command has already said what it had to say.
    if (err instanceof Errors.ExitError) throw err
    if (err instanceof UserError) {
      if (this.jsonEnabled()) {
        this.logJson({schema: ERROR_SCHEMA, error: err.toJSON()})
      } else {
        process.stderr.write(`migtrace: ${err.message}\n`)
      }
      // Errors.exit throws an ExitError that oclif turns into the exit code with no further output.
      Errors.exit(2)
    }
    // oclif's flag and argument errors carry exit 2: one line and a pointer to --help (oclif
    // itself would append the whole help text); in --json mode oclif would print them and return
    // exit 1, so keep the code at 2 there too.
    // The parser's other complaints ('Flag --x can only be specified once') are plain CLIErrors
    // with exit 2: the same one line.
    if (isParseError(err) || (err instanceof Errors.CLIError && err.oclif?.exit === 2)) {
      const flagNames = Object.keys((this.constructor as typeof Command).flags ?? {})
      const line = usageLine(err as ParseErrorLike, this.config.bin, this.id?.replaceAll(':', ' ') ?? '', [...flagNames, 'json', 'help'])
      if (this.jsonEnabled()) this.logJson({schema: ERROR_SCHEMA, error: {message: line}})
      else process.stderr.write(`${this.config.bin}: ${line}\n`)
      Errors.exit(2)
    }
    // A guest or a trace too large for this machine: say so in one line, not with a stack.
    if (isOutOfMemory(err)) {
      const message = `not enough memory for this input (${err.message}): a smaller guest or trace, or a machine with more memory`
      if (this.jsonEnabled()) this.logJson({error: {message}})
      else process.stderr.write(`migtrace: ${message}\n`)
      Errors.exit(2)
    }
    if (err.oclif?.exit === 2 && this.jsonEnabled()) {
      this.logJson({schema: ERROR_SCHEMA, error: {message: err.message}})
      Errors.exit(2)
    }
    return super.catch(err)
  }
}

/** V8's failures to allocate a typed array or a string (not the heap limit, which aborts the process). */
export function isOutOfMemory(err: Error & {code?: unknown}): boolean {
  if (err.code === 'ERR_STRING_TOO_LONG') return true
  return err instanceof RangeError && /^(Array buffer allocation failed|Invalid typed array length|Invalid array buffer length)/.test(err.message)
}
