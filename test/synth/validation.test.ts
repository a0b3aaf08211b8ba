/**
 * Every generated trace passes the reader's validation (openTrace throws a UserError on the first
 * invalid event): each workload alone, a composition with every device, and the bundled library.
 */
import {mkdtempSync, readdirSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {openTrace} from '../../src/trace/read/index.js'
import {parseSpec, WORKLOAD_NAMES, writeSynthTrace} from '../../src/synth/index.js'
import {ROOT} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'synth-valid-'))

/** Read every event through the validating reader; returns the count and the kinds seen. */
async function readAll(path: string): Promise<{events: number; kinds: Set<number>}> {
  const tr = await openTrace(path)
  let events = 0
  const kinds = new Set<number>()
  for await (const b of tr.events()) {
    events += b.length
    for (let i = 0; i < b.length; i++) kinds.add(b.kind[i]!)
  }
  return {events, kinds}
}

for (const workload of WORKLOAD_NAMES) {
  test(`workload ${workload} on a 4 GiB guest (two memslots) passes validation`, async (t) => {
    const spec = parseSpec({seed: 3, duration: '300ms', memory: '4G', vcpus: 2, workloads: [{workload, params: {}}], migration: {start: '50ms'}})
    const path = join(dir, `${workload}.jsonl`)
    const res = await writeSynthTrace(spec, path)
    const read = await readAll(path)
    t.is(read.events, res.events)
    t.true(read.events > 1)
  })
}

test('a composition of every workload passes validation', async (t) => {
  const spec = parseSpec({
    seed: 8,
    duration: '400ms',
    memory: '3G',
    vcpus: 4,
    workloads: WORKLOAD_NAMES.map((workload, i) => ({workload, params: {}, ...(workload === 'virtio-mem' || workload === 'malicious' ? {vcpu: i % 4} : {})})),
    migration: {start: '100ms', params: 'max-bandwidth=134217728', set: [{at: '200ms', params: 'downtime-limit=500'}], postcopy: '300ms'},
  })
  const path = join(dir, 'all.csv.gz')
  const res = await writeSynthTrace(spec, path)
  t.is((await readAll(path)).events, res.events)
})

const library = readdirSync(join(ROOT, 'traces')).filter((f) => f.endsWith('.csv.gz') && !f.startsWith('qemu-'))

test('the trace library is complete', (t) => {
  t.deepEqual(library.sort(), ['converging.csv.gz', 'hotset-nonconverging.csv.gz', 'idle.csv.gz', 'malicious.csv.gz', 'postcopy-large.csv.gz', 'vfio-passthrough.csv.gz', 'virtio-mem.csv.gz'])
})

for (const f of library) {
  test(`library trace ${f} passes validation and is small`, async (t) => {
    const path = join(ROOT, 'traces', f)
    t.true(statSync(path).size < 5 * 2 ** 20)
    const tr = await openTrace(path)
    t.is(typeof tr.header.seed, 'number')
    t.is((tr.header.generator as {name?: string}).name, 'migtrace generate')
    const {events} = await readAll(path)
    t.true(events > 100 || f === 'idle.csv.gz')
  })
}
