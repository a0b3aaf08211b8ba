/**
 * Replay settings: QEMU's migrate-set-parameters names and units where QEMU has the parameter
 * (max-bandwidth in bytes/s, downtime-limit in ms, x-clear-bitmap-shift...), plus migtrace's own
 * model switches. Values come from (later wins): defaults, the trace header (dirty-log mode, ring
 * size), the trace's mig_start/mig_set params, a --config JSON file, --set key=value flags.
 * Units: sizes and rates accept suffixes (256MiB/s, 10Gbps, 4G); durations accept 300ms, 1.5s
 * and a bare number means milliseconds, as QEMU's downtime-limit.
 * Other commands (compare, grid) reuse SETTINGS, parseSetting and resolveSettings.
 */
import {readFileSync} from 'node:fs'
import {z} from 'zod'
import type {TraceHeader} from '../trace/header.js'
import {UserError, showValue} from '../util/errors.js'
import {parseDurationNs, parseInteger, parseRate, parseSize} from '../util/units.js'
import {DIRTY_LOG_MODES, type DirtyLogMode} from '../model/kvm/types.js'
import {VFIO_TRACKING, type VfioTrackingSetting} from '../model/vfio/modes.js'
import {UNPLUGGED_WRITE, type UnpluggedWrite} from '../model/virtio-mem/device.js'

export const STOP_POLICIES = ['qemu', 'rounds', 'xen'] as const
export type StopPolicyName = (typeof STOP_POLICIES)[number]
export const CLEAR_POLICIES = ['known-dirty', 'all-ones'] as const
export type ClearPolicy = (typeof CLEAR_POLICIES)[number]
export const ZERO_PAGE_DETECTION = ['none', 'legacy', 'multifd'] as const
export const TRACE_END = ['idle', 'switchover'] as const
export const MIGRATION_MODES = ['precopy', 'background-snapshot'] as const
export const TRANSPORTS = ['network', 'local-remap', 'shared'] as const
export type TransportName = (typeof TRANSPORTS)[number]

type Kind = 'rate' | 'size' | 'ms' | 'int' | 'number' | 'bool' | 'enum'

export interface SettingSpec {
  key: string
  kind: Kind
  /** Default as written in the docs (the parsed default is in DEFAULTS). */
  defaultText: string
  unit: string
  /** True when QEMU has a parameter of this name (migrate-set-parameters / -global migration). */
  qemu: boolean
  choices?: readonly string[]
  min?: number
  max?: number
  doc: string
}

