/**
 * Starting and stopping a QEMU process, and reading its guest console.
 *
 *   const vm = QemuProcess.spawn({args: ['-serial', 'stdio', ...], console: {raw: 'serial.log', stamped: 'console.log'}})
 *   await vm.waitForConsoleLine(/DIRTIER READY/, {timeoutMs: 180_000})
 *   const qmp = await QmpClient.connect(sock)
 *   ...
 *   await vm.quit(qmp)            // `quit` over QMP; SIGTERM, then SIGKILL, if QEMU does not exit in time
 *
 * The guest console is QEMU's standard output (the caller passes `-serial stdio` or a chardev on
 * stdio): each line is kept raw and, in the stamped copy, prefixed with the host time it was read
 * (`[SECONDS.MICROS] line`, the same clock as QEMU's `-msg timestamp=on` trace lines). Reading a
 * pipe stamps a line as soon as QEMU writes it, without polling a file.
 *
 * No orphans: every QEMU started here is killed when this process exits (normally, on an uncaught
 * error, or on SIGINT/SIGTERM/SIGHUP, which then exit with 128 + the signal number); where
 * util-linux's setpriv exists, QEMU is also started with PR_SET_PDEATHSIG=SIGKILL so the kernel
 * kills it even if this process is killed with SIGKILL.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process'
import {accessSync, constants, createWriteStream, statSync, type WriteStream} from 'node:fs'
import {delimiter, join} from 'node:path'
import type {Readable} from 'node:stream'
import {formatHostUs, hostNowUs} from './host-clock.js'
import {QmpClient} from './qmp.js'

export interface QemuExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ConsoleLine {
  line: string
  /** Host time (µs since the epoch) at which the line was read. */
  hostUs: number
}

export interface QemuSpawnOptions {
  /** Default: qemu-system-x86_64 on the PATH. */
  binary?: string
  args: readonly string[]
  /** Files for the guest console read from QEMU's stdout: raw lines, and host-stamped lines. */
  console?: {raw?: string; stamped?: string}
  /** QEMU's own messages (stderr). */
  stderrFile?: string
  /** A name for messages (e.g. 'src', 'dst'). */
  name?: string
  /** Give QEMU a pipe on fd 3 (a QEMU plugin's output, e.g. migtrace record's): `QemuProcess.fd3`. */
  fd3Pipe?: boolean
}

export class QemuStartError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'QemuStartError'
  }
}

/** QEMU ended (or a wait ran out) before the console line a caller waited for. */
export class QemuConsoleWaitError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'QemuConsoleWaitError'
  }
}

const STDERR_TAIL = 4096

export class QemuProcess {
  readonly pid: number
  readonly name: string
  /** The command line as run (binary first; without the setpriv wrapper). */
  readonly commandLine: readonly string[]
  readonly exited: Promise<QemuExit>
  /** Console lines read so far. */
  readonly consoleLines: ConsoleLine[] = []
  /** The read end of QEMU's fd 3 (with `fd3Pipe`). */
  readonly fd3: Readable | undefined
  private exit: QemuExit | undefined
  /** The process has exited (its pid may be reused from then on: never signal it again). */
  private gone = false
  private readonly lineListeners = new Set<(l: ConsoleLine) => void>()
  private pendingLine = ''
  private stderrBuf = ''
  private readonly files: WriteStream[] = []

