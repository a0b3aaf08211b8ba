/** Flags shared by report, compare, grid and merge (the replay command's names where it has them). */
import * as Flags from '@oclif/core/flags'

export const settingsFlags = {
  config: Flags.string({char: 'c', description: 'JSON file of settings (same keys as --set), applied to every run'}),
  set: Flags.string({char: 's', description: 'a setting key=value applied to every run (repeatable), e.g. max-bandwidth=256MiB/s', multiple: true, multipleNonGreedy: true, default: []}),
  driver: Flags.string({description: 'qemu: the model decides syncs, clears and sends (what-if); recorded: follow the run the trace recorded', options: ['qemu', 'recorded'], default: 'qemu'}),
}

export const quietFlag = {
  quiet: Flags.boolean({char: 'q', description: 'no progress bar and no informational messages (results and errors are still printed)', default: false}),
}

export const sweepFlags = {
  jobs: Flags.integer({char: 'j', description: 'worker threads sharing the runs, each decoding the trace once for its share (default: the number of CPUs, at most one per run; 1 = every run in this process, one decode)', min: 1}),
  shard: Flags.string({description: "run only shard i of n (i/n, 1-based; items i-1, i-1+n, ...) and print a shard JSON file for 'migtrace merge'"}),
}

export const formatFlag = {
  format: Flags.string({char: 'f', description: 'output format (--json is the same as --format json)', options: ['text', 'md', 'csv', 'json'], default: 'text'}),
}
