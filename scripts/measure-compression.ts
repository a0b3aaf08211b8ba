/**
 * Measures what multifd compression does to a page of each content profile
 * (src/replay/sender/content.ts): the compressed size ratio and the CPU time per 4 KiB page, with
 * real zlib (node:zlib) and zstd (the `zstd` CLI, apt package zstd: Node 20 has no zstd), and
 * writes the defaults the replay uses (src/replay/sender/compression-table.ts) and the table in
 * docs/stream.md (between its generated:compression markers).
 *   npx tsx scripts/measure-compression.ts [--packets N]
 * How (docs/stream.md): each profile's pages are generated from a fixed seed, 128 pages
 * (MULTIFD_PACKET_SIZE) per packet, and each packet compressed as one stream, as a multifd channel
 * does (multifd-zlib: deflate page by page, Z_SYNC_FLUSH at the packet's last page; multifd-zstd:
 * ZSTD_e_flush at the last page). zlib: deflateRawSync with Z_SYNC_FLUSH per packet, CPU time from
 * process.cpuUsage. zstd: one `zstd -c --no-check -L` process per level over every packet file (one
 * frame per packet), its CPU time from the shell's `times`, minus the same run on empty files.
 * CPU time, not wall time: the figures hold on a loaded host, and divide by the host's speed.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {constants, deflateRawSync} from 'node:zlib'
import {CONTENT_PROFILES, fillPage, type ContentProfile} from '../src/replay/sender/content.js'

const PAGE = 4096
const PER_PACKET = 128
const ZLIB_LEVELS = [1, 2, 3, 4, 5, 6, 7, 8, 9]
// Levels between these use the row of the nearest level below (compression.ts); 20 (--ultra)
// costs minutes a profile on this host and is taken as 19.
const ZSTD_LEVELS = [1, 2, 3, 5, 9, 12, 15, 19]

const arg = process.argv.indexOf('--packets')
const PACKETS = arg > 0 ? Number(process.argv[arg + 1]) : 4

function packetsOf(profile: ContentProfile): Buffer[] {
  const out: Buffer[] = []
  let page = 0
  for (let k = 0; k < PACKETS; k++) {
    const b = Buffer.alloc(PAGE * PER_PACKET)
    for (let i = 0; i < PER_PACKET; i++) fillPage(profile, page++, b.subarray(i * PAGE, (i + 1) * PAGE))
    out.push(b)
  }
  return out
}

interface Row {
  ratio: number
  /** CPU ns per page. */
  ns: number
}

function zlibRow(packets: Buffer[], level: number): Row {
  let bytes = 0
  const t0 = process.cpuUsage()
  // Twice over the packets for a steadier CPU figure; sizes from the first pass.
  for (let rep = 0; rep < 2; rep++)
    for (const p of packets) {
      const z = deflateRawSync(p, {level, finishFlush: constants.Z_SYNC_FLUSH})
      if (rep === 0) bytes += z.length
    }
  const d = process.cpuUsage(t0)
  const pages = 2 * packets.length * PER_PACKET
  return {ratio: bytes / (packets.length * PER_PACKET * PAGE), ns: ((d.user + d.system) * 1000) / pages}
}

/** CPU seconds (user + sys) of the shell's children running `cmd`. */
function childCpu(cmd: string): number {
  const out = execFileSync('bash', ['-c', `${cmd} >/dev/null; times`], {encoding: 'utf8'})
  const lines = out.trim().split('\n')
  const sec = (s: string): number => {
    const m = /(\d+)m([\d.]+)s/.exec(s)!
    return Number(m[1]) * 60 + Number(m[2])
  }
  const [u, s] = lines[lines.length - 1]!.trim().split(/\s+/)
  return sec(u!) + sec(s!)
}

