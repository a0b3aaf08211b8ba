/**
 * multifd compression (multifd-compression = zlib | zstd; migration/multifd-zlib.c,
 * multifd-zstd.c): each channel thread compresses its packet's pages as one stream before it
 * sends it, so a page costs its compressed size on the wire and the compressor's CPU time on the
 * channel's thread. Both depend on what the page holds: the trace header's content profile
 * (content.ts) picks the measured row (compression-table.ts, scripts/measure-compression.ts) for
 * the method and level. A page's compressed size is ratio x page size, rounded to a whole byte.
 */
import type {TraceHeader} from '../../trace/header.js'
import type {TraceLayout} from '../../trace/layout.js'
import type {ReplaySettings} from '../settings.js'
import {COMPRESSION_TABLE, type CompressionRow} from './compression-table.js'
import {CONTENT_PROFILES, DEFAULT_CONTENT, type ContentProfile} from './content.js'

/** The measured row of one profile, method and level (a level the table lacks: the nearest below it). */
export function compressionRow(profile: ContentProfile, method: 'zlib' | 'zstd', level: number): CompressionRow {
  const rows = COMPRESSION_TABLE[profile]![method]
  // multifd-zlib-level 0 is deflate's "store": no compression, a copy.
  if (method === 'zlib' && level === 0) return {ratio: 1, ns: 0}
  let best = 1
  for (const k of Object.keys(rows).map(Number)) if (k <= Math.max(1, level) && k > best) best = k
  return rows[best]!
}

/** The figures of a run (the result's stream.compression). */
export interface CompressionFigures {
  method: 'zlib' | 'zstd'
  level: number
  /** Profile name -> pages compressed with it. */
  pagesByProfile: Record<string, number>
  pages: number
  /** Page bytes before and after compression. */
  rawBytes: number
  compressedBytes: number
  /** CPU time of the compressor on the channel threads, summed (ms). */
  cpuMs: number
}

export class Compressor {
  readonly method: 'zlib' | 'zstd'
  readonly level: number
  /** Per profile index: compressed bytes of one page, CPU ns. */
  private readonly bytes: Float64Array
  private readonly ns: Float64Array
  /** Page ranges [first, end) and their profile index, sorted (empty: one profile for all). */
  private readonly starts: number[] = []
  private readonly ends: number[] = []
  private readonly idx: number[] = []
  private readonly whole: number
  private readonly counts: Float64Array
  private readonly pageSize: number
  pages = 0
  rawBytes = 0
  compressedBytes = 0
  cpuNs = 0

  constructor(s: ReplaySettings, header: TraceHeader, layout: TraceLayout) {
    const m = s['multifd-compression']
    // checkSettings refuses the methods the model has no figures for (qpl, uadk, qatzip).
    if (m !== 'zlib' && m !== 'zstd') throw new Error(`bug: Compressor for multifd-compression=${m}`)
    this.method = m
    this.level = m === 'zlib' ? s['multifd-zlib-level'] : s['multifd-zstd-level']
    this.pageSize = layout.pageSize
    this.bytes = new Float64Array(CONTENT_PROFILES.length)
    this.ns = new Float64Array(CONTENT_PROFILES.length)
    this.counts = new Float64Array(CONTENT_PROFILES.length)
    CONTENT_PROFILES.forEach((p, i) => {
      const row = compressionRow(p, m, this.level)
      // Whole bytes per page, so transferred stays a byte count.
      this.bytes[i] = Math.round(row.ratio * layout.pageSize)
      this.ns[i] = row.ns
    })
    const c = header.content
    if (c === undefined || typeof c === 'string') this.whole = CONTENT_PROFILES.indexOf(c ?? DEFAULT_CONTENT)
    else {
      this.whole = CONTENT_PROFILES.indexOf(DEFAULT_CONTENT)
      const ranges: [number, number, number][] = []
      for (const r of c) {
        // Page ranges of the region, slot by slot (a region may cross a hole).
        let gpa = r.gpa
        const end = r.gpa + r.len
        while (gpa < end) {
          const slotEnd = layout.slotEndOf(gpa)
          if (slotEnd < 0) {
            gpa = (Math.floor(gpa / layout.pageSize) + 1) * layout.pageSize
            continue
          }
          const stop = Math.min(end, slotEnd)
          const p0 = layout.gpaToPage(gpa)
          ranges.push([p0, p0 + Math.ceil((stop - gpa) / layout.pageSize), CONTENT_PROFILES.indexOf(r.profile)])
          gpa = stop
        }
      }
      ranges.sort((a, b) => a[0] - b[0])
      for (const [a, b, i] of ranges) {
        this.starts.push(a)
        this.ends.push(b)
        this.idx.push(i)
      }
    }
  }

  /** The profile index of page p (binary search over the header's ranges). */
  private profileOf(p: number): number {
    const s = this.starts
    if (s.length === 0) return this.whole
    let lo = 0
    let hi = s.length - 1
    let at = -1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      if (s[mid]! <= p) {
        at = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return at >= 0 && p < this.ends[at]! ? this.idx[at]! : this.whole
  }

  /** Page p through the compressor: its compressed bytes; `lastNs` is its CPU time. */
  lastNs = 0
  page(p: number): number {
    const i = this.profileOf(p)
    const b = this.bytes[i]!
    this.counts[i]!++
    this.pages++
    this.rawBytes += this.pageSize
    this.compressedBytes += b
    this.lastNs = this.ns[i]!
    this.cpuNs += this.lastNs
    return b
  }

  figures(): CompressionFigures {
    const by: Record<string, number> = {}
    CONTENT_PROFILES.forEach((p, i) => {
      if (this.counts[i]! > 0) by[p] = this.counts[i]!
    })
    return {method: this.method, level: this.level, pagesByProfile: by, pages: this.pages, rawBytes: this.rawBytes, compressedBytes: Math.round(this.compressedBytes), cpuMs: this.cpuNs / 1e6}
  }
}
