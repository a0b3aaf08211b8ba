/**
 * Outputs appear whole or not at all. Every file migtrace writes (a trace from generate, convert
 * or import, an HTML report and the CSV tables beside it, replay --out's tables) goes to a temp
 * file beside its target, and all the files of one command are renamed into place together at
 * the end (rename(2) within a directory is atomic). On any failure (a full disk, a read-only file
 * system, a bad row found half-way, Ctrl-C) the temps, and the directories this output created,
 * are removed: the user finds what was there before, nothing half-written.
 *
 * Every live output is registered here, so an interrupt (see interrupt.ts) or an exit through
 * any path can remove what it left.
 */
import {createWriteStream, mkdirSync, openSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync, type WriteStream} from 'node:fs'
import {basename, dirname, join, resolve} from 'node:path'
import {UserError} from '../util/errors.js'
import {fileErrorReason, isFsError} from '../util/fs-errors.js'

const live = new Set<AtomicOutput>()
let exitHookInstalled = false

/** Remove every output not yet committed (an interrupt, an exit); returns how many there were. */
export function abortAllOutputs(): number {
  const n = live.size
  for (const o of [...live]) o.abort()
  return n
}

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // process.exit from anywhere (oclif's error handler included) still leaves no temp file.
  process.on('exit', () => abortAllOutputs())
}

let serial = 0

/** One output of a command: any number of files, committed (renamed into place) together. */
export class AtomicOutput {
  /** Target path -> its temp file, in the order they were opened. */
  private readonly temps = new Map<string, string>()
  /** Work files of this output: removed at commit and at abort, never renamed into place. */
  private readonly scratch: string[] = []
  /** Directories this output created, outermost first (removed again on abort). */
  private readonly createdDirs: string[] = []
  private state: 'open' | 'committed' | 'aborted' = 'open'

  /**
   * @param what what is written, for messages: 'the trace', 'the HTML report'
   * @param field the flag that named the output, for messages: '--out'
   */
  constructor(
    readonly what: string,
    readonly field?: string,
  ) {
    installExitHook()
    live.add(this)
  }

  get isOpen(): boolean {
    return this.state === 'open'
  }

  /** The temp file for `target` (beside it, so the rename stays on one file system); its directory is created when missing. */
  tempFor(target: string): string {
    this.assertOpen()
    const abs = resolve(target)
    const known = this.temps.get(abs)
    if (known !== undefined) return known
    const dir = dirname(abs)
    this.ensureDir(dir, target)
    const tmp = join(dir, `.${basename(abs)}.tmp-${process.pid}-${(serial++).toString(36)}`)
    this.temps.set(abs, tmp)
    return tmp
  }

  /** A work file beside `target` (a part assembled into it before commit); removed at commit or abort. */
  scratchFor(target: string): string {
    const tmp = `${this.tempFor(target)}.part`
    this.scratch.push(tmp)
    return tmp
  }

  /** Write a whole file's content (it appears at commit). */
  writeFile(target: string, data: string | Uint8Array): void {
    const tmp = this.tempFor(target)
    try {
      writeFileSync(tmp, data)
    } catch (e) {
      throw this.failure(e, target)
    }
  }

  /** A write stream to `target`'s temp file; its errors are the caller's to map with failure(). */
  createStream(target: string): WriteStream {
    return this.streamTo(this.tempFor(target), target)
  }

  /**
   * A write stream to one of this output's temp or scratch files, opened now: a stream opened in
   * the background could create its file after an abort (or an interrupt) removed it.
   */
  streamTo(tmp: string, target: string): WriteStream {
    let fd: number
    try {
      fd = openSync(tmp, 'w')
    } catch (e) {
      throw this.failure(e, target)
    }
    return createWriteStream(tmp, {fd})
  }

  /** Move every file into place. After a failure here the remaining temps are removed. */
  commit(): void {
    this.assertOpen()
    try {
      // Every target is checked before the first rename: a rename that fails half-way would
      // leave some files new and some not (a target turned into a directory meanwhile).
      for (const target of this.temps.keys()) {
        let isDir = false
        try {
          isDir = statSync(target).isDirectory()
        } catch {
          // Missing: the usual case.
        }
        if (isDir) throw new UserError(`cannot write ${this.what}: is a directory`, {file: target, field: this.field, expected: 'a file name'})
      }
      for (const [target, tmp] of this.temps) {
        try {
          renameSync(tmp, target)
        } catch (e) {
          throw this.failure(e, target)
        }
        this.temps.delete(target)
      }
      for (const tmp of this.scratch) rmSync(tmp, {force: true})
      this.state = 'committed'
      live.delete(this)
    } finally {
      if (this.state !== 'committed') this.abort()
    }
  }

  /** Drop the output: temps removed, directories this output created removed (when empty). */
  abort(): void {
    if (this.state !== 'open') return
    this.state = 'aborted'
    live.delete(this)
    for (const tmp of [...this.temps.values(), ...this.scratch]) rmSync(tmp, {force: true})
    this.temps.clear()
    for (const dir of [...this.createdDirs].reverse()) {
      try {
        rmdirSync(dir)
      } catch {
        // Not empty (someone else wrote there) or already gone: leave it.
      }
    }
  }

  /** A file-system error in the user's words, naming the target (never the temp); other errors as they are. */
  failure(e: unknown, target?: string): Error {
    if (e instanceof UserError) return e
    if (!isFsError(e)) return e instanceof Error ? e : new Error(String(e))
    return new UserError(`cannot write ${this.what}: ${fileErrorReason(e)}`, {file: target ?? [...this.temps.keys()][0], field: this.field})
  }

  private ensureDir(dir: string, target: string): void {
    let first: string | undefined
    try {
      first = mkdirSync(dir, {recursive: true})
    } catch (e) {
      throw this.failure(e, target)
    }
    if (first === undefined) return
    // mkdirSync returns the outermost directory it created; every level from there down is new.
    const chain: string[] = []
    for (let d = dir; d.length >= first.length; d = dirname(d)) {
      chain.unshift(d)
      if (d === first || dirname(d) === d) break
    }
    this.createdDirs.push(...chain)
  }

  private assertOpen(): void {
    if (this.state !== 'open') throw new Error(`bug: ${this.what} was already ${this.state}`)
  }
}

/** One file, whole or not at all. */
export function writeFileAtomic(path: string, data: string | Uint8Array, what = 'the file', field?: string): void {
  const out = new AtomicOutput(what, field)
  try {
    out.writeFile(path, data)
    out.commit()
  } finally {
    out.abort()
  }
}
