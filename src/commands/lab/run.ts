import * as Flags from '@oclif/core/flags'
import {BaseCommand} from '../../cli/base-command.js'
import {UserError} from '../../util/errors.js'
import type {LabRunDoc} from '../../schemas/outputs.js'

const int = (description: string, dflt: number) => Flags.integer({description, default: dflt})
const optInt = (description: string) => Flags.integer({description})

/** `1024`, `1024M`, `1G` -> MiB. */
function mib(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)([MG]?)i?B?$/i.exec(v.trim())
  if (!m) throw new UserError('bad size', {field: flag, expected: 'MiB, or a number with M or G (e.g. 1024, 512M, 1G)', found: v})
  return Math.round(Number(m[1]) * (m[2]?.toUpperCase() === 'G' ? 1024 : 1))
}

export default class LabRun extends BaseCommand {
  static override summary = 'Run one real QEMU live migration in the lab, capture it, and compare the model with it'
  static override description =
    'Boots a source and a destination QEMU on this host (TCG by default) with the dirtier as the guest workload, migrates over tcp:127.0.0.1, and records the run (config.json with the exact command lines and the load average, the 100 ms query-migrate timeline, final figures on both sides, QMP events, host-stamped consoles, QEMU trace logs). Then imports the source trace, replays it and prints the prediction beside the observation. Needs the guest image (`migtrace lab image`). See docs/lab.md.'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --name r1 --ws 256 --rate 5000 --bandwidth 128 --downtime 300',
    '<%= config.bin %> <%= command.id %> --name pc --ws 512 --rate 50000 --bandwidth 64 --downtime 100 --mode postcopy --postcopy-after 3',
    '<%= config.bin %> <%= command.id %> --name vm --mem 512 --vmem-size 1024 --vmem-requested 512 --vmem-resize 256 --ws 128 --rate 5000',
    '<%= config.bin %> <%= command.id %> --name mf --multifd-channels 4 --multifd-compression zstd',
    '<%= config.bin %> <%= command.id %> --name r2 --ws 64 --rate 2000 --json',
  ]
  static override enableJsonFlag = true
  static override flags = {
    name: Flags.string({description: 'run name (directory under <work>/runs)', required: true}),
    out: Flags.string({description: 'run directory (default <work>/runs/<name>)'}),
    force: Flags.boolean({description: 'replace an existing run directory', default: false}),
    work: Flags.string({description: 'lab work directory (default $MIGTRACE_LAB_WORK or ~/.cache/migtrace-lab)'}),
    qemu: Flags.string({description: 'QEMU binary', default: 'qemu-system-x86_64'}),
    accel: Flags.string({description: 'accelerator (kvm needs a /dev/kvm that runs a stock Linux guest)', options: ['tcg', 'kvm'], default: 'tcg'}),
    'tcg-thread': Flags.string({description: 'TCG threading: single (round-robin) or multi (MTTCG, QEMU\'s default)', options: ['single', 'multi'], default: 'single'}),
    cpu: Flags.string({description: '-cpu model'}),
    machine: Flags.string({description: 'machine type', default: 'pc'}),
    mem: Flags.string({description: 'guest RAM (MiB, or 512M, 1G)', default: '1024'}),
    'ram-pad': int("KiB added to -m under TCG so pc.ram avoids QEMU < 9.0's lossy aligned dirty-sync fast path (0 = exact size; docs/lab.md)", 8),
    smp: int('vCPUs', 1),
    ws: int('dirtier working set, MiB (0 = idle guest)', 256),
    rate: int('page writes/s (0 none, -1 as fast as possible)', 10000),
    pattern: Flags.string({description: 'write pattern', options: ['random', 'hotspot', 'seq'], default: 'random'}),
    hot: int('hotspot: hot set, % of the working set', 10),
    hotp: int('hotspot: % of writes to the hot set', 90),
    fill: Flags.string({description: 'initial fill of the working set', options: ['random', 'zero'], default: 'random'}),
    seed: int('dirtier seed', 1),
    'report-ms': int('dirtier progress line interval, ms', 1000),
    'no-pfnmap': Flags.boolean({description: 'do not print the page map (the importer then cannot place the writes)', default: false}),
    'pfn-check': int('how often the dirtier looks for moved pages, ms', 100),
    pace: Flags.string({description: 'dirtier pacing between batches: sleep (usleep) or spin (busy-wait: no hrtimers on its stack)', options: ['sleep', 'spin'], default: 'sleep'}),
    warmup: Flags.string({description: 'seconds between DIRTIER READY and the migration', default: '3'}),
    bandwidth: Flags.string({description: 'max-bandwidth, MiB/s', default: '128'}),
    downtime: int('downtime-limit, ms', 300),
    mode: Flags.string({description: 'precopy, or postcopy (migrate-start-postcopy at --postcopy-after)', options: ['precopy', 'postcopy'], default: 'precopy'}),
    'postcopy-after': int('postcopy: switch once dirty-sync-count reaches N', 2),
    'auto-converge': Flags.boolean({description: 'the auto-converge capability', default: false}),
    'throttle-initial': optInt('auto-converge: cpu-throttle-initial, %'),
    'throttle-increment': optInt('auto-converge: cpu-throttle-increment, %'),
    'max-time': Flags.string({description: 'seconds before the --on-timeout action', default: '90'}),
    'on-timeout': Flags.string({description: 'what to do at --max-time', options: ['cancel', 'postcopy'], default: 'cancel'}),
    'dirty-ring': int('KVM dirty ring entries (kvm only; 0 = bitmap)', 0),
    poll: int('query-migrate interval, ms', 100),
    'post-run': Flags.string({description: 'seconds the destination runs after the migration before both stop', default: '3'}),
    'multifd-channels': int('multifd with N channels (0 = off); set on both sides', 0),
    'multifd-compression': Flags.string({description: 'multifd compression', options: ['none', 'zlib', 'zstd'], default: 'none'}),
    xbzrle: Flags.boolean({description: 'the xbzrle capability', default: false}),
    'xbzrle-cache-size': Flags.string({description: 'xbzrle-cache-size (MiB, or 64M, 1G)'}),
    'vmem-size': int('virtio-mem region, MiB (0 = no virtio-mem device)', 0),
    'vmem-requested': int('virtio-mem requested-size at boot, MiB', 0),
    'vmem-resize': optInt('virtio-mem requested-size set before migrating, MiB'),
    trace: Flags.string({description: 'trace-event preset', options: ['none', 'basic', 'pages'], default: 'pages'}),
    'trace-extra': Flags.string({description: 'another trace event name or glob (repeatable)', multiple: true, default: []}),
    'boot-timeout': int('seconds to wait for DIRTIER READY', 180),
    'extra-append': Flags.string({description: 'more kernel command line', default: ''}),
    'extra-qemu': Flags.string({description: 'one more QEMU argument for both sides (repeatable, in order)', multiple: true, default: []}),
    'max-load': Flags.string({description: 'wait until the 1-minute load average is at most this before starting (0 = do not wait)', default: '0'}),
    'wait-load': int('give up waiting for --max-load after this many seconds (then run anyway)', 600),
    record: Flags.boolean({description: "record every guest store of the source with migtrace record's TCG plugin (recording.csv.gz), for exact writes in the comparison; default: when the plugin builds (TCG); --no-record to skip", allowNo: true}),
    prealloc: Flags.boolean({description: "populate both QEMUs' guest RAM before the guest runs (-mem-prealloc; virtio-mem prealloc=on, a property of QEMU 7.1+: use --no-prealloc with an older --qemu and --vmem-size), so the migration pays no host page-allocation fault for RAM the guest never touched (hosts without a read-fault zero page: docs/lab.md); --no-prealloc for the host's own behaviour", default: true, allowNo: true}),
    analyze: Flags.boolean({description: 'import, replay and compare after the run (--no-analyze to skip)', default: true, allowNo: true}),
    config: Flags.string({description: "settings file for the comparison's replay (default: the project's calibration of this host, lab/calibration.json; none = the lab's base settings alone: lazy-clear=false, zero-page-cost=1.5us)"}),
    set: Flags.string({description: 'replay setting key=value for the comparison, over the lab settings and --config (repeatable)', multiple: true}),
  }

  async run(): Promise<LabRunDoc> {
    const {flags: f} = await this.parse(LabRun)
    const {runLab, LabRunError} = await import('../../lab/driver.js')
    const {analyzeRun, labComparisonSettings} = await import('../../lab/analyze.js')
    // A bad --config is the user's mistake: say so before minutes of capture, not after.
    if (f.analyze) labComparisonSettings(f.config)
    const {labWorkDir} = await import('../../lab/paths.js')
    const num = (v: string, flag: string): number => {
      const n = Number(v)
      if (!Number.isFinite(n)) throw new UserError('not a number', {field: flag, found: v})
      return n
    }
    const opts = {
      name: f.name,
      out: f.out,
      force: f.force,
      work: f.work ?? labWorkDir(),
      qemu: f.qemu,
      accel: f.accel as 'tcg' | 'kvm',
      tcgThread: f['tcg-thread'] as 'single' | 'multi',
      cpu: f.cpu,
      machine: f.machine,
      memMib: mib(f.mem, '--mem'),
      ramPadKib: f['ram-pad'],
      smp: f.smp,
      wsMib: f.ws,
      rate: f.rate,
      pattern: f.pattern as 'random' | 'hotspot' | 'seq',
      hotPct: f.hot,
      hotProb: f.hotp,
      fill: f.fill as 'random' | 'zero',
      seed: f.seed,
      reportMs: f['report-ms'],
      pfnmap: !f['no-pfnmap'],
      pfnCheckMs: f['pfn-check'],
      pace: f.pace as 'sleep' | 'spin',
      warmupS: num(f.warmup, '--warmup'),
      bandwidthMibs: num(f.bandwidth, '--bandwidth'),
      downtimeMs: f.downtime,
      mode: f.mode as 'precopy' | 'postcopy',
      postcopyAfter: f['postcopy-after'],
      autoConverge: f['auto-converge'],
      throttleInitial: f['throttle-initial'],
      throttleIncrement: f['throttle-increment'],
      maxTimeS: num(f['max-time'], '--max-time'),
      onTimeout: f['on-timeout'] as 'cancel' | 'postcopy',
      dirtyRing: f['dirty-ring'],
      pollMs: f.poll,
      postRunS: num(f['post-run'], '--post-run'),
      multifdChannels: f['multifd-channels'],
      multifdCompression: f['multifd-compression'] as 'none' | 'zlib' | 'zstd',
      xbzrle: f.xbzrle,
      xbzrleCacheMib: f['xbzrle-cache-size'] === undefined ? undefined : mib(f['xbzrle-cache-size'], '--xbzrle-cache-size'),
      vmemSizeMib: f['vmem-size'],
      vmemRequestedMib: f['vmem-requested'],
      vmemResizeMib: f['vmem-resize'],
      trace: f.trace as 'none' | 'basic' | 'pages',
      traceExtra: f['trace-extra'],
      bootTimeoutS: f['boot-timeout'],
      extraAppend: f['extra-append'],
      record: f.record === undefined ? ('auto' as const) : f.record ? ('on' as const) : ('off' as const),
      extraQemu: f['extra-qemu'],
      prealloc: f.prealloc,
      maxLoad: num(f['max-load'], '--max-load'),
      waitLoadS: f['wait-load'],
    }
    // With --json the driver's steps go to stderr and stdout holds the one document.
    const json = this.jsonEnabled()
    const step = (l: string): void => (json ? void process.stderr.write(`[lab] ${l}\n`) : this.log(`[lab] ${l}`))
    let res
    try {
      res = await runLab(opts, step)
    } catch (e) {
      if (e instanceof LabRunError) this.error(e.message, {exit: 1})
      throw e
    }
    this.log(`run directory: ${res.dir}`)
    const doc: LabRunDoc = {schema: 'migtrace.lab-run/1', dir: res.dir, status: res.status, summary: res.summary, analysis: null, analysisError: null}
    if (!f.analyze || opts.trace === 'none') return doc
    try {
      const a = await analyzeRun(res.dir, {settings: f.set, config: f.config})
      this.log(`imported ${a.importSummary.events} events (${String(a.importSummary.writes ?? 0)} guest writes re-created) -> ${a.trace}`)
      if (!json) process.stdout.write(`\n${a.text}`)
      doc.analysis = {trace: a.trace, events: a.importSummary.events, settings: a.settings, expect: a.rows}
    } catch (e) {
      // The capture is done and kept; a failed comparison is reported, not fatal to the run.
      if (json) doc.analysisError = (e as Error).message
      else this.warn(`analysis failed: ${(e as Error).message}`)
      process.exitCode = 1
    }
    return doc
  }
}
