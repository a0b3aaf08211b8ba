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

export const STOP_POLICIES = ['qemu', 'rounds', 'xen'] as const
export type StopPolicyName = (typeof STOP_POLICIES)[number]
export const CLEAR_POLICIES = ['known-dirty', 'all-ones'] as const
export type ClearPolicy = (typeof CLEAR_POLICIES)[number]
export const ZERO_PAGE_DETECTION = ['none', 'legacy', 'multifd'] as const
export const TRACE_END = ['idle', 'switchover'] as const

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
