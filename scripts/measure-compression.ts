/**
 * Measures what the migration stream's page encodings cost the sender, in-process, with the
 * libraries QEMU links and in the call shapes QEMU 7.2 uses, and writes the defaults the replay
 * uses (src/replay/sender/compression-table.ts) and the tables in docs/stream.md (between the
 * generated:compression and generated:xbzrle markers).
 *   npx tsx scripts/measure-compression.ts [--packets N] [--reps N]
 * How (docs/stream.md, "Measured ratios and CPU costs"):
 * - The benchmark is native/stream-bench/migtrace-stream-bench.c, built here with cc against the
 *   system zlib and libzstd (scripts/ensure-stream-bench-tools.sh installs the headers): the
 *   shared libraries the lab's QEMU 7.2 loads too.
 * - multifd compression: each content profile's pages (src/replay/sender/content.ts, fixed seeds,
 *   every page distinct) go through one stream in packets of 128 pages (MULTIFD_PACKET_SIZE / 4
 *   KiB), as one channel's send_prepare does: zlib copies the page, then deflate() Z_NO_FLUSH and
 *   Z_SYNC_FLUSH for the packet's last page (multifd-zlib.c zlib_send_prepare); zstd is one
 *   ZSTD_compressStream2 per page, ZSTD_e_continue and ZSTD_e_flush for the last
 *   (multifd-zstd.c zstd_send_prepare). The stream lives across packets, as a channel's does.
 * - XBZRLE: save_xbzrle_page's work for a cached page (lookup, copy, xbzrle encoding with our own
 *   encoder of xbzrle_encode_buffer's format, copy back into the cache) on the lab dirtier's hot
 *   pages (8-byte words overwritten), and cache_insert's copy for a miss.
 * Figures are CPU time of the benchmark's thread (CLOCK_THREAD_CPUTIME_ID), the median of --reps
 * runs after one warm-up run, so they hold on a loaded host; a run on one core at a time.
 * node:zlib (Node's bundled zlib, a different build than QEMU's) is measured beside it at level 1
 * for comparison (one deflateRawSync per packet, Z_SYNC_FLUSH), printed and kept in the docs.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {constants, deflateRawSync} from 'node:zlib'
import {CONTENT_PROFILES, fillPage, type ContentProfile} from '../src/replay/sender/content.js'

/** The repository (the script reads and rewrites files in it, wherever it is run from). */
const REPO = fileURLToPath(new URL('..', import.meta.url))

const PAGE = 4096
/** MULTIFD_PACKET_SIZE (512 KiB) / the 4 KiB target page: multifd_queue_page's packet. */
const PER_PACKET = 128
const ZLIB_LEVELS = [1, 2, 3, 4, 5, 6, 7, 8, 9]
// Levels between these use the row of the nearest level below (compression.ts); 20 (--ultra) is
// taken as 19.
const ZSTD_LEVELS = [1, 2, 3, 5, 9, 12, 15, 19]
/** Changed 8-byte words per page for the XBZRLE rows; the lab's xbzrle-hot records average ~2. */
const XBZRLE_WORDS = [1, 2, 4, 8, 32]
/** The lab's hot set: 10 % of the dirtier's 256 MiB working set (lab/matrix.json xbzrle-hot). */
const XBZRLE_HOT_PAGES = 6553

function numArg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name)
  if (i < 0) return dflt
  const v = Number(process.argv[i + 1])
  if (!Number.isInteger(v) || v < 1) {
    console.error(`measure-compression: ${name} takes a positive whole number`)
    process.exit(2)
  }
  return v
}
const PACKETS = numArg('--packets', 16)
const REPS = numArg('--reps', 5)
/** The XBZRLE runs take milliseconds: more of them for a steadier median. */
const XBZRLE_REPS = Math.max(REPS, 15)

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** Build the benchmark (after making sure the compiler and headers are there). */
function ensureTools(): void {
  const ensure = spawnSync('sh', [join(REPO, 'scripts/ensure-stream-bench-tools.sh')], {stdio: ['ignore', 'inherit', 'inherit']})
  if (ensure.status !== 0) {
    console.error('measure-compression: the benchmark cannot be built here (scripts/ensure-stream-bench-tools.sh said why)')
    process.exit(2)
  }
}

function buildBench(dir: string): string {
  const exe = join(dir, 'migtrace-stream-bench')
  execFileSync('cc', ['-O2', '-Wall', '-o', exe, join(REPO, 'native/stream-bench/migtrace-stream-bench.c'), '-lzstd', '-lz'], {stdio: 'inherit'})
  return exe
}

