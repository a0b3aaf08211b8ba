import {CONTENT_PROFILES} from '../trace/header.js'
import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../cli/base-command.js'
import {UserError, showValue} from '../util/errors.js'
import {formatDurationNs} from '../util/units.js'
import {WORKLOAD_NAMES, parseSpec, readSpecFile, specFromFlags, writeSynthTrace, type SynthSpec} from '../synth/index.js'

const SIMPLE_FLAGS = ['memory', 'duration', 'rate', 'vcpus', 'migrate-at', 'mig-params', 'postcopy-at', 'populated', 'content', 'param'] as const

export default class Generate extends BaseCommand {
  static override description = 'Generate a synthetic trace: one workload from flags, or a composition from a spec file'
  static override examples = [
    '<%= config.bin %> <%= command.id %> uniform --memory 1G --rate 20000 --duration 5s --migrate-at 100ms --out uniform.csv',
    '<%= config.bin %> <%= command.id %> hotset --param hotSize=64M --param hotShare=0.95 --seed 7 --out hot.csv.gz',
    '<%= config.bin %> <%= command.id %> --spec fixtures/synth/passthrough.json --out vfio.jsonl --gzip',
  ]
  static override enableJsonFlag = true
  static override args = {
    workload: Args.string({description: 'workload to run on every vCPU (see docs/generate.md)', required: false, options: WORKLOAD_NAMES}),
  }
  static override flags = {
    out: Flags.string({char: 'o', description: 'trace file to write: .csv or .jsonl, optionally .gz, or .arrow', required: true}),
    spec: Flags.string({description: 'JSON spec file (machine, workloads per vCPU, migration track)', exclusive: [...SIMPLE_FLAGS]}),
    memory: Flags.string({description: 'guest RAM size, e.g. 512M, 1G (default 1G)'}),
    duration: Flags.string({description: 'guest time to generate, e.g. 5s (default 10s)'}),
    rate: Flags.string({description: "accesses per second, split between the vCPUs (the workload's `rate` parameter)"}),
    vcpus: Flags.integer({description: 'vCPUs; the workload runs on each (default 1)', min: 1}),
    seed: Flags.integer({description: 'seed of the random streams (default 1; overrides a spec file seed)', min: 0}),
    'migrate-at': Flags.string({description: 'add a migration start (mig_start) at this time, e.g. 100ms'}),
    'mig-params': Flags.string({description: "migration parameters for mig_start, QEMU names: 'max-bandwidth=134217728;downtime-limit=300'"}),
    'postcopy-at': Flags.string({description: 'add a switch to postcopy (mig_postcopy) at this time'}),
    populated: Flags.string({description: 'share of guest RAM holding data at the start, 0..1 (default 1)'}),
    content: Flags.string({description: 'what the pages hold, for multifd compression (header `content`; docs/stream.md)', options: [...CONTENT_PROFILES]}),
    param: Flags.string({char: 'p', description: 'workload parameter key=value (repeatable)', multiple: true, multipleNonGreedy: true}),
    'max-events': Flags.string({description: 'refuse a spec whose rates ask for more events than this, and stop past it (default 1e9)'}),
    gzip: Flags.boolean({description: 'compress with gzip (.gz is appended to the name when missing)', default: false}),
  }

  async run(): Promise<{schema: string; path: string; events: number; guestTimeNs: number; seed: number}> {
    const {args, flags} = await this.parse(Generate)
    let spec: SynthSpec
    if (flags.spec !== undefined) {
      if (args.workload !== undefined) throw new UserError('give a workload or --spec, not both', {field: 'workload', found: showValue(args.workload)})
      spec = readSpecFile(flags.spec, {seed: flags.seed})
    } else {
      if (args.workload === undefined) throw new UserError('nothing to generate', {expected: `a workload (${WORKLOAD_NAMES.join(', ')}) or --spec FILE`})
      spec = parseFlagsSpec(args.workload, flags)
    }
    const maxEvents = parseNumberFlag('max-events', flags['max-events'], 1)
    const bar = await progressBar()
    try {
      const res = await writeSynthTrace(spec, flags.out, {gzip: flags.gzip, onProgress: bar?.update, maxEvents})
      bar?.stop()
      this.log(`wrote ${res.events} events (${formatDurationNs(spec.durationNs)} of guest time, seed ${spec.seed}) to ${res.path}`)
      return {schema: 'migtrace.generate/1', path: res.path, events: res.events, guestTimeNs: spec.durationNs, seed: spec.seed}
    } catch (e) {
      throw e instanceof UserError && flags.spec === undefined ? flagError(e) : e
    } finally {
      bar?.stop()
    }
  }
}

function parseNumberFlag(name: string, v: string | undefined, min: number, max = Infinity): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new UserError('invalid flag value', {field: `--${name}`, expected: max === Infinity ? `a number >= ${min}` : `a number from ${min} to ${max}`, found: showValue(v)})
  return n
}

function parseFlagsSpec(workload: string, flags: {memory?: string; duration?: string; rate?: string; vcpus?: number; seed?: number; 'migrate-at'?: string; 'mig-params'?: string; 'postcopy-at'?: string; populated?: string; content?: string; param?: string[]}): SynthSpec {
  const raw = specFromFlags(workload, {
    memory: flags.memory,
    duration: flags.duration,
    rate: parseNumberFlag('rate', flags.rate, 0),
    vcpus: flags.vcpus,
    seed: flags.seed,
    migrateAt: flags['migrate-at'],
    migParams: flags['mig-params'],
    postcopyAt: flags['postcopy-at'],
    populated: parseNumberFlag('populated', flags.populated, 0, 1),
    content: flags.content,
    params: flags.param,
  })
  try {
    return parseSpec(raw)
  } catch (e) {
    throw e instanceof UserError ? flagError(e) : e
  }
}

/** Name the flag a spec field came from, so flag users see their own words. */
function flagError(e: UserError): UserError {
  const f = e.field ?? ''
  const map: Record<string, string> = {duration: '--duration', memory: '--memory', 'migration.start': '--migrate-at', 'migration.params': '--mig-params', 'migration.postcopy': '--postcopy-at'}
  const field = f.startsWith('workloads.0.params.') ? `--param ${f.slice('workloads.0.params.'.length)}` : map[f] ?? f
  return new UserError(e.reason, {file: e.file, line: e.line, field: field || undefined, expected: e.expected, found: e.found})
}

async function progressBar(): Promise<{update: (done: number) => void; stop: () => void} | undefined> {
  if (!process.stderr.isTTY) return undefined
  const {default: cliProgress} = await import('cli-progress')
  const bar = new cliProgress.SingleBar({stream: process.stderr, format: 'generating [{bar}] {percentage}% of guest time', hideCursor: true, clearOnComplete: true}, cliProgress.Presets.shades_classic)
  bar.start(1000, 0)
  let stopped = false
  return {
    update: (done: number) => bar.update(Math.round(done * 1000)),
    stop: () => {
      if (!stopped) bar.stop()
      stopped = true
    },
  }
}
