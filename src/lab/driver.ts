/**
 * One lab migration, start to end: boot a source and a destination QEMU on this host with the
 * dirtier as the guest workload, migrate over tcp:127.0.0.1, and record everything a check of the
 * model needs. The sequence follows qemu-lab/migrate.py:
 *
 *  1. start both QEMUs (the destination with -incoming defer), connect QMP to each;
 *  2. wait for `DIRTIER READY` on the source console, then the warm-up;
 *  3. virtio-mem: set requested-size on the source and wait until the device's size follows;
 *  4. capabilities and parameters on both sides, migrate-incoming on the destination, migrate;
 *  5. query-migrate on the source every poll interval (timeline.jsonl), migrate-start-postcopy at
 *     the chosen sync, cancel (or postcopy) at --max-time;
 *  6. final query-migrate on both sides: QEMU 7.2 sets `completed` before
 *     migration_calculate_complete() fills total-time and downtime, so a reply at the switch can
 *     say total-time 0: re-query until the times are there;
 *  7. let the destination run --post-run seconds and read its console: the dirtier still
 *     printing, or a kernel oops/panic/reboot;
 *  8. `quit` both; compress the trace logs; write passes.csv and summary.json.
 *
 * Files of a run directory: see docs/lab.md.
 */
import {createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync, type WriteStream} from 'node:fs'
import {createServer} from 'node:net'
import {release} from 'node:os'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {setTimeout as sleep} from 'node:timers/promises'
import {spawnSync} from 'node:child_process'
import {createGzip} from 'node:zlib'
import {QmpClient, type QmpEvent} from '../qemu/qmp.js'
import {QemuProcess, describeExit} from '../qemu/process.js'
import {hostNowUs} from '../qemu/host-clock.js'
import {UserError} from '../util/errors.js'
import {hostMemory} from './host-memory.js'
import {cpuBetween, cpuSnapshot, loadSample, waitForLoad, hostCpus, threadCpuBetween, threadTicks, ThreadSampler, type CpuSnapshot, type LoadSample} from './host-load.js'
import {ensurePlugin, type BuiltPlugin} from '../record/plugin-build.js'
import {attachRecording, type AttachedRecording} from '../record/attach.js'
import {formatFromPath} from '../trace/write/writer.js'
import {requireImage, type ImageManifest} from './image.js'
import {checkOptions, labArgs, type LabRunOptions} from './options.js'
import {migrationSetup, qemuArgs, shellQuote, traceEvents} from './qemu-args.js'
import {guestState, type GuestState} from './console-state.js'
import {passesCsv, type TimelineSample} from './passes.js'

type Role = 'src' | 'dst'
const ROLES: Role[] = ['src', 'dst']

/** A failure of the run itself (QEMU died, QMP refused): reported as one line, exit code 1. */
export class LabRunError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LabRunError'
  }
}

export interface LabRunResult {
  dir: string
  status: string
  summary: Record<string, unknown>
}

