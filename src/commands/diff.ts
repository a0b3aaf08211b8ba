import * as Args from '@oclif/core/args'
import {BaseCommand} from '../cli/base-command.js'
import {formatFlag} from '../compare/flags.js'

export default class Diff extends BaseCommand {
  static override summary = 'Compare two saved replay results (perf-diff style: baseline, delta, ratio)'
  static override description =
    'Reads two results of migtrace replay --json (or --format json) and shows the second against the first: the settings that differ, then every figure of migtrace compare with its delta, percentage and ratio.'
  static override examples = [
    '<%= config.bin %> replay run.csv.gz --json > before.json',
    '<%= config.bin %> replay run.csv.gz --set max-bandwidth=1GiB/s --json > after.json',
    '<%= config.bin %> <%= command.id %> before.json after.json',
    '<%= config.bin %> <%= command.id %> before.json after.json --format md',
  ]
  static override enableJsonFlag = true
  static override args = {
    baseline: Args.string({description: 'the baseline: a saved replay result (JSON)', required: true}),
    other: Args.string({description: 'the result compared with it (JSON)', required: true}),
  }
  static override flags = {...formatFlag}

  async run(): Promise<Record<string, unknown> | void> {
    const {args, flags} = await this.parse(Diff)
    const {diffCsv, diffDoc, diffMarkdown, diffText} = await import('../diff/diff-doc.js')
    const doc = diffDoc(args.baseline, args.other)
    const format = this.jsonEnabled() ? 'json' : flags.format
    if (format === 'json') {
      process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`)
      return
    }
    process.stdout.write(format === 'md' ? diffMarkdown(doc) : format === 'csv' ? diffCsv(doc) : diffText(doc))
  }
}
