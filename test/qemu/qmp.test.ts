/**
 * The QMP client against a scripted QMP server (a unix socket speaking QEMU's protocol), and
 * against a real QEMU (-machine none) where one is installed.
 */
import {mkdtempSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {spawnSync} from 'node:child_process'
import test from 'ava'
import {QmpClient, QmpClosedError, QmpCommandError, QmpProtocolError, QmpTimeoutError} from '../../src/qemu/qmp.js'
import {QemuProcess} from '../../src/qemu/process.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-qmp-'))
let n = 0
const sockPath = (): string => join(dir, `q${n++}.sock`)

const GREETING = '{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}\n'

type Handler = (msg: {execute: string; arguments?: Record<string, unknown>; id?: unknown}, sock: Socket) => void

/** A QMP server: greeting, then `handler` for every command after qmp_capabilities. */
function fakeQemu(path: string, handler: Handler, opts: {greeting?: string} = {}): Promise<Server> {
  const server = createServer((sock) => {
    sock.setEncoding('utf8')
    sock.write(opts.greeting ?? GREETING)
    let buf = ''
    sock.on('data', (chunk: string) => {
      buf += chunk
      let nl: number
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as {execute: string; id?: unknown}
        buf = buf.slice(nl + 1)
        if (msg.execute === 'qmp_capabilities') sock.write(`${JSON.stringify({return: {}, id: msg.id})}\n`)
        else handler(msg, sock)
      }
    })
    sock.on('error', () => undefined)
  })
  return new Promise((resolve) => server.listen(path, () => resolve(server)))
}

const reply = (sock: Socket, id: unknown, ret: unknown): void => void sock.write(`${JSON.stringify({return: ret, id})}\n`)
const event = (sock: Socket, name: string, data: unknown): void =>
  void sock.write(`${JSON.stringify({timestamp: {seconds: 1700000000, microseconds: 123456}, event: name, data})}\n`)

test('greeting, capabilities, execute with ids (replies out of order), events between replies', async (t) => {
  const path = sockPath()
  const held: {id: unknown; sock: Socket}[] = []
  const server = await fakeQemu(path, (msg, sock) => {
    if (msg.execute === 'slow') held.push({id: msg.id, sock})
    else if (msg.execute === 'query-status') {
      event(sock, 'MIGRATION', {status: 'active'})
      reply(sock, msg.id, {status: 'running', running: true})
      // the held reply comes after a later command's reply
      for (const h of held.splice(0)) reply(h.sock, h.id, {slow: true, args: msg.arguments ?? null})
    }
  })
  const qmp = await QmpClient.connect(path)
  t.is(qmp.greeting.version.qemu.major, 7)
  const seen: string[] = []
  qmp.onEvent((e) => seen.push(`${e.event}:${String(e.data?.status)}`))
  const slow = qmp.execute('slow')
  const status = await qmp.execute<{status: string}>('query-status')
  t.deepEqual(status, {status: 'running', running: true})
  t.deepEqual(await slow, {slow: true, args: null})
  t.deepEqual(seen, ['MIGRATION:active'])
  t.is(qmp.events.length, 1)
  t.deepEqual(qmp.events[0]!.timestamp, {seconds: 1700000000, microseconds: 123456})
  t.true(qmp.events[0]!.receivedUs > 1.6e15)
  await qmp.close()
  server.close()
})

test('errors: QEMU error replies, timeouts (a late reply is dropped), a closed socket, bad JSON', async (t) => {
  const path = sockPath()
  let late: {id: unknown; sock: Socket} | undefined
  const server = await fakeQemu(path, (msg, sock) => {
    if (msg.execute === 'migrate') sock.write(`${JSON.stringify({error: {class: 'GenericError', desc: "Parameter 'uri' is missing"}, id: msg.id})}\n`)
    else if (msg.execute === 'hang') late = {id: msg.id, sock}
    else if (msg.execute === 'ping') {
      if (late) reply(late.sock, late.id, 'late')
      reply(sock, msg.id, 'pong')
    } else if (msg.execute === 'garbage') sock.write('this is not json\n')
    else if (msg.execute === 'quit') {
      reply(sock, msg.id, {})
      sock.end()
    }
  })
  const qmp = await QmpClient.connect(path)
  const err = await t.throwsAsync(qmp.execute('migrate'), {instanceOf: QmpCommandError})
  t.is(err!.errorClass, 'GenericError')
  t.is(err!.message, "QMP migrate: GenericError: Parameter 'uri' is missing")
  await t.throwsAsync(qmp.execute('hang', undefined, {timeoutMs: 50}), {instanceOf: QmpTimeoutError, message: 'QMP hang: no reply within 50 ms'})
  t.is(await qmp.execute('ping'), 'pong')
  await t.throwsAsync(qmp.waitForEvent('STOP', {timeoutMs: 30}), {instanceOf: QmpTimeoutError})
  const pending = qmp.waitForEvent('SHUTDOWN', {timeoutMs: 5000})
  t.deepEqual(await qmp.execute('quit'), {})
  await t.throwsAsync(pending, {instanceOf: QmpClosedError})
  await qmp.whenClosed()
  await t.throwsAsync(qmp.execute('ping'), {instanceOf: QmpClosedError})

  const qmp2 = await QmpClient.connect(path)
  await t.throwsAsync(qmp2.execute('garbage'), {instanceOf: QmpProtocolError})
  server.close()
})

test('connect waits for the socket to appear, and gives up with a clear timeout', async (t) => {
  const path = sockPath()
  const conn = QmpClient.connect(path, {timeoutMs: 5000})
  await new Promise((r) => setTimeout(r, 200))
  const server = await fakeQemu(path, () => undefined)
  const qmp = await conn
  t.is(qmp.greeting.capabilities[0], 'oob')
  await qmp.close()
  server.close()
  await t.throwsAsync(QmpClient.connect(join(dir, 'never.sock'), {timeoutMs: 150}), {instanceOf: QmpTimeoutError, message: /could not connect to .*never\.sock within 150 ms \(ENOENT\)/})
  const bad = sockPath()
  const s2 = await fakeQemu(bad, () => undefined, {greeting: '{"hello": 1}\n'})
  await t.throwsAsync(QmpClient.connect(bad), {instanceOf: QmpProtocolError, message: /expected a \{"QMP": \.\.\.\} greeting/})
  s2.close()
})

const haveQemu = spawnSync('qemu-system-x86_64', ['--version'], {stdio: 'ignore'}).status === 0

test('a real QEMU: query-version and query-migrate over QMP, then quit', async (t) => {
  if (!haveQemu) {
    t.log('skipped: qemu-system-x86_64 is not installed')
    t.pass()
    return
  }
  const path = sockPath()
  const vm = await QemuProcess.spawn({args: ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${path},server=on,wait=off`], name: 'none'})
  const qmp = await QmpClient.connect(path, {timeoutMs: 20_000})
  const v = await qmp.execute<{qemu: {major: number}}>('query-version')
  t.true(v.qemu.major >= 7)
  t.deepEqual(await qmp.execute('query-migrate'), {})
  await t.throwsAsync(qmp.execute('no-such-command'), {instanceOf: QmpCommandError, message: /CommandNotFound/})
  const x = await vm.quit(qmp)
  t.is(x.code, 0)
  t.false(vm.running)
})
