import {readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'
import {openTrace} from '../../src/trace/read/index.js'
import {ROOT} from '../helpers/cli.js'

// traces/recorded/: real programs recorded with migtrace record and trimmed (traces/README.md).
const dir = join(ROOT, 'traces/recorded')
const files = readdirSync(dir).filter((f) => f.endsWith('.csv.gz'))

test('four recorded workloads', (t) => {
  t.deepEqual(files.sort(), ['compile.csv.gz', 'redis.csv.gz', 'sqlite.csv.gz', 'stress.csv.gz'])
})

for (const f of files)
  test(`recorded ${f}: under 5 MB, a trimmed migtrace record recording, valid to the end`, async (t) => {
    const path = join(dir, f)
    t.true(statSync(path).size < 5 * 2 ** 20)
    const tr = await openTrace(path)
    const src = tr.header.source as {recorder?: string; recording?: {complete?: boolean}; trim?: {fromNs?: number}}
    t.is(src.recorder, 'migtrace record')
    t.is(src.recording?.complete, true)
    t.true((src.trim?.fromNs ?? 0) > 0)
    t.true(Array.isArray(tr.header.populated) && tr.header.populated.length > 0)
    let n = 0
    for await (const b of tr.events()) n += b.length
    t.true(n > 100_000)
  })
