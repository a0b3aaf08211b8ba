import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {UserError} from '../util/errors.js'
import {parseDurationNs} from '../util/units.js'
import {parseIps} from '../record/options.js'

export default class RecordCommand extends BaseCommand {
  static override summary = "Record a trace of a guest's writes by running its QEMU under a TCG plugin"
  static override description =
    "Runs the QEMU command after `--` with migtrace's TCG plugin (built on first use with the system C compiler), a QMP socket and QEMU's virtio-mem and VFIO trace events. Every guest store to RAM is seen; the first store to each page per vCPU per epoch becomes a write event, stamped in guest virtual time (instructions / --ips) or host time. The layout (RAM blocks, memslots, virtio-mem) is read over QMP before the guest starts. The trace appears at --out when QEMU exits (or at --duration); Ctrl-C leaves nothing behind."
  static override examples = [
    '<%= config.bin %> <%= command.id %> --out run.csv.gz -- qemu-system-x86_64 -m 1G -nographic -kernel bzImage -initrd rootfs.cpio.gz -append "console=ttyS0"',
    '<%= config.bin %> <%= command.id %> --out run.csv.gz --epoch 0 --duration 5s -- qemu-system-x86_64 -m 512M -display none -drive file=disk.qcow2',
  ]
  static override enableJsonFlag = true
  static override flags = {
    out: Flags.string({char: 'o', description: 'output trace (.csv, .jsonl, optionally .gz)', required: true}),
    epoch: Flags.string({description: 'coalescing epoch: the first store to a page per vCPU per epoch is kept (0: every store)', default: '1ms'}),
    ips: Flags.string({description: 'guest virtual clock: instructions per second of the CPU to pretend (2G = 2e9)', default: '2G'}),
    clock: Flags.string({description: 'time stamps: guest (instructions / --ips, plus idle time) or host', options: ['guest', 'host'], default: 'guest'}),
    duration: Flags.string({description: 'stop QEMU once the trace reaches this time (e.g. 30s); default: until QEMU exits'}),
    'stop-on': Flags.string({description: 'stop QEMU at the first guest console line matching this regular expression (e.g. "WORKLOAD DONE")'}),
    console: Flags.string({description: "write the guest console (QEMU's stdout) here, each line with its host time"}),
  }

  async run(): Promise<Record<string, unknown>> {
    // Everything after `--` is QEMU's, verbatim (oclif's own parsing would reorder it).
    const raw = [...this.argv]
    const dash = raw.indexOf('--')
    const {flags} = await this.parse(RecordCommand, dash >= 0 ? raw.slice(0, dash) : raw)
    const command = dash >= 0 ? raw.slice(dash + 1) : []
    if (command.length === 0) throw new UserError('no QEMU command to record', {expected: 'migtrace record --out t.csv.gz -- qemu-system-x86_64 ARGS...'})
    const epochNs = parseDurationNs(flags.epoch, 'epoch')
    const ips = parseIps(flags.ips)
    const durationNs = flags.duration !== undefined ? parseDurationNs(flags.duration, 'duration') : undefined
    let stopOn: RegExp | undefined
    if (flags['stop-on'] !== undefined) {
      try {
        stopOn = new RegExp(flags['stop-on'])
      } catch (e) {
        throw new UserError('not a valid regular expression', {field: 'stop-on', found: (e as Error).message})
      }
    }
    const {record} = await import('../record/recorder.js')
    const r = await record({out: flags.out, command, epochNs, ips, clock: flags.clock as 'guest' | 'host', durationNs, stopOn, console: flags.console, log: (m) => this.logToStderr(m)})
    const rec = (r.header.source?.recording ?? {}) as Record<string, unknown>
    this.log(`${flags.out}: ${r.events} events, ${r.writes} writes (${String(rec.storesSeen)} stores seen, ${String(rec.ioStoresSkipped)} to I/O) in ${r.hostSeconds.toFixed(1)} s`)
    if (rec.complete === false) this.logToStderr(`migtrace: ${String(rec.incompleteNote)}`)
    return {schema: 'migtrace.record/1', out: flags.out, events: r.events, writes: r.writes, hostSeconds: Math.round(r.hostSeconds * 1000) / 1000, recording: rec}
  }
}
