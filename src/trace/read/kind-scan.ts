/**
 * Whether a text trace holds an event of some kind, without decoding its events: a byte search for
 * the kind's name (Buffer.indexOf over the raw chunks), and only the lines where it occurs are
 * looked at, to see whether the name is that line's kind (not a params value, a device id or a
 * comment). Replay needs this before its one pass, to know whether the migration starts at a
 * mig_start event or at time 0.
 *
 * JSON Lines can spell a name with escapes ("mig\u005fstart"): there, lines with a backslash are
 * looked at too. CSV has no escapes; a quoted kind still holds the name's bytes.
 */
import {FIELD_INDEX} from '../events.js'
import {JsonEventScanner, JsonSyntaxError, JT} from './json-scan.js'
import {readChunksReusing} from './input.js'

const NL = 10
const CR = 13
const COMMA = 44
const QUOTE = 34
const HASH = 35
const BACKSLASH = 92

type SyncParse = (input: string, options: {relax_column_count: boolean}) => string[][]

export interface TextSource {
  path: string
  gzip: boolean
  format: 'csv' | 'jsonl'
  /** Lines before the first event (header, column line). */
  skipLines: number
}

/**
 * Bytes most of a trace's text is made of: digits, hex, separators, JSON punctuation and the
 * names of the access kinds (a trace is mostly guest writes).
 */
const COMMON_BYTES = new Set([...'0123456789abcdefx,"{}[]:\n\r -', ...'write read dma_write vhost_write'])

/**
 * What Buffer.indexOf looks for: the kind's name from its first byte that is not common in a trace
 * ("mig_start" -> "g_start"). The search finds its first byte with memchr and falls back to a slower
 * skip table when that byte is frequent: over a 397 MB CSV trace, "mig_start" took 216 ms ('m' is
 * in every dma_write) and "g_start" 16 ms (a replay's containsKind: 250-285 -> 70-107 ms). Any line
 * with the name holds it; isKind checks the field.
 */
export function kindNeedle(kind: string): string {
  let i = 0
  while (i < kind.length && COMMON_BYTES.has(kind[i]!)) i++
  // A name of common bytes only (write, read): the whole name, the fewest candidate lines.
  return i < kind.length ? kind.slice(i) : kind
}

export async function textContainsKind(src: TextSource, kind: string): Promise<boolean> {
  const name = Buffer.from(kind, 'utf8')
  const needle = Buffer.from(kindNeedle(kind), 'utf8')
  const jsonl = src.format === 'jsonl'
  const scanner = jsonl ? new JsonEventScanner() : undefined
  const parse = jsonl ? undefined : ((await import('csv-parse/sync')) as unknown as {parse: SyncParse}).parse

  /** Whether the line buf[s..e) is an event of the kind. */
  const isKind = (buf: Buffer, s: number, e: number): boolean => {
    if (e > s && buf[e - 1] === CR) e--
    if (e === s) return false
    if (scanner) {
      try {
        scanner.scan(buf, s, e)
      } catch (err) {
        if (err instanceof JsonSyntaxError) return false
        throw err
      }
      const k = FIELD_INDEX.kind
      return scanner.isObject && scanner.has(k) && scanner.type[k] === JT.STRING && scanner.stringValue(k) === kind
    }
    if (buf[s] === HASH) return false
    const line = buf.subarray(s, e)
    if (!line.includes(QUOTE)) {
      const c1 = line.indexOf(COMMA)
      const c2 = c1 < 0 ? -1 : line.indexOf(COMMA, c1 + 1)
      return c2 >= 0 && c2 - c1 - 1 === name.length && line.subarray(c1 + 1, c2).equals(name)
    }
    try {
      return parse!(line.toString('utf8'), {relax_column_count: true})[0]?.[1] === kind
    } catch {
      return false
    }
  }

  /** The next place at or after `from` in buf[..end) where a line must be looked at, or -1. */
  const nextCandidate = (buf: Buffer, from: number, end: number): number => {
    let at = buf.indexOf(needle, from)
    if (at >= end) at = -1
    if (jsonl) {
      const bs = buf.indexOf(BACKSLASH, from)
      if (bs >= 0 && bs < end && (at < 0 || bs < at)) at = bs
    }
    return at
  }

  let skip = src.skipLines
  /** The start of a line that continues in the next chunk (a copy: chunks are reused). */
  let carry: Buffer | undefined
  for await (const chunk of readChunksReusing(src.path, src.gzip)) {
    let pos = 0
    if (carry !== undefined) {
      const nl = chunk.indexOf(NL)
      if (nl < 0) {
        carry = Buffer.concat([carry, chunk])
        continue
      }
      const line = Buffer.concat([carry, chunk.subarray(0, nl)])
      carry = undefined
      pos = nl + 1
      if (skip > 0) skip--
      else if (nextCandidate(line, 0, line.length) >= 0 && isKind(line, 0, line.length)) return true
    }
    while (skip > 0) {
      const nl = chunk.indexOf(NL, pos)
      if (nl < 0) break
      pos = nl + 1
      skip--
    }
    const last = chunk.lastIndexOf(NL)
    if (skip === 0 && last >= pos) {
      // Complete lines: chunk[pos .. last].
      for (let at = nextCandidate(chunk, pos, last); at >= 0; at = nextCandidate(chunk, pos, last)) {
        const s = chunk.lastIndexOf(NL, at) + 1
        const e = chunk.indexOf(NL, at)
        if (isKind(chunk, Math.max(s, pos), e)) return true
        pos = e + 1
      }
      pos = last + 1
    }
    if (pos < chunk.length) carry = Buffer.from(chunk.subarray(pos))
  }
  if (carry !== undefined && skip === 0) return isKind(carry, 0, carry.length)
  return false
}
