/**
 * The recording side of a QEMU that runs with the recording plugin on fd 3: read the guest layout
 * over QMP (before the guest's first instruction: QEMU started with -S or -incoming), map and merge
 * the plugin's records as they arrive, and write them through TraceWriter. `migtrace record`
 * (recorder.ts) and the lab's source QEMU (src/lab/driver.ts) both attach this way; the caller
 * owns the QEMU process, its QMP connection and when the guest starts (`cont`).
 */
import {parseHeader, type HeaderInput, type TraceHeader} from '../trace/header.js'
import {TraceWriter, type FormatInfo} from '../trace/write/writer.js'
import type {QemuProcess, QmpClient} from '../qemu/index.js'
import {hostNowUs} from '../qemu/index.js'
import {Session} from './session.js'
import {buildLayout, headerLayout, parseInfoMtree, parseInfoRamblock, virtioMemDevices, type RecordedLayout} from './qemu-layout.js'
import {AddressMap, addressRanges, pluginGivesGpa} from './address-map.js'
import {QemuLogFolder} from './qemu-events.js'
import type {BuiltPlugin} from './plugin-build.js'

export interface AttachOptions {
  out: string
  format: FormatInfo
  epochNs: number
  ips: number
  clock: 'guest' | 'host'
  durationNs?: number
  /** The QEMU binary and the user's arguments (for the header's provenance). */
  binary: string
  userArgs: string[]
  /** QEMU's trace log whose virtio-mem / VFIO events are folded in (`/dev/null`: none). */
  logFile: string
  plugin: Pick<BuiltPlugin, 'hash' | 'compiler'>
  /** gzip level of a .gz output (1: keeps up with the guest). */
  gzipLevel?: number
}

export interface AttachedRecording {
  session: Session
  /** Resolves when the plugin's stream ended (QEMU exited). */
  reader: Promise<void>
  /** After QEMU exited: the last records, the header with the run's figures, the file closed. */
  finish(startedUs: number): Promise<{header: TraceHeader; events: number; writes: number}>
  /** On an error: remove the partial output. */
  abort(): Promise<void>
  /** At process exit (Ctrl-C): remove the temporary file, synchronously. */
  removeTempSync(): void
}

/** The QEMU's fd 3 must carry the plugin's records (QemuProcess.spawn with fd3Pipe). */
export async function attachRecording(vm: QemuProcess, qmp: QmpClient, opts: AttachOptions): Promise<AttachedRecording> {
  const version = qmp.greeting.version.qemu
  const layout = await readLayout(qmp)
  const gpaMode = pluginGivesGpa(version)
  const {ranges, conflicts} = addressRanges(layout, gpaMode)
  const amap = new AddressMap(ranges)
  const session = new Session(opts, layout, amap, new QemuLogFolder(opts.logFile, {virtioMem: layout.virtioMem.map((d) => ({id: d.id, base: d.memaddr, regionSize: d.maxSize}))}))
  const reader = session.consume(vm.fd3!)
  // HELLO comes from qemu_plugin_install, before QMP was up: the vCPU count is known by now.
  await session.helloSeen
  const base = baseHeader(opts, layout, version, qmp.greeting.version.package, gpaMode, conflicts, session.maxVcpus)
  let writer: TraceWriter | undefined = await TraceWriter.open(opts.out, parseHeader(base, opts.out), devNames(base), opts.format, {headerAtClose: true, gzipLevel: opts.gzipLevel ?? 1})
  session.writer = writer
  return {
    session,
    reader,
    async finish(startedUs) {
      await reader
      const exit = await vm.exited
      const complete = session.decoder.finish()
      session.finish()
      await session.flush()
      const header = parseHeader({...base, source: {...(base.source ?? {}), recording: session.describe(exit, complete, (hostNowUs() - startedUs) / 1e6)}}, opts.out)
      await writer!.close(header)
      writer = undefined
      return {header, events: session.events, writes: session.tally.writes}
    },
    async abort() {
      await writer?.abort()
      writer = undefined
    },
    removeTempSync() {
      writer?.removeTempSync()
    },
  }
}

