/**
 * A small QMP client (QEMU Machine Protocol, docs/interop/qmp-spec.rst in QEMU) over a unix socket.
 *
 * The protocol, as QEMU 7.2 speaks it (monitor/qmp.c):
 *  - on connect the server sends one greeting line `{"QMP": {"version": ..., "capabilities": [...]}}`
 *    and stays in capabilities-negotiation mode until `qmp_capabilities` succeeds;
 *  - every message is one JSON object per line; a command `{"execute": NAME, "arguments": {...},
 *    "id": ID}` gets exactly one reply carrying the same id, `{"return": ...}` or
 *    `{"error": {"class": ..., "desc": ...}}`;
 *  - asynchronous events `{"event": NAME, "data": {...}, "timestamp": {"seconds", "microseconds"}}`
 *    can arrive between any two replies (QEMU stamps them with g_get_real_time(), the host clock).
 *
 * Usage:
 *   const qmp = await QmpClient.connect('/run/vm.qmp', {timeoutMs: 30_000})
 *   const info = await qmp.execute<MigrationInfo>('query-migrate')
 *   qmp.onEvent((e) => log(e))                    // every event, in arrival order
 *   await qmp.waitForEvent('MIGRATION', {match: (e) => e.data?.status === 'completed'})
 *   await qmp.close()
 *
 * Errors are typed: QmpCommandError (QEMU answered with an error: class and desc kept),
 * QmpTimeoutError (no reply or event in time), QmpClosedError (the socket closed, e.g. QEMU
 * exited, while something was pending), QmpProtocolError (a line that is not a QMP message).
 * A command that times out stays matched to its id: a late reply is dropped, not given to the
 * next command.
 */
import {connect as netConnect, type Socket} from 'node:net'
import {setTimeout as sleep} from 'node:timers/promises'
import {hostNowUs} from './host-clock.js'

export interface QmpGreeting {
  version: {qemu: {major: number; minor: number; micro: number}; package: string}
  capabilities: string[]
}

export interface QmpEvent {
  event: string
  data?: Record<string, unknown>
  /** QEMU's own stamp (host real time when QEMU emitted the event). */
  timestamp: {seconds: number; microseconds: number}
  /** Host time (µs since the epoch) at which this client read the event. */
  receivedUs: number
}

export class QmpError extends Error {
  constructor(message: string) {
    super(message)
    this.name = new.target.name
  }
}

