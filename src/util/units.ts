/**
 * Parsing of sizes, rates and durations with explicit units, as users type them on the command
 * line, in configs and in traces. One convention everywhere, QEMU's: a bare suffix K/M/G/T (and
 * KiB/MiB/...) is binary bytes, as in `-m 4G` and HMP's `migrate_set_parameter max-bandwidth 1G`
 * (qemu_strtosz: 1G = 1 GiB); KB/MB/GB/TB are decimal bytes. Bits are always spelt out: `10Gbit/s`,
 * `10Gbps`, `100Mb/s` (decimal, as links are sold).
 *
 * A rate written as a bare size (`1G`, no `/s`) is ambiguous on a command line: QEMU reads it as
 * 1 GiB/s, a network engineer as a 1 Gbit/s link. Callers that take rates from a person pass
 * `{bare: 'refuse'}` and the user is told both readings; traces and QEMU parameters keep QEMU's.
 */
import {UserError, showValue} from './errors.js'

const BINARY: Record<string, number> = {
  '': 1,
  b: 1,
  k: 2 ** 10,
  ki: 2 ** 10,
  kib: 2 ** 10,
  m: 2 ** 20,
  mi: 2 ** 20,
  mib: 2 ** 20,
  g: 2 ** 30,
  gi: 2 ** 30,
  gib: 2 ** 30,
  t: 2 ** 40,
  ti: 2 ** 40,
  tib: 2 ** 40,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
}

const NUMBER_AND_UNIT = /^\s*([0-9]+(?:\.[0-9]+)?(?:e[0-9]+)?|0x[0-9a-f]+)\s*([a-z/]*)\s*$/i

function splitNumber(text: string): [number, string] | undefined {
  const m = NUMBER_AND_UNIT.exec(text)
  if (!m) return undefined
  const num = m[1]!.toLowerCase().startsWith('0x') ? Number.parseInt(m[1]!, 16) : Number(m[1])
  if (!Number.isFinite(num)) return undefined
  return [num, m[2]!.toLowerCase()]
}

function bad(what: string, text: string, field?: string, examples?: string): UserError {
  return new UserError(`not a valid ${what}`, {field, expected: examples, found: showValue(text)})
}

/** Bytes: `4096`, `4K`, `1.5G`, `256MiB`, `2GB` (decimal), `0x1000`. Whole bytes only. */
export function parseSize(input: string | number, field?: string): number {
  if (typeof input === 'number') return checkWhole(input, 'size', String(input), field)
  const parsed = splitNumber(input)
  const mult = parsed ? BINARY[parsed[1]] : undefined
  if (!parsed || mult === undefined) throw bad('size', input, field, "a byte count such as 4096, 64K, 1.5G or 2GiB")
  return checkWhole(parsed[0] * mult, 'size', input, field)
}

function checkWhole(v: number, what: string, text: string, field?: string): number {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new UserError(`not a valid ${what}`, {field, expected: 'a whole, non-negative number of bytes', found: showValue(text)})
  return v
}

const TIME_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  sec: 1e9,
  m: 60e9,
  min: 60e9,
  h: 3600e9,
}

/**
 * A duration in nanoseconds: `300ms`, `30s`, `1.5s`, `250us`, `2min`. A bare number means
 * `bareUnit` (QEMU's `downtime-limit` is in ms, so its callers pass 'ms').
 */
export function parseDurationNs(input: string | number, field?: string, bareUnit: keyof typeof TIME_NS = 'ns'): number {
  const text = String(input)
  const parsed = splitNumber(text)
  const unit = parsed ? (parsed[1] === '' ? bareUnit : parsed[1]) : undefined
  const mult = unit !== undefined ? TIME_NS[unit] : undefined
  if (!parsed || mult === undefined) throw bad('duration', text, field, 'a time such as 300ms, 30s, 1.5s or 2min')
  const ns = Math.round(parsed[0] * mult)
  if (!Number.isSafeInteger(ns)) throw bad('duration', text, field, 'a duration below 104 days')
  return ns
}

export interface RateOptions {
  /**
   * A size suffix with no `/s` (`1G`, `512M`): 'bytes' reads it as QEMU does (1G = 1 GiB/s);
   * 'refuse' rejects it as ambiguous, naming both readings. A bare number is bytes/s either way.
   */
  bare?: 'bytes' | 'refuse'
}

/**
 * A data rate in bytes per second. `128MiB/s`, `125MB/s`, `1G/s`: bytes (G binary, GB decimal).
 * `10Gbps`, `10Gbit/s`, `100Mbit`, `1Gb/s`: bits (decimal), divided by 8. A bare number means
 * bytes/s, as QEMU's `max-bandwidth`; a bare size suffix (`1G`) see RateOptions.
 */
