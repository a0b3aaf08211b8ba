import * as Args from '@oclif/core/args'
import {BaseCommand} from '../cli/base-command.js'
import {convertTrace} from '../trace/read/convert.js'

export default class Convert extends BaseCommand {
  static override summary = 'Convert a trace between CSV, JSON Lines (and gzip) and Arrow'
  static override description =
    'Streams the input into the output; the output format follows its name (.csv, .jsonl, either with .gz, or .arrow for an Arrow IPC file). The output is written in canonical form (addresses in 0x hex, the header inline with every default filled in) and appears only when the whole input was read without error.'
  static override examples = ['<%= config.bin %> <%= command.id %> trace.csv trace.jsonl', '<%= config.bin %> <%= command.id %> trace.jsonl trace.csv.gz']
  static override enableJsonFlag = true
  static override args = {
    input: Args.string({description: 'trace to read', required: true}),
    output: Args.string({description: 'trace to write (.csv, .jsonl, optionally .gz, or .arrow)', required: true}),
  }

  async run(): Promise<{schema: string; input: string; output: string; events: number}> {
    const {args} = await this.parse(Convert)
    const events = await convertTrace(args.input, args.output)
    this.log(`${args.output}: ${events} events written`)
    return {schema: 'migtrace.convert/1', input: args.input, output: args.output, events}
  }
}
