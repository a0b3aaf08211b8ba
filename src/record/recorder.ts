/**
 * `migtrace record`: run the user's QEMU under the recording plugin and write a migtrace trace of
 * every guest store to RAM (coalesced per page and epoch), with the guest layout from QMP and
 * QEMU's virtio-mem and VFIO trace events.
 *
 *   user's command + -plugin migtrace-record.so,fd=3,...   (records on fd 3, a pipe to us)
 *                  + -qmp unix:SOCK                         (layout, cont, quit)
 *                  + -trace events=FILE -D LOG -msg timestamp=on   (virtio-mem, VFIO)
 *                  + -S                                     (the layout is read before the guest runs)
 *
 * The records are decoded and merged into time order as they arrive (bounded memory), mapped to
 * guest-physical addresses, interleaved with the trace log's events, and written through the
 * project's TraceWriter. The trace appears at --out only when the recording finished; Ctrl-C or
 * an error leaves nothing (the temporary files go with the process).
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {TraceHeader} from '../trace/header.js'
import {formatFromPath} from '../trace/write/writer.js'
import {QemuProcess, QemuStartError, QmpClient, describeExit, hostNowUs} from '../qemu/index.js'
import {UserError} from '../util/errors.js'
import {ensurePlugin} from './plugin-build.js'
import {RecordFormatError} from './records.js'
import {attachRecording, type AttachedRecording} from './attach.js'
import {RECORD_TRACE_EVENTS} from './qemu-events.js'
import {checkQemuArgs, hasFlag, optionValue} from './qemu-args.js'

export interface RecordOptions {
  out: string
  /** The user's QEMU command: binary, then its arguments. */
  command: string[]
  /** Coalescing epoch (ns); 0 = every store. */
  epochNs: number
  /** Guest virtual clock rate (instructions per second), for clock 'guest'. */
  ips: number
  clock: 'guest' | 'host'
  /** Stop once the trace reaches this time (ns); undefined: until QEMU exits. */
  durationNs?: number
  /** Stop at the first console line matching this. */
  stopOn?: RegExp
  /** Host-stamped copy of the guest console (QEMU's stdout). */
  console?: string
  /** Progress messages. */
  log?: (msg: string) => void
}

export interface RecordSummary {
  header: TraceHeader
  events: number
  writes: number
  hostSeconds: number
}