export function parseRate(input: string | number, field?: string, opts: RateOptions = {}): number {
  if (typeof input === 'number') return checkRate(input, String(input), field)
  const text = input.trim()
  if (opts.bare === 'refuse') {
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt])(i?b)?$/i.exec(text)
    if (m && (m[3] === undefined || m[3] === 'b'))
      throw new UserError('ambiguous rate: bytes or bits per second?', {
        field,
        expected: `${m[1]}${m[2]!.toUpperCase()}iB/s (bytes, QEMU's reading of ${m[1]}${m[2]!.toUpperCase()}) or ${m[1]}${m[2]!.toUpperCase()}bit/s (a link speed)`,
        found: showValue(input),
      })
  }
  const bits = /^([0-9.e]+)\s*([kmgt]?)(?:bps|bit\/s|bit|b\/s)$/i.exec(text)
  if (bits && !/B\/s$/.test(text)) {
    const mult = {'': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12}[bits[2]!.toLowerCase()] ?? 1
    const v = Number(bits[1]) * mult
    if (Number.isFinite(v)) return checkRate(v / 8, text, field)
  }
  const noPerSecond = text.replace(/\/s$/i, '').replace(/ps$/i, '')
  const parsed = splitNumber(noPerSecond)
  const mult = parsed ? BINARY[parsed[1]] : undefined
  if (!parsed || mult === undefined)
    throw bad('rate', input, field, 'a rate such as 128MiB/s, 125MB/s, 10Gbps or a number of bytes/s')
  return checkRate(parsed[0] * mult, text, field)
}

function checkRate(v: number, text: string, field?: string): number {
  if (!Number.isFinite(v) || v < 0) throw bad('rate', text, field, 'a non-negative rate')
  return v
}

/** Integer or `0x` hex, as an exact safe integer; anything else is an error. */
export function parseInteger(input: string | number, field?: string): number {
  const v = typeof input === 'number' ? input : /^0x[0-9a-f]+$/i.test(input.trim()) ? Number.parseInt(input.trim(), 16) : Number(input)
  if (!Number.isSafeInteger(v)) throw new UserError('not an integer', {field, expected: 'a whole number', found: showValue(input)})
  return v
}

/**
 * A rate for reports, exact in the unit it was most likely typed in: 1 GiB/s, 10 Gbit/s,
 * 125 MB/s; otherwise binary with two decimals (1.17 GiB/s).
 */
export function formatRate(bytesPerSec: number): string {
  const exact = (div: number): boolean => bytesPerSec >= div && Number.isInteger(bytesPerSec / div)
  const binary = [[2 ** 40, 'TiB/s'], [2 ** 30, 'GiB/s'], [2 ** 20, 'MiB/s'], [2 ** 10, 'KiB/s']] as const
  for (const [div, unit] of binary) if (exact(div)) return `${bytesPerSec / div} ${unit}`
  // links: 2.5 Gbit/s, 25 Gbit/s, 100 Mbit/s (one decimal at most)
  for (const [div, unit] of [[1.25e11, 'Tbit/s'], [1.25e8, 'Gbit/s'], [1.25e5, 'Mbit/s']] as const) {
    const tenths = (bytesPerSec * 10) / div
    if (bytesPerSec >= div && Math.abs(tenths - Math.round(tenths)) < 1e-9) return `${Math.round(tenths) / 10} ${unit}`
  }
  for (const [div, unit] of [[1e12, 'TB/s'], [1e9, 'GB/s'], [1e6, 'MB/s']] as const) if (exact(div)) return `${bytesPerSec / div} ${unit}`
  for (const [div, unit] of binary) if (bytesPerSec >= div) return `${(bytesPerSec / div).toFixed(2)} ${unit}`
  return `${Math.round(bytesPerSec * 100) / 100} B/s`
}

/** Human-readable sizes for reports: 1.50 GiB, 64.0 MiB, 4 KiB, 12 B. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = bytes
  let i = 0
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  if (i === 0) return `${v} B`
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`
}

/** Human-readable durations from nanoseconds: 812 ns, 3.20 ms, 12.5 s. */
export function formatDurationNs(ns: number): string {
  const abs = Math.abs(ns)
  if (abs < 1e3) return `${ns} ns`
  if (abs < 1e6) return `${(ns / 1e3).toFixed(abs < 1e4 ? 2 : 1)} us`
  if (abs < 1e9) return `${(ns / 1e6).toFixed(abs < 1e7 ? 2 : 1)} ms`
  return `${(ns / 1e9).toFixed(abs < 1e10 ? 3 : abs < 1e11 ? 2 : 1)} s`
}
