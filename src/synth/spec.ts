/**
 * The generator's spec: the machine (the trace header's fields), how long, which seed, which
 * workload runs where, and the migration-control track. Validated with zod; every mistake becomes
 * a UserError naming the file and the field path.
 */
import {z} from 'zod'
import {readJsonFile} from '../util/json-file.js'
import {UserError, showValue} from '../util/errors.js'
import {parseDurationNs} from '../util/units.js'
import type {RawValue} from './params.js'
import {WORKLOAD_NAMES} from './workloads/index.js'

/** A time from the start of the trace: "500ms", "2s"; a bare number means seconds. */
const Time = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return parseDurationNs(v, undefined, 's')
  } catch (e) {
    if (!(e instanceof UserError)) throw e
    ctx.addIssue({code: 'custom', message: e.reason, params: {expected: e.expected, found: e.found}})
    return z.NEVER
  }
})

const Raw = z.union([z.string(), z.number(), z.boolean()])

const PARAM_KEY = /^[a-z][a-z0-9-]*$/
const PARAM_VALUE = /^[A-Za-z0-9_.:+-]*$/

/** Migration parameters: "k=v;k=v" or an object, in QEMU's migrate-set-parameters names. */
const MigParams = z.union([z.string(), z.record(z.string(), Raw)]).transform((v, ctx) => {
  const pairs: [string, string][] = typeof v === 'string' ? (v === '' ? [] : v.split(';').map((kv) => [kv.split('=')[0]!, kv.includes('=') ? kv.slice(kv.indexOf('=') + 1) : '\u0000'])) : Object.entries(v).map(([k, x]) => [k, String(x)])
  for (const [k, x] of pairs) {
    if (!PARAM_KEY.test(k) || x === '\u0000' || !PARAM_VALUE.test(x)) {
      ctx.addIssue({
        code: 'custom',
        message: 'not a migration parameter',
        params: {expected: "name=value pairs joined by ';', with QEMU's parameter names, such as max-bandwidth=134217728", found: showValue(x === '\u0000' ? k : `${k}=${x}`)},
      })
      return z.NEVER
    }
  }
  return pairs.map(([k, x]) => `${k}=${x}`).join(';')
})

const Entry = z.strictObject({
  workload: z.enum(WORKLOAD_NAMES),
  vcpu: z.number().int().nonnegative().optional(),
  vcpus: z.union([z.literal('all'), z.array(z.number().int().nonnegative()).min(1)]).optional(),
  start: Time.optional(),
  end: Time.optional(),
  params: z.record(z.string(), Raw).default({}),
})

const Migration = z.strictObject({
  start: Time,
  params: MigParams.optional(),
  set: z.array(z.strictObject({at: Time, params: MigParams})).default([]),
  postcopy: Time.optional(),
})

export const SpecSchema = z.strictObject({
  description: z.string().optional(),
  seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).default(1),
  duration: Time,
  // The machine: the trace header's own fields, validated by the header schema.
  pageSize: z.unknown().optional(),
  memory: z.unknown().optional(),
  ramBlocks: z.unknown().optional(),
  memslots: z.unknown().optional(),
  vcpus: z.unknown().optional(),
  virtioMem: z.unknown().optional(),
  vfio: z.unknown().optional(),
  dirtyTracking: z.unknown().optional(),
  content: z.unknown().optional(),
  /** A fraction of guest RAM holding data at the start (1 = all), or the header's own forms. */
  populated: z.union([z.number().min(0).max(1), z.enum(['all', 'none']), z.array(z.unknown())]).default(1),
  workloads: z.array(Entry).default([]),
  migration: Migration.optional(),
})

export const HEADER_FIELDS = ['pageSize', 'memory', 'ramBlocks', 'memslots', 'vcpus', 'virtioMem', 'vfio', 'dirtyTracking', 'content'] as const

export interface SpecEntry {
  workload: string
  vcpu?: number
  vcpus?: 'all' | number[]
  start?: number
  end?: number
  params: Record<string, RawValue>
}

export interface SynthSpec {
  /** The spec as given (JSON), with the effective seed: recorded in the header. */
  source: Record<string, unknown>
  /** Where the spec came from, for error messages (a file, or 'flags'). */
  origin?: string
  description?: string
  seed: number
  durationNs: number
  /** Header fields given by the spec. */
  header: Record<string, unknown>
  populated: number | 'all' | 'none' | unknown[]
  workloads: SpecEntry[]
  migration?: {start: number; params?: string; set: {at: number; params: string}[]; postcopy?: number}
}

