import test from 'ava'
import {mkdtempSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {MAX_JSON_DEPTH, findTooDeep, parseJsonText, readJsonFile} from '../../src/util/json-file.js'
import {UserError} from '../../src/util/errors.js'
import {openTrace} from '../../src/trace/read/open.js'
import {readSpecFile} from '../../src/synth/spec.js'
import {readQueryMigrate} from '../../src/import/qemu/stats.js'
import {readShard} from '../../src/compare/shard.js'
import {loadScenarios} from '../../src/compare/variants.js'

const deep = (n: number): string => '['.repeat(n) + ']'.repeat(n)
const dir = mkdtempSync(join(tmpdir(), 'json-file-'))
const file = (name: string, text: string | Buffer): string => {
  const p = join(dir, name)
  writeFileSync(p, text)
  return p
}
const message = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    if (e instanceof UserError) return e.message
    throw e
  }
  throw new Error('no error')
}

test('depth: the limit itself is accepted, one more level is refused with the path to it', (t) => {
  t.is(findTooDeep(deep(MAX_JSON_DEPTH)), undefined)
  t.deepEqual(findTooDeep(`{"a":[1,{"b":${deep(MAX_JSON_DEPTH)}}]}`), {offset: 13 + MAX_JSON_DEPTH - 3, path: 'a.1.b.0...'})
  t.deepEqual(findTooDeep(deep(3), 2), {offset: 2, path: '0.0'})
})

test('depth: brackets inside strings, escaped quotes and keys do not count', (t) => {
  const s = `{"x[{": "[[[[\\"[[[", "y": ["]]]", "{{{"]}`
  t.is(findTooDeep(s, 2), undefined)
  t.deepEqual(findTooDeep(`{"k\\"ey": {"z": [[1]]}}`, 3), {offset: 17, path: 'k\\"ey.z.0'})
  t.deepEqual(parseJsonText(s, {what: 'x'}), {'x[{': '[[[["[[[', y: [']]]', '{{{']})
})

test('5,000 levels in a side file: one line naming the file, the line and the field', (t) => {
  const p = file('deep.json', `{\n"seed": 1,\n"workloads": [{"params": {"rate": ${deep(5000)}}}]}`)
  t.is(message(() => readJsonFile(p, {what: 'the spec file'})), `${p}:3: field 'workloads.0.params.rate...': the spec file nests too deeply (expected at most 64 levels of [ and {)`)
})

test('a byte order mark is skipped; a syntax error gets the line it is on', (t) => {
  t.deepEqual(readJsonFile(file('bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a": 1}')])), {what: 'x'}), {a: 1})
  const p = file('bad.json', '{\n  "a": 1,\n  "b": 2,\n}\n')
  t.regex(message(() => readJsonFile(p, {what: 'the spec file', expected: 'a spec'})), new RegExp(`^${p}:4: the spec file is not valid JSON \\(expected a spec, found .*position 22\\)$`))
})

test('unreadable side files: missing, a directory', (t) => {
  t.is(message(() => readJsonFile(join(dir, 'nope.json'), {what: 'the spec file'})), `${join(dir, 'nope.json')}: cannot read the spec file: no such file or directory`)
  mkdirSync(join(dir, 'd.json'))
  t.is(message(() => readJsonFile(join(dir, 'd.json'), {what: 'the spec file'})), `${join(dir, 'd.json')}: cannot read the spec file: is a directory`)
})

test('every JSON side input refuses deep nesting with one line', async (t) => {
  const d = deep(5000)
  const hdr = file('deep-header.csv', `# {"format":"migtrace","version":${d}}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n`)
  const e = await openTrace(hdr).then(
    () => undefined,
    (x: unknown) => x,
  )
  t.true(e instanceof UserError)
  t.is((e as UserError).message, `${hdr}:1: field 'version.0.0.0...': the header nests too deeply (expected at most 64 levels of [ and {)`)
  const jsonlHdr = file('deep-header.jsonl', `{"format":"migtrace","memory":${d}}\n`)
  await t.throwsAsync(openTrace(jsonlHdr), {instanceOf: UserError, message: `${jsonlHdr}:1: field 'memory.0.0.0...': the header nests too deeply (expected at most 64 levels of [ and {)`})
  const sidecarCsv = file('side.csv', 't_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n')
  const sidecar = file('side.json', `{"format":"migtrace",\n"vfio":${d}}`)
  await t.throwsAsync(openTrace(sidecarCsv), {instanceOf: UserError, message: `${sidecar}:2: field 'vfio.0.0.0...': the sidecar header nests too deeply (expected at most 64 levels of [ and {)`})
  const spec = file('spec.json', `{"description":${d}}`)
  t.is(message(() => readSpecFile(spec)), `${spec}:1: field 'description.0.0.0...': the spec file nests too deeply (expected at most 64 levels of [ and {)`)
  const stats = file('stats.json', `{"status":"completed","ram":{"x":${d}}}`)
  t.is(message(() => readQueryMigrate(stats)), `${stats}:1: field 'ram.x.0.0...': the query-migrate file nests too deeply (expected at most 64 levels of [ and {)`)
  const shard = file('shard.json', `{"schema":"migtrace.shard/1","definition":{"x":${d}}}`)
  t.is(message(() => readShard(shard)), `${shard}:1: field 'definition.x.0.0...': the shard file nests too deeply (expected at most 64 levels of [ and {)`)
  const scen = file('scen.json', `[{"name":"a","settings":{"x":${d}}}]`)
  t.is(message(() => loadScenarios(scen)), `${scen}:1: field '0.settings.x.0...': the scenarios file nests too deeply (expected at most 64 levels of [ and {)`)
})

test('JSON side files with a byte order mark are read as without one', async (t) => {
  const bom = '\ufeff'
  const spec = file('bom-spec.json', `${bom}{"duration":"1ms","memory":"16M","workloads":[{"workload":"uniform","params":{"rate":1000}}]}`)
  t.is(readSpecFile(spec).durationNs, 1e6)
  t.is(readQueryMigrate(file('bom-stats.json', `${bom}{"status":"completed"}`)).status, 'completed')
  t.is(loadScenarios(file('bom-scen.json', `${bom}[{"name":"a","settings":{}}]`)).variants[0]!.name, 'a')
  file('bom-side.json', `${bom}{"format":"migtrace","version":1,"memory":"16M","vcpus":1}`)
  const tr = await openTrace(file('bom-side.csv', 't_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n'))
  t.is(tr.header.vcpus, 1)
})
