/**
 * native/stream-bench (the benchmark behind scripts/measure-compression.ts, docs/stream.md): its
 * XBZRLE encoder must produce xbzrle_encode_buffer's format, so the CPU it measures is that of the
 * real encoding. Its delta lengths are checked against the hand-worked oracle and against the
 * replay's encodedLength (src/replay/sender/xbzrle.ts) on random changes; its compress mode must
 * shrink compressible pages and not random ones. Built with cc against the system zlib and libzstd
 * (scripts/ensure-stream-bench-tools.sh installs what is missing; skipped when it cannot).
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import fc from 'fast-check'
import {encodedLength} from '../../src/replay/sender/xbzrle.js'
import {fillPage} from '../../src/replay/sender/content.js'
import {ROOT} from '../helpers/cli.js'

const PAGE = 4096
const dir = mkdtempSync(join(tmpdir(), 'migtrace-stream-bench-test-'))
const exe = join(dir, 'bench')
let unavailable: string | undefined

test.before(() => {
  const r = spawnSync('sh', [join(ROOT, 'scripts/ensure-stream-bench-tools.sh')], {encoding: 'utf8', timeout: 10 * 60_000})
  if (r.status === 3) {
    unavailable = r.stderr.trim().split('\n').at(-1)
    return
  }
  if (r.status !== 0) throw new Error(`scripts/ensure-stream-bench-tools.sh failed (${r.status}):\n${r.stderr.slice(-3000)}`)
  execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', exe, join(ROOT, 'native/stream-bench/migtrace-stream-bench.c'), '-lzstd', '-lz'])
})
test.after.always(() => rmSync(dir, {recursive: true, force: true}))

function skipped(t: {log: (...v: unknown[]) => void; pass: (m?: string) => void}): boolean {
  if (unavailable === undefined) return false
  t.log(`SKIPPED: cannot build native/stream-bench here (${unavailable})`)
  t.pass()
  return true
}

/** The bench's delta length of `cur` against `old`. */
function benchEncode(old: Uint8Array, cur: Uint8Array): number {
  writeFileSync(join(dir, 'old'), old)
  writeFileSync(join(dir, 'new'), cur)
  return Number(execFileSync(exe, ['encode', join(dir, 'old'), join(dir, 'new')], {encoding: 'utf8'}).trim())
}

/** A random-filled page, and a copy with every byte of `ranges` changed (each to a different value). */
function pages(ranges: [number, number][]): {old: Uint8Array; cur: Uint8Array; bits: Uint32Array} {
  const old = new Uint8Array(PAGE)
  fillPage('random', 3, old)
  const cur = old.slice()
  const bits = new Uint32Array(PAGE >>> 5)
  for (const [a, b] of ranges)
    for (let i = a; i < b; i++) {
      cur[i] = old[i]! ^ 0x5a
      bits[i >>> 5]! |= 1 << (i & 31)
    }
  return {old, cur, bits}
}

test.serial('XBZRLE encoder: the oracle of docs/stream.md (100 unchanged, 8 changed, 92 unchanged, 100 changed = 112 bytes), unchanged = 0, all changed = overflow', (t) => {
  if (skipped(t)) return
  const p = pages([
    [100, 108],
    [200, 300],
  ])
  t.is(benchEncode(p.old, p.cur), 1 + 1 + 8 + 1 + 1 + 100)
  t.is(benchEncode(p.old, p.old), 0)
  const all = pages([[0, PAGE]])
  t.is(benchEncode(all.old, all.cur), -1)
  // A 200-byte unchanged run takes a 2-byte ULEB128: 2 + 1 + 1.
  const one = pages([[200, 201]])
  t.is(benchEncode(one.old, one.cur), 4)
})

test.serial('XBZRLE encoder: the same length as the replay model for random changed ranges (word-unaligned too)', (t) => {
  if (skipped(t)) return
  const range = fc.tuple(fc.integer({min: 0, max: PAGE - 1}), fc.integer({min: 1, max: 64})).map(([a, n]): [number, number] => [a, Math.min(PAGE, a + n)])
  fc.assert(
    fc.property(fc.array(range, {minLength: 1, maxLength: 40}), (ranges) => {
      const p = pages(ranges)
      return benchEncode(p.old, p.cur) === encodedLength(p.bits, PAGE)
    }),
    {numRuns: 60, seed: 12},
  )
  t.pass()
})

test.serial('compress mode: zlib and zstd shrink mostly-zero pages, not random ones; one line per rep', (t) => {
  if (skipped(t)) return
  const file = (profile: 'random' | 'mostly-zero'): string => {
    const b = Buffer.alloc(PAGE * 256)
    for (let i = 0; i < 256; i++) fillPage(profile, i, b.subarray(i * PAGE, (i + 1) * PAGE))
    const f = join(dir, profile)
    writeFileSync(f, b)
    return f
  }
  const random = file('random')
  const sparse = file('mostly-zero')
  for (const method of ['zlib', 'zstd']) {
    const run = (f: string): string[][] => execFileSync(exe, ['compress', method, '1', '128', '2', f], {encoding: 'utf8'}).trim().split('\n').map((l) => l.split(' '))
    const r = run(random)
    t.is(r.length, 2)
    t.is(r[0]![0], 'rep')
    t.is(Number(r[0]![3]), 256)
    const ratioRandom = Number(r[0]![4]) / (256 * PAGE)
    const ratioSparse = Number(run(sparse)[0]![4]) / (256 * PAGE)
    t.true(ratioRandom > 0.99 && ratioRandom < 1.01, `${method} random ratio ${ratioRandom}`)
    t.true(ratioSparse < 0.2, `${method} mostly-zero ratio ${ratioSparse}`)
    t.true(Number(r[0]![1]) > 0, 'CPU time measured')
  }
})
