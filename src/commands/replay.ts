import {join} from 'node:path'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {UserError, showValue} from '../util/errors.js'

export default class Replay extends BaseCommand {
  static override description =
    "Replay a trace through a model of the host (KVM dirty logging, QEMU's dirty bitmaps) and of QEMU precopy migration: what was sent, sent twice and why, lost, the downtime, and whether precopy converges"
  static override examples = [
    '<%= config.bin %> <%= command.id %> traces/converging.csv.gz',
    '<%= config.bin %> <%= command.id %> run.csv --set max-bandwidth=1GiB/s --set downtime-limit=500ms',
    '<%= config.bin %> <%= command.id %> run.csv --set stop-policy=rounds --format md',
    '<%= config.bin %> <%= command.id %> run.csv --set clear-policy=all-ones --json',
    '<%= config.bin %> <%= command.id %> real-run.jsonl.gz --driver recorded --format csv --out report/',
    '<%= config.bin %> <%= command.id %> run.csv --format csv --table causes',
    '<%= config.bin %> <%= command.id %> run.csv --format parquet --out tables/',
  ]
  static override enableJsonFlag = true
  static override args = {trace: Args.string({description: 'trace file (.csv, .jsonl, optionally .gz, or .arrow)', required: true})}
  static override flags = {
    config: Flags.string({char: 'c', description: 'JSON file of settings (same keys as --set)'}),
    set: Flags.string({char: 's', description: 'a setting key=value (repeatable), e.g. max-bandwidth=256MiB/s', multiple: true, multipleNonGreedy: true, default: []}),
    driver: Flags.string({description: 'qemu: the model decides syncs, clears and sends (what-if); recorded: follow the run the trace recorded', options: ['qemu', 'recorded'], default: 'qemu'}),
    format: Flags.string({char: 'f', description: 'report format; csv, arrow (Arrow IPC file) and parquet are the tables (arrow and parquet need --out)', options: ['text', 'json', 'csv', 'md', 'arrow', 'parquet'], default: 'text'}),
    out: Flags.string({char: 'o', description: 'directory for CSV tables (and the report file); without it, --format csv prints one table (--table) to stdout'}),
    table: Flags.string({description: 'the table --format csv prints to stdout without --out: headline, iterations, causes, send-counts, or a device table (vfio, vfio-syncs, virtio-mem, ...)', default: 'iterations'}),
    expect: Flags.string({
      description:
        "QEMU's observed query-migrate JSON of the real run (e.g. qemu-lab's final-src.json): print the model's figures beside it with the error of each; without a file, the observations kept in an imported trace's header are used",
    }),
    'no-expect': Flags.boolean({description: "do not compare with the observations kept in the trace's header", default: false}),
  }

  async run(): Promise<Record<string, unknown> | void> {
    const {args, flags} = await this.parse(Replay)
    const {openTrace} = await import('../trace/read/open.js')
    const {loadConfigFile, parseSetFlags, resolveSettings} = await import('../replay/config.js')
    const {replay} = await import('../replay/index.js')
    const report = await import('../report/replay-report.js')
    const format = this.jsonEnabled() ? 'json' : flags.format

    const overrides = {...(flags.config ? loadConfigFile(flags.config) : {}), ...parseSetFlags(flags.set)}
    const binary = format === 'arrow' || format === 'parquet'
    if (binary && flags.out === undefined) throw new UserError(`${format} tables are files`, {field: '--out', expected: `--out DIR with --format ${format}`})
    if (flags.out !== undefined) (await import('../io/output-path.js')).checkOutputDir(flags.out, {what: 'the replay tables', field: '--out'})
    const trace = await openTrace(args.trace)
    const settings = resolveSettings(trace.header, overrides)
    const driver = flags.driver as 'qemu' | 'recorded'
    const {startFileProgress} = await import('../compare/progress.js')
    const bar = await startFileProgress(false, 'replay', args.trace)
    let result
    try {
      const noStartEvent = driver === 'qemu' && settings['start-at'] === undefined ? !(await trace.containsKind('mig_start')) : false
      result = await replay({header: trace.header, layout: trace.layout, events: trace.events(), file: args.trace}, {driver, settings, overrides, noStartEvent})
    } finally {
      bar.stop()
    }
    const ctx = {trace: args.trace}
    const expectRows = await this.expectations(flags.expect, flags['no-expect'] ? undefined : trace.header.observed, result)

    if (flags.out) {
      // The tables and the report file appear together, or none of them (full disk, Ctrl-C).
      const output = new (await import('../io/atomic-output.js')).AtomicOutput('the replay tables', '--out')
      let files: string[]
      try {
        files = binary
          ? await (await import('../report/table-files.js')).writeTables(report.replayTableColumns(result), flags.out, format as 'arrow' | 'parquet', output)
          : await report.writeReplayCsv(result, flags.out, output)
        if (format === 'json') output.writeFile(join(flags.out, 'replay.json'), `${JSON.stringify(report.replayJson(result, ctx), null, 2)}\n`)
        if (format === 'text') output.writeFile(join(flags.out, 'replay.txt'), report.replayText(result, ctx))
        if (format === 'md') output.writeFile(join(flags.out, 'replay.md'), await report.replayMarkdown(result, ctx))
        output.commit()
      } finally {
        output.abort()
      }
      if (format === 'csv' || binary) {
        this.log(files.join('\n'))
        return
      }
    }
    if (format === 'csv') {
      const tables = report.replayTableColumns(result)
      const table = tables.find(([name]) => name === flags.table)
      if (!table) throw new UserError('no such table in this replay', {field: '--table', expected: tables.map(([name]) => name).join(', '), found: showValue(flags.table)})
      process.stdout.write(await report.replayTableCsv(table[1]))
      return
    }
    if (format === 'json') {
      const doc: Record<string, unknown> = report.replayJson(result, ctx)
      if (expectRows) doc.expect = (await import('../analysis/expect-report.js')).expectRowsJson(expectRows)
      if (this.jsonEnabled()) return doc
      this.log(JSON.stringify(doc, null, 2))
      return
    }
    process.stdout.write(format === 'md' ? await report.replayMarkdown(result, ctx) : report.replayText(result, ctx))
    if (expectRows) process.stdout.write(`\n${(await import('../analysis/expect-report.js')).renderExpectText(expectRows)}`)
  }

  /** Prediction against observation: an --expect file wins over the observations in the trace header. */
  private async expectations(file: string | undefined, fromHeader: Record<string, unknown> | undefined, result: import('../replay/result.js').ReplayResult) {
    if (file === undefined && fromHeader === undefined) return undefined
    const {compareWithObserved, readExpectFile} = await import('../analysis/expect.js')
    const observed = file !== undefined ? readExpectFile(file) : fromHeader!
    return compareWithObserved(observed, result)
  }
}