export type Log = (line: string) => void

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`

function qemuVersion(binary: string): string {
  const r = spawnSync(binary, ['--version'], {encoding: 'utf8'})
  return (r.stdout ?? '').split('\n')[0] ?? ''
}

async function gzipFile(path: string): Promise<number> {
  await pipeline(createReadStream(path), createGzip({level: 6}), createWriteStream(`${path}.gz.tmp`))
  renameSync(`${path}.gz.tmp`, `${path}.gz`)
  rmSync(path)
  return statSync(`${path}.gz`).size
}

/** Lines per trace event of a raw log (`TID@SECONDS.MICROS:event args`). */
async function traceCounts(path: string): Promise<Record<string, number>> {
  const {createInterface} = await import('node:readline')
  const counts = new Map<string, number>()
  const rl = createInterface({input: createReadStream(path), crlfDelay: Infinity})
  for await (const line of rl) {
    const m = /^\d+@\d+\.\d+:(\w+)/.exec(line)
    if (m) counts.set(m[1]!, (counts.get(m[1]!) ?? 0) + 1)
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]))
}

export async function runLab(o: LabRunOptions, log: Log): Promise<LabRunResult> {
  checkOptions(o)
  const {paths: image, manifest} = requireImage(o.work)
  const dir = o.out ?? join(o.work, 'runs', o.name)
  if (existsSync(dir)) {
    if (!o.force) throw new UserError('the run directory exists', {file: dir, expected: 'another --name, or --force to replace it'})
    rmSync(dir, {recursive: true, force: true})
  }
  mkdirSync(dir, {recursive: true})
  const driverLog = createWriteStream(join(dir, 'driver.log'))
  const note: Log = (line) => {
    const s = `[${(hostNowUs() / 1e6).toFixed(3)}] ${line}`
    driverLog.write(`${s}\n`)
    log(line)
  }
  try {
    return await drive(o, dir, image, manifest, note)
  } finally {
    await new Promise((r) => driverLog.end(r))
  }
}

async function drive(o: LabRunOptions, dir: string, image: {kernel: string; initrd: string}, manifest: ImageManifest, note: Log): Promise<LabRunResult> {
  const load: Record<string, LoadSample> = {}
  if (o.maxLoad > 0) {
    const w = await waitForLoad(o.maxLoad, o.waitLoadS, (s) => note(`waiting for the 1-min load average ${s.avg[0]} to fall to ${o.maxLoad}`))
    if (!w.ok) note(`load average still ${w.sample.avg[0]} after ${w.waitedS.toFixed(0)} s: running anyway (recorded in config.json)`)
  }
  load.start = loadSample()
  const port = await freePort()
  const uri = `tcp:127.0.0.1:${port}`
  const events = traceEvents(o)
  const eventsFile = events.length > 0 ? join(dir, 'trace-events.list') : undefined
  if (eventsFile) writeFileSync(eventsFile, `${events.join('\n')}\n`)
  const file = (role: Role, what: string): string => join(dir, `${role}-${what}`)
  const rolePaths = {src: {qmp: file('src', 'qmp.sock'), trace: join(dir, 'trace-src.log')}, dst: {qmp: file('dst', 'qmp.sock'), trace: join(dir, 'trace-dst.log')}}
  const plugin = recordingPlugin(o, note)
  const armFile = join(dir, 'recording.arm')
  const argv = {src: [...qemuArgs(o, 'src', image, rolePaths.src, eventsFile), ...(plugin !== undefined ? recordArgs(plugin, armFile) : [])], dst: qemuArgs(o, 'dst', image, rolePaths.dst, eventsFile)}
  const setup = migrationSetup(o)
  const config: Record<string, unknown> = {
    name: o.name,
    args: labArgs(o, image),
    uri,
    cmd_src: shellQuote([o.qemu, ...argv.src]),
    cmd_dst: shellQuote([o.qemu, ...argv.dst]),
    argv_src: [o.qemu, ...argv.src],
    argv_dst: [o.qemu, ...argv.dst],
    migration: setup,
    qemu_version: qemuVersion(o.qemu),
    host_kernel: release(),
    host_cpus: hostCpus(),
    // Whether untouched guest RAM costs a page allocation when the migration reads it (src/lab/host-memory.ts).
    host_memory: hostMemory(),
    image: manifest,
    driver: 'migtrace lab run',
    started_at: new Date().toISOString(),
    load,
    load_note: "1-, 5-, 15-minute load averages (/proc/loadavg): 'start' before the QEMUs started (other work on the host), 'migrate' at the migrate command and 'end' after it (both QEMUs included). The load average counts niced work too; host_cpu_during_migration says what the CPUs did from migrate to the end: qemu_s (both QEMUs), others_s (other non-niced work, which competes with QEMU), niced_s, idle_s",
  }
  const writeConfig = (): void => writeFileSync(join(dir, 'config.json'), json(config))
  writeConfig()

  const vms: Partial<Record<Role, QemuProcess>> = {}
  const qmp: Partial<Record<Role, QmpClient>> = {}
  const summary: Record<string, unknown> = {name: o.name, status: 'error'}
  const timeline = createWriteStream(join(dir, 'timeline.jsonl'))
  const samples: TimelineSample[] = []
  let failure: Error | undefined
  let cpuAtMigrate: CpuSnapshot = cpuSnapshot([])
  let threadsAtMigrate: Record<string, number> = {}
  let selfAtMigrate = process.cpuUsage()
  let recording: AttachedRecording | undefined
  const recordStartUs = hostNowUs()
  try {
    for (const role of ROLES) {
      const fd3Pipe = role === 'src' && plugin !== undefined
      vms[role] = await QemuProcess.spawn({binary: o.qemu, args: argv[role], name: role, console: {raw: file(role, 'serial.log'), stamped: file(role, 'console.log')}, stderrFile: file(role, 'qemu.err'), fd3Pipe})
      note(`started ${role} QEMU pid ${vms[role]!.pid}`)
    }
    for (const role of ROLES) qmp[role] = await connectOrExplain(rolePaths[role].qmp, vms[role]!)
    if (plugin !== undefined) {
      // The source waits in -S until the recording has read the layout (every store is then mapped).
      recording = await attachRecording(vms.src!, qmp.src!, {
        out: join(dir, RECORDING_FILE),
        format: formatFromPath(RECORDING_FILE)!,
        epochNs: RECORD_EPOCH_NS,
        ips: 0,
        clock: 'host',
        binary: o.qemu,
        userArgs: argv.src,
        // virtio-mem requests come to the comparison from trace-src.log (import qemu); folding
        // them here would parse every per-page line of that log while QEMU runs.
        logFile: '/dev/null',
        plugin,
      })
      await qmp.src!.execute('cont')
      note(`recording the source's guest stores (${RECORDING_FILE}, clock=host, epoch ${RECORD_EPOCH_NS / 1e6} ms)`)
    }
    const tBoot = Date.now()
    const ready = await vms.src!.waitForConsoleLine(/^DIRTIER READY/, {timeoutMs: o.bootTimeoutS * 1000})
    summary.boot_to_ready_s = round((Date.now() - tBoot) / 1000, 2)
    summary.ready_host_time = ready.hostUs / 1e6
    note(`guest ready after ${summary.boot_to_ready_s} s`)
    if (plugin !== undefined) {
      // The recording starts here: the warm-up, the migration and what follows.
      writeFileSync(armFile, '')
      summary.recording_armed_host_time = hostNowUs() / 1e6
    }
    await sleep(o.warmupS * 1000)

    if (o.vmemSizeMib > 0) await resizeVirtioMem(o, qmp.src!, vms.src!, summary, note)

    for (const role of ROLES) {
      const s = setup[role]
      await qmp[role]!.execute('migrate-set-capabilities', {capabilities: Object.entries(s.caps).map(([capability, state]) => ({capability, state}))})
      if (Object.keys(s.params).length > 0) await qmp[role]!.execute('migrate-set-parameters', s.params)
    }
    summary.src_parameters = await qmp.src!.execute('query-migrate-parameters')
    summary.src_capabilities = ((await qmp.src!.execute('query-migrate-capabilities')) as {capability: string; state: boolean}[]).filter((c) => c.state).map((c) => c.capability)
    await qmp.dst!.execute('migrate-incoming', {uri})
    load.migrate = loadSample()
    writeConfig()

    const t0 = hostNowUs()
    cpuAtMigrate = cpuSnapshot([vms.src!.pid, vms.dst!.pid])
    threadsAtMigrate = threadTicks(vms.src!.pid)
    selfAtMigrate = process.cpuUsage()
    summary.migrate_start_host_time = t0 / 1e6
    // The migration thread (live_migration) and multifd's channels end with the migration, before
    // the last snapshot: each thread's ticks are sampled while it runs (they only grow).
    const threadsSeen = new ThreadSampler(vms.src!.pid)
    await qmp.src!.execute('migrate', {uri})
    note(`migrate ${uri}`)
    const fin = await poll(o, qmp.src!, t0, timeline, samples, summary, note).finally(() => threadsSeen.stop())
    summary.host_cpu_during_migration = cpuBetween(cpuAtMigrate, cpuSnapshot([vms.src!.pid, vms.dst!.pid]))
    // What the plugin costs shows in the source's vCPU thread (CPU 0/TCG) and in this process,
    // which reads the recording (its CPU is inside others_s).
    summary.src_threads_cpu_s = threadCpuBetween(threadsAtMigrate, threadsSeen.stop())
    const self = process.cpuUsage(selfAtMigrate)
    summary.driver_cpu_s = Math.round((self.user + self.system) / 1e4) / 100
    config.host_cpu_during_migration = summary.host_cpu_during_migration
    await new Promise((r) => timeline.end(r))
    summary.status = fin.status
    writeFileSync(join(dir, 'final-src.json'), json(fin))
    const dstFinal = await finalOf(qmp.dst!)
    writeFileSync(join(dir, 'final-dst.json'), json(dstFinal))
    const ramOf = (r: Record<string, unknown> | undefined): Record<string, unknown> | undefined => r?.ram as Record<string, unknown> | undefined
    if (fin.ram !== undefined) note(`migration ${String(fin.status)}: total-time ${String(fin['total-time'])} ms, downtime ${String(fin.downtime)} ms, transferred ${String(ramOf(fin)?.transferred)}`)
    else note(`migration ${String(fin.status)} (QEMU dropped its figures; last active sample: transferred ${String(ramOf(summary.last_active as Record<string, unknown> | undefined)?.transferred)}, dirty-sync-count ${String(ramOf(summary.last_active as Record<string, unknown> | undefined)?.['dirty-sync-count'])})`)
    // The comparison needs RAM figures; QEMU drops them on cancel, so the last active sample stands in.
    const observed = fin.ram !== undefined ? fin : (summary.last_active as Record<string, unknown> | undefined)
    if (observed) writeFileSync(join(dir, 'observed.json'), json({...observed, ...(observed !== fin ? {status: String(fin.status), observedNote: 'QEMU drops the ram section on cancel: the last active query-migrate sample'} : {})}))

    const dstFrom = vms.dst!.consoleLines.length
    await sleep(o.postRunS * 1000)
    // The destination's guest runs only from the switchover on: its whole console is after it.
    // (A migration that did not complete never started the destination's guest.)
    const dstState: GuestState =
      fin.status === 'completed' ? guestState(vms.dst!.consoleLines.map((l) => l.line), vms.dst!.consoleLines.slice(dstFrom).map((l) => l.line)) : {state: 'not-run', detail: `the migration ended ${String(fin.status)}`, dirtierLines: 0, dirtierLinesInWindow: 0}
    summary.dst_guest = dstState
    note(`destination guest: ${dstState.state}${dstState.detail ? ` (${dstState.detail})` : ''}`)
    summary.src_status = await qmp.src!.execute('query-status')
    summary.dst_status = await qmp.dst!.execute('query-status').catch((e: Error) => ({error: e.message}))
  } catch (e) {
    failure = e as Error
    summary.error = failure.message
    note(`ERROR ${failure.message}`)
  } finally {
    if (!timeline.closed) await new Promise((r) => timeline.end(r))
    for (const role of ROLES) {
      const vm = vms[role]
      if (!vm) continue
      const x = await vm.quit(qmp[role], {timeoutMs: 10_000})
      summary[`${role}_exit`] = describeExit(x)
      await qmp[role]?.close()
    }
    rmSync(armFile, {force: true})
    if (recording !== undefined) {
      try {
        const done = await recording.finish(recordStartUs)
        const r = done.header.source?.recording as Record<string, unknown> | undefined
        summary.recording = {file: RECORDING_FILE, bytes: statSync(join(dir, RECORDING_FILE)).size, writes: done.writes, clock: 'host', epochNs: RECORD_EPOCH_NS, timeOrigin: r?.timeOrigin, storesSeen: r?.storesSeen, complete: r?.complete}
        note(`recording: ${done.writes} writes (${RECORDING_FILE})`)
      } catch (e) {
        await recording.abort()
        summary.recording = {error: (e as Error).message}
        note(`recording failed: ${(e as Error).message}`)
      }
    }
  }
  load.end = loadSample()
  config.finished_at = new Date().toISOString()
  writeConfig()
  writeFileSync(join(dir, 'events.jsonl'), ROLES.flatMap((role) => (qmp[role]?.events ?? []).map((e: QmpEvent) => JSON.stringify({...e, side: role}))).join('\n') + '\n')
  writeFileSync(join(dir, 'passes.csv'), passesCsv(samples))
  summary.migration_pass_events = (qmp.src?.events ?? []).filter((e) => e.event === 'MIGRATION_PASS').length
  summary.guest = dirtierRates(vms.src?.consoleLines.map((l) => l.line) ?? [])
  const traces: Record<string, unknown> = {}
  for (const role of ROLES) {
    const p = rolePaths[role].trace
    if (!existsSync(p)) continue
    const rawBytes = statSync(p).size
    const counts = await traceCounts(p)
    traces[role] = {rawBytes, lines: Object.values(counts).reduce((a, b) => a + b, 0), gzBytes: await gzipFile(p), events: counts}
  }
  summary.traces = traces
  summary.load = load
  writeFileSync(join(dir, 'summary.json'), json(summary))
  if (failure) throw new LabRunError(`${o.name}: ${failure.message} (run directory ${dir})`)
  return {dir, status: String(summary.status), summary}
}

