/**
 * The options of one lab run (`migtrace lab run`), their defaults and their checks. The names in
 * config.json's `args` are those of the lab's first driver (qemu-lab/migrate.py: snake_case, sizes
 * in MiB, bandwidth in MiB/s), which `migtrace import qemu --workload` reads; `labArgs()` writes them.
 */
import {UserError} from '../util/errors.js'

export type Pattern = 'random' | 'hotspot' | 'seq'
export type MigrationMode = 'precopy' | 'postcopy'
export type OnTimeout = 'cancel' | 'postcopy'
export type TracePreset = 'none' | 'basic' | 'pages'
export type MultifdCompression = 'none' | 'zlib' | 'zstd'

export interface LabRunOptions {
  name: string
  /** Run directory (default <work>/runs/<name>). */
  out?: string
  /** Replace an existing run directory. */
  force: boolean
  work: string
  qemu: string
  accel: 'tcg' | 'kvm'
  /** TCG threading: single (round-robin, the lab's default) or multi (MTTCG, QEMU's default). */
  tcgThread: 'single' | 'multi'
  cpu?: string
  machine: string
  memMib: number
  /**
   * KiB added to -m under TCG so pc.ram is not a multiple of 256 KiB (64 pages). QEMU before 9.0
   * syncs an aligned RAM block through the word-at-a-time fast path of
   * cpu_physical_memory_sync_dirty_bitmap(), which clears DIRTY_MEMORY_MIGRATION bits without
   * resetting TCG's TLB dirty state (tlb_reset_dirty_range_all): a vCPU whose TLB entry was already
   * dirty keeps writing that page without marking it, and the write is lost to the migration
   * (fixed upstream by "system/physmem: Fix migration dirty bitmap coherency with TCG memory
   * access", QEMU 9.0). An unaligned block takes the per-page path, which resets the TLB. 0 = the
   * exact size (QEMU 7.2's lossy tracking). docs/lab.md, "the destination guest crashes".
   */
  ramPadKib: number
  smp: number
  // the guest workload (lab/guest/dirtier.c)
  wsMib: number
  rate: number
  pattern: Pattern
  hotPct: number
  hotProb: number
  fill: 'random' | 'zero'
  seed: number
  reportMs: number
  pfnmap: boolean
  pfnCheckMs: number
  pace: 'sleep' | 'spin'
  warmupS: number
  // the migration
  bandwidthMibs: number
  downtimeMs: number
  mode: MigrationMode
  postcopyAfter: number
  autoConverge: boolean
  throttleInitial?: number
  throttleIncrement?: number
  maxTimeS: number
  onTimeout: OnTimeout
  dirtyRing: number
  pollMs: number
  postRunS: number
  multifdChannels: number
  multifdCompression: MultifdCompression
  xbzrle: boolean
  xbzrleCacheMib?: number
  // virtio-mem
  vmemSizeMib: number
  vmemRequestedMib: number
  vmemResizeMib?: number
  // capture
  trace: TracePreset
  traceExtra: string[]
  bootTimeoutS: number
  extraAppend: string
  extraQemu: string[]
  /**
   * Record every guest store of the source with migtrace record's TCG plugin (clock=host, 1 ms
   * epochs: recording.csv.gz), so the comparison replays the guest's real writes (the dirtier's,
   * the kernel's, everything) instead of the dirtier's re-created from its seed. auto: when the
   * plugin builds and the accelerator is TCG; on: required; off: never.
   */
  record: 'auto' | 'on' | 'off'
  /**
   * Populate both QEMUs' guest RAM before the guest runs (`-mem-prealloc`, and `prealloc=on` on the
   * virtio-mem device, which populates blocks as they are plugged), so the migration never pays a
   * host page-allocation fault for RAM the guest left untouched. On a standard Linux host a read
   * fault on untouched anonymous memory maps the shared zero page, so QEMU's save_zero_page
   * (buffer_is_zero) costs ~0.5 µs a page; on a host that maps no zero page on reads (this lab's
   * PVM guest kernel: `pvm_no_zero_page=1`) every such read allocates and zeroes a page, on memory
   * the outer hypervisor takes back once freed (`page_reporting`), 7-13 µs a page. Default on, so
   * the lab's timings are those plain QEMU has on a standard host (docs/lab.md, "Cold host memory").
   */
  prealloc: boolean
  /** Wait (up to waitLoadS) for the 1-minute load average to fall to this before starting; 0 = don't wait. */
  maxLoad: number
  waitLoadS: number
}

