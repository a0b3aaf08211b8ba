import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../cli/base-command.js'

export default class ImportQemu extends BaseCommand {
  static override description = 'Convert a QEMU trace-event log (log backend) into a migtrace trace'
  static override examples = [
    '<%= config.bin %> import qemu trace-src.log.gz --stats final-src.json --workload config.json --out traces/run.csv.gz',
    '<%= config.bin %> import qemu qemu.log --layout header.json --out run.jsonl',
    '<%= config.bin %> import qemu trace-src.log.gz --stats final-src.json --workload config.json --console src-console.log --dst-console dst-console.log --dst-trace trace-dst.log.gz --dst-stats final-dst.json --out traces/postcopy.csv.gz',
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
    'dst-console': Flags.string({description: "postcopy run: the destination's host-stamped console (dst-console.log): re-create the dirtier's writes on the destination after the switchover; needs --console"}),
    'dst-trace': Flags.string({description: "the destination's trace (trace-dst.log.gz). postcopy run: the guest's resume time, and its page faults kept as observation (not replayed); multifd run (QEMU before 9.0): the first round's zero pages (ram_load_loop), for the exact populated map"}),
    recording: Flags.string({description: "a host-clock recording of the source guest's stores (a lab run's recording.csv.gz, migtrace record --clock host): the guest's writes come from it, aligned by host wall-clock, instead of being re-created from --console"}),
    'dst-stats': Flags.string({description: "postcopy run: the destination's final query-migrate (final-dst.json): postcopy-blocktime kept as observation"}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {args, flags} = await this.parse(ImportQemu)
    const {importQemuTrace} = await import('../../import/qemu/importer.js')
    const r = await importQemuTrace({trace: args.log, out: flags.out, layout: flags.layout, stats: flags.stats, workload: flags.workload, console: flags.console, dstConsole: flags['dst-console'], dstTrace: flags['dst-trace'], dstStats: flags['dst-stats'], recording: flags.recording})
    const src = r.header.source ?? {}
    const unknown = Object.values(r.unknown).reduce((a, b) => a + b, 0)
    this.log(`${flags.out}: ${r.events} events from ${r.lines} lines (layout from ${String(src.layoutFrom)})`)
    this.log(`used: ${Object.entries(r.used).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`)
    this.log(`skipped: ${unknown} lines of ${Object.keys(r.unknown).length} unused events${r.otherLines > 0 ? `, ${r.otherLines} non-event lines` : ''}`)
    if (src.unmappedPagesSent) this.log(`pages sent from blocks without a guest-physical address: ${JSON.stringify(src.unmappedPagesSent)}`)
    if (src.skippedEvents) this.log(`events not representable: ${JSON.stringify(src.skippedEvents)}`)
    const w = src.workload as {writes?: string; consoleIntervalsVerified?: number; destinationWrites?: {emitted: number}} | undefined
    if (w) this.log(`workload: ${w.consoleIntervalsVerified} console intervals verified; writes ${w.writes}`)
    if (w?.destinationWrites) this.log(`destination: ${w.destinationWrites.emitted} writes after the postcopy switchover`)
    const faults = src.postcopyFaults as {count: number} | undefined
    if (flags['dst-trace'] !== undefined && faults) this.log(`destination faults observed: ${faults.count} (kept in header.observed, not replayed)`)
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
      ...(flags['dst-trace'] !== undefined && faults ? {destinationFaults: faults.count} : {}),
    }
  }
}