export const SETTINGS: readonly SettingSpec[] = [
  {key: 'max-bandwidth', kind: 'rate', defaultText: '128MiB/s', unit: 'bytes/s', qemu: true, doc: 'precopy rate limit, enforced per 100 ms window (0 = unlimited: the link rate)'},
  {key: 'link-bandwidth', kind: 'rate', defaultText: '0', unit: 'bytes/s', qemu: false, doc: 'what the network carries when not rate-limited (switchover sends at this rate); 0 = same as max-bandwidth'},
  {key: 'avail-switchover-bandwidth', kind: 'rate', defaultText: '0', unit: 'bytes/s', qemu: true, doc: 'bandwidth assumed for the switchover threshold instead of the measured one (0 = measured)'},
  {key: 'downtime-limit', kind: 'ms', defaultText: '300', unit: 'ms', qemu: true, doc: 'allowed downtime: threshold = bandwidth x downtime-limit'},
  {key: 'x-clear-bitmap-shift', kind: 'int', defaultText: '18', unit: 'log2 pages', qemu: true, min: 6, max: 31, doc: 'lazy-clear chunk size: 2^shift pages (18 = 1 GiB of 4 KiB pages)'},
  {key: 'lazy-clear', kind: 'bool', defaultText: 'true', unit: '-', qemu: false, doc: 'clear KVM dirty bits chunk by chunk at the first send after a sync (QEMU); false = clear whole blocks at the sync'},
  {key: 'stop-policy', kind: 'enum', defaultText: 'qemu', unit: '-', qemu: false, choices: STOP_POLICIES, doc: "when to sync and switch over: qemu (QEMU's rule), rounds (textbook passes), xen (29 iterations / < 50 pages / > 3x RAM)"},
  {key: 'clear-policy', kind: 'enum', defaultText: 'known-dirty', unit: '-', qemu: false, choices: CLEAR_POLICIES, doc: 'KVM_CLEAR_DIRTY_LOG mask: known-dirty (QEMU >= 4.0: bits of the last GET) or all-ones (the naive 2019 design; loses writes)'},
  {key: 'dirty-log', kind: 'enum', defaultText: 'from the trace header', unit: '-', qemu: false, choices: DIRTY_LOG_MODES, doc: 'KVM dirty logging: bitmap (legacy GET), manual (CLEAR), manual-initially-set, ring'},
  {key: 'ring-size', kind: 'int', defaultText: 'from the trace header (4096)', unit: 'entries', qemu: false, min: 1024, doc: 'dirty ring entries per vCPU (a power of two; -accel kvm,dirty-ring-size)'},
  {key: 'pml', kind: 'bool', defaultText: 'true', unit: '-', qemu: false, doc: 'Intel PML: the dirty ring keeps 512 more entries in reserve (soft limit = size - 64 - 512)'},
  {key: 'max-iterations', kind: 'int', defaultText: '0 (policy default: qemu none, rounds 30, xen 29)', unit: 'iterations', qemu: false, min: 0, doc: 'force the switchover after this many live iterations'},
  {key: 'time-cap', kind: 'ms', defaultText: '0', unit: 'ms', qemu: false, doc: 'force the switchover this long after the migration starts (0 = no cap)'},
  {key: 'device-state-bytes', kind: 'size', defaultText: '0', unit: 'bytes', qemu: false, doc: 'non-iterable device state sent during the downtime'},
  {key: 'setup-time', kind: 'ms', defaultText: '0', unit: 'ms', qemu: false, doc: 'time from migration start to the first page sent (sync #1 happens at the start)'},
  {key: 'zero-page-detection', kind: 'enum', defaultText: 'multifd', unit: '-', qemu: true, choices: ZERO_PAGE_DETECTION, doc: 'none sends zero pages in full; legacy and multifd send a 9-byte record'},
  {key: 'start-at', kind: 'ms', defaultText: "the trace's mig_start, else 0", unit: 'ms of trace time', qemu: false, doc: 'start the migration at this trace time (mig_start events are then ignored)'},
  {key: 'trace-end', kind: 'enum', defaultText: 'idle', unit: '-', qemu: false, choices: TRACE_END, doc: 'when the trace ends first: idle (the guest writes nothing more; the verdict says inconclusive) or switchover (force it at the last event)'},
  {key: 'xen-min-pages', kind: 'int', defaultText: '50', unit: 'pages', qemu: false, min: 0, doc: 'xen policy: stop when fewer pages than this are dirty'},
  {key: 'xen-max-factor', kind: 'number', defaultText: '3', unit: 'x RAM', qemu: false, doc: 'xen policy: stop when more than this many times guest RAM was sent'},
  // VFIO and virtio-mem (docs/vfio-virtio-mem.md)
  {key: 'vfio-tracking', kind: 'enum', defaultText: 'auto (from the header: type1 -> reset-readd-pinned, device -> device, none -> none)', unit: '-', qemu: false, choices: VFIO_TRACKING, doc: 'VFIO dirty tracking: none (every mapped page dirty at every sync), cumulative (type1 v15: pinned bits never cleared), reset-readd-pinned (type1 as merged), deferred-pinned (pinned pages sent only at stop-copy), device (DMA logging: only reported pages)'},
  {key: 'vfio-stop-copy-query-fails', kind: 'bool', defaultText: 'false', unit: '-', qemu: false, doc: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE fails: the exact pending size counts 100 GiB per device (VFIO_MIG_STOP_COPY_SIZE), so precopy cannot converge'},
  {key: 'virtio-mem-discard-aware', kind: 'bool', defaultText: 'true', unit: '-', qemu: false, doc: 'unplugged virtio-mem blocks leave the migration bitmap at setup (QEMU >= 5.2); false = the older behaviour that migrates them'},
  {key: 'virtio-mem-postcopy-hole', kind: 'bool', defaultText: 'true', unit: '-', qemu: false, doc: "the postcopy switchover sync re-marks pages the guest wrote while unplugged and nothing clears discarded ranges again, so they are migrated (QEMU's behaviour); false = clear them before the discard bitmap is sent"},
  {key: 'virtio-mem-unplugged-write', kind: 'enum', defaultText: 'populate', unit: '-', qemu: false, choices: UNPLUGGED_WRITE, doc: 'a guest write into an unplugged block: populate (the page gets the data, KVM logs it) or refuse (it has no effect); counted either way'},
  // postcopy, snapshot, transport, throttling (docs/postcopy-snapshot.md)
  {key: 'mode', kind: 'enum', defaultText: 'precopy', unit: '-', qemu: false, choices: MIGRATION_MODES, doc: 'precopy (live migration, optionally switching to postcopy) or background-snapshot (userfaultfd write-protect snapshot)'},
  {key: 'postcopy-after', kind: 'int', defaultText: 'off', unit: 'iterations', qemu: false, min: 0, doc: 'switch to postcopy after this many precopy iterations (0 = pure postcopy, at once)'},
  {key: 'postcopy-at', kind: 'ms', defaultText: 'off', unit: 'ms', qemu: false, doc: 'switch to postcopy this long after the migration starts'},
  {key: 'postcopy-on-stall', kind: 'bool', defaultText: 'false', unit: '-', qemu: false, doc: 'switch to postcopy when precopy stalls or a cap would force the switchover'},
  {key: 'postcopy-preempt', kind: 'bool', defaultText: 'false', unit: '-', qemu: true, doc: 'postcopy-preempt capability: requested pages go on their own channel, ahead of the background stream'},
  {key: 'max-postcopy-bandwidth', kind: 'rate', defaultText: '0', unit: 'bytes/s', qemu: true, doc: 'background rate in postcopy (0 = unlimited: the link rate)'},
  {key: 'transport', kind: 'enum', defaultText: 'network', unit: '-', qemu: false, choices: TRANSPORTS, doc: 'network (bytes at the link rate), local-remap (localhost, RAM handed over by remapping), shared (x-ignore-shared: RAM is not sent)'},
  {key: 'rtt', kind: 'ms', defaultText: '0.2', unit: 'ms', qemu: false, doc: 'round-trip time between source and destination (a postcopy page request waits one RTT)'},
  {key: 'socket-buffer', kind: 'size', defaultText: '4MiB', unit: 'bytes', qemu: false, doc: 'background bytes queued in the socket ahead of a requested page (postcopy without preempt)'},
  {key: 'sync-cost', kind: 'ms', defaultText: '0', unit: 'ms per GiB of guest RAM', qemu: false, doc: "time of one migration_bitmap_sync (KVM_GET_DIRTY_LOG per slot, the bitmap walk) per GiB of guest RAM; the thread sends again only after it, so guest writes land between the GET and the lazy CLEAR (0 = instantaneous)"},
  {key: 'zero-page-cost', kind: 'ms', defaultText: '0', unit: 'ms', qemu: false, doc: "sender time per zero page beyond its 9 bytes on the wire (save_zero_page's buffer_is_zero, the destination's load loop keeping up); 0 = the link alone. QEMU 7.2 under TCG in qemu-lab: ~0.0015 (1.5 us)"},
  {key: 'remap-cost', kind: 'ms', defaultText: '0.002', unit: 'ms', qemu: false, doc: 'local-remap: page-table time to hand one host page over (a 2 MiB THP moves whole for one cost)'},
  {key: 'wp-cost', kind: 'ms', defaultText: '0.00005', unit: 'ms', qemu: false, doc: 'background-snapshot: time to write-protect one host page at the start'},
  {key: 'auto-converge', kind: 'bool', defaultText: 'false', unit: '-', qemu: true, doc: 'auto-converge capability: throttle the vCPUs when the dirty rate outruns the transfer (mig_throttle_guest_down)'},
  {key: 'cpu-throttle-initial', kind: 'int', defaultText: '20', unit: '%', qemu: true, min: 1, max: 99, doc: 'auto-converge: first throttle level'},
  {key: 'cpu-throttle-increment', kind: 'int', defaultText: '10', unit: '%', qemu: true, min: 1, max: 99, doc: 'auto-converge: step at each later trigger'},
  {key: 'cpu-throttle-tailslow', kind: 'bool', defaultText: 'false', unit: '-', qemu: true, doc: 'auto-converge: smaller steps near the needed level'},
  {key: 'max-cpu-throttle', kind: 'int', defaultText: '99', unit: '%', qemu: true, min: 1, max: 99, doc: 'auto-converge: highest throttle level'},
  {key: 'throttle-trigger-threshold', kind: 'int', defaultText: '50', unit: '%', qemu: true, min: 1, max: 100, doc: 'throttle when the bytes dirtied in a >= 1 s period exceed this share of the bytes sent (twice)'},
  {key: 'dirty-limit', kind: 'bool', defaultText: 'false', unit: '-', qemu: true, doc: 'dirty-limit capability: cap every vCPU at vcpu-dirty-limit once the trigger fires (needs dirty-log=ring)'},
  {key: 'vcpu-dirty-limit', kind: 'int', defaultText: '1', unit: 'MB/s', qemu: true, min: 1, doc: 'dirty-limit: per-vCPU dirty rate cap (MiB/s)'},
]

export interface ReplaySettings {
  'max-bandwidth': number
  'link-bandwidth': number
  'avail-switchover-bandwidth': number
  'downtime-limit': number
  'x-clear-bitmap-shift': number
  'lazy-clear': boolean
  'stop-policy': StopPolicyName
  'clear-policy': ClearPolicy
  'dirty-log': DirtyLogMode
  'ring-size': number
  pml: boolean
  'max-iterations': number
  'time-cap': number
  'device-state-bytes': number
  'setup-time': number
  'zero-page-detection': (typeof ZERO_PAGE_DETECTION)[number]
  'start-at': number | undefined
  'trace-end': (typeof TRACE_END)[number]
  'xen-min-pages': number
  'xen-max-factor': number
  'vfio-tracking': VfioTrackingSetting
  'vfio-stop-copy-query-fails': boolean
  'virtio-mem-discard-aware': boolean
  'virtio-mem-postcopy-hole': boolean
  'virtio-mem-unplugged-write': UnpluggedWrite
  mode: (typeof MIGRATION_MODES)[number]
  'postcopy-after': number | undefined
  'postcopy-at': number | undefined
  'postcopy-on-stall': boolean
  'postcopy-preempt': boolean
  'max-postcopy-bandwidth': number
  transport: TransportName
  rtt: number
  'socket-buffer': number
  'remap-cost': number
  'zero-page-cost': number
  'sync-cost': number
  'wp-cost': number
  'auto-converge': boolean
  'cpu-throttle-initial': number
  'cpu-throttle-increment': number
  'cpu-throttle-tailslow': boolean
  'max-cpu-throttle': number
  'throttle-trigger-threshold': number
  'dirty-limit': boolean
  'vcpu-dirty-limit': number
}
export type SettingKey = keyof ReplaySettings

/** Aliases users may type. */
const ALIASES: Record<string, SettingKey> = {'clear-bitmap-shift': 'x-clear-bitmap-shift'}

export const DEFAULTS: Omit<ReplaySettings, 'dirty-log' | 'ring-size'> = {
  'max-bandwidth': 128 * 2 ** 20,
  'link-bandwidth': 0,
  'avail-switchover-bandwidth': 0,
  'downtime-limit': 300,
  'x-clear-bitmap-shift': 18,
  'lazy-clear': true,
  'stop-policy': 'qemu',
  'clear-policy': 'known-dirty',
  pml: true,
  'max-iterations': 0,
  'time-cap': 0,
  'device-state-bytes': 0,
  'setup-time': 0,
  'zero-page-detection': 'multifd',
  'start-at': undefined,
  'trace-end': 'idle',
  'xen-min-pages': 50,
  'xen-max-factor': 3,
  'vfio-tracking': 'auto',
  'vfio-stop-copy-query-fails': false,
  'virtio-mem-discard-aware': true,
  'virtio-mem-postcopy-hole': true,
  'virtio-mem-unplugged-write': 'populate',
  mode: 'precopy',
  'postcopy-after': undefined,
  'postcopy-at': undefined,
  'postcopy-on-stall': false,
  'postcopy-preempt': false,
  'max-postcopy-bandwidth': 0,
  transport: 'network',
  rtt: 0.2,
  'socket-buffer': 4 * 2 ** 20,
  'remap-cost': 0.002,
  'zero-page-cost': 0,
  'sync-cost': 0,
  'wp-cost': 0.00005,
  'auto-converge': false,
  'cpu-throttle-initial': 20,
  'cpu-throttle-increment': 10,
  'cpu-throttle-tailslow': false,
  'max-cpu-throttle': 99,
  'throttle-trigger-threshold': 50,
  'dirty-limit': false,
  'vcpu-dirty-limit': 1,
}

const SPEC_BY_KEY = new Map(SETTINGS.map((s) => [s.key, s]))

export function canonicalKey(key: string): SettingKey | undefined {
  const k = ALIASES[key] ?? key
  return SPEC_BY_KEY.has(k) ? (k as SettingKey) : undefined
}

const isPow2 = (v: number): boolean => v > 0 && Number.isInteger(Math.log2(v))

/** Parse one value for a key; `where` locates the mistake in errors (file or flag). */
export function parseSetting(key: string, raw: unknown, where: {file?: string; line?: number; source?: string} = {}): [SettingKey, ReplaySettings[SettingKey]] {
  const k = canonicalKey(key)
  const loc = {file: where.file, line: where.line}
  if (!k)
    throw new UserError(`unknown setting${where.source ? ` in ${where.source}` : ''}`, {...loc, field: key, expected: `one of ${SETTINGS.map((s) => s.key).join(', ')}`, found: showValue(key)})
  const spec = SPEC_BY_KEY.get(k)!
  const bad = (expected: string): never => {
    throw new UserError('bad value', {...loc, field: k, expected, found: showValue(raw)})
  }
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') bad('a string, number or boolean')
  const v = raw as string | number | boolean
  try {
    switch (spec.kind) {
      case 'rate':
        if (typeof v === 'boolean') bad('a rate such as 128MiB/s')
        return [k, parseRate(v as string | number, k)]
      case 'size':
        if (typeof v === 'boolean') bad('a size such as 512K')
        return [k, parseSize(v as string | number, k)]
      case 'ms': {
        if (typeof v === 'boolean') bad('a duration such as 300ms or 2s')
        return [k, parseDurationNs(v as string | number, k, 'ms') / 1e6]
      }
      case 'number': {
        const n = typeof v === 'number' ? v : Number(v)
        if (typeof v === 'boolean' || !Number.isFinite(n) || n <= 0) bad('a positive number')
        return [k, n]
      }
      case 'int': {
        if (typeof v === 'boolean') bad('a whole number')
        const n = parseInteger(v as string | number, k)
        if (spec.min !== undefined && n < spec.min) bad(`a whole number >= ${spec.min}`)
        if (spec.max !== undefined && n > spec.max) bad(`a whole number <= ${spec.max}`)
        if (k === 'ring-size' && !isPow2(n)) bad('a power of two')
        return [k, n]
      }
      case 'bool': {
        if (typeof v === 'boolean') return [k, v]
        const s = String(v).toLowerCase()
        if (['true', 'on', 'yes', '1'].includes(s)) return [k, true]
        if (['false', 'off', 'no', '0'].includes(s)) return [k, false]
        return bad('true or false (on/off)')
      }
      case 'enum': {
        const s = String(v)
        if (!spec.choices!.includes(s)) bad(spec.choices!.join(' | '))
        return [k, s as ReplaySettings[SettingKey]]
      }
    }
  } catch (e) {
    if (e instanceof UserError && (where.file !== undefined || where.line !== undefined) && e.file === undefined) throw e.withLocation(where.file ?? '', where.line)
    throw e
  }
}

export type SettingsOverrides = Partial<ReplaySettings>

/** `--set key=value` flags. */
export function parseSetFlags(flags: readonly string[]): SettingsOverrides {
  const out: Record<string, unknown> = {}
  for (const f of flags) {
    const eq = f.indexOf('=')
    if (eq <= 0) throw new UserError('a --set needs key=value', {field: '--set', expected: 'key=value, e.g. max-bandwidth=1GiB/s', found: showValue(f)})
    const [k, v] = parseSetting(f.slice(0, eq).trim(), f.slice(eq + 1).trim(), {source: '--set'})
    out[k] = v
  }
  return out as SettingsOverrides
}

const ConfigFile = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))