export const DEFAULTS: Omit<LabRunOptions, 'name' | 'work'> = {
  force: false,
  qemu: 'qemu-system-x86_64',
  accel: 'tcg',
  tcgThread: 'single',
  machine: 'pc',
  memMib: 1024,
  ramPadKib: 8,
  smp: 1,
  wsMib: 256,
  rate: 10000,
  pattern: 'random',
  hotPct: 10,
  hotProb: 90,
  fill: 'random',
  seed: 1,
  reportMs: 1000,
  pfnmap: true,
  pfnCheckMs: 100,
  pace: 'sleep',
  warmupS: 3,
  bandwidthMibs: 128,
  downtimeMs: 300,
  mode: 'precopy',
  postcopyAfter: 2,
  autoConverge: false,
  maxTimeS: 90,
  onTimeout: 'cancel',
  dirtyRing: 0,
  pollMs: 100,
  postRunS: 3,
  multifdChannels: 0,
  multifdCompression: 'none',
  xbzrle: false,
  vmemSizeMib: 0,
  vmemRequestedMib: 0,
  trace: 'pages',
  traceExtra: [],
  bootTimeoutS: 180,
  extraAppend: '',
  extraQemu: [],
  record: 'auto',
  prealloc: true,
  maxLoad: 0,
  waitLoadS: 600,
}

/** Reject combinations QEMU would refuse or that cannot mean anything, naming the flag. */
export function checkOptions(o: LabRunOptions): void {
  const bad = (field: string, expected: string, found: unknown): never => {
    throw new UserError('bad lab option', {field, expected, found: String(found)})
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(o.name)) bad('--name', 'letters, digits, . _ - (a directory name)', o.name)
  if (o.memMib < 64) bad('--mem', 'at least 64 MiB', o.memMib)
  if (o.wsMib < 0 || o.wsMib > o.memMib - 48) bad('--ws', `0 to ${o.memMib - 48} MiB (guest RAM less the kernel's share)`, o.wsMib)
  if (o.smp < 1) bad('--smp', 'at least 1', o.smp)
  if (o.ramPadKib < 0 || o.ramPadKib % 8 !== 0 || o.ramPadKib >= 256) bad('--ram-pad', 'a multiple of 8 KiB below 256 (QEMU rounds -m up to 8 KiB)', o.ramPadKib)
  if (o.hotPct < 1 || o.hotPct > 100) bad('--hot', '1 to 100 (%)', o.hotPct)
  if (o.hotProb < 0 || o.hotProb > 100) bad('--hotp', '0 to 100 (%)', o.hotProb)
  if (o.rate < -1) bad('--rate', 'page writes/s, 0 for none or -1 for as fast as possible', o.rate)
  if (!(o.bandwidthMibs > 0)) bad('--bandwidth', 'a positive MiB/s', o.bandwidthMibs)
  if (o.downtimeMs < 1) bad('--downtime', 'at least 1 ms', o.downtimeMs)
  if (o.pollMs < 10) bad('--poll', 'at least 10 ms', o.pollMs)
  if (o.multifdChannels < 0 || o.multifdChannels > 255) bad('--multifd-channels', '0 (off) to 255', o.multifdChannels)
  if (o.multifdCompression !== 'none' && o.multifdChannels === 0) bad('--multifd-compression', '--multifd-channels N as well (compression is a multifd parameter)', o.multifdCompression)
  if (o.xbzrleCacheMib !== undefined && !o.xbzrle) bad('--xbzrle-cache-size', '--xbzrle as well', o.xbzrleCacheMib)
  if ((o.throttleInitial !== undefined || o.throttleIncrement !== undefined) && !o.autoConverge) bad('--throttle-initial/--throttle-increment', '--auto-converge as well', 'no --auto-converge')
  if (o.vmemSizeMib > 0) {
    if (o.vmemRequestedMib % 2 !== 0 || o.vmemRequestedMib > o.vmemSizeMib) bad('--vmem-requested', `a multiple of 2 MiB up to --vmem-size ${o.vmemSizeMib}`, o.vmemRequestedMib)
    if (o.vmemResizeMib !== undefined && (o.vmemResizeMib % 2 !== 0 || o.vmemResizeMib > o.vmemSizeMib)) bad('--vmem-resize', `a multiple of 2 MiB up to --vmem-size ${o.vmemSizeMib}`, o.vmemResizeMib)
  } else if (o.vmemRequestedMib > 0 || o.vmemResizeMib !== undefined) bad('--vmem-size', 'a virtio-mem region size with --vmem-requested/--vmem-resize', 0)
  if (o.record === 'on' && o.accel !== 'tcg') bad('--record', '--accel tcg (QEMU plugins see TCG-translated code only)', `--accel ${o.accel}`)
  if (o.dirtyRing > 0 && o.accel !== 'kvm') bad('--dirty-ring', '--accel kvm (TCG has no dirty ring)', o.dirtyRing)
}

