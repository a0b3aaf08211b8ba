/**
 * Issue 17: a seeded, bounded fuzz of everything a user hands migtrace: traces (CSV, JSONL, gzip),
 * QEMU logs, generate specs, config, scenario, shard, stats and lab-config files, and flags. Each
 * input is a valid seed with mutations (byte flips, truncation, inserted and deleted bytes, lines
 * duplicated or swapped, numbers made huge, negative or not numbers, deep nesting, a byte order
 * mark, CRLF). Whatever the input, a run either succeeds or fails the way a user's mistake must:
 * exit 2, one line on stderr (two at most, with a hint), no stack trace anywhere, and no temp
 * file or partial output left behind.
 *
 * Runs through test/helpers/run-many.ts (the built CLI loaded once; bin/run.js per case would cost
 * minutes). The seed and the case count are fixed, so a failure names a case that reproduces:
 * its directory is kept and printed.
 */
import test from 'ava'
import {spawn} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'
import {ROOT} from '../helpers/cli.js'

/** Fixed, so a failure reproduces; MIGTRACE_FUZZ_SEED explores others (MIGTRACE_FUZZ_SEED=7 npx ava test/reliability/fuzz.test.ts). */
const SEED = Number(process.env.MIGTRACE_FUZZ_SEED ?? 0x17_2026)
/** Cases per family (7.5 families): ~750 cases, about 15 s here; the whole test stays well under a minute. */
const PER_FAMILY = Number(process.env.MIGTRACE_FUZZ_PER_FAMILY ?? 100)

/** mulberry32: small, seeded, good enough to pick mutations. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const random = rng(SEED)
const int = (n: number): number => Math.floor(random() * n)
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!

const NASTY_NUMBERS = ['-1', '-0', '0', '1e308', '-1e308', '9007199254740993', '99999999999999999999', 'NaN', 'Infinity', '0x', '0xfffffffffffffffff', '1.5', '1e-300', '', ' ', '"7"', 'null', '[]', '{}', '1_000']
const NASTY_STRINGS = ['', ' ', '-', ',', ',,', '=', 'a=', '=b', 'x'.repeat(300), '\u0000', '\ufeff', '💥', '../../x', '%s%n', '1G,,10G', 'null', 'true', '[1]', '{"a":', '-1', '1e308', 'NaN', '0', '2^40', 'yes']

/** One random mutation of a file's bytes. */
function mutate(buf: Buffer, json: boolean): Buffer {
  const text = buf.toString('latin1')
  const lines = text.split('\n')
  switch (int(json ? 11 : 10)) {
    case 0: {
      const b = Buffer.from(buf)
      for (let k = 1 + int(4); k > 0 && b.length > 0; k--) b[int(b.length)]! ^= 1 << int(8)
      return b
    }
    case 1:
      return buf.subarray(0, int(buf.length + 1))
    case 2: {
      const at = int(buf.length + 1)
      const junk = Buffer.from(Array.from({length: 1 + int(16)}, () => (random() < 0.5 ? int(256) : 32 + int(95))))
      return Buffer.concat([buf.subarray(0, at), junk, buf.subarray(at)])
    }
    case 3: {
      const at = int(buf.length + 1)
      return Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + int(40)))])
    }
    case 4: {
      const i = int(lines.length)
      lines.splice(i, 0, lines[i] ?? '')
      return Buffer.from(lines.join('\n'), 'latin1')
    }
    case 5: {
      const i = int(lines.length)
      const j = int(lines.length)
      ;[lines[i], lines[j]] = [lines[j]!, lines[i]!]
      return Buffer.from(lines.join('\n'), 'latin1')
    }
    case 6: {
      // A number made nasty.
      const nums = [...text.matchAll(/-?\d+(\.\d+)?/g)]
      if (nums.length === 0) return buf
      const m = pick(nums)
      return Buffer.from(text.slice(0, m.index) + pick(NASTY_NUMBERS) + text.slice(m.index! + m[0].length), 'latin1')
    }
    case 7:
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buf])
    case 8:
      return Buffer.from(text.replaceAll('\n', '\r\n'), 'latin1')
    case 9: {
      // A field (between commas or quotes) replaced by a nasty string.
      const seps = [...text.matchAll(/[,":]/g)]
      if (seps.length < 2) return buf
      const a = int(seps.length - 1)
      const from = seps[a]!.index! + 1
      const to = seps[a + 1]!.index!
      return Buffer.from(text.slice(0, from) + pick(NASTY_STRINGS) + text.slice(to), 'utf8')
    }
    default: {
      // JSON: a value nested thousands of levels deep.
      const at = text.indexOf(':', int(text.length))
      if (at < 0) return buf
      const n = pick([70, 5000, 100000])
      return Buffer.from(`${text.slice(0, at + 1)}${'['.repeat(n)}${']'.repeat(n)},${text.slice(at + 1)}`, 'latin1')
    }
  }
}

function mutateN(buf: Buffer, json: boolean): Buffer {
  let b = buf
  for (let k = 1 + int(3); k > 0; k--) b = mutate(b, json)
  return b
}

interface Case {
  name: string
  cwd: string
  argv: string[]
}

interface Outcome {
  code: number
  stdout: string
  stderr: string
  crash?: string
  ms: number
}

function runMany(cases: Case[]): Promise<Outcome[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/run-many.ts')], {
      cwd: ROOT,
      env: {...process.env, NODE_ENV: 'production'},
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.on('error', reject)
    child.on('close', () => resolve(out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Outcome)))
    child.stdin.end(JSON.stringify(cases.map((c) => ({cwd: c.cwd, argv: c.argv}))))
  })
}

