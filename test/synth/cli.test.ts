/** `migtrace generate` end to end, through the built CLI. */
import {existsSync, mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {openTrace} from '../../src/trace/read/index.js'
import {runCli} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'synth-cli-'))

async function countEvents(path: string): Promise<number> {
  let n = 0
  for await (const b of (await openTrace(path)).events()) n += b.length
  return n
}

test('generate <workload> with flags writes a valid trace and says what it wrote', async (t) => {
  const out = join(dir, 'u.csv')
  const r = await runCli(['generate', 'uniform', '--memory', '256M', '--duration', '500ms', '--rate', '1000', '--vcpus', '2', '--seed', '3', '--migrate-at', '100ms', '--out', out])
  t.is(r.stderr, '')
  t.is(r.code, 0)
  t.is(r.stdout, `wrote 501 events (500.0 ms of guest time, seed 3) to ${out}\n`)
  t.is(await countEvents(out), 501)
  const tr = await openTrace(out)
  t.is(tr.header.vcpus, 2)
  t.is(tr.header.seed, 3)
  t.is(tr.header.ramBlocks[0]!.size, 256 * 2 ** 20)
})

test('--param, --populated and --gzip', async (t) => {
  const out = join(dir, 'h.jsonl')
  const r = await runCli(['generate', 'hotset', '--memory', '128M', '--duration', '200ms', '--param', 'hotSize=8M', '-p', 'hotShare=0.5', '--populated', '0.5', '--gzip', '--out', out])
  t.is(r.code, 0, r.stderr)
  t.false(existsSync(out))
  t.true(existsSync(`${out}.gz`))
  const tr = await openTrace(`${out}.gz`)
  t.deepEqual(tr.header.populated, [{gpa: 0, len: 64 * 2 ** 20}])
  t.deepEqual((tr.header.generator as {spec: {workloads: unknown}}).spec.workloads, [{workload: 'hotset', params: {hotSize: '8M', hotShare: '0.5'}}])
})

test('--spec: a composition, byte-identical when run twice, different with --seed', async (t) => {
  const a = join(dir, 'a.csv')
  const b = join(dir, 'b.csv')
  const c = join(dir, 'c.csv')
  for (const [out, extra] of [[a, []], [b, []], [c, ['--seed', '22']]] as const) {
    const r = await runCli(['generate', '--spec', 'fixtures/synth/small.json', ...extra, '--out', out])
    t.is(r.code, 0, r.stderr)
  }
  t.true(readFileSync(a).equals(readFileSync(b)))
  t.false(readFileSync(a).equals(readFileSync(c)))
  // 400 ms: database 1600 + hotset 800 + DMA until 300 ms 150 + 4 MiB pinned in 512-page chunks
  // (2 pins, 2 unpins) + 1 map + mig_start
  t.is(await countEvents(a), 1600 + 800 + 150 + 2 + 2 + 1 + 1)
})

const ERRORS: [string, string[], string][] = [
  [
    'unknown workload parameter',
    ['generate', 'uniform', '--param', 'speed=3', '--out', 'x.csv'],
    "migtrace: field '--param speed': unknown parameter (expected one of rate, offset, span, readRatio, found 'speed')\n",
  ],
  ['bad --rate', ['generate', 'uniform', '--rate', 'lots', '--out', 'x.csv'], "migtrace: field '--rate': invalid flag value (expected a number >= 0, found 'lots')\n"],
  ['bad --duration', ['generate', 'uniform', '--duration', '5 parsecs', '--out', 'x.csv'], "migtrace: field '--duration': not a valid duration (expected a time such as 300ms, 30s, 1.5s or 2min, found '5 parsecs')\n"],
  ['nothing to generate', ['generate', '--out', 'x.csv'], 'migtrace: nothing to generate (expected a workload (idle, uniform, sequential, once, hotset, zipf, phases, database, reads, dma-device, vhost-net, virtio-mem, malicious) or --spec FILE)\n'],
  ['bad output name', ['generate', 'idle', '--out', 'x.txt'], 'migtrace: x.txt: cannot tell the trace format from the file name (expected a name ending in .csv, .jsonl, .csv.gz, .jsonl.gz or .arrow)\n'],
  ['mig params without a migration', ['generate', 'idle', '--mig-params', 'max-bandwidth=1', '--out', 'x.csv'], "migtrace: field '--mig-params': migration parameters and postcopy need a migration (expected --migrate-at TIME as well)\n"],
]

for (const [name, args, stderr] of ERRORS) {
  test(`error: ${name} -> one line, exit 2`, async (t) => {
    const r = await runCli(args, {cwd: dir})
    t.is(r.stderr, stderr)
    t.is(r.code, 2)
    t.false(existsSync(join(dir, 'x.csv')))
  })
}

test('error: --spec combined with simple flags is refused by oclif (exit 2)', async (t) => {
  const r = await runCli(['generate', '--spec', 'fixtures/synth/small.json', '--memory', '1G', '--out', join(dir, 'y.csv')])
  t.is(r.code, 2)
  t.regex(r.stderr, /--memory=1G cannot also be provided when using --spec/)
})
