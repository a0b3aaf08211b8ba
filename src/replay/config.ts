/**
 * Replay settings as users and traces give them: parsing one value (`--set`, a --config JSON file,
 * a trace's mig_start/mig_set params) and resolving the values a replay runs with. Later wins:
 * defaults (settings.ts), the trace header (dirty-log mode, ring size; an importer's fixed
 * settings, `source.settings`), the trace's params, a
 * --config file, --set flags.
 * Units: sizes and rates accept suffixes (256MiB/s, 10Gbps, 4G); durations accept 300ms, 1.5s
 * and a bare number means milliseconds, as QEMU's downtime-limit.
 * Other commands (compare, grid) reuse parseSetting and resolveSettings.
 */
import {z} from 'zod'
import type {TraceHeader} from '../trace/header.js'
import {UserError, showValue} from '../util/errors.js'
import {readJsonFile} from '../util/json-file.js'
import {editDistance} from '../util/nearest.js'
import {parseDurationNs, parseInteger, parseRate, parseSize} from '../util/units.js'
import {dirtyLogMode} from '../model/kvm/modes.js'
import {defaultSettings, MODELLED_COMPRESSION, SETTING_ALIASES, SETTING_BY_KEY, SETTINGS, type ReplaySettings, type SettingKey} from './settings.js'
import {missingAt, VERSION_DEFAULT_KEYS, versionDefault} from './qemu-version.js'

export {SETTINGS, STOP_POLICIES, TRANSPORTS, type ClearPolicy, type ReplaySettings, type SettingKey, type SettingSpec, type StopPolicyName, type TransportName} from './settings.js'

export function canonicalKey(key: string): SettingKey | undefined {
  const k = SETTING_ALIASES[key] ?? key
  return SETTING_BY_KEY.has(k) ? (k as SettingKey) : undefined
}

/**
 * The setting keys a misspelled one may have meant, best first: within a typo's reach (the rule of
 * util/nearest.ts), or containing it.
 */
export function nearestKeys(key: string, n = 3): SettingKey[] {
  const k = key.toLowerCase()
  const reach = Math.min(3, Math.max(1, Math.floor(k.length / 3)))
  return SETTINGS.map((s) => ({key: s.key, d: editDistance(k, s.key)}))
    .filter((s) => s.d <= reach || (k.length >= 3 && s.key.includes(k)))
    .sort((a, b) => a.d - b.d)
    .slice(0, n)
    .map((s) => s.key)
}

const isPow2 = (v: number): boolean => v > 0 && Number.isInteger(Math.log2(v))