/** The recording's file in the run directory, its epoch (1 ms: syncs are 10s of ms apart or more). */
export const RECORDING_FILE = 'recording.csv.gz'
export const RECORD_EPOCH_NS = 1_000_000

/** The plugin to load on the source, or undefined when not recording (--record auto and no plugin: noted). */
function recordingPlugin(o: LabRunOptions, note: Log): BuiltPlugin | undefined {
  if (o.record === 'off' || o.accel !== 'tcg') return undefined
  try {
    const p = ensurePlugin()
    if (p.built) note(`built the recording plugin ${p.path}`)
    return p
  } catch (e) {
    if (o.record === 'on') throw e
    note(`not recording the guest's stores (the comparison re-creates the dirtier's writes from its seed): ${(e as Error).message}`)
    return undefined
  }
}

/**
 * The source's extra arguments when recording: the plugin (records on fd 3; host clock, so a
 * write's time is the host's, as QEMU's trace log and the consoles are; armed by `armFile`, which
 * the driver creates once the guest is ready: boot and the fill are not recorded), and -S: the
 * guest waits until the recording has read the layout over QMP, then the driver sends `cont`.
 */
export function recordArgs(plugin: Pick<BuiltPlugin, 'path'>, armFile: string): string[] {
  if (armFile.includes(',') || plugin.path.includes(',')) throw new UserError('a path with a comma cannot be passed in -plugin (QEMU splits its options on commas)', {file: armFile.includes(',') ? armFile : plugin.path})
  return ['-plugin', `${plugin.path},fd=3,epoch_ns=${RECORD_EPOCH_NS},clock=host,arm=${armFile}`, '-S']
}

