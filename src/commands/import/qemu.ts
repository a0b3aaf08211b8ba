import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../../cli/base-command.js'

export default class ImportQemu extends BaseCommand {
  static override description = 'Convert a QEMU trace-event log (log backend) into a migtrace trace'
  static override examples = [
    '<%= config.bin %> import qemu trace-src.log.gz --stats final-src.json --workload config.json --out traces/run.csv.gz',
    '<%= config.bin %> import qemu qemu.log --layout header.json --out run.jsonl',
  ]
  static override enableJsonFlag = true
  static override args = {
    log: Args.string({description: 'QEMU trace log (-trace ... -D FILE, optionally gzip-compressed)', required: true}),
  }
  static override flags = {
    out: Flags.string({char: 'o', description: 'output trace (.csv, .jsonl, optionally .gz, or .arrow)', required: true}),
    stats: Flags.string({description: 'query-migrate JSON of the run (kept as the observed outcome)'}),
    layout: Flags.string({description: 'migtrace header JSON giving the guest layout'}),
    workload: Flags.string({description: "qemu-lab run config.json (layout, provenance, dirtier parameters)"}),
    console: Flags.string({description: "qemu-lab source console (src-serial.log): verify and re-create the dirtier's writes; needs --workload"}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {args, flags} = await this.parse(ImportQemu)
    const {importQemuTrace} = await import('../../import/qemu/importer.js')
    const r = await importQemuTrace({trace: args.log, out: flags.out, layout: flags.layout, stats: flags.stats, workload: flags.workload, console: flags.console})
    const src = r.header.source ?? {}
    const unknown = Object.values(r.unknown).reduce((a, b) => a + b, 0)
    this.log(`${flags.out}: ${r.events} events from ${r.lines} lines (layout from ${String(src.layoutFrom)})`)
    this.log(`used: ${Object.entries(r.used).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`)
    this.log(`skipped: ${unknown} lines of ${Object.keys(r.unknown).length} unused events${r.otherLines > 0 ? `, ${r.otherLines} non-event lines` : ''}`)
    if (src.unmappedPagesSent) this.log(`pages sent from blocks without a guest-physical address: ${JSON.stringify(src.unmappedPagesSent)}`)
    if (src.skippedEvents) this.log(`events not representable: ${JSON.stringify(src.skippedEvents)}`)
    const w = src.workload as {writes?: string; consoleIntervalsVerified?: number} | undefined
    if (w) this.log(`workload: ${w.consoleIntervalsVerified} console intervals verified; writes ${w.writes}`)
    return {
      schema: 'migtrace.import-qemu/1',
      log: args.log,
      out: flags.out,
      events: r.events,
      lines: r.lines,
      layoutFrom: String(src.layoutFrom),
      used: r.used,
      unknown: r.unknown,
      otherLines: r.otherLines,
      ...(src.unmappedPagesSent ? {unmappedPagesSent: src.unmappedPagesSent} : {}),
      ...(src.skippedEvents ? {skippedEvents: src.skippedEvents} : {}),
      ...(w ? {workload: w} : {}),
    }
  }
}
