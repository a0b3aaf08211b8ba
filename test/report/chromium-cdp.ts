/**
 * Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: we write
 * to its fd 3, it answers on fd 4, messages separated by NUL). Loads a page, collects console
 * errors, uncaught exceptions and failed loads (Log.entryAdded errors), and takes a screenshot.
 * No npm dependency: the protocol is a few JSON messages.
 */
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Readable, Writable} from 'node:stream'

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface PageRun {
  /** Console errors, exceptions and failed loads, as text. */
  errors: string[]
  /** Every console message (any level). */
  console: string[]
  png: Buffer
}

type Msg = {id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: {message: string}; sessionId?: string}

export async function loadPage(url: string, width = 1200, height = 2000, timeoutMs = 60_000): Promise<PageRun> {
  const profile = mkdtempSync(join(tmpdir(), 'migtrace-chromium-'))
  const child = spawn(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-pipe', `--window-size=${width},${height}`, 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    // its own process group, so its helper processes (zygote, crashpad) can be ended with it
    detached: true,
  })
  let stderr = ''
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const toChrome = child.stdio[3] as Writable
  const fromChrome = child.stdio[4] as Readable
  let nextId = 1
  const pending = new Map<number, {resolve: (m: Msg) => void; reject: (e: Error) => void}>()
  const events: Msg[] = []
  const waiters: {method: string; resolve: (m: Msg) => void}[] = []
  let buf = ''
  fromChrome.setEncoding('utf8').on('data', (d: string) => {
    buf += d
    let z: number
    while ((z = buf.indexOf('\0')) >= 0) {
      const m = JSON.parse(buf.slice(0, z)) as Msg
      buf = buf.slice(z + 1)
      if (m.id !== undefined) {
        const p = pending.get(m.id)
        pending.delete(m.id)
        if (m.error) p?.reject(new Error(m.error.message))
        else p?.resolve(m)
      } else {
        events.push(m)
        for (let i = waiters.length - 1; i >= 0; i--)
          if (waiters[i]!.method === m.method) {
            waiters[i]!.resolve(m)
            waiters.splice(i, 1)
          }
      }
    }
  })
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Msg> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      pending.set(id, {resolve, reject})
      toChrome.write(`${JSON.stringify({id, method, params, ...(sessionId ? {sessionId} : {})})}\0`)
    })
  const waitFor = (method: string): Promise<Msg> => new Promise((resolve) => waiters.push({method, resolve}))
  const gone = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  const exited = gone.then((): never => {
    throw new Error(`chromium exited early:\n${stderr.slice(-2000)}`)
  })
  exited.catch(() => {})
  let timeout: NodeJS.Timeout | undefined
  const timer = new Promise<never>((_, reject) => {
    timeout = setTimeout(() => reject(new Error(`chromium timed out:\n${stderr.slice(-2000)}`)), timeoutMs)
  })
  const work = async (): Promise<PageRun> => {
    const {result: created} = await send('Target.createTarget', {url: 'about:blank'})
    const {result: attached} = await send('Target.attachToTarget', {targetId: created!.targetId, flatten: true})
    const s = attached!.sessionId as string
    await send('Runtime.enable', {}, s)
    await send('Log.enable', {}, s)
    await send('Page.enable', {}, s)
    await send('Emulation.setDeviceMetricsOverride', {width, height, deviceScaleFactor: 1, mobile: false}, s)
    const loaded = waitFor('Page.loadEventFired')
    await send('Page.navigate', {url}, s)
    await loaded
    // let layout settle (fonts, SVG) before the screenshot
    await send('Runtime.evaluate', {expression: 'new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))', awaitPromise: true}, s)
    const shot = await send('Page.captureScreenshot', {format: 'png', captureBeyondViewport: false}, s)
    const errors: string[] = []
    const consoleLines: string[] = []
    for (const e of events) {
      const p = e.params ?? {}
      if (e.method === 'Runtime.consoleAPICalled') {
        const text = ((p.args as {value?: unknown; description?: string}[]) ?? []).map((a) => String(a.value ?? a.description ?? '')).join(' ')
        consoleLines.push(`${String(p.type)}: ${text}`)
        if (p.type === 'error' || p.type === 'assert') errors.push(`console.${String(p.type)}: ${text}`)
      } else if (e.method === 'Runtime.exceptionThrown') {
        const d = p.exceptionDetails as {text?: string; exception?: {description?: string}}
        errors.push(`exception: ${d.exception?.description ?? d.text ?? ''}`)
      } else if (e.method === 'Log.entryAdded') {
        const entry = p.entry as {level: string; text: string; url?: string}
        consoleLines.push(`${entry.level}: ${entry.text}`)
        if (entry.level === 'error') errors.push(`log: ${entry.text}${entry.url ? ` (${entry.url})` : ''}`)
      }
    }
    return {errors, console: consoleLines, png: Buffer.from(shot.result!.data as string, 'base64')}
  }
  try {
    return await Promise.race([work(), exited, timer])
  } finally {
    clearTimeout(timeout)
    // ask politely, then end the process group this function started
    if (child.exitCode === null) toChrome.write(`${JSON.stringify({id: nextId++, method: 'Browser.close'})}\0`, () => {})
    const closed = await Promise.race([gone.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))])
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // the group is already gone
    }
    if (!closed) await gone
    // the profile goes once nothing writes to it any more; a leftover temp dir is not a test failure
    try {
      rmSync(profile, {recursive: true, force: true, maxRetries: 10, retryDelay: 100})
    } catch {
      // left in the temp dir
    }
  }
}