async function connectOrExplain(path: string, vm: QemuProcess): Promise<QmpClient> {
  const conn = QmpClient.connect(path, {timeoutMs: 30_000})
  const exited = vm.exited.then((x) => {
    throw new LabRunError(`${vm.name} QEMU exited (${describeExit(x)}) before QMP answered: ${vm.stderrTail().trim().split('\n').slice(-2).join(' | ')}`)
  })
  return Promise.race([conn, exited])
}

const round = (v: number, d: number): number => Math.round(v * 10 ** d) / 10 ** d

/**
 * After a resize the guest migrates pages out of the blocks it gives back, and the dirtier prints
 * its moved pages (a page-map epoch). Migrating while it prints would cut an epoch short, so wait
 * until no epoch is open and none has started for a second (at most 60 s).
 */
async function waitForPageMapQuiet(vm: QemuProcess, note: Log): Promise<void> {
  const t0 = Date.now()
  for (;;) {
    const lines = vm.consoleLines
    let open = false
    let last = -1
    for (let i = lines.length - 1; i >= 0; i--) {
      const l = lines[i]!.line
      if (l.startsWith('DIRTIER PFNMAP epoch=')) {
        last = lines[i]!.hostUs
        open = !/ end$/.test(l)
        break
      }
    }
    if (!open && (last < 0 || hostNowUs() - last > 1e6)) return
    if (Date.now() - t0 > 60_000) {
      note('the dirtier was still printing its page map after 60 s: migrating anyway')
      return
    }
    await sleep(100)
  }
}