function bench(exe: string, args: (string | number)[]): string[][] {
  const out = execFileSync(exe, args.map(String), {encoding: 'utf8', maxBuffer: 1 << 24})
  return out
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
}

function pagesOf(profile: ContentProfile): Buffer {
  const b = Buffer.alloc(PAGE * PER_PACKET * PACKETS)
  for (let i = 0; i < PER_PACKET * PACKETS; i++) fillPage(profile, i, b.subarray(i * PAGE, (i + 1) * PAGE))
  return b
}

interface Row {
  ratio: number
  /** CPU ns per page (median over the runs). */
  ns: number
}

function compressRow(exe: string, file: string, method: 'zlib' | 'zstd', level: number): Row {
  // Level 12 and up take ms a page: fewer runs.
  const reps = level >= 12 ? Math.min(REPS, 3) : REPS
  const rows = bench(exe, ['compress', method, level, PER_PACKET, reps + 1, file]).slice(1)
  const pages = Number(rows[0]![3])
  return {ratio: Number(rows[0]![4]) / (pages * PAGE), ns: median(rows.map((r) => Number(r[1]) / pages))}
}

/** node:zlib, one deflateRawSync per packet (Z_SYNC_FLUSH), process CPU time; for comparison only. */
function nodeZlibNs(pages: Buffer): number {
  const packets = PACKETS
  const runs: number[] = []
  for (let rep = 0; rep <= REPS; rep++) {
    const t0 = process.cpuUsage()
    for (let k = 0; k < packets; k++) deflateRawSync(pages.subarray(k * PER_PACKET * PAGE, (k + 1) * PER_PACKET * PAGE), {level: 1, finishFlush: constants.Z_SYNC_FLUSH})
    const d = process.cpuUsage(t0)
    if (rep > 0) runs.push(((d.user + d.system) * 1000) / (packets * PER_PACKET))
  }
  return median(runs)
}

interface XbzrleRow {
  words: number
  /** Encoded bytes a page (the delta, without the record's 3 bytes). */
  delta: number
  hitNs: number
  missNs: number
}

function xbzrleRow(exe: string, words: number): XbzrleRow {
  const lines = bench(exe, ['xbzrle', words, XBZRLE_HOT_PAGES, XBZRLE_REPS + 1, 1])
  const hits = lines.filter((l) => l[0] === 'hit').slice(1)
  const misses = lines.filter((l) => l[0] === 'miss').slice(1)
  return {
    words,
    delta: median(hits.map((h) => Number(h[3]) / Number(h[2]))),
    hitNs: median(hits.map((h) => Number(h[1]) / Number(h[2]))),
    missNs: median(misses.map((m) => Number(m[1]) / Number(m[2]))),
  }
}

// Before the temporary directory: process.exit would skip its removal.
ensureTools()
const dir = mkdtempSync(join(tmpdir(), 'migtrace-compress-'))
const table: Record<string, {zlib: Record<number, Row>; zstd: Record<number, Row>}> = {}
const nodeZlib: Record<string, number> = {}
let xbzrle: XbzrleRow[] = []
let versions = ''
try {
  mkdirSync(dir, {recursive: true})
  const exe = buildBench(dir)
  versions = execFileSync(exe, ['versions'], {encoding: 'utf8'}).trim().split('\n').join(', ')
  for (const profile of CONTENT_PROFILES) {
    const pages = pagesOf(profile)
    const file = join(dir, `${profile}.pages`)
    writeFileSync(file, pages)
    const zlib: Record<number, Row> = {}
    for (const level of ZLIB_LEVELS) zlib[level] = compressRow(exe, file, 'zlib', level)
    const zstd: Record<number, Row> = {}
    for (const level of ZSTD_LEVELS) zstd[level] = compressRow(exe, file, 'zstd', level)
    nodeZlib[profile] = nodeZlibNs(pages)
    table[profile] = {zlib, zstd}
    console.error(`${profile}: zlib-1 ${(zlib[1]!.ns / 1000).toFixed(2)} µs/page (node:zlib ${(nodeZlib[profile]! / 1000).toFixed(2)}), zstd-1 ${(zstd[1]!.ns / 1000).toFixed(2)} µs/page, ratios ${zlib[1]!.ratio.toFixed(4)} / ${zstd[1]!.ratio.toFixed(4)}`)
  }
  xbzrle = XBZRLE_WORDS.map((w) => xbzrleRow(exe, w))
  for (const x of xbzrle) console.error(`xbzrle ${x.words} words: delta ${x.delta.toFixed(1)} B, hit ${(x.hitNs / 1000).toFixed(3)} µs/page, miss ${(x.missNs / 1000).toFixed(3)} µs/page`)
} finally {
  rmSync(dir, {recursive: true, force: true})
}

