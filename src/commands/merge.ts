import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {formatFlag, quietFlag} from '../compare/flags.js'

export default class Merge extends BaseCommand {
  static override description =
    "Join the shard files of a sharded compare or grid (--shard i/n) into the output the unsharded run prints; checks that the shards are of one sweep and complete"
  static override examples = [
    '<%= config.bin %> <%= command.id %> shard1.json shard2.json',
    "<%= config.bin %> <%= command.id %> shards/*.json --json --fail-if 'redundant>0.05'",
    '<%= config.bin %> <%= command.id %> grid-*.json --format md --html grid.html',
  ]
  static override strict = false
  static override enableJsonFlag = true
  static override args = {shards: Args.string({description: 'shard JSON files (the output of compare/grid --shard i/n)', required: true})}
  static override flags = {
    'fail-if': Flags.string({description: 'compare only: exit 1 when a condition holds (as compare --fail-if)', multiple: true, multipleNonGreedy: true, default: []}),
    html: Flags.string({description: 'grid only: also write the HTML heat map page to this file'}),
    ...formatFlag,
    ...quietFlag,
  }

  async run(): Promise<Record<string, unknown> | void> {
    const {argv, flags} = await this.parse(Merge)
    const {mergeShards, readShard} = await import('../compare/shard.js')
    const {checkConditionVariants, parseConditions} = await import('../compare/fail-if.js')
    const {printDoc} = await import('../compare/command-flow.js')
    const {UserError} = await import('../util/errors.js')
    const files = argv as string[]
    const conditions = parseConditions(flags['fail-if'])
    const {definition, results} = mergeShards(files.map((path) => ({path, doc: readShard(path)})))
    if (definition.command === 'grid' && conditions.length > 0) throw new UserError('--fail-if applies to compare shards', {field: '--fail-if', expected: 'shards of migtrace compare'})
    if (definition.command === 'compare')
      checkConditionVariants(
        conditions,
        definition.variants.map((v) => v.name),
      )
    if (definition.command === 'compare' && flags.html) throw new UserError('--html applies to grid shards', {field: '--html', expected: 'shards of migtrace grid'})
    return printDoc(this, definition, results, {conditions, format: this.jsonEnabled() ? 'json' : flags.format, quiet: flags.quiet, html: flags.html})
  }
}