/** A --config JSON file: one object of settings (zod-checked shape, every key and value checked). */
export function loadConfigFile(path: string): SettingsOverrides {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UserError('cannot read the config file', {file: path, found: (e as Error).message})
  }
  let obj: unknown
  try {
    obj = JSON.parse(text)
  } catch (e) {
    throw new UserError('the config file is not valid JSON', {file: path, expected: 'one JSON object of settings', found: (e as Error).message})
  }
  const r = ConfigFile.safeParse(obj)
  if (!r.success) {
    const issue = r.error.issues[0]!
    throw new UserError('bad config file', {file: path, field: issue.path.join('.') || undefined, expected: 'an object of setting -> string | number | boolean', found: issue.message})
  }
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(r.data)) {
    const [k, v] = parseSetting(key, value, {file: path, source: 'the config file'})
    out[k] = v
  }
  return out as SettingsOverrides
}

/** Trace params `k=v;k=v` (mig_start, mig_set): known keys parsed, other QEMU parameters listed as ignored. */
export function parseTraceParams(text: string, where: {file?: string; line?: number} = {}): {values: SettingsOverrides; ignored: string[]} {
  const values: Record<string, unknown> = {}
  const ignored: string[] = []
  for (const part of text.split(';')) {
    const s = part.trim()
    if (s === '') continue
    const eq = s.indexOf('=')
    if (eq <= 0) throw new UserError('bad migration parameter', {...where, field: 'params', expected: 'key=value pairs separated by ;', found: showValue(s)})
    const key = s.slice(0, eq).trim()
    if (!canonicalKey(key)) {
      ignored.push(key)
      continue
    }
    const [k, v] = parseSetting(key, s.slice(eq + 1).trim(), {...where, source: 'trace params'})
    values[k] = v
  }
  return {values: values as SettingsOverrides, ignored}
}

