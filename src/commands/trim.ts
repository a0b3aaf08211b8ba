import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {parseDurationNs} from '../util/units.js'

export default class Trim extends BaseCommand {
  static override summary = 'Cut a time window out of a trace (a recording), with memory as the window finds it'
  static override description =
    'Keeps the events with --from <= t_ns < --to, shifted to start at 0. Pages written before the window join the header\'s populated map (they hold data when the window opens); virtio-mem requests before it are folded into the plugged ranges; other events before it are dropped and counted in header.source.trim.'
  static override examples = ['<%= config.bin %> <%= command.id %> recording.csv.gz window.csv.gz --from 42s --to 52s']
  static override enableJsonFlag = true
  static override args = {
    input: Args.string({description: 'trace to cut', required: true}),
    output: Args.string({description: 'trace to write (.csv, .jsonl, optionally .gz)', required: true}),
  }
  static override flags = {
    from: Flags.string({description: 'window start, in trace time (e.g. 42s)', required: true}),
    to: Flags.string({description: 'window end, in trace time (e.g. 52s)', required: true}),
  }

  async run(): Promise<Record<string, unknown>> {
    const {args, flags} = await this.parse(Trim)
    const {trimTrace} = await import('../record/trim.js')
    const r = await trimTrace({input: args.input, out: args.output, fromNs: parseDurationNs(flags.from, 'from'), toNs: parseDurationNs(flags.to, 'to')})
    this.log(`${args.output}: ${r.events} events; ${r.populatedPages} pages hold data when the window opens`)
    return {schema: 'migtrace.trim/1', input: args.input, output: args.output, fromNs: parseDurationNs(flags.from, 'from'), toNs: parseDurationNs(flags.to, 'to'), events: r.events, populatedPages: r.populatedPages}
  }
}
