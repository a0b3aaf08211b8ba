/** Same spec and seed: byte-identical files; another seed: different events; the header says how. */
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import test from 'ava'
import {parseSpec, writeSynthTrace} from '../../src/synth/index.js'

const SPEC = {
  seed: 17,
  duration: '500ms',
  memory: '256M',
  vcpus: 3,
  workloads: [
    {workload: 'zipf', vcpus: [0, 1], params: {rate: 8000}},
    {workload: 'phases', vcpu: 2, params: {rate: 3000, period: '100ms'}},
    {workload: 'dma-device', params: {rate: 1000, pinSize: '8M'}},
    {workload: 'vhost-net', params: {rate: 2000}},
    {workload: 'virtio-mem', vcpu: 2, params: {resizeAt: '50ms', requestRate: 100}},
  ],
  migration: {start: '100ms', params: {'max-bandwidth': 134217728, 'downtime-limit': 300}, postcopy: '300ms'},
}

const dir = mkdtempSync(join(tmpdir(), 'synth-det-'))

async function gen(name: string, spec: Record<string, unknown>): Promise<Buffer> {
  const path = join(dir, name)
  await writeSynthTrace(parseSpec(spec), path)
  return readFileSync(path)
}

test('same spec and seed give byte-identical CSV, JSONL and gzip files', async (t) => {
  for (const ext of ['csv', 'jsonl', 'csv.gz']) {
    const a = await gen(`a.${ext}`, SPEC)
    const b = await gen(`b.${ext}`, SPEC)
    t.true(a.length > 1000, ext)
    t.true(a.equals(b), ext)
  }
})

test('a different seed gives a different trace', async (t) => {
  const a = (await gen('s17.csv', SPEC)).toString().split('\n')
  const b = (await gen('s18.csv', {...SPEC, seed: 18})).toString().split('\n')
  t.is(a.length, b.length) // same rates: same number of events
  const differing = a.slice(2).filter((line, i) => line !== b[i + 2]).length
  t.true(differing > a.length / 2, `${differing} of ${a.length} lines differ`)
})

test('the header records the seed and the spec', async (t) => {
  const text = gunzipSync(await gen('h.csv.gz', SPEC)).toString()
  const header = JSON.parse(text.slice(2, text.indexOf('\n'))) as Record<string, any>
  t.is(header.seed, 17)
  t.is(header.generator.name, 'migtrace generate')
  t.deepEqual(header.generator.spec, SPEC)
  t.is(header.vfio[0].id, 'vfio0')
  t.is(header.virtioMem[0].id, 'vmem0')
  t.is(header.virtioMem[0].base, 4 * 2 ** 30)
  t.regex(text, /\n100000000,mig_start,,,,,,,,,,,max-bandwidth=134217728;downtime-limit=300\n/)
  t.regex(text, /\n300000000,mig_postcopy,/)
})

test('--populated maps to header ranges covering that share of RAM', async (t) => {
  const read = async (populated: number) => {
    const text = (await gen(`p${populated}.csv`, {duration: '10ms', memory: '4G', populated, workloads: []})).toString()
    return JSON.parse(text.slice(2, text.indexOf('\n'))).populated as unknown
  }
  t.is(await read(1), 'all')
  t.is(await read(0), 'none')
  // q35 layout of 4 GiB: 2 GiB low at 0, 2 GiB high at 4 GiB; a quarter of each.
  t.deepEqual(await read(0.25), [
    {gpa: 0, len: 512 * 2 ** 20},
    {gpa: 4 * 2 ** 30, len: 512 * 2 ** 20},
  ])
})