const F = (p: string): string => join(ROOT, 'fixtures', p)
const work = mkdtempSync(join(tmpdir(), 'fuzz-'))
let serial = 0

/** A case directory holding `files` (name -> bytes); the command runs there. */
function caseDir(files: Record<string, Buffer>): string {
  const dir = join(work, `case-${String(serial++).padStart(4, '0')}`)
  mkdirSync(dir)
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes)
  return dir
}

function listing(dir: string, pre = ''): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? [`${pre}${n}/`, ...listing(join(dir, n), `${pre}${n}/`)] : [`${pre}${n}`]))
}

const TEMP = /\.tmp-\d+-|\.part$/

// --- Seeds ---
const SMALL_TRACE = F('replay/small.csv')
const seedCsv = readFileSync(F('all-kinds.csv'))
const seedJsonl = readFileSync(F('all-kinds.jsonl'))
const seedHand = readFileSync(F('handwritten.csv'))
const samples = readdirSync(F('qemu/samples')).filter((f) => f.startsWith('precopy-src-'))
const seedLog = Buffer.from(
  samples
    .flatMap((f) => readFileSync(F(`qemu/samples/${f}`), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .sort((a, b) => Number(a.split('@')[1]?.split(':')[0]) - Number(b.split('@')[1]?.split(':')[0]))
    .join('\n') + '\n',
)
const seedSpec = readFileSync(F('synth/small.json'))
const seedStats = readFileSync(F('qemu/01-idle-pfnmap/final-src.json'))
const seedLab = readFileSync(F('qemu/01-idle-pfnmap/config.json'))
const seedConfig = Buffer.from(JSON.stringify({'max-bandwidth': '256MiB/s', 'downtime-limit': '300ms', 'stop-policy': 'qemu'}, null, 2))
const seedScenarios = Buffer.from(JSON.stringify({baseline: 'a', settings: {'downtime-limit': '300ms'}, scenarios: [{name: 'a', settings: {}}, {name: 'b', settings: {'max-bandwidth': '1GiB/s'}}]}, null, 2))

function traceCases(): Case[] {
  const cases: Case[] = []
  const seeds: [string, Buffer][] = [
    ['t.csv', seedCsv],
    ['t.jsonl', seedJsonl],
    ['h.csv', seedHand],
  ]
  const commands = (f: string): string[][] => [
    ['validate', f, '--max-errors', '1'],
    ['inspect', f],
    ['convert', f, 'out.jsonl.gz'],
    ['convert', f, 'out.csv'],
    ['replay', f],
    ['replay', f, '--out', 'tables', '--format', 'json'],
  ]
  for (let i = 0; i < PER_FAMILY * 2; i++) {
    const [name, seed] = pick(seeds)
    const gz = random() < 0.2
    let bytes = mutateN(seed, name.endsWith('.jsonl'))
    // gzip: either the mutated text compressed, or the compressed bytes mutated.
    if (gz) bytes = random() < 0.5 ? gzipSync(bytes) : mutate(gzipSync(seed), false)
    const file = gz ? `${name}.gz` : name
    cases.push({name: `trace ${file}`, cwd: caseDir({[file]: bytes}), argv: pick(commands(file))})
  }
  return cases
}

function importCases(): Case[] {
  const cases: Case[] = []
  for (let i = 0; i < PER_FAMILY; i++) {
    const which = int(4)
    const files: Record<string, Buffer> = {'trace.log': which === 0 ? mutateN(seedLog, false) : seedLog}
    const argv = ['import:qemu', 'trace.log', '--out', pick(['o.csv', 'o.jsonl.gz'])]
    if (which === 1) {
      files['stats.json'] = mutateN(seedStats, true)
      argv.push('--stats', 'stats.json')
    } else if (which === 2) {
      files['config.json'] = mutateN(seedLab, true)
      argv.push('--workload', 'config.json')
    } else if (which === 3) {
      files['layout.json'] = mutateN(Buffer.from(seedCsv.toString().split('\n')[0]!.slice(2)), true)
      argv.push('--layout', 'layout.json')
    }
    if (which === 0 && random() < 0.3) files['trace.log'] = gzipSync(files['trace.log']!)
    cases.push({name: `import qemu (${['log', 'stats', 'workload', 'layout'][which]})`, cwd: caseDir(files), argv})
  }
  return cases
}

function sideFileCases(): Case[] {
  const cases: Case[] = []
  for (let i = 0; i < PER_FAMILY * 2; i++) {
    switch (int(4)) {
      case 0:
        cases.push({name: 'generate --spec', cwd: caseDir({'spec.json': mutateN(seedSpec, true)}), argv: ['generate', '--spec', 'spec.json', '--out', 'g.csv', '--max-events', '100000']})
        break
      case 1:
        cases.push({name: 'replay --config', cwd: caseDir({'c.json': mutateN(seedConfig, true)}), argv: ['replay', SMALL_TRACE, '--config', 'c.json']})
        break
      case 2:
        cases.push({name: 'compare --scenarios', cwd: caseDir({'s.json': mutateN(seedScenarios, true)}), argv: ['compare', SMALL_TRACE, '--scenarios', 's.json', '--jobs', '1']})
        break
      default:
        cases.push({name: 'replay --expect', cwd: caseDir({'e.json': mutateN(seedStats, true)}), argv: ['replay', SMALL_TRACE, '--expect', 'e.json']})
    }
  }
  return cases
}

function shardCases(shard: Buffer, other: Buffer): Case[] {
  return Array.from({length: PER_FAMILY / 2}, () => ({name: 'merge', cwd: caseDir({'a.json': mutateN(shard, true), 'b.json': other}), argv: ['merge', 'a.json', 'b.json', '--format', pick(['text', 'json', 'md'])]}))
}

/** Settings keys to feed nonsense (which values are accepted is the settings' own business: here only how a refusal looks). */
const SETTING_KEYS = ['max-bandwidth', 'link-bandwidth', 'downtime-limit', 'x-clear-bitmap-shift', 'lazy-clear', 'stop-policy', 'clear-policy', 'dirty-log', 'ring-size', 'max-iterations', 'time-cap', 'start-at', 'trace-end', 'vfio-tracking', 'postcopy-after', 'postcopy-at', 'socket-buffer', 'cpu-throttle-initial', 'dirty-limit', 'no-such-key', '']

const weird = (): string => (random() < 0.5 ? pick(NASTY_STRINGS) : pick(NASTY_NUMBERS))

function flagCases(): Case[] {
  const gen = (): string[] => {
    const flags = ['--memory', '--duration', '--rate', '--vcpus', '--seed', '--migrate-at', '--mig-params', '--postcopy-at', '--populated', '--param', '--max-events']
    const argv = ['generate', pick(['uniform', 'hotset', 'idle', 'sequential']), '--out', pick(['g.csv', 'g.jsonl.gz', 'g', 'g.csv/']), '--duration', '10ms', '--max-events', '50000']
    for (let k = 1 + int(2); k > 0; k--) {
      const f = pick(flags)
      argv.push(f, f === '--param' ? `${pick(['rate', 'hotSize', 'nope', 'readRatio'])}=${weird()}` : weird())
    }
    return argv
  }
  const makers: (() => string[])[] = [
    gen,
    () => ['grid', SMALL_TRACE, '--jobs', '1', '--bandwidth', pick(['1Gbit/s', weird()]) + pick(['', ',', `,${weird()}`]), '--downtime', pick(['300ms', weird()])],
    () => ['compare', SMALL_TRACE, '--jobs', '1', '--variant', `${pick(['a', weird()])}:${pick(['max-bandwidth', 'downtime-limit', weird()])}=${pick(['1GiB/s', '300ms'])}`, '--variant', 'b', ...(random() < 0.5 ? ['--fail-if', weird()] : ['--baseline', weird()])],
    () => ['inspect', SMALL_TRACE, '--bucket', weird()],
    () => ['replay', SMALL_TRACE, '--set', `${pick(SETTING_KEYS)}=${weird()}`, ...(random() < 0.5 ? ['--set', `${pick(SETTING_KEYS)}=${weird()}`] : [])],
    () => ['validate', SMALL_TRACE, '--max-errors', weird()],
    () => ['replay', SMALL_TRACE, pick(['--format', '--driver', '--out', '--table']), weird()],
    () => ['report', SMALL_TRACE, '--out', pick(['r.html', weird()]), ...(random() < 0.5 ? ['--csv-dir', weird()] : [])],
    () => ['import:qemu', weird(), '--out', 'o.csv'],
    () => ['convert', weird(), 'o.csv'],
  ]
  return Array.from({length: PER_FAMILY * 2}, () => {
    const argv = pick(makers)()
    return {name: `flags ${argv[0]}`, cwd: caseDir({}), argv}
  })
}

test('fuzz: every failure is one line, exit 2, no stack trace, nothing left behind', async (t) => {
  // A real pair of shards to mutate (the first runner pass).
  const shardDir = caseDir({})
  const [s1, s2] = await runMany([
    {name: 'shard', cwd: shardDir, argv: ['grid', SMALL_TRACE, '--bandwidth', '1Gbit/s,10Gbit/s', '--downtime', '300ms', '--shard', '1/2', '--jobs', '1']},
    {name: 'shard', cwd: shardDir, argv: ['grid', SMALL_TRACE, '--bandwidth', '1Gbit/s,10Gbit/s', '--downtime', '300ms', '--shard', '2/2', '--jobs', '1']},
  ])
  t.is(s1?.code, 0, s1?.stderr)
  t.is(s2?.code, 0, s2?.stderr)
  const cases = [...traceCases(), ...importCases(), ...sideFileCases(), ...shardCases(Buffer.from(s1!.stdout), Buffer.from(s2!.stdout)), ...flagCases()]
  const before = new Map(cases.map((c) => [c.cwd, listing(c.cwd)]))
  const outcomes = await runMany(cases)
  t.is(outcomes.length, cases.length, 'the runner stopped early (a hang or a process exit)')

  const failures: string[] = []
  const tally = {ok: 0, userError: 0}
  cases.forEach((c, i) => {
    const o = outcomes[i]
    if (!o) return
    const problems: string[] = []
    if (o.crash !== undefined) problems.push(`crash: ${o.crash.split('\n').slice(0, 3).join(' | ')}`)
    else if (o.code === 0) tally.ok++
    else if (o.code === 2) {
      tally.userError++
      const lines = o.stderr.split('\n').filter((l) => l !== '')
      if (lines.length < 1 || lines.length > 2) problems.push(`${lines.length} lines on stderr`)
      if (!lines[0]?.startsWith('migtrace: ')) problems.push(`stderr does not start with 'migtrace: ': ${JSON.stringify(o.stderr.slice(0, 200))}`)
    } else problems.push(`exit ${o.code}`)
    if (/\n\s+at \S+ \(|^\s+at /m.test(o.stderr + o.stdout)) problems.push('a stack trace in the output')
    const left = listing(c.cwd).filter((f) => !before.get(c.cwd)!.includes(f))
    if (left.some((f) => TEMP.test(f))) problems.push(`temp files left: ${left.join(', ')}`)
    else if (o.code !== 0 && left.length > 0) problems.push(`output left after a failure: ${left.join(', ')}`)
    if (problems.length > 0) failures.push(`${c.name} in ${c.cwd}: ${c.argv.join(' ')} -> ${problems.join('; ')}`)
    else rmSync(c.cwd, {recursive: true, force: true})
  })
  t.log(`${cases.length} fuzz cases: ${tally.ok} accepted, ${tally.userError} refused with one line, ${failures.length} failures; slowest ${Math.max(...outcomes.map((o) => o.ms))} ms`)
  t.deepEqual(failures, [])
  // The fuzz must keep biting: most mutated inputs are refused, and some still pass.
  t.true(tally.userError >= cases.length / 2, `only ${tally.userError} of ${cases.length} cases were refused`)
  t.true(tally.ok >= 5, `only ${tally.ok} cases succeeded`)
  if (failures.length === 0) rmSync(work, {recursive: true, force: true})
})
