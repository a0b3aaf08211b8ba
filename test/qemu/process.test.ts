/**
 * The QEMU launcher with a stand-in binary (/bin/sh scripts): console lines read from stdout and
 * host-stamped, waits that end on a match, on exit or on a timeout, stop by signal, and no orphans
 * when the launching process is interrupted or killed.
 */
import {mkdtempSync, readFileSync} from 'node:fs'
import {spawn} from 'node:child_process'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {QemuConsoleWaitError, QemuProcess, QemuStartError} from '../../src/qemu/process.js'
import {ROOT} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-proc-'))

/** Running (a zombie waiting for its new parent to reap it counts as gone). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

test('console lines: raw and host-stamped files, waitForConsoleLine on a match, stop by SIGTERM', async (t) => {
  const raw = join(dir, 'serial.log')
  const stamped = join(dir, 'console.log')
  const vm = await QemuProcess.spawn({binary: '/bin/sh', args: ['-c', 'printf "booting\\r\\nDIRTIER READY\\r\\n"; echo oops >&2; exec sleep 30'], console: {raw, stamped}, stderrFile: join(dir, 'err.log'), name: 'fake'})
  const before = Date.now() * 1000
  const l = await vm.waitForConsoleLine(/DIRTIER READY/, {timeoutMs: 5000})
  t.is(l.line, 'DIRTIER READY')
  t.true(Math.abs(l.hostUs - before) < 5e6)
  // a line read already is found again
  t.is((await vm.waitForConsoleLine(/booting/, {timeoutMs: 10})).line, 'booting')
  await t.throwsAsync(vm.waitForConsoleLine(/never/, {timeoutMs: 50}), {instanceOf: QemuConsoleWaitError, message: /fake: no console line matching \/never\/ within 50 ms; last console lines: booting \| DIRTIER READY/})
  const x = await vm.quit(undefined, {timeoutMs: 5000})
  t.is(x.signal, 'SIGTERM')
  await new Promise((r) => setTimeout(r, 50))
  t.is(readFileSync(raw, 'utf8'), 'booting\r\nDIRTIER READY\r\n')
  t.regex(readFileSync(stamped, 'utf8'), /^\[\d{10}\.\d{6}\] booting\n\[\d{10}\.\d{6}\] DIRTIER READY\n$/)
  t.is(readFileSync(join(dir, 'err.log'), 'utf8'), 'oops\n')
})

test('a wait ends when QEMU exits first (with its last stderr line); a missing binary is a clear error', async (t) => {
  const vm = await QemuProcess.spawn({binary: '/bin/sh', args: ['-c', 'echo "qemu-system-x86_64: -m 99T: ram size too large" >&2; exit 1'], name: 'src'})
  await t.throwsAsync(vm.waitForConsoleLine(/READY/, {timeoutMs: 5000}), {instanceOf: QemuConsoleWaitError, message: 'src: QEMU exited (exit code 1) before a console line matching /READY/: qemu-system-x86_64: -m 99T: ram size too large'})
  await t.throwsAsync(QemuProcess.spawn({binary: join(dir, 'no-such-qemu'), args: []}), {instanceOf: QemuStartError, message: /cannot run .*no-such-qemu: not found or not executable$/})
})

/** Runs test/qemu/spawn-child.ts in its own node, which starts a stand-in QEMU and prints its pid. */
async function launcher(): Promise<{node: ReturnType<typeof spawn>; qemuPid: number}> {
  const node = spawn(process.execPath, ['--import=tsx', join(ROOT, 'test/qemu/spawn-child.ts')], {stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT})
  const pid = await new Promise<number>((resolve, reject) => {
    let out = ''
    node.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d
      const m = /pid=(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    node.on('exit', () => reject(new Error(`launcher exited early: ${out}`)))
  })
  return {node, qemuPid: pid}
}

test('no orphans: Ctrl-C (SIGINT) on the launching process stops its QEMU and exits 130', async (t) => {
  const {node, qemuPid} = await launcher()
  t.true(alive(qemuPid))
  const exited = new Promise<number | null>((r) => node.on('exit', (code) => r(code)))
  node.kill('SIGINT')
  t.is(await exited, 130)
  await new Promise((r) => setTimeout(r, 100))
  t.false(alive(qemuPid))
})

test('no orphans: SIGKILL on the launching process still ends its QEMU (parent-death signal)', async (t) => {
  const {node, qemuPid} = await launcher()
  node.kill('SIGKILL')
  for (let i = 0; i < 50 && alive(qemuPid); i++) await new Promise((r) => setTimeout(r, 20))
  t.false(alive(qemuPid))
})