async function resizeVirtioMem(o: LabRunOptions, q: QmpClient, vm: QemuProcess, summary: Record<string, unknown>, note: Log): Promise<void> {
  const path = '/machine/peripheral/vm0'
  summary.vmem_before = await q.execute('qom-get', {path, property: 'size'})
  if (o.vmemResizeMib !== undefined) {
    const want = o.vmemResizeMib * 1024 * 1024
    await q.execute('qom-set', {path, property: 'requested-size', value: want})
    const t = Date.now()
    while (Date.now() - t < 60_000 && (await q.execute('qom-get', {path, property: 'size'})) !== want) await sleep(250)
    summary.vmem_resize_s = round((Date.now() - t) / 1000, 2)
    // The guest finishes onlining/offlining (and the dirtier prints its moved pages) after the device's size changes.
    await sleep(1500)
    await waitForPageMapQuiet(vm, note)
  }
  summary.vmem_after = await q.execute('qom-get', {path, property: 'size'})
  summary.vmem_requested = await q.execute('qom-get', {path, property: 'requested-size'})
  note(`virtio-mem size ${String(summary.vmem_before)} -> ${String(summary.vmem_after)} (requested ${String(summary.vmem_requested)})`)
}

const ACTIVE = new Set(['setup', 'active', 'postcopy-active', 'device', 'pre-switchover', 'postcopy-paused', 'postcopy-recover', 'cancelling', 'wait-unplug'])