export async function record(opts: RecordOptions): Promise<RecordSummary> {
  const info = formatFromPath(opts.out)
  if (!info) throw new UserError('cannot tell the trace format from the file name', {file: opts.out, field: 'out', expected: 'a name ending in .csv, .jsonl, .csv.gz or .jsonl.gz'})
  const [binary, ...userArgs] = opts.command
  if (binary === undefined) throw new UserError('no QEMU command to record', {expected: 'migtrace record --out t.csv.gz -- qemu-system-x86_64 ARGS...'})
  checkQemuArgs(userArgs)
  const log = opts.log ?? (() => undefined)

  const plugin = ensurePlugin()
  if (plugin.built) log(`built the recording plugin ${plugin.path}`)

  const work = mkdtempSync(join(tmpdir(), 'migtrace-record-'))
  const sock = join(work, 'qmp.sock')
  const eventsFile = join(work, 'trace-events')
  writeFileSync(eventsFile, RECORD_TRACE_EVENTS.join('\n') + '\n')
  const userLog = optionValue(userArgs, '-D')
  const logFile = userLog ?? join(work, 'qemu.log')
  const userStopped = hasFlag(userArgs, '-S') || optionValue(userArgs, '-incoming') !== undefined
  let rec: AttachedRecording | undefined
  // Ctrl-C (src/qemu/process.ts stops QEMU and exits 130) or any exit: no temporary file stays.
  const cleanup = (): void => {
    rec?.removeTempSync()
    rmSync(work, {recursive: true, force: true})
  }
  process.on('exit', cleanup)

  const pluginArgs = [`fd=3`, `epoch_ns=${opts.epochNs}`, `clock=${opts.clock}`, ...(opts.clock === 'guest' ? [`ips=${opts.ips}`] : [])]
  const args = [
    ...userArgs,
    '-plugin', `${plugin.path},${pluginArgs.join(',')}`,
    '-qmp', `unix:${sock},server=on,wait=off`,
    '-trace', `events=${eventsFile}`,
    ...(userLog === undefined ? ['-D', logFile] : []),
    '-msg', 'timestamp=on',
    ...(userStopped ? [] : ['-S']),
  ]
  const started = hostNowUs()
  let vm: QemuProcess
  try {
    vm = await QemuProcess.spawn({binary, args, fd3Pipe: true, console: opts.console !== undefined ? {stamped: opts.console} : undefined, name: 'qemu'})
  } catch (e) {
    cleanup()
    process.off('exit', cleanup)
    if (e instanceof QemuStartError) throw new UserError(`${e.message}; QEMU for x86 guests comes with the Debian package qemu-system-x86 (apt-get install qemu-system-x86)`)
    throw e
  }
  let qmp: QmpClient | undefined
  try {
    const early = vm.exited.then((x) => {
      throw startFailure(vm, x)
    })
    qmp = await Promise.race([QmpClient.connect(sock, {timeoutMs: 60_000}), early])
    rec = await attachRecording(vm, qmp, {out: opts.out, format: info, epochNs: opts.epochNs, ips: opts.ips, clock: opts.clock, durationNs: opts.durationNs, binary, userArgs, logFile, plugin})
    const session = rec.session
    if (!userStopped) await qmp.execute('cont')
    log(`recording: ${[binary, ...userArgs].join(' ')}`)
    let timer: NodeJS.Timeout | undefined
    const quit = (): void => void qmp!.execute('quit').catch(() => undefined)
    if (opts.stopOn !== undefined) {
      const re = opts.stopOn
      let asked = false
      vm.onConsoleLine((l) => {
        if (asked || !re.test(l.line)) return
        asked = true
        session.stoppedBy = `console line ${JSON.stringify(l.line.slice(0, 200))}`
        quit()
      })
    }
    if (opts.durationNs !== undefined) {
      session.onDuration = quit
      // An idle guest sends no records, yet its clock runs (idle time is host time): look at the clock.
      const limit = opts.durationNs
      timer = setInterval(() => session.checkClock(limit), 50)
    }
    await rec.reader.finally(() => clearInterval(timer))
    const done = await rec.finish(started)
    rec = undefined
    return {header: done.header, events: done.events, writes: done.writes, hostSeconds: (hostNowUs() - started) / 1e6}
  } catch (e) {
    await rec?.abort()
    if (vm.running) await vm.quit(qmp?.closed === false ? qmp : undefined, {timeoutMs: 5000})
    if (e instanceof RecordFormatError) throw new Error(`bug: the plugin's record stream is malformed: ${e.message}`)
    throw e
  } finally {
    await qmp?.close().catch(() => undefined)
    cleanup()
    process.off('exit', cleanup)
  }
}

/** Why QEMU ended before it was usable, as one line naming the package or the flag to fix. */
function startFailure(vm: QemuProcess, x: {code: number | null; signal: NodeJS.Signals | null}): UserError {
  const err = vm.stderrTail().trim()
  if (/-plugin: invalid option|plugins are not supported|Unsupported/i.test(err))
    throw new UserError(`this QEMU has no TCG plugin support (${lastLine(err)}): use a QEMU built with --enable-plugins, e.g. Debian's qemu-system-x86 (bookworm or later)`)
  if (/Could not load plugin/.test(err)) return new UserError(`QEMU could not load the recording plugin: ${lastLine(err)}`)
  return new UserError(`QEMU exited before the recording started (${describeExit(x)})${err !== '' ? `: ${lastLine(err)}` : ''}`)
}

const lastLine = (s: string): string => s.split('\n').filter((l) => l.trim() !== '').at(-1) ?? s
