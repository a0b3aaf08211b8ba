/** The lab's tables from kept results (hand-made run directories), and the matrix file checks. */
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {BEGIN, END, labTables, writeTableIntoDoc} from '../../src/lab/results-table.js'
import {mergeArgs, readMatrix} from '../../src/lab/matrix.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT} from '../helpers/cli.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-labtable-'))

function run(name: string, o: {mode?: string; expect: [string, number | null, number | null][]; observed: Record<string, unknown>; dst?: string; throttle?: string[]}): void {
  const d = join(tmp, 'runs', name)
  mkdirSync(d, {recursive: true})
  writeFileSync(join(d, 'config.json'), JSON.stringify({args: {mode: o.mode ?? 'precopy'}, load: {migrate: {avg: [1.5, 1, 1]}}}))
  writeFileSync(join(d, 'summary.json'), JSON.stringify({status: o.observed.status, dst_guest: {state: o.dst ?? 'alive'}, host_cpu_during_migration: {wall_s: 3, qemu_s: 4.5, others_s: 0.2, niced_s: 1}}))
  writeFileSync(join(d, 'observed.json'), JSON.stringify(o.observed))
  writeFileSync(join(d, 'replay.json'), JSON.stringify({expect: o.expect.map(([metric, observed, predicted]) => ({metric, observed, predicted}))}))
  const th = o.throttle ?? []
  writeFileSync(join(d, 'passes.csv'), ['t_s,status,dirty_sync_count,cpu_throttle_percentage', ...th.map((v, i) => `${i},active,${i + 1},${v}`)].join('\n') + '\n')
}

test('tables: observed figures, predictions with errors, and issue 14\'s targets', (t) => {
  run('a', {observed: {status: 'completed', downtime: 50, 'total-time': 3000, ram: {transferred: 100 * 1048576, normal: 25000, duplicate: 1000, 'dirty-sync-count': 5, 'postcopy-requests': 0}}, expect: [['transferred', 100 * 1048576, 98 * 1048576], ['dirty-sync-count', 5, 4], ['downtime', 50, 58], ['total-time', 3000, 2500]], throttle: ['', '20', '30']})
  run('p', {mode: 'postcopy', dst: 'crashed', observed: {status: 'completed', downtime: 100, 'total-time': 20000, ram: {transferred: 1000, 'postcopy-bytes': 500, 'postcopy-requests': 40}}, expect: [['transferred', 1000, 1040], ['postcopy-requests', 40, null], ['downtime', 100, 2]]})
  const {markdown, runs} = labTables(join(tmp, 'runs'), [{name: 'a', what: 'first'}, {name: 'missing', what: '-'}, {name: 'p', what: 'pc'}])
  t.is(runs, 2)
  t.true(markdown.startsWith(BEGIN) && markdown.endsWith(END))
  t.regex(markdown, /\| a \| first \| completed \| alive \| 100\.0 \| 25,000 \| 1,000 \| 5 \| 50 \| 3,000 \| 0 \| 20 30 \| 1\.50 \| 4\.5 \/ 0\.2 \/ 1\.0 \(3\.0\) \|/)
  t.regex(markdown, /\| a \| 100\.0 \/ 98\.0 MiB \(-2\.0 %\) \| 5 \/ 4 \| 50\.0 \/ 58\.0 \| 3,000 \/ 2,500 \(-16\.7 %\) \| - \| 3\/4 \(miss: total-time\) \|/)
  t.regex(markdown, /\| p \| pc \| completed \| crashed \|/)
  // postcopy: bytes within 5 % (+4 %), requests not predicted (not counted), downtime off
  t.regex(markdown, /\| p \| 0\.0 \/ 0\.0 MiB \(\+4\.0 %\) \| - \| 100\.0 \/ 2\.0 \| - \(-\) \| 40 \/ - \| 1\/2 \(miss: downtime\) \|/)
  const doc = join(tmp, 'lab.md')
  writeFileSync(doc, `# Lab\n\nbefore\n\n${BEGIN}\nold\n${END}\n\nafter\n`)
  writeTableIntoDoc(doc, markdown)
  const text = readFileSync(doc, 'utf8')
  t.true(text.startsWith('# Lab\n\nbefore\n\n' + BEGIN))
  t.true(text.endsWith(`${END}\n\nafter\n`))
  t.false(text.includes('\nold\n'))
  t.throws(() => labTables(join(tmp, 'none'), [{name: 'a', what: ''}]), {instanceOf: UserError, message: /no lab results to tabulate/})
})

test('the project\'s matrix reads; a bad one is one clear error', (t) => {
  const m = readMatrix(join(ROOT, 'lab/matrix.json'))
  t.true(m.runs.length >= 14)
  t.true(['random', 'sequential', 'hotspot', 'high-rate', 'fast-link', 'slow-link', 'auto-converge', 'virtio-mem', 'postcopy', 'multifd-2', 'multifd-4', 'multifd-zstd', 'xbzrle-hot'].every((n) => m.runs.some((r) => r.name === n)))
  writeFileSync(join(tmp, 'bad.json'), '{"runs": [{"name": 1}]}')
  t.throws(() => readMatrix(join(tmp, 'bad.json')), {instanceOf: UserError, message: /bad\.json: field 'runs': not a lab matrix/})
})

test('a run\'s own flags win over the common ones', (t) => {
  t.deepEqual(mergeArgs(['--mem', '1024', '--trace', 'pages', '--force-x', '--post-run', '3'], ['--mem', '512', '--post-run', '5']), ['--trace', 'pages', '--force-x', '--mem', '512', '--post-run', '5'])
})