/** Guest RAM as QEMU gets it, MiB (with the TCG pad; fractional when padded). */
export function guestRamMib(o: Pick<LabRunOptions, 'memMib' | 'ramPadKib' | 'accel'>): number {
  return o.memMib + (o.accel === 'tcg' ? o.ramPadKib : 0) / 1024
}

/** The `args` object of config.json: migrate.py's names (the importer reads them) plus the new ones. */
export function labArgs(o: LabRunOptions, image: {kernel: string; initrd: string}): Record<string, unknown> {
  return {
    name: o.name,
    qemu: o.qemu,
    kernel: image.kernel,
    initrd: image.initrd,
    accel: o.accel,
    tcg_thread: o.accel === 'tcg' ? o.tcgThread : null,
    cpu: o.cpu ?? null,
    machine: o.machine,
    // the RAM QEMU got (MiB, with the pad): the importer's layout reads it
    mem: guestRamMib(o),
    mem_requested: o.memMib,
    ram_pad_kib: o.accel === 'tcg' ? o.ramPadKib : 0,
    smp: o.smp,
    ws: o.wsMib,
    rate: o.rate,
    pattern: o.pattern,
    hot: o.hotPct,
    hotp: o.hotProb,
    fill: o.fill,
    seed: o.seed,
    report_ms: o.reportMs,
    pfnmap: o.pfnmap,
    pfn_check_ms: o.pfnCheckMs,
    pace: o.pace,
    warmup: o.warmupS,
    bandwidth: o.bandwidthMibs,
    downtime: o.downtimeMs,
    mode: o.mode,
    postcopy_after: o.postcopyAfter,
    auto_converge: o.autoConverge,
    throttle_initial: o.throttleInitial ?? null,
    throttle_increment: o.throttleIncrement ?? null,
    max_time: o.maxTimeS,
    on_timeout: o.onTimeout,
    dirty_ring: o.dirtyRing,
    poll: o.pollMs / 1000,
    post_run: o.postRunS,
    multifd_channels: o.multifdChannels,
    multifd_compression: o.multifdCompression,
    xbzrle: o.xbzrle,
    xbzrle_cache_size: o.xbzrleCacheMib ?? null,
    vmem_size: o.vmemSizeMib,
    vmem_requested: o.vmemRequestedMib,
    vmem_resize: o.vmemResizeMib ?? null,
    trace: o.trace,
    trace_extra: o.traceExtra,
    boot_timeout: o.bootTimeoutS,
    extra_append: o.extraAppend,
    extra_qemu: o.extraQemu,
    record: o.record,
    prealloc: o.prealloc,
  }
}
