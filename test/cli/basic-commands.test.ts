// The built CLI run as a child process (bin/run.js -> dist), as a user runs it.
import {existsSync, mkdtempSync, readFileSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'
import {ALL_KINDS} from '../../scripts/make-fixtures.js'

test('migtrace --help lists the commands', async (t) => {
  const r = await runCli(['--help'])
  t.is(r.code, 0)
  for (const cmd of ['validate', 'inspect', 'convert']) t.regex(r.stdout, new RegExp(`^  ${cmd} `, 'm'))
})

test('validate: a valid trace exits 0 with a one-line verdict', async (t) => {
  const r = await runCli(['validate', 'fixtures/all-kinds.csv.gz'])
  t.is(r.code, 0)
  t.is(r.stdout, `fixtures/all-kinds.csv.gz: valid (${ALL_KINDS.length} events, csv, gzip)\n`)
  t.is(r.stderr, '')
})

test('validate: a bad trace exits 2 with one line on stderr and no stack', async (t) => {
  const r = await runCli(['validate', 'fixtures/bad/crosses-slot.csv'])
  t.is(r.code, 2)
  t.is(r.stdout, '')
  t.is(r.stderr, "migtrace: fixtures/bad/crosses-slot.csv:4: field 'len': range crosses the end of memslot 0 (expected an end at or below 0x40000000, found an end at 0x40001000)\n")
})

test('validate --json lists the errors for tools, exit 2', async (t) => {
  const r = await runCli(['validate', 'fixtures/bad/unknown-kind.csv', '--json'])
  t.is(r.code, 2)
  const j = JSON.parse(r.stdout) as {valid: boolean; events: number; errors: Record<string, unknown>[]}
  t.false(j.valid)
  t.is(j.events, 1)
  t.deepEqual(j.errors, [
    {
      message: "fixtures/bad/unknown-kind.csv:4: field 'kind': unknown event kind (expected a known kind (did you mean 'write'?), found 'wrte')",
      file: 'fixtures/bad/unknown-kind.csv',
      line: 4,
      field: 'kind',
      expected: "a known kind (did you mean 'write'?)",
      found: "'wrte'",
    },
  ])
  const ok = await runCli(['validate', 'fixtures/all-kinds.jsonl', '--json'])
  t.is(ok.code, 0)
  t.like(JSON.parse(ok.stdout), {valid: true, events: ALL_KINDS.length, errors: [], format: 'jsonl'})
})

test('validate --max-errors stops early and says so', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-cli-'))
  const p = join(dir, 'bad.csv')
  const {writeFileSync} = await import('node:fs')
  writeFileSync(p, '# {"format":"migtrace","version":1}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n1,write,5,,,0x0,,8,,,,,\n2,write,6,,,0x0,,8,,,,,\n3,write,7,,,0x0,,8,,,,,\n')
  const r = await runCli(['validate', p, '--max-errors', '2'])
  t.is(r.code, 2)
  const lines = r.stderr.trimEnd().split('\n')
  t.is(lines.length, 3)
  t.is(lines[1], `migtrace: ${p}:4: field 'vcpu': no such vCPU (expected 0..0 (the header has vcpus: 1), found 6)`)
  t.is(lines[2], `migtrace: ${p}: 2 errors (stopped after 2; use --max-errors to see more)`)
})

test('a flag error exits 2', async (t) => {
  const r = await runCli(['validate', 'fixtures/all-kinds.csv', '--max-errors', '0'])
  t.is(r.code, 2)
  t.regex(r.stderr, /Expected an integer greater than or equal to 1/)
  const j = await runCli(['validate', 'fixtures/all-kinds.csv', '--max-errors', 'x', '--json'])
  t.is(j.code, 2)
})

test('missing file and directory: one line, exit 2, for every command', async (t) => {
  for (const cmd of [['validate'], ['inspect'], ['convert']]) {
    const out = join(mkdtempSync(join(tmpdir(), 'migtrace-cli-')), 'o.csv')
    const args = cmd[0] === 'convert' ? [...cmd, 'fixtures/nope.csv', out] : [...cmd, 'fixtures/nope.csv']
    const r = await runCli(args)
    t.is(r.code, 2, cmd[0])
    t.is(r.stderr, 'migtrace: fixtures/nope.csv: no such file\n', cmd[0])
  }
  const d = await runCli(['inspect', 'fixtures'])
  t.is(d.code, 2)
  t.is(d.stderr, 'migtrace: fixtures: is a directory, not a trace file (expected a .csv or .jsonl trace (optionally .gz))\n')
})