/** Parse one value for a key; `where` locates the mistake in errors (file or flag). */
export function parseSetting(key: string, raw: unknown, where: {file?: string; line?: number; source?: string} = {}): [SettingKey, ReplaySettings[SettingKey]] {
  const k = canonicalKey(key)
  const loc = {file: where.file, line: where.line}
  if (!k) {
    const near = nearestKeys(key)
    throw new UserError(`unknown setting${where.source ? ` in ${where.source}` : ''}`, {
      ...loc,
      field: key,
      expected: near.length > 0 ? `${near.join(' or ')} (migtrace settings lists every key)` : 'a key that migtrace settings lists',
      found: showValue(key),
    })
  }
  const spec = SETTING_BY_KEY.get(k)!
  const bad = (expected: string): never => {
    throw new UserError('bad value', {...loc, field: k, expected, found: showValue(raw)})
  }
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') bad('a string, number or boolean')
  const v = raw as string | number | boolean
  const inRange = (n: number, what: string): number => {
    if (spec.min !== undefined && n < spec.min) bad(`${what} >= ${spec.min}`)
    if (spec.max !== undefined && n > spec.max) bad(`${what} <= ${spec.max}`)
    return n
  }
  try {
    switch (spec.kind) {
      case 'rate':
        if (typeof v === 'boolean') bad('a rate such as 128MiB/s')
        return [k, inRange(parseRate(v as string | number, k), 'a rate (bytes/s)')]
      case 'size':
        if (typeof v === 'boolean') bad('a size such as 512K')
        return [k, inRange(parseSize(v as string | number, k), 'a size (bytes)')]
      case 'ms': {
        if (typeof v === 'boolean') bad('a duration such as 300ms or 2s')
        return [k, inRange(parseDurationNs(v as string | number, k, 'ms') / 1e6, 'a duration (ms)')]
      }
      case 'number': {
        const n = typeof v === 'number' ? v : Number(v)
        if (typeof v === 'boolean' || typeof v === 'string' && v.trim() === '' || !Number.isFinite(n) || n <= 0) bad('a positive number')
        return [k, inRange(n, 'a number')]
      }
      case 'int': {
        if (typeof v === 'boolean') bad('a whole number')
        const n = inRange(parseInteger(v as string | number, k), 'a whole number')
        if (spec.pow2 && !isPow2(n)) bad('a power of two')
        return [k, n]
      }
      case 'bool': {
        if (typeof v === 'boolean') return [k, v]
        // QEMU's own spellings of a boolean property or capability.
        const s = String(v).toLowerCase()
        if (s === 'true' || s === 'on') return [k, true]
        if (s === 'false' || s === 'off') return [k, false]
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
  // The shared JSON side-file reader: a BOM accepted, depth-limited, errors on one line.
  const obj = readJsonFile(path, {what: 'the config file', expected: 'one JSON object of settings'})
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

/**
 * A trace's mig_set / mig_start params applied to the settings of a running replay: keys the user
 * pinned (config file, --set) keep their values, and keys fixed once the model exists (settings.ts
 * `fixed`) are left alone with a note. Returns the new settings.
 */
export function applyTraceParams(
  current: ReplaySettings,
  text: string,
  opts: {file?: string; line?: number; pinned?: ReadonlySet<SettingKey>; notes: string[]; ignoredParams: Set<string>},
): ReplaySettings {
  const {values, ignored} = parseTraceParams(text, {file: opts.file, line: opts.line})
  for (const key of ignored) opts.ignoredParams.add(key)
  const next = {...current}
  for (const [k, v] of Object.entries(values) as [SettingKey, never][]) {
    if (opts.pinned?.has(k)) continue
    if (SETTING_BY_KEY.get(k)!.fixed) {
      if (next[k] !== v) opts.notes.push(`trace parameter ${k}=${String(v)} ignored: it fixes the model's shape; use --set to change it`)
      continue
    }
    next[k] = v
  }
  return next
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

/**
 * Defaults < header < trace params < user overrides (config file, then --set). Settings whose
 * default follows the QEMU version (qemu-version.ts) take the resolved qemu-version's default
 * unless given explicitly.
 */
/**
 * The fixed settings an importer wrote into the trace header (`source.settings`, e.g. `import qemu`
 * of a lab run: its qemu-version, multifd and its channels, XBZRLE, auto-converge): what the
 * recorded QEMU ran with, so a replay of the trace runs with it unless the user says otherwise.
 */
export function headerSettings(header: TraceHeader): SettingsOverrides {
  const list = header.source?.settings
  if (list === undefined) return {}
  if (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))
    throw new UserError('bad trace header', {field: 'source.settings', expected: 'an array of "key=value" strings', found: showValue(JSON.stringify(list))})
  const out: Record<string, unknown> = {}
  for (const [i, f] of (list as string[]).entries()) {
    const eq = f.indexOf('=')
    if (eq <= 0) throw new UserError('bad trace header', {field: `source.settings[${i}]`, expected: 'key=value, e.g. multifd-channels=4', found: showValue(f)})
    try {
      const [k, v] = parseSetting(f.slice(0, eq).trim(), f.slice(eq + 1).trim())
      out[k] = v
    } catch (e) {
      if (!(e instanceof UserError)) throw e
      throw new UserError(`bad trace header: ${e.reason}`, {field: `source.settings[${i}]`, expected: e.expected, found: showValue(f)})
    }
  }
  return out as SettingsOverrides
}

/**
 * The settings of one replay: the defaults (some from the header, some from qemu-version), under the
 * header's fixed settings (headerSettings), under `trace` overrides, under the user's (--config,
 * --set, a compare variant).
 */
export function resolveSettings(header: TraceHeader, user: RawOverrides | SettingsOverrides = {}, trace: SettingsOverrides = {}): ReplaySettings {
  const given = {...headerSettings(header), ...normalizeOverrides(trace), ...normalizeOverrides(user)}
  const s = {...defaultSettings(header), ...given} as ReplaySettings
  const out = s as Record<string, unknown>
  for (const k of VERSION_DEFAULT_KEYS) if (!(k in given)) out[k] = versionDefault(k, s['qemu-version'])
  checkSettings(s)
  return s
}

export function checkSettings(s: ReplaySettings): void {
  // Capabilities, parameters and values the chosen QEMU version does not have (qemu-version.ts).
  const v = s['qemu-version']
  for (const spec of SETTINGS) {
    const r = missingAt(v, spec.key, s[spec.key])
    if (r) throw new UserError(`QEMU ${v} does not have this`, {field: spec.key, expected: `qemu-version=${r.since} or later for ${r.valueText} (docs/qemu-versions.md)`, found: `${spec.key}=${String(s[spec.key])}`})
  }
  const m = s['multifd-compression']
  if (!(MODELLED_COMPRESSION as readonly string[]).includes(m))
    throw new UserError('multifd-compression not modelled', {
      field: 'multifd-compression',
      expected: `${MODELLED_COMPRESSION.join(' | ')}: ${m} compresses on a hardware accelerator (qpl: Intel IAA, uadk: Huawei Kunpeng, qatzip: Intel QAT) whose ratio and CPU cost were never measured here`,
      found: m,
    })
  if (s['max-bandwidth'] === 0 && s['link-bandwidth'] === 0)
    throw new UserError('no rate to send at', {field: 'link-bandwidth', expected: 'a link-bandwidth when max-bandwidth is 0 (unlimited)', found: '0'})
  const mode = dirtyLogMode(s['dirty-log'])
  if (mode.family === 'ring' && s['ring-size'] - 64 - (s.pml ? 512 : 0) < 1)
    throw new UserError('ring too small', {field: 'ring-size', expected: 'more entries than the 64 (+512 with PML) KVM keeps in reserve', found: String(s['ring-size'])})
  if (s['dirty-limit'] && mode.family !== 'ring')
    throw new UserError('dirty-limit needs the KVM dirty ring', {field: 'dirty-limit', expected: 'dirty-log=ring (QEMU refuses the capability without dirty-ring-size)', found: `dirty-log=${s['dirty-log']}`})
  // migrate_caps_check: background-snapshot refuses multifd and xbzrle (check_caps_background_snapshot).
  for (const cap of ['multifd', 'xbzrle'] as const)
    if (s[cap] && s.mode === 'background-snapshot')
      throw new UserError(`${cap} does not take a background snapshot`, {field: cap, expected: `${cap}=off with mode=background-snapshot (QEMU refuses the pair)`, found: `${cap}=true`})
  if (s['dirty-limit'] && s['auto-converge'])
    throw new UserError('auto-converge and dirty-limit exclude each other', {field: 'dirty-limit', expected: 'only one of auto-converge, dirty-limit', found: 'both true'})
}

/** Settings as JSON (keys in SETTINGS order) for reports. */
export function settingsToJson(s: ReplaySettings): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const spec of SETTINGS) {
    const v = s[spec.key]
    if (v !== undefined) out[spec.key] = v
  }
  return out
}
