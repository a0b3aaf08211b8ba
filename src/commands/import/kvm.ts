import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../cli/base-command.js'
import {parseDurationNs} from '../../util/units.js'

export default class ImportKvm extends BaseCommand {
  static override summary = 'Turn the dirty pages a KVM host logged into a trace of write events'
  static override description =
    "Reads QEMU's kvm_dirty_ring_page trace lines (with the kvm_set_user_memory lines of the same log), `perf script` output of kvm:kvm_dirty_ring_push, or the bpftrace one-liner on mark_page_dirty_in_slot (docs/import-kvm.md). Each reported page becomes a write event meaning \"written at least once since the last harvest\"."
  static override examples = [
    '<%= config.bin %> <%= command.id %> qemu.log --out ring.csv.gz',
    '<%= config.bin %> <%= command.id %> perf.txt --qemu-log qemu.log --out ring.csv.gz',
    '<%= config.bin %> <%= command.id %> dirty.txt --format bpftrace --out dirty.csv.gz',
  ]
  static override enableJsonFlag = true
  static override args = {
    log: Args.string({description: 'the log: QEMU trace log (plain or gzip), perf script output or bpftrace output', required: true}),
  }
  static override flags = {
    out: Flags.string({char: 'o', description: 'output trace (.csv, .jsonl, optionally .gz)', required: true}),
    format: Flags.string({description: 'input format (default: recognised from the first lines)', options: ['qemu-log', 'perf', 'bpftrace']}),
    'qemu-log': Flags.string({description: 'QEMU trace log with kvm_set_user_memory lines: the memslots (perf, bpftrace)'}),
    layout: Flags.string({description: 'migtrace header JSON giving the layout; its memslot ids are KVM slot ids'}),
    window: Flags.string({description: 'reorder window: lines out of time order by up to this much are sorted back', default: '1s'}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {args, flags} = await this.parse(ImportKvm)
    const {importKvm} = await import('../../import/kvm/importer.js')
    const r = await importKvm({
      input: args.log,
      out: flags.out,
      format: flags.format as 'qemu-log' | 'perf' | 'bpftrace' | undefined,
      layout: flags.layout,
      qemuLog: flags['qemu-log'],
      windowNs: parseDurationNs(flags.window, 'window'),
    })
    this.log(`${flags.out}: ${r.writes} write events from ${r.lines} lines (${r.format}; layout from ${r.layoutFrom}; ${r.harvests} harvests)`)
    const skipped = Object.entries(r.skipped)
    if (skipped.length > 0) this.log(`skipped: ${skipped.map(([k, v]) => `${v} ${k}`).join('; ')}`)
    if (r.reordered > 0) this.log(`${r.reordered} lines were more than --window out of order: written at the last time written`)
    return {schema: 'migtrace.import-kvm/1', log: args.log, out: flags.out, format: r.format, writes: r.writes, lines: r.lines, harvests: r.harvests, layoutFrom: r.layoutFrom, skipped: r.skipped, reordered: r.reordered}
  }
}