/** QEMU answered a command with `{"error": ...}`. */
export class QmpCommandError extends QmpError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command}: ${errorClass}: ${desc}`)
  }
}

export class QmpTimeoutError extends QmpError {}
export class QmpClosedError extends QmpError {}
export class QmpProtocolError extends QmpError {}

export interface QmpConnectOptions {
  /** Keep trying to connect (the socket appears once QEMU has started) for this long. Default 30 s. */
  timeoutMs?: number
  /** Default timeout of execute() calls. Default 30 s. */
  commandTimeoutMs?: number
  /** Abort the connection attempt. */
  signal?: AbortSignal
}

export interface ExecuteOptions {
  /** Overrides the client's default command timeout. */
  timeoutMs?: number
}

interface Pending {
  command: string
  resolve: (v: unknown) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
}

type EventListener = (e: QmpEvent) => void

export class QmpClient {
  /** Every event received so far, in arrival order. */
  readonly events: QmpEvent[] = []
  private readonly pending = new Map<number, Pending>()
  private readonly listeners = new Set<EventListener>()
  private nextId = 1
  private buf = ''
  private closedError: QmpClosedError | undefined
  private readonly closedPromise: Promise<void>
  private markClosed!: () => void

  private constructor(
    private readonly sock: Socket,
    readonly path: string,
    readonly greeting: QmpGreeting,
    private readonly commandTimeoutMs: number,
    leftover: string,
  ) {
    this.closedPromise = new Promise((resolve) => (this.markClosed = resolve))
    sock.setEncoding('utf8')
    sock.on('data', (chunk: string) => this.onData(chunk))
    sock.on('error', () => undefined) // 'close' follows and says it all
    sock.on('close', () => this.onClose())
    if (leftover !== '') this.onData(leftover)
  }

  /**
   * Connect to QEMU's QMP socket (`-qmp unix:PATH,server=on,wait=off`), read the greeting and
   * leave capabilities-negotiation mode. Retries while the socket does not exist yet or refuses.
   */
  static async connect(path: string, opts: QmpConnectOptions = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 30_000
    const deadline = Date.now() + timeoutMs
    let lastErr = ''
    for (;;) {
      opts.signal?.throwIfAborted()
      try {
        const {sock, greeting, leftover} = await openAndGreet(path, Math.max(1, deadline - Date.now()))
        const c = new QmpClient(sock, path, greeting, opts.commandTimeoutMs ?? 30_000, leftover)
        await c.execute('qmp_capabilities', undefined, {timeoutMs: Math.max(1000, deadline - Date.now())})
        return c
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        // ENOENT: QEMU has not created the socket yet; ECONNREFUSED: created, not listening yet.
        if (code !== 'ENOENT' && code !== 'ECONNREFUSED') throw e
        lastErr = code
      }
      if (Date.now() >= deadline) throw new QmpTimeoutError(`QMP: could not connect to ${path} within ${timeoutMs} ms (${lastErr})`)
      await sleep(50)
    }
  }

  /**
   * Run one command and resolve with its `return` value. Rejects with QmpCommandError when QEMU
   * answers with an error, QmpTimeoutError after the timeout, QmpClosedError if the socket closes.
   */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, opts: ExecuteOptions = {}): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError)
    const id = this.nextId++
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Keep the id reserved so a late reply is recognised and dropped.
        this.pending.set(id, {command, resolve: () => undefined, reject: () => undefined, timer: undefined as unknown as NodeJS.Timeout})
        reject(new QmpTimeoutError(`QMP ${command}: no reply within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(id, {command, resolve: resolve as (v: unknown) => void, reject, timer})
      const msg: Record<string, unknown> = {execute: command, id}
      if (args !== undefined) msg.arguments = args
      this.sock.write(`${JSON.stringify(msg)}\n`)
    })
  }

  /** Call `fn` for every event from now on; returns a function that removes it. */
  onEvent(fn: EventListener): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /**
   * The first event named `name` (and accepted by `match`) that arrives after this call, or, with
   * `includePast`, one already received.
   */
  waitForEvent(name: string, opts: {timeoutMs?: number; match?: (e: QmpEvent) => boolean; includePast?: boolean} = {}): Promise<QmpEvent> {
    const ok = (e: QmpEvent): boolean => e.event === name && (opts.match?.(e) ?? true)
    if (opts.includePast) {
      const past = this.events.find(ok)
      if (past) return Promise.resolve(past)
    }
    if (this.closedError) return Promise.reject(this.closedError)
    const timeoutMs = opts.timeoutMs ?? this.commandTimeoutMs
    return new Promise((resolve, reject) => {
      const off = this.onEvent((e) => {
        if (!ok(e)) return
        done()
        resolve(e)
      })
      const onClosed = (): void => {
        done()
        reject(this.closedError ?? new QmpClosedError(`QMP ${this.path}: closed`))
      }
      const timer = setTimeout(() => {
        done()
        reject(new QmpTimeoutError(`QMP: no ${name} event within ${timeoutMs} ms`))
      }, timeoutMs)
      void this.closedPromise.then(onClosed)
      const done = (): void => {
        clearTimeout(timer)
        off()
      }
    })
  }

  /** True once the socket has closed (QEMU exited or close() was called). */
  get closed(): boolean {
    return this.closedError !== undefined
  }

  /** Resolves when the socket has closed. */
  whenClosed(): Promise<void> {
    return this.closedPromise
  }

  /** Close the connection; pending commands reject with QmpClosedError. */
  async close(): Promise<void> {
    if (this.closedError) return
    this.sock.end()
    const t = setTimeout(() => this.sock.destroy(), 1000)
    await this.closedPromise
    clearTimeout(t)
  }

  private onData(chunk: string): void {
    this.buf += chunk
    let nl: number
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim()
      this.buf = this.buf.slice(nl + 1)
      if (line !== '') this.onLine(line)
    }
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>
    try {
      msg = JSON.parse(line) as Record<string, unknown>
    } catch {
      this.fail(new QmpProtocolError(`QMP ${this.path}: not JSON: ${line.slice(0, 120)}`))
      return
    }
    if (typeof msg.event === 'string') {
      const ts = (msg.timestamp ?? {seconds: 0, microseconds: 0}) as QmpEvent['timestamp']
      const e: QmpEvent = {event: msg.event, timestamp: ts, receivedUs: hostNowUs(), ...(msg.data !== undefined ? {data: msg.data as Record<string, unknown>} : {})}
      this.events.push(e)
      for (const fn of [...this.listeners]) fn(e)
      return
    }
    const id = typeof msg.id === 'number' ? msg.id : undefined
    const p = id === undefined ? undefined : this.pending.get(id)
    if (p === undefined || id === undefined) return // a reply to a command that timed out
    this.pending.delete(id)
    clearTimeout(p.timer)
    if ('error' in msg) {
      const err = (msg.error ?? {}) as {class?: string; desc?: string}
      p.reject(new QmpCommandError(p.command, err.class ?? 'unknown', err.desc ?? JSON.stringify(msg.error)))
    } else p.resolve(msg.return)
  }

  private fail(e: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.reject(e)
    }
    this.pending.clear()
    this.sock.destroy()
  }

  private onClose(): void {
    this.closedError ??= new QmpClosedError(`QMP ${this.path}: connection closed`)
    for (const p of this.pending.values()) {
      clearTimeout(p.timer)
      p.reject(this.closedError)
    }
    this.pending.clear()
    this.markClosed()
  }
}

/** Connect and read the greeting line; anything after it in the same chunk is returned as leftover. */
function openAndGreet(path: string, timeoutMs: number): Promise<{sock: Socket; greeting: QmpGreeting; leftover: string}> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(path)
    let buf = ''
    let settled = false
    const finish = (err: Error | undefined, v?: {sock: Socket; greeting: QmpGreeting; leftover: string}): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.removeAllListeners('data')
      sock.removeAllListeners('error')
      sock.removeAllListeners('close')
      if (err) {
        sock.destroy()
        reject(err)
      } else resolve(v!)
    }
    const timer = setTimeout(() => finish(new QmpTimeoutError(`QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs)
    sock.setEncoding('utf8')
    sock.on('error', (e) => finish(e))
    sock.on('close', () => finish(new QmpClosedError(`QMP ${path}: closed before the greeting`)))
    sock.on('data', (chunk: string) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      let g: unknown
      try {
        g = JSON.parse(buf.slice(0, nl))
      } catch {
        finish(new QmpProtocolError(`QMP ${path}: the greeting is not JSON: ${buf.slice(0, 120)}`))
        return
      }
      const qmp = (g as {QMP?: QmpGreeting}).QMP
      if (typeof qmp !== 'object' || qmp === null) {
        finish(new QmpProtocolError(`QMP ${path}: expected a {"QMP": ...} greeting, got ${buf.slice(0, 120)}`))
        return
      }
      finish(undefined, {sock, greeting: qmp, leftover: buf.slice(nl + 1)})
    })
  })
}