  private constructor(
    private readonly child: ChildProcess,
    opts: QemuSpawnOptions,
    commandLine: string[],
  ) {
    this.pid = child.pid!
    this.name = opts.name ?? 'qemu'
    this.fd3 = (child.stdio[3] as Readable | null | undefined) ?? undefined
    this.commandLine = commandLine
    const raw = opts.console?.raw !== undefined ? this.open(opts.console.raw) : undefined
    const stamped = opts.console?.stamped !== undefined ? this.open(opts.console.stamped) : undefined
    const errFile = opts.stderrFile !== undefined ? this.open(opts.stderrFile) : undefined
    child.stdout!.setEncoding('utf8')
    child.stdout!.on('data', (chunk: string) => {
      const hostUs = hostNowUs()
      raw?.write(chunk)
      this.pendingLine += chunk
      let nl: number
      while ((nl = this.pendingLine.indexOf('\n')) >= 0) {
        const line = this.pendingLine.slice(0, nl).replace(/\r$/, '')
        this.pendingLine = this.pendingLine.slice(nl + 1)
        stamped?.write(`[${formatHostUs(hostUs)}] ${line}\n`)
        this.addLine({line, hostUs})
      }
    })
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (chunk: string) => {
      errFile?.write(chunk)
      this.stderrBuf = (this.stderrBuf + chunk).slice(-STDERR_TAIL)
    })
    // 'close' comes after 'exit' once stdout and stderr are drained: every console line and
    // stderr message is in when `exited` resolves.
    child.on('exit', () => (this.gone = true))
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        if (this.pendingLine !== '') {
          const l = {line: this.pendingLine.replace(/\r$/, ''), hostUs: hostNowUs()}
          stamped?.write(`[${formatHostUs(l.hostUs)}] ${l.line}\n`)
          this.pendingLine = ''
          this.addLine(l)
        }
        this.exit = {code, signal}
        live.delete(this)
        void Promise.all(this.files.map((f) => new Promise((r) => f.end(r)))).then(() => resolve(this.exit!))
      })
    })
  }

  /** Start QEMU. Throws QemuStartError when the binary cannot be run. */
  static async spawn(opts: QemuSpawnOptions): Promise<QemuProcess> {
    installCleanup()
    const binary = opts.binary ?? 'qemu-system-x86_64'
    // Checked here: behind the setpriv wrapper a missing binary would only show as setpriv's exit.
    if (findExecutable(binary) === undefined) throw new QemuStartError(`cannot run ${binary}: not found or not executable${binary.includes('/') ? '' : ' on the PATH'}`)
    const commandLine = [binary, ...opts.args]
    const wrapped = pdeathsigWrapper() ? ['setpriv', '--pdeathsig', 'SIGKILL', '--', ...commandLine] : commandLine
    const child = spawn(wrapped[0]!, wrapped.slice(1), {stdio: opts.fd3Pipe === true ? ['ignore', 'pipe', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe']})
    // spawn() reports a missing binary asynchronously, as an 'error' event before any 'spawn'.
    const started = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined))
      child.once('error', (e) => resolve(e))
    })
    if (started !== undefined) throw new QemuStartError(`cannot run ${binary}: ${(started as NodeJS.ErrnoException).code ?? started.message}`)
    const p = new QemuProcess(child, opts, commandLine)
    live.add(p)
    return p
  }

  get running(): boolean {
    return this.exit === undefined
  }

  /** The last few KiB QEMU wrote to stderr (for error messages). */
  stderrTail(): string {
    return this.stderrBuf
  }

  /** Call `fn` for each console line from now on; returns a function that removes it. */
  onConsoleLine(fn: (l: ConsoleLine) => void): () => void {
    this.lineListeners.add(fn)
    return () => this.lineListeners.delete(fn)
  }

  /**
   * The first console line matching `re` (lines already read count too, from index `from`).
   * Rejects with QemuConsoleWaitError when QEMU exits or the timeout passes first.
   */
  waitForConsoleLine(re: RegExp, opts: {timeoutMs: number; from?: number; signal?: AbortSignal}): Promise<ConsoleLine> {
    for (let i = opts.from ?? 0; i < this.consoleLines.length; i++) if (re.test(this.consoleLines[i]!.line)) return Promise.resolve(this.consoleLines[i]!)
    return new Promise((resolve, reject) => {
      const off = this.onConsoleLine((l) => {
        if (!re.test(l.line)) return
        done()
        resolve(l)
      })
      const timer = setTimeout(() => {
        done()
        reject(new QemuConsoleWaitError(`${this.name}: no console line matching ${re} within ${opts.timeoutMs} ms${this.lastLines()}`))
      }, opts.timeoutMs)
      const onAbort = (): void => {
        done()
        reject(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error('aborted'))
      }
      opts.signal?.addEventListener('abort', onAbort, {once: true})
      void this.exited.then((x) => {
        done()
        reject(new QemuConsoleWaitError(`${this.name}: QEMU exited (${describeExit(x)}) before a console line matching ${re}${this.stderrSummary()}`))
      })
      const done = (): void => {
        clearTimeout(timer)
        off()
        opts.signal?.removeEventListener('abort', onAbort)
      }
    })
  }

  /**
   * Stop QEMU: `quit` over QMP when a client is given (QEMU then flushes its trace log and exits
   * 0), else SIGTERM (QEMU also shuts down cleanly on it); SIGKILL if it has not exited after
   * `timeoutMs`. Resolves with how it exited.
   */
  async quit(qmp?: QmpClient, opts: {timeoutMs?: number} = {}): Promise<QemuExit> {
    if (this.exit) return this.exit
    const timeoutMs = opts.timeoutMs ?? 10_000
    let asked = false
    if (qmp !== undefined && !qmp.closed) {
      try {
        await qmp.execute('quit', undefined, {timeoutMs})
        asked = true
      } catch {
        // QEMU may close the socket before its reply reaches us; the exit below decides.
        asked = !this.running || qmp.closed
      }
    }
    if (!asked) this.kill('SIGTERM')
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs)
    const x = await this.exited
    clearTimeout(timer)
    return x
  }

  /** Send a signal (no-op once QEMU has exited). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.gone) return
    try {
      process.kill(this.pid, signal)
    } catch {
      // already gone
    }
  }

  private open(path: string): WriteStream {
    const f = createWriteStream(path)
    this.files.push(f)
    return f
  }

  private addLine(l: ConsoleLine): void {
    this.consoleLines.push(l)
    for (const fn of [...this.lineListeners]) fn(l)
  }

  private lastLines(): string {
    const tail = this.consoleLines.slice(-3).map((l) => l.line)
    return tail.length > 0 ? `; last console lines: ${tail.join(' | ')}` : '; the console is empty'
  }

  private stderrSummary(): string {
    const s = this.stderrBuf.trim().split('\n').slice(-3).join(' | ')
    return s !== '' ? `: ${s}` : this.lastLines()
  }
}

export function describeExit(x: QemuExit): string {
  return x.signal !== null ? `signal ${x.signal}` : `exit code ${x.code}`
}

/** The path of an executable: `name` itself when it has a slash, else the first match on the PATH. */
export function findExecutable(name: string): string | undefined {
  const ok = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK)
      return statSync(p).isFile()
    } catch {
      return false
    }
  }
  if (name.includes('/')) return ok(name) ? name : undefined
  for (const d of (process.env.PATH ?? '').split(delimiter)) if (d !== '' && ok(join(d, name))) return join(d, name)
  return undefined
}

