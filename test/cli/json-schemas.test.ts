// Every JSON output has a `schema` field and matches its zod type (src/schemas/outputs.ts), and the
// JSON Schemas in docs/schemas are the ones generated from those types (npm run schemas).
import {cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli, ROOT} from '../helpers/cli.js'
import {OUTPUT_SCHEMAS, jsonSchemaText, type OutputName} from '../../src/schemas/outputs.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-schemas-'))
test.after.always(() => rmSync(dir, {recursive: true, force: true}))

test('docs/schemas holds exactly the generated JSON Schemas (run npm run schemas after changing src/schemas)', (t) => {
  const names = Object.keys(OUTPUT_SCHEMAS) as OutputName[]
  t.deepEqual(readdirSync(join(ROOT, 'docs/schemas')).sort(), names.map((n) => `${n}.schema.json`).sort())
  for (const n of names) t.is(readFileSync(join(ROOT, 'docs/schemas', `${n}.schema.json`), 'utf8'), jsonSchemaText(n), `docs/schemas/${n}.schema.json is stale`)
})

test('a strict top level: an undeclared field is drift', (t) => {
  const ok = {schema: 'migtrace.convert/1', input: 'a.csv', output: 'b.jsonl', events: 3}
  t.true(OUTPUT_SCHEMAS.convert.safeParse(ok).success)
  t.false(OUTPUT_SCHEMAS.convert.safeParse({...ok, extra: 1}).success)
  t.false(OUTPUT_SCHEMAS.convert.safeParse({...ok, schema: 'migtrace.convert/2'}).success)
})

const T = 'traces/converging.csv.gz'
const Q = 'fixtures/qemu/02-moderate-random-pfnmap'
const cases: [OutputName, string[], number?][] = [
  ['validate', ['validate', 'fixtures/all-kinds.csv.gz', '--json']],
  ['validate', ['validate', 'fixtures/bad/unknown-kind.csv', '--json'], 2],
  ['inspect', ['inspect', 'fixtures/all-kinds.csv.gz', '--json']],
  ['convert', ['convert', 'fixtures/all-kinds.csv.gz', join(dir, 'c.jsonl'), '--json']],
  ['generate', ['generate', 'uniform', '--memory', '64M', '--duration', '200ms', '--rate', '1000', '--migrate-at', '10ms', '--out', join(dir, 'g.csv'), '--json']],
  ['import-kvm', ['import', 'kvm', 'fixtures/kvm/qemu-ring-2g.log', '--out', join(dir, 'k.csv.gz'), '--json']],
  ['import-qemu', ['import', 'qemu', `${Q}/trace-src.log.gz`, '--stats', `${Q}/final-src.json`, '--out', join(dir, 'q.csv.gz'), '--json']],
  ['trim', ['trim', T, join(dir, 'w.csv.gz'), '--from', '1s', '--to', '2s', '--json']],
  ['replay', ['replay', T, '--json']],
  ['replay', ['replay', 'traces/vfio-passthrough.csv.gz', '--json']],
  ['replay', ['replay', 'traces/virtio-mem.csv.gz', '--json', '--set', 'postcopy-after=1']],
  ['compare', ['compare', T, '--variant', 'a', '--variant', 'b:downtime-limit=50ms', '--fail-if', 'lostWrites>0', '--json', '--jobs', '1']],
  ['grid', ['grid', T, '--bandwidth', '1Gbit/s', '--downtime', '300ms', '--json', '--jobs', '1']],
  ['shard', ['grid', T, '--bandwidth', '1Gbit/s', '--downtime', '300ms,1s', '--shard', '1/2', '--jobs', '1']],
  ['report', ['report', T, '--out', join(dir, 'r.html'), '--json']],
  ['lab-table', ['lab', 'table', '--print', '--json']],
  ['error', ['replay', 'no-such-trace.csv', '--json'], 2],
  ['error', ['replay', '--json'], 2],
]

for (const [name, args, code] of cases) {
  test(`${args.slice(0, 2).join(' ')} ${code ? `(exit ${code}) ` : ''}prints ${name} JSON that matches its schema`, async (t) => {
    const r = await runCli(args)
    t.is(r.code, code ?? 0, r.stderr)
    const doc = JSON.parse(r.stdout) as {schema: string}
    const parsed = OUTPUT_SCHEMAS[name].safeParse(doc)
    t.true(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3)))
    t.is(doc.schema, (OUTPUT_SCHEMAS[name].shape.schema as unknown as {value: string}).value)
  })
}

test('a diff of two saved replays matches its schema', async (t) => {
  const a = join(dir, 'a.json')
  const r1 = await runCli(['replay', T, '--format', 'json', '--out', join(dir, 'rep')])
  t.is(r1.code, 0, r1.stderr)
  t.true(existsSync(join(dir, 'rep', 'replay.json')))
  const {writeFileSync} = await import('node:fs')
  writeFileSync(a, r1.stdout)
  const r = await runCli(['diff', a, join(dir, 'rep', 'replay.json'), '--json'])
  t.is(r.code, 0, r.stderr)
  t.true(OUTPUT_SCHEMAS.diff.safeParse(JSON.parse(r.stdout)).success)
})

test('lab matrix --keep-only --json: the runs kept from the work directory, the tables regenerated', async (t) => {
  // A work directory holding one captured run (the committed idle run's small files stand in for it).
  const work = join(dir, 'lab-work')
  cpSync(join(ROOT, 'lab/runs/idle'), join(work, 'runs/idle'), {recursive: true})
  const runsDir = join(dir, 'lab-runs')
  const doc = join(dir, 'lab.md')
  const r = await runCli(['lab', 'matrix', '--keep-only', '--only', 'idle,random', '--work', work, '--runs-dir', runsDir, '--doc', doc, '--json'])
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as {runs: {name: string; kept: string[]}[]; tableRuns: number}
  const parsed = OUTPUT_SCHEMAS['lab-matrix'].safeParse(out)
  t.true(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3)))
  // random has nothing in the work directory: nothing kept, and nothing of an earlier keep removed.
  t.deepEqual(
    out.runs.map((x) => [x.name, x.kept.includes('summary.json')]),
    [
      ['idle', true],
      ['random', false],
    ],
  )
  t.is(out.tableRuns, 1)
  t.true(readFileSync(doc, 'utf8').includes('| idle |'))
})

test('every command has --json (new commands too)', async (t) => {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {enableJsonFlag?: boolean}>}
  const without = Object.entries(manifest.commands)
    .filter(([, c]) => !c.enableJsonFlag)
    .map(([id]) => id)
    .sort()
  t.deepEqual(without, [])
})
