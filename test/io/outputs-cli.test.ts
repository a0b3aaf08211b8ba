/**
 * Issue 17, items 2-6 end to end through the built CLI: bad output paths, a full disk and a
 * read-only file system (a small tmpfs in a private mount namespace), interrupts, unbounded
 * generate specs, and import qemu given something that is not a QEMU log. Each failure: exit 2,
 * one line on stderr, and nothing left behind (no temp file, no partial output, no new directory).
 */
import test from 'ava'
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ROOT, runCli, type CliResult} from '../helpers/cli.js'

const SMALL = join(ROOT, 'fixtures/replay/small.csv')
const CONVERGING = join(ROOT, 'traces/converging.csv.gz')
const QEMU_LOG = join(ROOT, 'fixtures/qemu/01-idle-pfnmap/trace-src.log.gz')

const fresh = (): string => mkdtempSync(join(tmpdir(), 'outputs-'))

/** Everything under dir, recursively, as relative paths (hidden temp files included). */
function tree(dir: string, pre = ''): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((d) => (d.isDirectory() ? [`${pre}${d.name}/`, ...tree(join(dir, d.name), `${pre}${d.name}/`)] : [`${pre}${d.name}`])).sort()
}

function oneLine(t: {is: (a: unknown, b: unknown, m?: string) => void; regex: (a: string, r: RegExp) => void}, r: CliResult, want: string | RegExp): void {
  t.is(r.code, 2, r.stderr)
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  t.is(lines.length, 1, r.stderr)
  if (typeof want === 'string') t.is(lines[0], want)
  else t.regex(lines[0]!, want)
}

test('bad output paths: one line, exit 2, nothing written', async (t) => {
  const dir = fresh()
  mkdirSync(join(dir, 'adir'))
  writeFileSync(join(dir, 'afile'), 'x')
  const cases: [string[], string][] = [
    [['generate', 'uniform', '--duration', '1ms', '--out', 'adir.csv/'], "adir.csv/: cannot tell the trace format from the file name (expected a name ending in .csv, .jsonl, .csv.gz, .jsonl.gz or .arrow)"],
    [['generate', 'uniform', '--duration', '1ms', '--out', 'afile/x.csv'], 'afile/x.csv: cannot write the trace: afile is a file, not a directory (expected a path inside a directory)'],
    [['convert', SMALL, 'afile/sub/x.jsonl'], 'afile/sub/x.jsonl: cannot write the trace: afile is a file, not a directory (expected a path inside a directory)'],
    [['replay', SMALL, '--out', 'afile'], "afile: field '--out': cannot write the replay tables: is a file, not a directory (expected a directory (created when missing))"],
    [['report', SMALL, '--out', 'adir'], "adir: field '--out': cannot write the HTML report: is a directory (expected a file name)"],
    [['report', SMALL, '--out', 'afile/r.html'], "afile/r.html: field '--out': cannot write the HTML report: afile is a file, not a directory (expected a path inside a directory)"],
    [['report', SMALL, '--out', 'r.html', '--csv-dir', 'afile'], "afile: field '--csv-dir': cannot write the report's CSV tables: is a file, not a directory (expected a directory (created when missing))"],
    [['grid', SMALL, '--bandwidth', '1Gbit/s', '--downtime', '1s', '--html', 'adir'], "adir: field '--html': cannot write the HTML page: is a directory (expected a file name)"],
    [['import', 'qemu', QEMU_LOG, '--out', 'adir/'], "adir/: field '--out': cannot tell the trace format from the file name (expected a name ending in .csv, .jsonl, .csv.gz, .jsonl.gz or .arrow)"],
    [['import', 'qemu', QEMU_LOG, '--out', 'afile/x.csv'], "afile/x.csv: field '--out': cannot write the trace: afile is a file, not a directory (expected a path inside a directory)"],
    [['import', 'qemu', 'adir', '--out', 'x.csv'], 'adir: is a directory, not a QEMU trace log (expected a QEMU trace log (-trace ... -D FILE), optionally gzip-compressed)'],
  ]
  for (const [args, want] of cases) {
    const before = tree(dir)
    const r = await runCli(args, {cwd: dir})
    oneLine(t, r, `migtrace: ${want}`)
    t.deepEqual(tree(dir), before, args.join(' '))
  }
})

