import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {formatFlag, quietFlag, settingsFlags, sweepFlags} from '../compare/flags.js'
import {UserError} from '../util/errors.js'

export default class Compare extends BaseCommand {
  static override description =
    'Replay one trace under several settings (variants) and show them side by side with a baseline: values, deltas, ratios; --fail-if gates CI on thresholds (exit 1)'
  static override examples = [
    '<%= config.bin %> <%= command.id %> traces/converging.csv.gz --variant default --variant fast:max-bandwidth=1GiB/s',
    "<%= config.bin %> <%= command.id %> run.csv --variant qemu --variant rounds:stop-policy=rounds --fail-if 'redundant>0.05'",
    "<%= config.bin %> <%= command.id %> run.csv --scenarios scenarios.json --baseline default --fail-if 'downtimeMs@delta>20ms' --format md",
    '<%= config.bin %> <%= command.id %> run.csv --scenarios big.json --shard 1/4 > shard1.json',
    '<%= config.bin %> <%= command.id %> run.csv --variant qemu --variant fast:max-bandwidth=1GiB/s --html compare.html',
  ]
  static override enableJsonFlag = true
  static override args = {trace: Args.string({description: 'trace file (.csv, .jsonl, optionally .gz, or .arrow)', required: true})}
  static override flags = {
    variant: Flags.string({char: 'v', description: 'a variant NAME:key=value,key=value (settings of src/replay/config.ts; repeatable; NAME alone = the base settings)', multiple: true, multipleNonGreedy: true, default: []}),
    scenarios: Flags.string({description: 'JSON file of named scenarios: [{"name", "settings"}] or {"baseline", "settings", "scenarios": [...]}'}),
    baseline: Flags.string({char: 'b', description: 'the variant the others are compared with (default: the first)'}),
    'fail-if': Flags.string({
      description: "exit 1 when a condition holds: [VARIANT:]METRIC[@delta|@ratio|@pct] OP VALUE, e.g. 'redundant>0.05', 'downtimeMs@delta>20ms' (repeatable or comma-separated; see docs/reports.md)",
      multiple: true,
      multipleNonGreedy: true,
      default: [],
    }),
    html: Flags.string({description: "also write an HTML page with the variants' charts overlaid (bytes sent over time, dirty pages at each sync, downtime) and the figures"}),
    ...settingsFlags,
    ...formatFlag,
    ...sweepFlags,
    ...quietFlag,
  }

  async run(): Promise<Record<string, unknown> | void> {
    const {args, flags} = await this.parse(Compare)
    const {loadConfigFile, parseSetFlags} = await import('../replay/config.js')
    const {checkVariants, loadScenarios, parseVariantFlag} = await import('../compare/variants.js')
    const {checkConditionVariants, parseConditions} = await import('../compare/fail-if.js')
    const {parseShard} = await import('../compare/sweep.js')
    const {runAndPrint} = await import('../compare/command-flow.js')

    const scen = flags.scenarios ? loadScenarios(flags.scenarios) : undefined
    const variants = [...(scen?.variants ?? []), ...flags.variant.map(parseVariantFlag)]
    const baseline = variants[checkVariants(variants, flags.baseline ?? scen?.baseline)]!.name
    const conditions = parseConditions(flags['fail-if'])
    checkConditionVariants(
      conditions,
      variants.map((v) => v.name),
    )
    const shard = flags.shard !== undefined ? parseShard(flags.shard) : undefined
    if (shard && conditions.length > 0) throw new UserError('--fail-if needs every result', {field: '--fail-if', expected: "no --shard (give --fail-if to 'migtrace merge' instead)"})
    const base = {...(flags.config ? loadConfigFile(flags.config) : {}), ...(scen?.common ?? {}), ...parseSetFlags(flags.set)}
    return runAndPrint(this, {
      definition: {command: 'compare', trace: args.trace, driver: flags.driver as 'qemu' | 'recorded', base, variants, baseline},
      conditions,
      shard,
      jobs: flags.jobs,
      format: this.jsonEnabled() ? 'json' : flags.format,
      quiet: flags.quiet,
      html: flags.html,
    })
  }
}
