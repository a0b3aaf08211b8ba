import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {quietFlag, settingsFlags} from '../compare/flags.js'

export default class Report extends BaseCommand {
  static override description =
    'Replay a trace and write a self-contained HTML report (headline, per-iteration table, charts as inline SVG), with the table behind each chart as CSV'
  static override examples = [
    '<%= config.bin %> <%= command.id %> traces/converging.csv.gz --out report.html',
    '<%= config.bin %> <%= command.id %> run.csv --set max-bandwidth=1GiB/s --out out/report.html --csv-dir out/data',
  ]
  static override enableJsonFlag = true
  static override args = {trace: Args.string({description: 'trace file (.csv, .jsonl, optionally .gz, or .arrow)', required: true})}
  static override flags = {
    ...settingsFlags,
    out: Flags.string({char: 'o', description: 'HTML file to write (written atomically)', required: true}),
    'csv-dir': Flags.string({description: 'folder for the CSV files (default: report-data/ beside report.html, i.e. <name>-data/)'}),
    ...quietFlag,
  }

  async run(): Promise<Record<string, unknown> | void> {
    const {args, flags} = await this.parse(Report)
    const {loadConfigFile, parseSetFlags} = await import('../replay/config.js')
    const {replayFile} = await import('../compare/replay-one.js')
    const {startFileProgress} = await import('../compare/progress.js')
    const {checkReplayHtmlReportPaths, writeReplayHtmlReport} = await import('../report/html/replay-html.js')
    const overrides = {...(flags.config ? loadConfigFile(flags.config) : {}), ...parseSetFlags(flags.set)}
    checkReplayHtmlReportPaths({out: flags.out, csvDir: flags['csv-dir']})
    const bar = await startFileProgress(flags.quiet, 'replay', args.trace)
    let result
    try {
      result = await replayFile({trace: args.trace, overrides, driver: flags.driver as 'qemu' | 'recorded'})
    } finally {
      bar.stop()
    }
    const files = await writeReplayHtmlReport(result, {trace: args.trace, out: flags.out, csvDir: flags['csv-dir']})
    const doc = {
      schema: files.schema,
      trace: args.trace,
      verdict: result.verdict,
      totalTimeMs: Math.round(result.totalTimeMs * 1000) / 1000,
      downtimeMs: Math.round(result.downtimeMs * 1000) / 1000,
      html: files.html,
      csvDir: files.csvDir,
      charts: files.charts,
      tables: files.tables,
    }
    if (this.jsonEnabled()) return doc
    if (!flags.quiet) {
      this.log(`wrote ${files.html} (${files.charts.length} charts: ${files.charts.map((c) => c.id).join(', ')})`)
      this.log(`data in ${files.csvDir}`)
    }
  }
}