test('merge --html naming a directory: one line before anything is written', async (t) => {
  const dir = fresh()
  mkdirSync(join(dir, 'page.html'))
  const shard = await runCli(['grid', SMALL, '--bandwidth', '1Gbit/s', '--downtime', '1s', '--shard', '1/1', '--jobs', '1'], {cwd: dir})
  t.is(shard.code, 0, shard.stderr)
  writeFileSync(join(dir, 's.json'), shard.stdout)
  const r = await runCli(['merge', 's.json', '--html', 'page.html'], {cwd: dir})
  oneLine(t, r, "migtrace: page.html: field '--html': cannot write the HTML page: is a directory (expected a file name)")
  t.deepEqual(tree(dir), ['page.html/', 's.json'])
})

test('a missing output directory is created, and removed again when the output fails', async (t) => {
  const dir = fresh()
  const ok = await runCli(['generate', 'uniform', '--duration', '1ms', '--out', 'new/sub/x.csv'], {cwd: dir})
  t.is(ok.code, 0, ok.stderr)
  t.deepEqual(tree(dir), ['new/', 'new/sub/', 'new/sub/x.csv'])
  // Past the event limit half-way: the trace and the directories made for it go.
  const r = await runCli(['generate', 'uniform', '--rate', '2000', '--duration', '1s', '--max-events', '1500', '--out', 'other/deep/x.csv'], {cwd: dir})
  oneLine(t, r, "migtrace: field '--max-events': the spec asks for more events than the limit (expected at most 1500 events (raise the limit with --max-events N), found 2000)")
  const r2 = await runCli(['replay', CONVERGING, '--out', 'tables/a/b', '--format', 'csv'], {cwd: dir})
  t.is(r2.code, 0, r2.stderr)
  t.deepEqual(tree(join(dir, 'tables')), ['a/', 'a/b/', 'a/b/causes.csv', 'a/b/headline.csv', 'a/b/iterations.csv', 'a/b/send-counts.csv'])
})

test('report --out an existing directory leaves no <dir>-data behind', async (t) => {
  const dir = fresh()
  mkdirSync(join(dir, 'r'))
  const r = await runCli(['report', SMALL, '--out', 'r'], {cwd: dir})
  oneLine(t, r, "migtrace: r: field '--out': cannot write the HTML report: is a directory (expected a file name)")
  t.deepEqual(tree(dir), ['r/'])
})

test('unbounded generate specs are refused up front, with the estimate', async (t) => {
  const dir = fresh()
  writeFileSync(join(dir, 'huge.json'), JSON.stringify({seed: 1, duration: '1000h', memory: '1G', vcpus: 4, workloads: [{workload: 'uniform', params: {rate: 18e9}}]}))
  const r = await runCli(['generate', '--spec', 'huge.json', '--out', 'h.csv'], {cwd: dir})
  oneLine(t, r, "migtrace: huge.json: field '--max-events': the spec asks for more events than the limit (expected at most 1.00e9 events (raise the limit with --max-events N), found 6.48e16)")
  const r2 = await runCli(['generate', 'uniform', '--rate', '1e308', '--out', 'h.csv'], {cwd: dir})
  oneLine(t, r2, "migtrace: field '--max-events': the spec asks for more events than the limit (expected at most 1.00e9 events (raise the limit with --max-events N), found more than 1e308)")
  const r3 = await runCli(['generate', 'uniform', '--rate', '2000', '--duration', '1s', '--max-events', '2000', '--out', 'h.csv'], {cwd: dir})
  t.is(r3.code, 0, r3.stderr)
  t.deepEqual(tree(dir), ['h.csv', 'huge.json'])
})

