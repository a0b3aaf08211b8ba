/**
 * Checks on an output path before any work is done: a replay or a generate can run for minutes, and
 * finding at the end that `--out` names a directory, or a file where a directory should be, or a
 * read-only file system, wastes them and used to leave half the outputs behind. Each problem is one
 * line naming the path the user gave (never the temp file migtrace would have written).
 */
import {accessSync, constants, statSync, type Stats} from 'node:fs'
import {dirname} from 'node:path'
import {UserError} from '../util/errors.js'
import {errnoCode, fileErrorReason} from '../util/fs-errors.js'

export interface OutputWhat {
  /** The flag that named the path, for the message: '--out', '--html', 'output'. */
  field?: string
  /** What is written there: 'the trace', 'the HTML report'. */
  what: string
}

function stat(path: string): Stats | undefined {
  try {
    return statSync(path)
  } catch (e) {
    const code = errnoCode(e)
    if (code === 'ENOENT') return undefined
    // ENOTDIR: a part of the path is a file; the ancestor walk below says which.
    if (code === 'ENOTDIR') return undefined
    throw e
  }
}

/**
 * The nearest existing ancestor of `path` must be a writable directory: the missing ones are
 * created when the output is written (and removed again if it fails).
 */
function checkAncestors(path: string, w: OutputWhat): void {
  // The user's own spelling of the path, so the message names what they typed.
  let dir = dirname(path)
  for (;;) {
    let st: Stats | undefined
    try {
      st = stat(dir)
    } catch (e) {
      throw new UserError(`cannot write ${w.what}: ${fileErrorReason(e)}`, {file: path, field: w.field})
    }
    if (st !== undefined) {
      if (!st.isDirectory()) throw new UserError(`cannot write ${w.what}: ${dir} is a file, not a directory`, {file: path, field: w.field, expected: 'a path inside a directory'})
      try {
        accessSync(dir, constants.W_OK | constants.X_OK)
      } catch (e) {
        throw new UserError(`cannot write ${w.what}: ${fileErrorReason(e)} (${dir})`, {file: path, field: w.field})
      }
      return
    }
    const up = dirname(dir)
    if (up === dir) return
    dir = up
  }
}

/** A file migtrace will create or replace: not a directory, not a device, in a writable place. */
export function checkOutputFile(path: string, w: OutputWhat): void {
  if (path === '') throw new UserError(`no file name for ${w.what}`, {field: w.field, expected: 'a file name'})
  let st: Stats | undefined
  try {
    st = stat(path)
  } catch (e) {
    throw new UserError(`cannot write ${w.what}: ${fileErrorReason(e)}`, {file: path, field: w.field})
  }
  if (st?.isDirectory()) throw new UserError(`cannot write ${w.what}: is a directory`, {file: path, field: w.field, expected: 'a file name'})
  // The output replaces the target by a rename: a device or a pipe (/dev/null) would be replaced
  // by a regular file, which is never what was meant.
  if (st !== undefined && !st.isFile()) throw new UserError(`cannot write ${w.what}: not a regular file`, {file: path, field: w.field, expected: 'a file name'})
  checkAncestors(path, w)
}

/** A directory migtrace will write files into (created when missing). */
export function checkOutputDir(path: string, w: OutputWhat): void {
  if (path === '') throw new UserError(`no directory name for ${w.what}`, {field: w.field, expected: 'a directory name'})
  let st: Stats | undefined
  try {
    st = stat(path)
  } catch (e) {
    throw new UserError(`cannot write ${w.what}: ${fileErrorReason(e)}`, {file: path, field: w.field})
  }
  if (st !== undefined && !st.isDirectory()) throw new UserError(`cannot write ${w.what}: is a file, not a directory`, {file: path, field: w.field, expected: 'a directory (created when missing)'})
  if (st !== undefined) {
    try {
      accessSync(path, constants.W_OK | constants.X_OK)
    } catch (e) {
      throw new UserError(`cannot write ${w.what}: ${fileErrorReason(e)}`, {file: path, field: w.field})
    }
    return
  }
  checkAncestors(path, w)
}