/** One zod issue as a UserError in the house style: what is wrong, expected, found. */
function specIssue(issue: z.core.$ZodIssue, origin: string | undefined): UserError {
  const field = issue.path.join('.') || undefined
  const input = (issue as {input?: unknown}).input
  if (issue.code === 'unrecognized_keys')
    return new UserError(issue.keys.length > 1 ? 'unknown fields' : 'unknown field', {file: origin, field, found: issue.keys.map((k) => showValue(k)).join(', ')})
  if (input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_union'))
    return new UserError('missing field', {file: origin, field})
  if (issue.code === 'invalid_value')
    return new UserError(issue.path[issue.path.length - 1] === 'workload' ? 'unknown workload' : 'invalid value', {
      file: origin,
      field,
      expected: issue.values.map((v) => String(v)).join(', '),
      found: showValue(input),
    })
  if (issue.code === 'custom') {
    const p = (issue.params ?? {}) as {expected?: string; found?: string}
    return new UserError(issue.message, {file: origin, field, expected: p.expected, found: p.found})
  }
  if (issue.code === 'too_big' || issue.code === 'too_small') {
    const bound = issue.code === 'too_big' ? `${issue.inclusive ? '<=' : '<'} ${issue.maximum}` : `${issue.inclusive ? '>=' : '>'} ${issue.minimum}`
    return new UserError('out of range', {file: origin, field, expected: `${issue.origin === 'array' ? 'a list with length ' : issue.origin === 'string' ? 'a length ' : 'a number '}${bound}`, found: showValue(input)})
  }
  if (issue.code === 'invalid_type' || issue.code === 'invalid_union') return new UserError('invalid value', {file: origin, field, expected: expectedOf(issue), found: showValue(input)})
  return new UserError(issue.message, {file: origin, field, found: showValue(input)})
}

function expectedOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type') return `a ${issue.expected}`
  return issue.message.replace(/^Invalid input:?\s*/, '') || 'another value'
}

/** Validate a spec object; `origin` names it in errors (a file path). */
export function parseSpec(input: unknown, origin?: string): SynthSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw new UserError('a generator spec must be a JSON object', {file: origin, found: Array.isArray(input) ? 'an array' : showValue(input)})
  const r = SpecSchema.safeParse(input, {reportInput: true})
  if (!r.success) throw specIssue(r.error.issues[0]!, origin)
  const s = r.data
  const header: Record<string, unknown> = {}
  for (const f of HEADER_FIELDS) if (s[f] !== undefined) header[f] = s[f]
  return {
    source: {...(input as Record<string, unknown>), seed: s.seed},
    origin,
    ...(s.description !== undefined ? {description: s.description} : {}),
    seed: s.seed,
    durationNs: s.duration,
    header,
    populated: s.populated,
    workloads: s.workloads,
    ...(s.migration ? {migration: s.migration} : {}),
  }
}

/** Read and validate a spec file; `seed` overrides the file's seed. */
export function readSpecFile(path: string, overrides: {seed?: number} = {}): SynthSpec {
  let json = readJsonFile(path, {what: 'the spec file', expected: 'a generator spec: one JSON object (see docs/generate.md)'})
  if (overrides.seed !== undefined && typeof json === 'object' && json !== null && !Array.isArray(json)) json = {...json, seed: overrides.seed}
  return parseSpec(json, path)
}

export interface SimpleSpecFlags {
  memory?: string
  duration?: string
  rate?: number
  vcpus?: number
  seed?: number
  migrateAt?: string
  migParams?: string
  postcopyAt?: string
  populated?: number
  /** A content profile for the whole guest (header `content`). */
  content?: string
  params?: string[]
}

/** The spec of `migtrace generate <workload> [flags]`: one workload on every vCPU. */
export function specFromFlags(workload: string, f: SimpleSpecFlags): Record<string, unknown> {
  const params: Record<string, RawValue> = {}
  if (f.rate !== undefined) params.rate = f.rate
  for (const kv of f.params ?? []) {
    const eq = kv.indexOf('=')
    if (eq <= 0) throw new UserError('a workload parameter must be key=value', {field: '--param', expected: 'key=value, e.g. hotSize=64M', found: showValue(kv)})
    params[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  if ((f.migParams !== undefined || f.postcopyAt !== undefined) && f.migrateAt === undefined)
    throw new UserError('migration parameters and postcopy need a migration', {field: f.migParams !== undefined ? '--mig-params' : '--postcopy-at', expected: '--migrate-at TIME as well'})
  return {
    description: `${workload} workload (migtrace generate)`,
    seed: f.seed ?? 1,
    duration: f.duration ?? '10s',
    memory: f.memory ?? '1G',
    vcpus: f.vcpus ?? 1,
    populated: f.populated ?? 1,
    ...(f.content !== undefined ? {content: f.content} : {}),
    workloads: [{workload, params}],
    ...(f.migrateAt !== undefined
      ? {
          migration: {
            start: f.migrateAt,
            ...(f.migParams !== undefined ? {params: f.migParams} : {}),
            ...(f.postcopyAt !== undefined ? {postcopy: f.postcopyAt} : {}),
          },
        }
      : {}),
  }
}