const r4 = (x: number): number => Math.round(x * 10000) / 10000
const ns0 = (x: number): number => Math.round(x)
const when = new Date().toISOString().slice(0, 10)
const how = `${PACKETS} packets of 128 pages per profile, median of ${REPS} runs (3 at level 12 and up) after a warm-up`

// The defaults the replay uses.
const ts = [
  '/**',
  ' * GENERATED by scripts/measure-compression.ts (do not edit): compressed size / 4096 and CPU ns per',
  ` * 4 KiB page of each content profile, per level, measured ${when} in-process (native/stream-bench,`,
  ` * ${versions}: the libraries QEMU links) in multifd's call shapes, ${how} (docs/stream.md).`,
  ' */',
  'export interface CompressionRow {',
  '  ratio: number',
  '  ns: number',
  '}',
  `export const COMPRESSION_TABLE: Record<string, {zlib: Record<number, CompressionRow>; zstd: Record<number, CompressionRow>}> = ${JSON.stringify(
    Object.fromEntries(
      Object.entries(table).map(([p, t]) => [
        p,
        {
          zlib: Object.fromEntries(Object.entries(t.zlib).map(([l, r]) => [l, {ratio: r4(r.ratio), ns: ns0(r.ns)}])),
          zstd: Object.fromEntries(Object.entries(t.zstd).map(([l, r]) => [l, {ratio: r4(r.ratio), ns: ns0(r.ns)}])),
        },
      ]),
    ),
  )}`,
  '',
].join('\n')
writeFileSync(join(REPO, 'src/replay/sender/compression-table.ts'), ts)

// The docs tables.
const lines = [
  `Measured ${when} by \`npx tsx scripts/measure-compression.ts\` (in-process: ${versions}; ${how}; CPU time of the compressing thread per 4 KiB page on this host). The node:zlib column is Node's bundled zlib ${process.versions.zlib} at level 1, one call per packet, for comparison only.`,
  '',
  '| profile | method | level | ratio | CPU µs/page | node:zlib µs/page |',
  '|---|---|---|---|---|---|',
]
for (const [p, t] of Object.entries(table)) {
  for (const [m, rows] of [['zlib', t.zlib], ['zstd', t.zstd]] as const)
    for (const [l, r] of Object.entries(rows)) {
      if (m === 'zstd' && ![1, 3, 9, 19].includes(Number(l))) continue
      if (m === 'zlib' && ![1, 3, 6, 9].includes(Number(l))) continue
      const cmp = m === 'zlib' && l === '1' ? (nodeZlib[p]! / 1000).toFixed(2) : ''
      lines.push(`| ${p} | ${m} | ${l} | ${r4(r.ratio)} | ${(r.ns / 1000).toFixed(2)} | ${cmp} |`)
    }
}
const xlines = [
  `Measured ${when} by \`npx tsx scripts/measure-compression.ts\` (native/stream-bench, ${XBZRLE_HOT_PAGES} hot pages, a 64 MiB cache, 256 MiB of guest RAM; median of ${XBZRLE_REPS} runs after a warm-up; CPU µs per page).`,
  '',
  '| changed 8-byte words a page | delta bytes | hit: lookup, copy, encode, copy back (µs) | miss: cache_insert copy (µs) |',
  '|---|---|---|---|',
  ...xbzrle.map((x) => `| ${x.words} | ${x.delta.toFixed(1)} | ${(x.hitNs / 1000).toFixed(3)} | ${(x.missNs / 1000).toFixed(3)} |`),
]
let doc = readFileSync(join(REPO, 'docs/stream.md'), 'utf8')
for (const [name, body] of [['compression', lines], ['xbzrle', xlines]] as const) {
  const re = new RegExp(`(<!-- generated:${name} -->\\n)[\\s\\S]*?(<!-- \\/generated:${name} -->)`)
  if (!re.test(doc)) throw new Error(`docs/stream.md has no generated:${name} markers`)
  doc = doc.replace(re, `$1${body.join('\n')}\n$2`)
}
writeFileSync(join(REPO, 'docs/stream.md'), doc)
console.error('wrote src/replay/sender/compression-table.ts and docs/stream.md')
