import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {inspectTrace, type InspectResult} from '../analysis/inspect.js'
import {INSPECT_TABLES, inspectTable, type InspectTableName} from '../analysis/inspect-tables.js'
import {inspectText} from '../analysis/inspect-text.js'
import {openTrace} from '../trace/read/open.js'
import {UserError, showValue} from '../util/errors.js'
import {parseDurationNs} from '../util/units.js'

export default class Inspect extends BaseCommand {
  static override summary = 'Show what is in a trace'
  static override description =
    'One pass over the trace: duration, events by kind, vCPUs, memory layout, distinct guest pages written, the write rate over time, and virtio-mem, VFIO, KVM and migration activity. Text by default; --json for the whole result, --csv for one of its tables.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> traces/converging.csv.gz',
    '<%= config.bin %> <%= command.id %> trace.jsonl --json',
    '<%= config.bin %> <%= command.id %> trace.csv --csv --bucket 100ms',
    '<%= config.bin %> <%= command.id %> trace.csv --csv --table kinds',
  ]
  static override enableJsonFlag = true
  static override args = {trace: Args.string({description: 'trace file (.csv, .jsonl, optionally .gz, or .arrow)', required: true})}
  static override flags = {
    csv: Flags.boolean({description: 'print one table as CSV (see --table)', exclusive: ['json']}),
    table: Flags.string({description: 'table for --csv: rate (write rate over time), kinds (events by kind), slots (memslots)', options: [...INSPECT_TABLES], default: 'rate'}),
    bucket: Flags.string({description: 'write-rate bucket width, e.g. 10ms or 1s (default: chosen for at most 50 buckets)'}),
  }

  async run(): Promise<(InspectResult & {schema: string}) | void> {
    const {args, flags} = await this.parse(Inspect)
    const bucketNs = flags.bucket === undefined ? undefined : parseDurationNs(flags.bucket, '--bucket')
    if (bucketNs !== undefined && bucketNs < 1) throw new UserError('the bucket must be at least 1ns', {field: '--bucket', found: showValue(flags.bucket)})
    const trace = await openTrace(args.trace)
    const {startFileProgress} = await import('../compare/progress.js')
    const bar = await startFileProgress(false, 'inspect', args.trace)
    let result
    try {
      result = await inspectTrace(trace, {bucketNs})
    } finally {
      bar.stop()
    }
    if (this.jsonEnabled()) return {schema: 'migtrace.inspect/1', ...result}
    if (flags.csv) {
      const csv = (await inspectTable(result, flags.table as InspectTableName)).toCSV()
      process.stdout.write(csv.endsWith('\n') ? csv : `${csv}\n`)
      return
    }
    this.log(await inspectText(result))
  }
}