async function poll(o: LabRunOptions, q: QmpClient, t0: number, timeline: WriteStream, samples: TimelineSample[], summary: Record<string, unknown>, note: Log): Promise<Record<string, unknown>> {
  let switched = false
  let acted = false
  const record = (r: Record<string, unknown>, extra: Record<string, unknown> = {}): void => {
    const now = hostNowUs()
    const s: TimelineSample = {t: round((now - t0) / 1e6, 4), host_time: now / 1e6, r, ...extra}
    samples.push(s)
    timeline.write(`${JSON.stringify(s)}\n`)
  }
  for (;;) {
    const tick = Date.now()
    const r = (await q.execute('query-migrate')) as Record<string, unknown>
    record(r)
    const st = String(r.status)
    if (st === 'active' || st === 'postcopy-active' || st === 'device') summary.last_active = r
    if (!ACTIVE.has(st)) return settleFinal(q, r, record)
    const elapsed = (hostNowUs() - t0) / 1e6
    const dsc = Number((r.ram as Record<string, unknown> | undefined)?.['dirty-sync-count'] ?? 0)
    if (o.mode === 'postcopy' && !switched && st === 'active' && dsc >= o.postcopyAfter) {
      await q.execute('migrate-start-postcopy')
      switched = true
      Object.assign(summary, {postcopy_started_at_s: round(elapsed, 3), postcopy_started_at_sync: dsc})
      note(`migrate-start-postcopy at dirty-sync-count ${dsc}, t=${elapsed.toFixed(2)} s`)
    }
    if (elapsed > o.maxTimeS && !switched && !acted && st === 'active') {
      acted = true
      if (o.onTimeout === 'postcopy') {
        await q.execute('migrate-start-postcopy')
        switched = true
        Object.assign(summary, {postcopy_started_at_s: round(elapsed, 3), postcopy_started_at_sync: dsc, timeout_action: 'postcopy'})
      } else {
        await q.execute('migrate_cancel')
        summary.timeout_action = 'cancel'
      }
      note(`--max-time ${o.maxTimeS} s reached: ${String(summary.timeout_action)}`)
    }
    if (elapsed > o.maxTimeS + 120) throw new LabRunError(`the migration is still ${st} ${Math.round(elapsed)} s after it started`)
    await sleep(Math.max(0, o.pollMs - (Date.now() - tick)))
  }
}

/** QEMU 7.2's completed-state race: re-query (up to 2 s) until total-time is filled in. */
async function settleFinal(q: QmpClient, first: Record<string, unknown>, record: (r: Record<string, unknown>, extra?: Record<string, unknown>) => void): Promise<Record<string, unknown>> {
  let r = first
  for (let i = 0; i < 10 && r.status === 'completed' && !(Number(r['total-time']) > 0); i++) {
    await sleep(200)
    r = (await q.execute('query-migrate')) as Record<string, unknown>
    record(r, {requery: true})
  }
  if (r === first) {
    await sleep(200)
    r = (await q.execute('query-migrate')) as Record<string, unknown>
    record(r, {requery: true})
  }
  return r
}

async function finalOf(q: QmpClient): Promise<Record<string, unknown>> {
  try {
    return {'query-migrate': await q.execute('query-migrate'), 'query-status': await q.execute('query-status')}
  } catch (e) {
    return {error: (e as Error).message}
  }
}

/** The dirtier's own per-interval counts on the source: its real write rate and distinct pages. */
export function dirtierRates(lines: readonly string[]): Record<string, number> | undefined {
  const rows: {writes: number; distinct: number; rate: number}[] = []
  for (const l of lines) {
    const m = /^DIRTIER t=[\d.]+ writes=(\d+) distinct=(\d+) total=\d+ rate=(\d+)/.exec(l)
    if (m) rows.push({writes: Number(m[1]), distinct: Number(m[2]), rate: Number(m[3])})
  }
  if (rows.length === 0) return undefined
  const body = rows.length > 1 ? rows.slice(1) : rows
  const avg = (k: 'rate' | 'distinct'): number => round(body.reduce((a, r) => a + r[k], 0) / body.length, 1)
  return {intervals: rows.length, rate_avg: avg('rate'), distinct_avg: avg('distinct')}
}

