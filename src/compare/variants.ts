/**
 * Variants of a comparison: a name and the settings it changes (the keys of src/replay/config.ts).
 * From flags (`--variant NAME:key=value,key=value`) or a scenarios file (guestperf-style named
 * scenarios). Values are kept as the user wrote them (strings) so they can be shown, hashed for
 * shards and sent to workers; each is checked here with parseSetting, so a mistake is reported
 * before any replay runs.
 */
import {readJsonFile} from '../util/json-file.js'
import {z} from 'zod'
import {parseSetting} from '../replay/config.js'
import {UserError, showValue} from '../util/errors.js'

export interface Variant {
  name: string
  /** Setting key (canonical) -> value as written. */
  settings: Record<string, string>
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/
const NAME_EXPECT = 'a name of letters, digits and _ . + - (starting with a letter or digit)'

function checkName(name: string, field: string, where: {file?: string} = {}): string {
  if (!NAME.test(name)) throw new UserError('bad variant name', {...where, field, expected: NAME_EXPECT, found: showValue(name)})
  return name
}

/** Check one key=value and return the canonical key with the value as text. */
export function checkSetting(key: string, value: unknown, where: {file?: string; source?: string} = {}): [string, string] {
  const [k] = parseSetting(key, value, where)
  return [k, typeof value === 'string' ? value : String(value)]
}

/** `NAME:key=value,key=value` (or just `NAME`: the base settings unchanged). */
export function parseVariantFlag(text: string): Variant {
  const colon = text.indexOf(':')
  const name = checkName((colon < 0 ? text : text.slice(0, colon)).trim(), '--variant')
  const settings: Record<string, string> = {}
  const rest = colon < 0 ? '' : text.slice(colon + 1).trim()
  if (rest !== '')
    for (const part of rest.split(',')) {
      const eq = part.indexOf('=')
      if (eq <= 0)
        throw new UserError('bad --variant setting', {field: '--variant', expected: 'NAME:key=value,key=value (e.g. fast:max-bandwidth=1GiB/s,downtime-limit=500ms)', found: showValue(part)})
      const [k, v] = checkSetting(part.slice(0, eq).trim(), part.slice(eq + 1).trim(), {source: `--variant ${name}`})
      settings[k] = v
    }
  return {name, settings}
}

const Settings = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]))
const Scenario = z.strictObject({name: z.string(), settings: Settings.optional(), description: z.string().optional()})
const ScenarioFile = z.union([
  z.array(Scenario),
  z.strictObject({
    baseline: z.string().optional(),
    settings: Settings.optional(),
    scenarios: z.array(Scenario).min(1),
  }),
])

export interface ScenarioSet {
  variants: Variant[]
  baseline?: string
  /** Settings every scenario starts from (they lose to each scenario's own). */
  common: Record<string, string>
}

/**
 * A scenarios file: `[{"name": "...", "settings": {...}}, ...]` or
 * `{"baseline": "...", "settings": {common}, "scenarios": [...]}`.
 */
export function loadScenarios(path: string): ScenarioSet {
  const obj = readJsonFile(path, {what: 'the scenarios file', expected: 'a JSON array of {name, settings} or {scenarios: [...]}'})
  const r = ScenarioFile.safeParse(obj)
  if (!r.success) {
    const issue = r.error.issues[0]!
    throw new UserError('bad scenarios file', {
      file: path,
      field: issue.path.join('.') || undefined,
      expected: '[{"name": "...", "settings": {"key": value}}] or {"baseline"?, "settings"?, "scenarios": [...]}',
      found: issue.message,
    })
  }
  const doc = Array.isArray(r.data) ? {scenarios: r.data, baseline: undefined, settings: undefined} : r.data
  const toText = (s: Record<string, string | number | boolean> | undefined, source: string): Record<string, string> => {
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(s ?? {})) {
      const [key, value] = checkSetting(k, v, {file: path, source})
      out[key] = value
    }
    return out
  }
  const variants = doc.scenarios.map((s, i) => ({name: checkName(s.name, `scenarios.${i}.name`, {file: path}), settings: toText(s.settings, `scenario ${s.name}`)}))
  return {variants, baseline: doc.baseline, common: toText(doc.settings, 'the common settings')}
}

/** Names must be unique; returns the baseline's index (the named one, else the first). */
export function checkVariants(variants: Variant[], baseline?: string): number {
  if (variants.length === 0) throw new UserError('nothing to compare', {field: '--variant', expected: 'at least one --variant NAME:key=value,... or --scenarios FILE'})
  const seen = new Set<string>()
  for (const v of variants) {
    if (seen.has(v.name)) throw new UserError('two variants have the same name', {field: '--variant', expected: 'unique names', found: showValue(v.name)})
    seen.add(v.name)
  }
  if (baseline === undefined) return 0
  const i = variants.findIndex((v) => v.name === baseline)
  if (i < 0) throw new UserError('unknown baseline', {field: '--baseline', expected: `one of ${variants.map((v) => v.name).join(', ')}`, found: showValue(baseline)})
  return i
}

