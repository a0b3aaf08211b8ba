/**
 * Workload parameters: each workload declares a table of typed parameters with defaults and docs;
 * values come from a spec file (numbers or strings with units) or from `--param key=value` (always
 * strings), and are parsed here with one message style for every mistake.
 */
import {UserError, showValue} from '../util/errors.js'
import {parseDurationNs, parseSize} from '../util/units.js'

export type ParamType =
  | {type: 'rate'}
  | {type: 'number'; min?: number; max?: number; exclusiveMin?: boolean}
  | {type: 'int'; min?: number; max?: number}
  | {type: 'fraction'}
  | {type: 'extent'}
  | {type: 'size'}
  | {type: 'duration'}
  | {type: 'enum'; values: readonly string[]}
  | {type: 'bool'}
  | {type: 'id'}

export type ParamDef = ParamType & {
  /** The default as a user would write it; undefined = not set unless given. */
  default?: string | number | boolean
  doc: string
}

export type ParamTable = Readonly<Record<string, ParamDef>>

/** A size given in bytes or as a share of what it is relative to ("25%"). */
export type Extent = {bytes: number} | {fraction: number}

export type ParamValue = number | string | boolean | Extent

export type RawValue = string | number | boolean

/** What a parameter type accepts, for error messages and docs. */
export function describeType(d: ParamType): string {
  switch (d.type) {
    case 'rate':
      return 'a non-negative number of events per second'
    case 'number':
      return `a number${d.min !== undefined ? (d.exclusiveMin ? ` above ${d.min}` : ` >= ${d.min}`) : ''}${d.max !== undefined ? ` <= ${d.max}` : ''}`
    case 'int':
      return `a whole number${d.min !== undefined ? ` >= ${d.min}` : ''}${d.max !== undefined ? ` <= ${d.max}` : ''}`
    case 'fraction':
      return 'a fraction between 0 and 1'
    case 'extent':
      return 'a size such as 64M or a percentage such as 25%'
    case 'size':
      return 'a size such as 2M or 4G'
    case 'duration':
      return 'a time such as 500ms or 2s'
    case 'enum':
      return d.values.map((v) => `'${v}'`).join(' or ')
    case 'bool':
      return 'true or false'
    case 'id':
      return 'a device id'
  }
}

function parseNumber(raw: RawValue): number | undefined {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : undefined
  if (typeof raw !== 'string' || !/^\s*[-+]?(\d+(\.\d*)?|\.\d+)(e[-+]?\d+)?\s*$/i.test(raw)) return undefined
  return Number(raw)
}

/** Parse one raw value; throws UserError naming `field`. */
export function parseParam(def: ParamDef, raw: RawValue, field: string): ParamValue {
  const bad = (): never => {
    throw new UserError('invalid parameter value', {field, expected: describeType(def), found: showValue(raw)})
  }
  switch (def.type) {
    case 'rate': {
      const v = parseNumber(raw)
      return v === undefined || v < 0 ? bad() : v
    }
    case 'number': {
      const v = parseNumber(raw)
      if (v === undefined) return bad()
      if (def.min !== undefined && (def.exclusiveMin ? v <= def.min : v < def.min)) return bad()
      if (def.max !== undefined && v > def.max) return bad()
      return v
    }
    case 'int': {
      const v = parseNumber(raw)
      if (v === undefined || !Number.isSafeInteger(v)) return bad()
      if ((def.min !== undefined && v < def.min) || (def.max !== undefined && v > def.max)) return bad()
      return v
    }
    case 'fraction': {
      const v = parseNumber(raw)
      return v === undefined || v < 0 || v > 1 ? bad() : v
    }
    case 'extent': {
      if (typeof raw === 'string' && raw.trim().endsWith('%')) {
        const v = parseNumber(raw.trim().slice(0, -1))
        return v === undefined || v < 0 || v > 100 ? bad() : {fraction: v / 100}
      }
      if (typeof raw === 'boolean') return bad()
      try {
        return {bytes: parseSize(raw, field)}
      } catch {
        return bad()
      }
    }
    case 'size':
      if (typeof raw === 'boolean') return bad()
      try {
        return parseSize(raw, field)
      } catch {
        return bad()
      }
    case 'duration':
      if (typeof raw === 'boolean') return bad()
      try {
        return parseDurationNs(raw, field, 's')
      } catch {
        return bad()
      }
    case 'enum':
      return typeof raw === 'string' && def.values.includes(raw) ? raw : bad()
    case 'bool':
      if (raw === true || raw === 'true') return true
      if (raw === false || raw === 'false') return false
      return bad()
    case 'id':
      return typeof raw === 'string' && /^[A-Za-z0-9_.:-]+$/.test(raw) ? raw : bad()
  }
}

/** Parsed parameters of one workload instance, with typed accessors. */
export class Params {
  constructor(private readonly values: ReadonlyMap<string, ParamValue>) {}

  has(name: string): boolean {
    return this.values.has(name)
  }

  private get(name: string): ParamValue {
    const v = this.values.get(name)
    if (v === undefined) throw new Error(`bug: parameter ${name} has no value`)
    return v
  }

  num(name: string): number {
    return this.get(name) as number
  }

  str(name: string): string {
    return this.get(name) as string
  }

  bool(name: string): boolean {
    return this.get(name) as boolean
  }

  optStr(name: string): string | undefined {
    return this.values.get(name) as string | undefined
  }

  optNum(name: string): number | undefined {
    return this.values.get(name) as number | undefined
  }

  /** An extent in pages, relative to `ofPages` for percentages (rounded down to whole pages). */
  pages(name: string, ofPages: number, pageSize: number): number {
    const v = this.get(name) as Extent
    return 'fraction' in v ? Math.floor(v.fraction * ofPages) : Math.floor(v.bytes / pageSize)
  }

  /** A copy with one value replaced (the generator splits rates between instances this way). */
  with(name: string, value: ParamValue): Params {
    const m = new Map(this.values)
    m.set(name, value)
    return new Params(m)
  }
}

/** Parse a workload's raw parameters against its table: unknown names and bad values are errors. */
export function parseParams(table: ParamTable, raw: Readonly<Record<string, RawValue>>, fieldPrefix: string): Params {
  const values = new Map<string, ParamValue>()
  for (const [name, value] of Object.entries(raw)) {
    const def = table[name]
    if (!def) {
      const known = Object.keys(table)
      throw new UserError('unknown parameter', {
        field: `${fieldPrefix}.${name}`,
        expected: known.length > 0 ? `one of ${known.join(', ')}` : 'no parameters',
        found: showValue(name),
      })
    }
    values.set(name, parseParam(def, value, `${fieldPrefix}.${name}`))
  }
  for (const [name, def] of Object.entries(table)) {
    if (!values.has(name) && def.default !== undefined) values.set(name, parseParam(def, def.default, `${fieldPrefix}.${name}`))
  }
  return new Params(values)
}