function zstdRows(dir: string, files: string[], empties: string[]): Row[] {
  const rows: Row[] = []
  const raw = files.length * PER_PACKET * PAGE
  for (const level of ZSTD_LEVELS) {
    const flags = `-q -c --no-check -${level}`
    const out = execFileSync('zstd', [...flags.split(' '), ...files], {maxBuffer: 1 << 30})
    const reps = 3
    let cpu = 0
    for (let r = 0; r < reps; r++) cpu += childCpu(`zstd ${flags} ${files.join(' ')}`) - childCpu(`zstd ${flags} ${empties.join(' ')}`)
    rows.push({ratio: out.length / raw, ns: Math.max(0, (cpu / reps) * 1e9) / (files.length * PER_PACKET)})
  }
  void dir
  return rows
}

const dir = mkdtempSync(join(tmpdir(), 'migtrace-compress-'))
const table: Record<string, {zlib: Record<number, Row>; zstd: Record<number, Row>}> = {}
try {
  const empties = Array.from({length: PACKETS}, (_, k) => {
    const f = join(dir, `empty-${k}`)
    writeFileSync(f, '')
    return f
  })
  for (const profile of CONTENT_PROFILES) {
    const packets = packetsOf(profile)
    const files = packets.map((p, k) => {
      const f = join(dir, `${profile}-${k}`)
      writeFileSync(f, p)
      return f
    })
    const zlib: Record<number, Row> = {}
    for (const level of ZLIB_LEVELS) zlib[level] = zlibRow(packets, level)
    const zs = zstdRows(dir, files, empties)
    const zstd: Record<number, Row> = {}
    ZSTD_LEVELS.forEach((l, i) => (zstd[l] = zs[i]!))
    table[profile] = {zlib, zstd}
    console.error(`${profile}: done`)
  }
} finally {
  rmSync(dir, {recursive: true, force: true})
}

const zstdVersion = execFileSync('zstd', ['--version'], {encoding: 'utf8'}).trim()
const r4 = (x: number): number => Math.round(x * 10000) / 10000
const ns0 = (x: number): number => Math.round(x)
const when = new Date().toISOString().slice(0, 10)

// The defaults the replay uses.
const ts = [
  '/**',
  ' * GENERATED by scripts/measure-compression.ts (do not edit): compressed size / 4096 and CPU ns per',
  ` * 4 KiB page of each content profile, per level, measured ${when} with node:zlib ${process.versions.zlib} and ${zstdVersion.replace(/\*/g, '').trim()},`,
  ` * ${PACKETS} packets of 128 pages per profile (docs/stream.md).`,
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
writeFileSync('src/replay/sender/compression-table.ts', ts)

// The docs table.
const lines = [
  `Measured ${when} by \`npx tsx scripts/measure-compression.ts\` (node:zlib ${process.versions.zlib}, ${zstdVersion.replace(/\*/g, '').replace(/,.*$/, '').trim()}; ${PACKETS} packets of 128 pages per profile; CPU time per 4 KiB page on this host).`,
  '',
  '| profile | method | level | ratio | CPU µs/page |',
  '|---|---|---|---|---|',
]
for (const [p, t] of Object.entries(table)) {
  for (const [m, rows] of [['zlib', t.zlib], ['zstd', t.zstd]] as const)
    for (const [l, r] of Object.entries(rows)) {
      if (m === 'zstd' && ![1, 3, 9, 19].includes(Number(l))) continue
      if (m === 'zlib' && ![1, 3, 6, 9].includes(Number(l))) continue
      lines.push(`| ${p} | ${m} | ${l} | ${r4(r.ratio)} | ${(r.ns / 1000).toFixed(2)} |`)
    }
}
const doc = readFileSync('docs/stream.md', 'utf8')
const re = /(<!-- generated:compression -->\n)[\s\S]*?(<!-- \/generated:compression -->)/
if (!re.test(doc)) throw new Error('docs/stream.md has no generated:compression markers')
writeFileSync('docs/stream.md', doc.replace(re, `$1${lines.join('\n')}\n$2`))
console.error('wrote src/replay/sender/compression-table.ts and docs/stream.md')
