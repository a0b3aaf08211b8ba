import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {renderDoc} from '../../scripts/gen-docs.js'
import {validateTrace} from '../../src/trace/read/validate.js'

const doc = readFileSync('README.md', 'utf8')

test('the field and kind tables in README.md match src/trace/events.ts (npx tsx scripts/gen-docs.ts)', (t) => {
  t.is(doc, renderDoc(doc))
})

test('the JSON Lines example in README.md validates', async (t) => {
  const m = /```json\n([\s\S]*?)```/.exec(doc)
  t.truthy(m)
  const p = join(mkdtempSync(join(tmpdir(), 'migtrace-doc-')), 'example.jsonl')
  writeFileSync(p, m![1]!)
  const r = await validateTrace(p)
  t.deepEqual(r.errors.map((e) => e.message), [])
  t.is(r.events, 4)
})
