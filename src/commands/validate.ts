import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {validateTrace} from '../trace/read/validate.js'

export default class Validate extends BaseCommand {
  static override summary = 'Check a trace: its header, and every event against it'
  static override description =
    'Reads the whole trace (CSV or JSON Lines, optionally gzip) and reports every problem with its file, line, field, what was expected and what was found. Exit code 0 when the trace is valid, 2 when it is not.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> traces/converging.csv.gz',
    '<%= config.bin %> <%= command.id %> my-trace.jsonl --max-errors 5',
    '<%= config.bin %> <%= command.id %> my-trace.csv --json',
  ]
  static override enableJsonFlag = true
  static override args = {trace: Args.string({description: 'trace file (.csv, .jsonl, optionally .gz, or .arrow)', required: true})}
  static override flags = {
    'max-errors': Flags.integer({description: 'stop after this many errors', default: 20, min: 1}),
  }

  async run(): Promise<unknown> {
    const {args, flags} = await this.parse(Validate)
    const {startFileProgress} = await import('../compare/progress.js')
    const bar = await startFileProgress(false, 'validate', args.trace)
    let r
    try {
      r = await validateTrace(args.trace, {maxErrors: flags['max-errors']})
    } finally {
      bar.stop()
    }
    const json = {
      schema: 'migtrace.validate/1',
      file: r.file,
      valid: r.valid,
      format: r.format,
      gzip: r.gzip,
      headerFile: r.headerFile,
      events: r.events,
      errors: r.errors.map((e) => e.toJSON()),
      stoppedEarly: r.stoppedEarly,
    }
    if (this.jsonEnabled()) {
      if (r.valid) return json
      this.logJson(json)
      this.exit(2)
    }
    if (r.valid) {
      this.log(`${r.file}: valid (${r.events} events, ${r.format}${r.gzip ? ', gzip' : ''})`)
      return json
    }
    for (const e of r.errors) process.stderr.write(`migtrace: ${e.message}\n`)
    // One error, one line; a summary only when there are several.
    if (r.errors.length > 1 || r.stoppedEarly) {
      const more = r.stoppedEarly ? ` (stopped after ${r.errors.length}; use --max-errors to see more)` : ''
      process.stderr.write(`migtrace: ${r.file}: ${r.errors.length} errors${more}\n`)
    }
    this.exit(2)
  }
}