test('import qemu refuses a file with no QEMU trace-event line', async (t) => {
  const dir = fresh()
  writeFileSync(join(dir, 'empty.log'), '')
  writeFileSync(join(dir, 'readme.md'), '# A README\n\nSome words here.\nmore words\n')
  writeFileSync(join(dir, 'x.json'), '{"status": "completed"}\n')
  writeFileSync(join(dir, 'bin.dat'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0x0a, 0x41]))
  const example = "(expected lines such as '1234@1700000000.123456:migrate_set_state new state active', from -trace ... -D FILE)"
  const cases: [string, string][] = [
    ['empty.log', `empty.log: empty file: no QEMU trace-event line ${example}`],
    ['readme.md', `readme.md: no QEMU trace-event line in 4 lines ${example}`],
    ['x.json', `x.json: no QEMU trace-event line in 1 line ${example}`],
    [SMALL, `${SMALL}: no QEMU trace-event line in 3974 lines ${example}`],
    ['bin.dat', 'bin.dat:1: binary data, not a text log (expected a QEMU trace log (-trace ... -D FILE), optionally gzip-compressed)'],
    ['/dev/null', '/dev/null: not a regular file (expected a QEMU trace log (-trace ... -D FILE), optionally gzip-compressed, as a file (the log is read twice))'],
  ]
  for (const [log, want] of cases) {
    const r = await runCli(['import', 'qemu', log, '--out', 'out.csv'], {cwd: dir})
    oneLine(t, r, `migtrace: ${want}`)
  }
  t.deepEqual(tree(dir), ['bin.dat', 'empty.log', 'readme.md', 'x.json'])
})

// --- A full disk and a read-only file system: a 64 KiB tmpfs in a private mount namespace. ---

const canMount = spawnSync('unshare', ['-r', '-m', 'sh', '-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d" && rmdir "$d"']).status === 0
const onTmpfs = canMount ? test : test.skip
if (!canMount) console.log('outputs-cli: unshare -r -m is not available here: the full-disk and read-only tests are skipped')

/** Run the CLI with cwd on a fresh tmpfs (options: size=64k or ro); returns its result and what is left on the tmpfs. */
function runOnTmpfs(args: string[], options: string): Promise<CliResult & {left: string[]}> {
  const dir = fresh()
  const mnt = join(dir, 'mnt')
  mkdirSync(mnt)
  const cli = [process.execPath, join(ROOT, 'bin/run.js'), ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ')
  const script = `mount -t tmpfs -o ${options} tmpfs '${mnt}' && cd '${mnt}' && ${cli}; rc=$?; echo "left:$(ls -A -R .)" >&3; exit $rc`
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-r', '-m', 'sh', '-c', script], {env: {...process.env, NODE_ENV: 'production'}, stdio: ['ignore', 'pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    let fd3 = ''
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    ;(child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (d: string) => (fd3 += d))
    child.on('error', reject)
    child.on('close', (code) => {
      const left = fd3.replace(/^left:/, '').split('\n').map((s) => s.trim()).filter((s) => s !== '' && s !== '.:')
      resolve({code: code ?? -1, stdout, stderr, left})
    })
  })
}

const FULL: [string, string[], string, string?][] = [
  ['generate to .csv.gz', ['generate', 'uniform', '--duration', '2s', '--out', 'g.csv.gz'], 'g.csv.gz: cannot write the trace: no space left on the device'],
  ['generate to .csv', ['generate', 'uniform', '--duration', '2s', '--out', 'sub/g.csv'], 'sub/g.csv: cannot write the trace: no space left on the device'],
  ['convert to .jsonl', ['convert', SMALL, 'c.jsonl'], 'c.jsonl: cannot write the trace: no space left on the device'],
  ['import qemu', ['import', 'qemu', QEMU_LOG, '--out', 'i.csv'], 'i.csv: cannot write the trace: no space left on the device'],
  ['report', ['report', CONVERGING, '--out', 'r.html'], "^.*: field '--out': cannot write the HTML report: no space left on the device$"],
  ['replay --out', ['replay', CONVERGING, '--out', 'rep'], "^rep/[a-z-]+\\.(csv|txt): field '--out': cannot write the replay tables: no space left on the device$", 'size=8k'],
]