/** Header-derived defaults: the dirty-log mode the trace's host used. */
export function headerDefaults(header: TraceHeader): Pick<ReplaySettings, 'dirty-log' | 'ring-size'> {
  const dt = header.dirtyTracking
  const mode: DirtyLogMode = dt.mode === 'ring' ? 'ring' : !dt.manualProtect ? 'bitmap' : dt.initiallySet ? 'manual-initially-set' : 'manual'
  return {'dirty-log': mode, 'ring-size': dt.ringSize}
}

/**
 * Overrides as library callers may give them: raw values ('10Gbps', '300ms', 'on') or parsed ones
 * (parsing is idempotent on parsed values); unknown keys or bad values throw UserError.
 */
export type RawOverrides = Partial<Record<SettingKey, unknown>>

export function normalizeOverrides(raw: RawOverrides | SettingsOverrides): SettingsOverrides {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue
    const [key, value] = parseSetting(k, v)
    out[key] = value
  }
  return out as SettingsOverrides
}

/** Defaults < header < trace params < user overrides (config file, then --set). */
export function resolveSettings(header: TraceHeader, user: RawOverrides | SettingsOverrides = {}, trace: SettingsOverrides = {}): ReplaySettings {
  const s = {...DEFAULTS, ...headerDefaults(header), ...normalizeOverrides(trace), ...normalizeOverrides(user)} as ReplaySettings
  checkSettings(s)
  return s
}