// --- no orphans ---------------------------------------------------------------------------------

const live = new Set<QemuProcess>()
let cleanupInstalled = false
let usePdeathsig: boolean | undefined

function pdeathsigWrapper(): boolean {
  usePdeathsig ??= spawnSync('setpriv', ['--help'], {stdio: 'ignore'}).status === 0
  return usePdeathsig
}

/** QEMU processes started here and still running (tests, diagnostics). */
export function liveQemuProcesses(): readonly QemuProcess[] {
  return [...live]
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = {SIGHUP: 1, SIGINT: 2, SIGTERM: 15}

function installCleanup(): void {
  if (cleanupInstalled) return
  cleanupInstalled = true
  // 'exit' handlers must be synchronous: a plain SIGKILL to whatever is left.
  process.on('exit', () => {
    for (const p of live) p.kill('SIGKILL')
  })
  for (const sig of Object.keys(SIGNAL_NUMBERS) as NodeJS.Signals[]) {
    process.on(sig, () => {
      // SIGTERM first (QEMU flushes its logs), SIGKILL for anything still there after 3 s.
      for (const p of live) p.kill('SIGTERM')
      const code = 128 + SIGNAL_NUMBERS[sig]!
      if (live.size === 0) process.exit(code)
      const t = setTimeout(() => process.exit(code), 3000)
      void Promise.all([...live].map((p) => p.exited)).then(() => {
        clearTimeout(t)
        process.exit(code)
      })
    })
  }
}