export async function readLayout(qmp: QmpClient): Promise<RecordedLayout> {
  const hmp = (cmd: string): Promise<string> => qmp.execute<string>('human-monitor-command', {'command-line': cmd})
  const ramblock = parseInfoRamblock(await hmp('info ramblock'))
  const mtree = parseInfoMtree(await hmp('info mtree'))
  const devices = virtioMemDevices(await qmp.execute('query-memory-devices'))
  return buildLayout(ramblock, mtree, devices)
}

export function devNames(h: HeaderInput): string[] {
  const names: string[] = []
  for (const d of h.virtioMem ?? []) names.push(d.id)
  for (const c of h.vfio ?? []) {
    names.push(c.id)
    for (const d of c.devices ?? []) names.push(d.id)
  }
  return names
}

function baseHeader(
  opts: AttachOptions,
  layout: RecordedLayout,
  version: {major: number; minor: number; micro: number},
  pkg: string,
  gpaMode: boolean,
  conflicts: string[],
  vcpus: number,
): HeaderInput {
  const lay = headerLayout(layout)
  const args = opts.userArgs
  // What holds data when the guest starts: the ROMs QEMU loaded (firmware); RAM is zero.
  const populated = layout.slots.filter((s) => s.rom).map((s) => ({gpa: s.base, len: s.size}))
  const vfio = args.some((a) => /(^|,)driver=vfio-|^vfio-pci/.test(a)) ? [{id: 'vfio0', dirtyTracking: 'type1' as const}] : []
  return {
    format: 'migtrace',
    version: 1,
    description: `recorded with migtrace record: ${opts.clock === 'guest' ? `guest virtual time at ${opts.ips} instructions/s` : 'host time'}, ${opts.epochNs > 0 ? `first store to each page per vCPU per ${opts.epochNs} ns epoch` : 'every store'}`,
    ...lay,
    vcpus,
    vfio,
    populated,
    source: {
      recorder: 'migtrace record',
      qemuVersion: `${version.major}.${version.minor}.${version.micro}`,
      qemuPackage: pkg,
      command: [opts.binary, ...args],
      clock: opts.clock,
      ...(opts.clock === 'guest' ? {instructionsPerSecond: opts.ips, clockNote: "t_ns = the vCPU's instructions / instructionsPerSecond + the host time it spent idle (halted or paused)"} : {clockNote: 't_ns = host time since QEMU loaded the plugin'}),
      epochNs: opts.epochNs,
      writeMeaning: opts.epochNs > 0 ? 'a write event is the first store by a vCPU to a page within an epoch of epochNs of trace time: its address and size (later stores to the page in the same epoch are not listed)' : 'a write event is one guest store',
      plugin: {hash: opts.plugin.hash, compiler: opts.plugin.compiler},
      addresses: gpaMode ? 'the plugin gives guest-physical addresses (QEMU 8.2+)' : 'the plugin gives ram_addr + offset + MemoryRegion.addr (QEMU 4.2-8.1): mapped to guest-physical through the RAM blocks and memslots below',
      ramBlocks: layout.blocks.map((b) => ({idstr: b.info.idstr, name: b.name || `mem-${layout.virtioMem[b.virtioMem]?.id}`, ramOffset: `0x${b.info.ramOffset.toString(16)}`, used: `0x${b.info.used.toString(16)}`, regionAddr: `0x${b.regionAddr.toString(16)}`, ...(b.rom ? {rom: true} : {})})),
      ...(layout.notes.length > 0 ? {layoutNotes: layout.notes} : {}),
      ...(conflicts.length > 0 ? {addressConflicts: conflicts} : {}),
      notRecorded: 'writes by emulated devices (DMA: disk reads, network receive, fw_cfg loading -kernel/-initrd) are not guest stores: the plugin does not see them',
    },
  }
}
