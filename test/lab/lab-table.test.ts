/** The lab's tables from kept results (hand-made run directories), and the matrix file checks. */
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {BEGIN, END, labTables, writeTableIntoDoc} from '../../src/lab/results-table.js'
import {keepMultifdDstTrace, keepPostcopyDstTrace, mergeArgs, readMatrix} from '../../src/lab/matrix.js'
import {gunzipSync, gzipSync} from 'node:zlib'
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

test('a re-analysis with a settings file adds its own table, for the runs it re-analyzed only', (t) => {
  run('c', {observed: {status: 'completed', downtime: 50, 'total-time': 3000, ram: {transferred: 100 * 1048576, 'dirty-sync-count': 5}}, expect: [['transferred', 100 * 1048576, 90 * 1048576], ['dirty-sync-count', 5, 3], ['downtime', 50, 20], ['total-time', 3000, 1500]]})
  run('d', {observed: {status: 'completed', downtime: 50, 'total-time': 3000, ram: {transferred: 100 * 1048576, 'dirty-sync-count': 5}}, expect: [['transferred', 100 * 1048576, 90 * 1048576]]})
  const rows = new Map([['c', [{metric: 'transferred', observed: 100 * 1048576, predicted: 102 * 1048576}, {metric: 'dirty-sync-count', observed: 5, predicted: 5}, {metric: 'downtime', observed: 50, predicted: 55}, {metric: 'total-time', observed: 3000, predicted: 3200}]]])
  const {markdown} = labTables(join(tmp, 'runs'), [{name: 'c', what: 'x'}, {name: 'd', what: 'y'}], {config: 'cal.json', rows})
  const [before, after] = markdown.split('### The model with `cal.json`')
  t.truthy(after)
  // Before: the saved replay; after: the re-analysis (all four targets met), and no row for d.
  t.regex(before!, /\| c \| 100\.0 \/ 90\.0 MiB \(-10\.0 %\) \|/)
  t.regex(after!, /\| c \| 100\.0 \/ 102\.0 MiB \(\+2\.0 %\) \| 5 \/ 5 \| 50\.0 \/ 55\.0 \| 3,000 \/ 3,200 \(\+6\.7 %\) \| - \| 4\/4 \|/)
  t.notRegex(after!, /\| d \|/)
  t.true(markdown.endsWith(END))
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

test('a postcopy run keeps its destination trace without the precopy page loads', async (t) => {
  const src = join(tmp, 'pc-run')
  const dest = join(tmp, 'pc-kept')
  mkdirSync(src, {recursive: true})
  mkdirSync(dest, {recursive: true})
  const lines = ['1@1.000001:ram_load_loop pc.ram: addr: 0x1000 flags: 0x22 host: 0x7f0000001000', '1@2.000000:postcopy_ram_fault_thread_request Request for HVA=0x7f0000002000 rb=pc.ram offset=0x2000 pid=9', '1@2.000100:ram_load_postcopy_loop chan=0 addr=0x2000 flags=0x28', '1@2.000200:postcopy_place_page host=0x7f0000002000']
  writeFileSync(join(src, 'trace-dst.log.gz'), gzipSync(lines.join('\n') + '\n'))
  writeFileSync(join(src, 'summary.json'), JSON.stringify({postcopy_started_at_s: 1.5}))
  t.true((await keepPostcopyDstTrace(src, dest)) > 0)
  t.is(gunzipSync(readFileSync(join(dest, 'trace-dst.postcopy.log.gz'))).toString(), lines.slice(1).join('\n') + '\n')
  writeFileSync(join(src, 'summary.json'), JSON.stringify({status: 'completed'}))
  t.is(await keepPostcopyDstTrace(src, join(tmp, 'nowhere')), -1)
})

test('a precopy multifd run keeps its destination trace up to the first round\'s wrap; other runs keep none', async (t) => {
  const src = join(tmp, 'mf-run')
  const dest = join(tmp, 'mf-kept')
  mkdirSync(src, {recursive: true})
  mkdirSync(dest, {recursive: true})
  const lines = [
    '1@1.000000:multifd_recv_sync_main packet num 1',
    '1@1.000001:ram_load_loop pc.ram: addr: 0x1000 flags: 0x2 host: 0x7f0000001000',
    '1@1.000002:ram_load_loop pc.ram: addr: 0x3000 flags: 0x22 host: 0x7f0000003000',
    '1@1.000003:ram_load_loop pc.rom: addr: 0x0 flags: 0x2 host: 0x7f1000000000',
    '1@1.000004:ram_load_loop pc.ram: addr: 0x2000 flags: 0x2 host: 0x7f0000002000', // the wrap: kept
    '1@1.000005:ram_load_loop pc.ram: addr: 0x5000 flags: 0x22 host: 0x7f0000005000', // a later round: dropped
    '1@1.000006:multifd_recv_sync_main packet num 9',
  ]
  writeFileSync(join(src, 'trace-dst.log.gz'), gzipSync(lines.join('\n') + '\n'))
  writeFileSync(join(src, 'summary.json'), JSON.stringify({status: 'completed'}))
  writeFileSync(join(src, 'config.json'), JSON.stringify({args: {multifd_channels: 2}}))
  t.true((await keepMultifdDstTrace(src, dest)) > 0)
  t.is(gunzipSync(readFileSync(join(dest, 'trace-dst.zero.log.gz'))).toString(), [...lines.slice(0, 5), lines[6]].join('\n') + '\n')
  // a postcopy run (its own kept trace), or no multifd: nothing
  writeFileSync(join(src, 'summary.json'), JSON.stringify({postcopy_started_at_s: 1.5}))
  t.is(await keepMultifdDstTrace(src, join(tmp, 'nowhere')), -1)
  writeFileSync(join(src, 'summary.json'), JSON.stringify({status: 'completed'}))
  writeFileSync(join(src, 'config.json'), JSON.stringify({args: {multifd_channels: 0}}))
  t.is(await keepMultifdDstTrace(src, join(tmp, 'nowhere')), -1)
})