test('inspect --json has the figures computed by hand', async (t) => {
  const r = await runCli(['inspect', 'fixtures/inspect-small.csv', '--json'])
  t.is(r.code, 0, r.stderr)
  const j = JSON.parse(r.stdout) as Record<string, unknown>
  t.like(j, {
    events: 10,
    durationNs: 10_000_000,
    distinctPagesWritten: 5,
    guestMemoryBytes: 2 ** 30,
    vcpus: 2,
    eventsByKind: {write: 3, read: 1, dma_write: 1, vhost_write: 1, mig_start: 1, mig_complete: 1, vm_stop: 1, page_sent: 1},
    writeRate: {bucketNs: 500_000},
  })
})

test('inspect text and --csv', async (t) => {
  const r = await runCli(['inspect', 'fixtures/inspect-small.csv'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^events {6}10 over 10\.0 ms \(t_ns 0 \.\. 10000000\)$/m)
  t.regex(r.stdout, /^written {5}5 distinct pages \(20\.0 KiB, 0\.0% of RAM\) by 5 writes of 12\.0 KiB$/m)
  t.regex(r.stdout, /write rate over time \(buckets of 500.0 us\)/)
  const c = await runCli(['inspect', 'fixtures/inspect-small.csv', '--csv', '--table', 'kinds'])
  t.is(c.code, 0, c.stderr)
  t.is(c.stdout, 'kind,group,events\nwrite,guest,3\nread,guest,1\ndma_write,dirtier,1\nvhost_write,dirtier,1\nmig_start,migration,1\nmig_complete,migration,1\nvm_stop,migration,1\npage_sent,migration,1\n')
  const b = await runCli(['inspect', 'fixtures/inspect-small.csv', '--csv', '--bucket', '5ms'])
  t.is(b.stdout, 'start_ns,bucket_ns,writes,bytes,new_pages,bytes_per_s\n0,5000000,5,12305,5,2461000\n5000000,5000000,0,0,0,0\n10000000,5000000,0,0,0,0\n')
  const bad = await runCli(['inspect', 'fixtures/inspect-small.csv', '--bucket', 'soon'])
  t.is(bad.code, 2)
  t.is(bad.stderr, "migtrace: field '--bucket': not a valid duration (expected a time such as 300ms, 30s, 1.5s or 2min, found 'soon')\n")
})

test('convert: round trip through the CLI, and no output on a bad input', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-cli-'))
  const r = await runCli(['convert', 'fixtures/all-kinds.csv', join(dir, 'a.jsonl.gz')])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, `${join(dir, 'a.jsonl.gz')}: ${ALL_KINDS.length} events written\n`)
  const back = await runCli(['convert', join(dir, 'a.jsonl.gz'), join(dir, 'b.csv')])
  t.is(back.code, 0)
  t.is(readFileSync(join(dir, 'b.csv'), 'utf8'), readFileSync('fixtures/all-kinds.csv', 'utf8'))
  const bad = await runCli(['convert', 'fixtures/bad/truncated.csv', join(dir, 'c.csv')])
  t.is(bad.code, 2)
  t.is(bad.stderr.split('\n').length, 2)
  t.false(existsSync(join(dir, 'c.csv')))
  t.deepEqual(readdirSync(dir).sort(), ['a.jsonl.gz', 'b.csv'])
})

test('the example trace in README.md validates (fixtures/handwritten.csv is a copy)', async (t) => {
  const doc = readFileSync('README.md', 'utf8')
  const m = /<!-- handwritten:start -->\n```csv\n([\s\S]*?)```\n<!-- handwritten:end -->/.exec(doc)
  t.truthy(m, 'the doc has the marked example')
  t.is(readFileSync('fixtures/handwritten.csv', 'utf8'), m![1]!)
  const r = await runCli(['validate', 'fixtures/handwritten.csv'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^fixtures\/handwritten\.csv: valid \(\d+ events, csv\)\n$/)
})
