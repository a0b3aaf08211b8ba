import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {formatFlag, quietFlag, settingsFlags, sweepFlags} from '../compare/flags.js'

export default class Grid extends BaseCommand {
  static override description =
    'What-if grid: replay a trace for every bandwidth x downtime-limit pair and show total time, downtime and verdict as tables, or as an HTML heat map. ' +
    'Bandwidths carry their unit: 128MiB/s, 1G/s and 125MB/s are bytes/s, 10Gbit/s and 10Gbps bits/s; a bare 10G is refused as ambiguous.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> traces/converging.csv.gz --bandwidth 1Gbit/s,2.5Gbit/s,10Gbit/s --downtime 50ms,300ms,1s',
    '<%= config.bin %> <%= command.id %> run.csv --bandwidth 64MiB/s,128MiB/s,256MiB/s --downtime 100ms,300ms --html grid.html',
    '<%= config.bin %> <%= command.id %> run.csv --bandwidth 1Gbit/s,10Gbit/s --downtime 50ms,1s --shard 2/2 > shard2.json',
  ]
  static override enableJsonFlag = true
  static override args = {trace: Args.string({description: 'trace file (.csv, .jsonl, optionally .gz, or .arrow)', required: true})}
  static override flags = {
    bandwidth: Flags.string({description: 'bandwidths, comma-separated, with their unit: 10Gbit/s (a link), 128MiB/s (bytes/s)', required: true, multiple: true, multipleNonGreedy: true}),
    downtime: Flags.string({description: 'downtime limits, comma-separated (300ms, 1s; a bare number is ms)', required: true, multiple: true, multipleNonGreedy: true}),
    'bandwidth-setting': Flags.string({description: 'what the bandwidth sets: both max-bandwidth and link-bandwidth (the migration uses the whole link), or only one of them', options: ['both', 'max-bandwidth', 'link-bandwidth'], default: 'both'}),
    html: Flags.string({description: 'also write an HTML page with the heat maps (inline SVG) to this file'}),
    ...settingsFlags,
    ...formatFlag,
    ...sweepFlags,
    ...quietFlag,
  }

  async run(): Promise<Record<string, unknown> | void> {
    const {args, flags} = await this.parse(Grid)
    const {loadConfigFile, parseSetFlags} = await import('../replay/config.js')
    const {gridAxes} = await import('../compare/grid-doc.js')
    const {parseShard} = await import('../compare/sweep.js')
    const {runAndPrint} = await import('../compare/command-flow.js')
    const axes = gridAxes(flags.bandwidth, flags.downtime)
    const base = {...(flags.config ? loadConfigFile(flags.config) : {}), ...parseSetFlags(flags.set)}
    return runAndPrint(this, {
      definition: {command: 'grid', trace: args.trace, driver: flags.driver as 'qemu' | 'recorded', base, bandwidthSetting: flags['bandwidth-setting'] as 'both', ...axes},
      conditions: [],
      shard: flags.shard !== undefined ? parseShard(flags.shard) : undefined,
      jobs: flags.jobs,
      format: this.jsonEnabled() ? 'json' : flags.format,
      quiet: flags.quiet,
      html: flags.html,
    })
  }
}