export function checkSettings(s: ReplaySettings): void {
  if (s['max-bandwidth'] === 0 && s['link-bandwidth'] === 0)
    throw new UserError('no rate to send at', {field: 'link-bandwidth', expected: 'a link-bandwidth when max-bandwidth is 0 (unlimited)', found: '0'})
  if (s['dirty-log'] === 'ring' && s['ring-size'] - 64 - (s.pml ? 512 : 0) < 1)
    throw new UserError('ring too small', {field: 'ring-size', expected: 'more entries than the 64 (+512 with PML) KVM keeps in reserve', found: String(s['ring-size'])})
  if (s['dirty-limit'] && s['dirty-log'] !== 'ring')
    throw new UserError('dirty-limit needs the KVM dirty ring', {field: 'dirty-limit', expected: 'dirty-log=ring (QEMU refuses the capability without dirty-ring-size)', found: `dirty-log=${s['dirty-log']}`})
  if (s['dirty-limit'] && s['auto-converge'])
    throw new UserError('auto-converge and dirty-limit exclude each other', {field: 'dirty-limit', expected: 'only one of auto-converge, dirty-limit', found: 'both true'})
}

/** The rate pages actually move at while rate-limited (bytes/s). */
export function sendRate(s: ReplaySettings): number {
  const link = s['link-bandwidth']
  const max = s['max-bandwidth']
  if (link === 0) return max
  if (max === 0) return link
  return Math.min(link, max)
}

/** The rate at switchover, when QEMU lifts the limit (bytes/s). */
export function switchoverRate(s: ReplaySettings): number {
  return s['link-bandwidth'] > 0 ? s['link-bandwidth'] : s['max-bandwidth']
}

/** Settings as JSON (keys in SETTINGS order) for reports. */
export function settingsToJson(s: ReplaySettings): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const spec of SETTINGS) {
    const v = s[spec.key as SettingKey]
    if (v !== undefined) out[spec.key] = v
  }
  return out
}
