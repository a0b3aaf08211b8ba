/**
 * QEMU's own trace events during a recording (virtio-mem requests, VFIO dirty-page queries),
 * read from the trace log as QEMU writes it and folded into the recorded trace.
 *
 * The lines are parsed by the QEMU-log importer's parsers (src/import/qemu: the prefix, the event
 * formats table, the argument parser), so a recording and `migtrace import qemu` read the same
 * events the same way. The mapping to migtrace kinds follows the importer's:
 *   virtio_mem_plug_request / unplug_request / state_request / unplug_all_request
 *     -> vmem_plug / vmem_unplug / vmem_state / vmem_unplug_all (the device whose region holds addr)
 *   vfio_get_dirty_bitmap -> vfio_dirty_pages op get (container vfio0)
 *   vfio_migration_* -> kept in header.source.vfioMigrationStates
 * Every other line is counted by event name.
 *
 * The log is read incrementally (QEMU's log is line-buffered): `poll()` returns the events whose
 * lines were completed since the last call.
 */
import {closeSync, openSync, readSync} from 'node:fs'
import {K, Op} from '../trace/events.js'
import {COMPILED_EVENTS} from '../import/qemu/formats.js'
import {createArgs, parseArgs, parsePrefix, type LinePrefix} from '../import/qemu/line.js'

/** `-trace events=FILE` lines: globs of QEMU's event names. */
export const RECORD_TRACE_EVENTS = ['virtio_mem_*', 'vfio_*'] as const

export interface FoldedEvent {
  /** Host wall-clock time of the line (ns since the epoch), -1 without a timestamp. */
  hostNs: number
  kind: number
  dev: string
  gpa: number
  count: number
  iova: number
  len: number
  op: number
  line: number
}

export interface DeviceRegions {
  virtioMem: {id: string; base: number; regionSize: number}[]
  vfioContainer?: string
}

export class QemuLogFolder {
  private fd = -1
  private pos = 0
  private partial = ''
  private lineNo = 0
  readonly used = new Map<string, number>()
  readonly unknown = new Map<string, number>()
  readonly skipped = new Map<string, number>()
  readonly vfioStates: {hostNs: number; device: string; state: string}[] = []
  otherLines = 0
  private readonly pre: LinePrefix = {tUs: -1, nameStart: 0, nameEnd: 0}
  private readonly args = createArgs()
  private readonly buf = Buffer.alloc(1 << 16)

  constructor(
    readonly file: string,
    private readonly devices: DeviceRegions,
  ) {}

  /** Events from the lines completed since the last call (the file may not exist yet). */
  poll(): FoldedEvent[] {
    if (this.fd < 0) {
      try {
        this.fd = openSync(this.file, 'r')
      } catch {
        return []
      }
    }
    const out: FoldedEvent[] = []
    for (;;) {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, this.pos)
      if (n <= 0) break
      this.pos += n
      const text = this.partial + this.buf.toString('utf8', 0, n)
      const lines = text.split('\n')
      this.partial = lines.pop()!
      for (const l of lines) this.line(l, out)
    }
    return out
  }

  /** The log is complete (QEMU exited): the last line may lack its newline. */
  finish(): FoldedEvent[] {
    const out = this.poll()
    if (this.partial !== '') {
      this.line(this.partial, out)
      this.partial = ''
    }
    if (this.fd >= 0) closeSync(this.fd)
    this.fd = -1
    return out
  }

  private line(raw: string, out: FoldedEvent[]): void {
    this.lineNo++
    const line = raw.replace(/\r$/, '')
    if (line === '') return
    if (!parsePrefix(line, this.pre)) {
      this.otherLines++
      return
    }
    const name = line.slice(this.pre.nameStart, this.pre.nameEnd)
    const ev = COMPILED_EVENTS.get(name)
    const bump = (m: Map<string, number>, k: string): void => void m.set(k, (m.get(k) ?? 0) + 1)
    if (ev === undefined) {
      bump(this.unknown, name)
      return
    }
    bump(this.used, name)
    const a = this.args
    try {
      parseArgs(ev, line.slice(this.pre.nameEnd + 1), a, this.file, this.lineNo)
    } catch {
      // A format this migtrace does not know (another QEMU version): counted, the recording goes on.
      bump(this.skipped, `${name} (format not understood)`)
      return
    }
    const hostNs = this.pre.tUs >= 0 ? this.pre.tUs * 1000 : -1
    const base = {hostNs, dev: '', gpa: -1, count: -1, iova: -1, len: -1, op: Op.none, line: this.lineNo}
    switch (ev.spec.role) {
      case 'vmem_plug':
      case 'vmem_unplug':
      case 'vmem_state': {
        const dev = this.vmemAt(a.num[0]!)
        if (dev === undefined) {
          bump(this.skipped, `${name} (address in no virtio-mem device)`)
          return
        }
        const kind = ev.spec.role === 'vmem_plug' ? K.vmem_plug : ev.spec.role === 'vmem_unplug' ? K.vmem_unplug : K.vmem_state
        out.push({...base, kind, dev, gpa: a.num[0]!, count: a.num[1]!})
        return
      }
      case 'vmem_unplug_all': {
        // virtio_mem_unplug_all_request names no device: with one device it is that one.
        const d = this.devices.virtioMem
        if (d.length !== 1) {
          bump(this.skipped, `${name} (${d.length} virtio-mem devices: which one is not in the line)`)
          return
        }
        out.push({...base, kind: K.vmem_unplug_all, dev: d[0]!.id})
        return
      }
      case 'vfio_dirty_bitmap': {
        const c = this.devices.vfioContainer
        if (c === undefined) {
          bump(this.skipped, `${name} (no VFIO container in the layout)`)
          return
        }
        out.push({...base, kind: K.vfio_dirty_pages, dev: c, op: Op.get, iova: a.num[1]!, len: a.num[2]!})
        return
      }
      case 'vfio_migration_state':
        if (this.vfioStates.length < 1000) this.vfioStates.push({hostNs, device: a.str[0]!, state: a.str[1] ?? String(a.num[1])})
        return
      default:
    }
  }

  private vmemAt(gpa: number): string | undefined {
    return this.devices.virtioMem.find((d) => gpa >= d.base && gpa < d.base + d.regionSize)?.id
  }
}