for (const [name, args, want, size] of FULL)
  onTmpfs(`full disk: ${name} exits 2 with one line and leaves nothing`, async (t) => {
    const r = await runOnTmpfs(args, size ?? 'size=64k')
    oneLine(t, r, want.startsWith('^') ? new RegExp(want.replace('^', '^migtrace: ')) : `migtrace: ${want}`)
    t.deepEqual(r.left, [])
  })

onTmpfs('read-only file system: generate and report say so before any work', async (t) => {
  const g = await runOnTmpfs(['generate', 'uniform', '--out', 'new/g.csv'], 'ro')
  oneLine(t, g, 'migtrace: new/g.csv: cannot write the trace: read-only file system (.)')
  const r = await runOnTmpfs(['report', CONVERGING, '--out', 'r.html'], 'ro')
  oneLine(t, r, "migtrace: r.html: field '--out': cannot write the HTML report: read-only file system (.)")
})

// --- Interrupts ---

/** Whether process pid has `name` open (Linux /proc): a command opens its trace after its signal handlers are installed. */
function hasOpen(pid: number | undefined, name: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).endsWith(`/${name}`)
      } catch {
        return false
      }
    })
  } catch {
    return false
  }
}

async function interrupt(t: {true: (v: boolean, m?: string) => void; is: (a: unknown, b: unknown, m?: string) => void; deepEqual: (a: unknown, b: unknown, m?: string) => void}, args: string[], dir: string, signal: 'SIGINT' | 'SIGTERM', ready: (pid: number | undefined) => boolean): Promise<void> {
  const before = tree(dir).filter((f) => !f.startsWith('.'))
  const child = spawn(process.execPath, [join(ROOT, 'bin/run.js'), ...args], {cwd: dir, env: {...process.env, NODE_ENV: 'production'}, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  const closed = new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])))
  // Polled every 5 ms for up to 30 s: a replay from CSV now holds its trace open for only a few
  // hundred ms, which a busier poll under a loaded test run could miss.
  for (let i = 0; i < 6000 && !ready(child.pid); i++) await new Promise((r) => setTimeout(r, 5))
  t.true(ready(child.pid), `${args[0]} never reached the point to interrupt`)
  child.kill(signal)
  const [code, sig] = await closed
  t.true(sig === signal || code === (signal === 'SIGINT' ? 130 : 143), `exit ${code} signal ${sig}`)
  t.is(stderr.trim().split('\n').length, 1, stderr)
  t.true(stderr.startsWith(`migtrace: interrupted by ${signal}`), stderr)
  t.deepEqual(tree(dir), before)
}

const hasTemp = (dir: string) => (): boolean => existsSync(dir) && tree(dir).some((f) => /\.tmp-\d+-/.test(f))

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} during generate (gzip): the temp file is removed`, async (t) => {
    const dir = fresh()
    await interrupt(t, ['generate', 'uniform', '--rate', '1000000', '--duration', '1000s', '--out', 'big/g.csv.gz'], dir, signal, hasTemp(dir))
  })
}

test('SIGINT during convert, SIGTERM during report and replay --out: nothing is left', async (t) => {
  const dir = fresh()
  const g = await runCli(['generate', 'uniform', '--rate', '400000', '--duration', '12s', '--migrate-at', '1ms', '--out', 'in.csv'], {cwd: dir})
  t.is(g.code, 0, g.stderr)
  await interrupt(t, ['convert', 'in.csv', 'out.jsonl.gz'], dir, 'SIGINT', hasTemp(dir))
  // The replay of 4.8x10^6 events runs for a second or more before anything is written: interrupt it once
  // the command reads its trace (its handlers were installed before, when the command started).
  await interrupt(t, ['report', 'in.csv', '--out', 'r/r.html'], dir, 'SIGTERM', (pid) => hasOpen(pid, 'in.csv'))
  await interrupt(t, ['replay', 'in.csv', '--out', 'tables'], dir, 'SIGTERM', (pid) => hasOpen(pid, 'in.csv'))
})
