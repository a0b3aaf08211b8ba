/**
 * Reading on a worker thread (src/trace/read/pipeline.ts) against reading in-thread: the same
 * batches column by column, the same replay results, the same errors (text, file, line, field,
 * and exit code 2 from the CLI), a bounded ring, and no thread left behind. Under tsx the worker
 * runs src/ too (pipeline.ts registers the tsx loader in the thread); the two tests that run the
 * built CLI and dist/ first check that dist/ is no older than src/ (run `npm run build`).
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {FIELDS, type EventBatch} from '../../src/trace/events.js'
import {openTrace} from '../../src/trace/read/open.js'
import {convertTrace} from '../../src/trace/read/convert.js'
import {bugFromThread, bugToThread, readOnThread, SLOTS, threadPassStats, threadPays} from '../../src/trace/read/pipeline.js'
import {isOutOfMemory} from '../../src/cli/base-command.js'
import {MessageChannel} from 'node:worker_threads'
import {replay} from '../../src/replay/index.js'
import {resolveSettings} from '../../src/replay/config.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT, runCli} from '../helpers/cli.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-pipeline-'))
const CONVERGING = 'traces/converging.csv.gz'

/** Every batch of a pass, copied: length, every column's first `length` values, params. */
async function batches(path: string, thread: boolean, batchSize?: number): Promise<unknown[]> {
  const out: unknown[] = []
  for await (const b of (await openTrace(path)).events({thread, batchSize})) out.push(copy(b))
  return out
}

function copy(b: EventBatch): unknown {
  const cols: Record<string, number[]> = {}
  for (const k of ['t', 'kind', 'vcpu', 'dev', 'slot', 'gpa', 'iova', 'len', 'page', 'count', 'value', 'op', 'line'] as const) cols[k] = Array.from(b[k].subarray(0, b.length))
  return {length: b.length, cols, params: [...b.params]}
}

/** The error a pass throws, and how many events it gave before it. */
async function failure(path: string, thread: boolean, batchSize?: number): Promise<{error: UserError; events: number}> {
  let events = 0
  try {
    for await (const b of (await openTrace(path)).events({thread, batchSize})) events += b.length
  } catch (e) {
    if (e instanceof UserError) return {error: e, events}
    throw e
  }
  throw new Error(`no error reading ${path}`)
}

/** dist/ is built from the current src/: every src/ module's .js no older than it (else the test would compare two readers). */
function assertFreshDist(): void {
  const stale: string[] = []
  const walk = (d: string): void => {
    for (const e of readdirSync(join(ROOT, 'src', d), {withFileTypes: true})) {
      const rel = join(d, e.name)
      if (e.isDirectory()) walk(rel)
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) {
        const js = join(ROOT, 'dist', rel.replace(/\.ts$/, '.js'))
        let built = 0
        try {
          built = statSync(js).mtimeMs
        } catch {
          built = 0
        }
        if (built < statSync(join(ROOT, 'src', rel)).mtimeMs) stale.push(rel)
      }
    }
  }
  walk('')
  if (stale.length > 0) throw new Error(`dist/ is older than src/ (${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', ...' : ''}): run npm run build`)
}

const arrow = join(dir, 'converging.arrow')
const jsonl = join(dir, 'converging.jsonl')
test.before(async () => {
  await convertTrace(CONVERGING, arrow)
  await convertTrace(CONVERGING, jsonl)
})

for (const [label, path] of [
  ['CSV, gzipped', CONVERGING],
  ['Arrow', arrow],
  ['JSON Lines', jsonl],
  ['every kind, CSV', 'fixtures/all-kinds.csv'],
  ['every kind, JSON Lines', 'fixtures/all-kinds.jsonl'],
] as const) {
  test(`${label}: a pass on a thread gives exactly the in-thread batches (small batches: the ring turns many times)`, async (t) => {
    const inThread = await batches(path, false, 1000)
    const onThread = await batches(path, true, 1000)
    t.true(inThread.length >= 1)
    t.deepEqual(onThread, inThread)
  })
}

test("default batches: the same from a thread, and the trace's 55 001 events in one batch", async (t) => {
  const onThread = await batches(arrow, true)
  t.deepEqual(onThread, await batches(arrow, false))
  t.deepEqual(
    onThread.map((b) => (b as {length: number}).length),
    [55001],
  )
})

for (const [label, path] of [
  ['CSV', CONVERGING],
  ['Arrow', arrow],
] as const) {
  test(`${label}: replay results are identical whether the trace is read on a thread or not`, async (t) => {
    const run = async (thread: boolean) => {
      const tr = await openTrace(path)
      const settings = resolveSettings(tr.header, {'max-bandwidth': '64MiB/s'})
      return replay({header: tr.header, layout: tr.layout, events: tr.events({thread, batchSize: 4096}), file: path}, {settings, overrides: {'max-bandwidth': '64MiB/s'}, noStartEvent: !(await tr.containsKind('mig_start'))})
    }
    const a = await run(false)
    const b = await run(true)
    t.true(a.iterations > 1)
    t.deepEqual(JSON.parse(JSON.stringify(b)), JSON.parse(JSON.stringify(a)))
  })
}

for (const bad of ['negative.csv', 'non-numeric.csv', 'fractional.jsonl', 'crosses-slot.csv', 'missing-field.csv', 'bad-op.csv', 'gzip-corrupt.csv.gz', 'nul-bytes.jsonl']) {
  test(`bad input read on a thread: ${bad} fails with the in-thread error, word for word`, async (t) => {
    const path = `fixtures/bad/${bad}`
    const a = await failure(path, false)
    const b = await failure(path, true)
    t.is(b.error.message, a.error.message)
    t.deepEqual([b.error.file, b.error.line, b.error.field, b.error.expected, b.error.found], [a.error.file, a.error.line, a.error.field, a.error.expected, a.error.found])
    t.is(b.events, a.events)
  })
}

test('a bad line deep in a trace: the batches before it arrive, then its error (line and field)', async (t) => {
  const path = join(dir, 'late-error.csv')
  const lines = ['# {"format":"migtrace","version":1,"memory":"1G","vcpus":2}', FIELDS.join(',')]
  for (let i = 0; i < 10_000; i++) lines.push(`${1000 + i},write,${i & 1},,,${4096 * (i % 1000)},,8,,,,,`)
  lines[2 + 7_500] = '8500,write,1,,,0x1000,,-8,,,,,'
  writeFileSync(path, `${lines.join('\n')}\n`)
  const a = await failure(path, false, 1000)
  const b = await failure(path, true, 1000)
  t.is(a.error.line, 7_503)
  t.is(a.error.field, 'len')
  t.is(a.events, 7_000)
  t.deepEqual([b.error.message, b.events], [a.error.message, a.events])
})

test.serial('the ring is bounded: a consumer that stops for a while has at most SLOTS batches waiting, and the pass goes on after', async (t) => {
  let seen = 0
  let first = true
  for await (const b of (await openTrace(CONVERGING)).events({thread: true, batchSize: 500})) {
    seen += b.length
    if (first) {
      first = false
      // The reader could fill 110 batches meanwhile; the ring lets it fill the other slots only.
      // (Waits for those first, however slow the machine, then gives it time to overfill.)
      for (let k = 0; k < 600 && threadPassStats.waiting < SLOTS - 1; k++) await new Promise((r) => setTimeout(r, 50))
      await new Promise((r) => setTimeout(r, 300))
      t.is(threadPassStats.waiting, SLOTS - 1)
    }
    t.true(threadPassStats.waiting <= SLOTS - 1)
  }
  t.is(seen, 55_001)
})

test.serial('the rule: forced either way by the option, then MIGTRACE_READ_THREAD; never with onError; a small trace in-thread', (t) => {
  const src = {path: CONVERGING, gzip: true, format: 'csv' as const, skipLines: 2}
  const saved = process.env.MIGTRACE_READ_THREAD
  try {
    delete process.env.MIGTRACE_READ_THREAD
    t.false(readOnThread(src, {}))
    t.true(readOnThread(src, {thread: true}))
    t.false(readOnThread(src, {thread: true, onError: () => true}))
    process.env.MIGTRACE_READ_THREAD = '1'
    t.true(readOnThread(src, {}))
    t.false(readOnThread(src, {thread: false}))
    process.env.MIGTRACE_READ_THREAD = '0'
    t.false(readOnThread(src, {}))
  } finally {
    if (saved === undefined) delete process.env.MIGTRACE_READ_THREAD
    else process.env.MIGTRACE_READ_THREAD = saved
  }
})

test('the rule by size, CPUs and load: 150 ms of estimated read (Arrow 0.75 ns/byte, CSV 2, JSONL 3, gzip x12), four CPUs, load below their number', (t) => {
  const arrow = {format: 'arrow' as const, gzip: false}
  const csvGz = {format: 'csv' as const, gzip: true}
  t.true(threadPays(200e6, arrow, 4, 0.5))
  t.false(threadPays(199e6, arrow, 4, 0.5))
  t.true(threadPays(6.25e6, csvGz, 4, 3.9))
  t.false(threadPays(6.2e6, csvGz, 4, 3.9))
  t.true(threadPays(50e6, {format: 'jsonl', gzip: false}, 4, 0))
  t.false(threadPays(1e9, arrow, 1, 0))
  // Two CPUs: V8's background threads hold most of the second one (THREAD_MIN_CPUS).
  t.false(threadPays(1e9, arrow, 2, 0))
  t.false(threadPays(1e9, arrow, 3, 0))
  t.false(threadPays(1e9, arrow, 4, 4))
  t.true(threadPays(1e9, arrow, 8, 3.5))
})

test('no thread left behind: a pass stopped after one batch, and one dropped unfinished, let the process exit', (t) => {
  assertFreshDist()
  const script = `
    const {openTrace} = await import(${JSON.stringify(`${ROOT}/dist/trace/read/open.js`)})
    const tr = await openTrace(${JSON.stringify(`${ROOT}/${CONVERGING}`)})
    for await (const b of tr.events({thread: true, batchSize: 500})) break
    const it = tr.events({thread: true, batchSize: 500})[Symbol.asyncIterator]()
    await it.next()
    console.log('done')
  `
  const file = join(dir, 'stop-early.mjs')
  writeFileSync(file, script)
  const env = {...process.env}
  delete env.NODE_OPTIONS
  const r = spawnSync(process.execPath, [file], {encoding: 'utf8', timeout: 60_000, env})
  t.is(r.stderr, '')
  t.is(r.stdout, 'done\n')
  t.is(r.status, 0)
})

test('CLI: replay with the trace read on a thread prints the same report, and a bad trace exits 2 with the same message', async (t) => {
  assertFreshDist()
  const on = {MIGTRACE_READ_THREAD: '1'}
  const off = {MIGTRACE_READ_THREAD: '0'}
  const good = await Promise.all([runCli(['replay', CONVERGING, '--json'], {env: off}), runCli(['replay', CONVERGING, '--json'], {env: on})])
  t.is(good[0].code, 0)
  t.is(good[1].stdout, good[0].stdout)
  const bad = await Promise.all([runCli(['replay', 'fixtures/bad/negative.csv'], {env: off}), runCli(['replay', 'fixtures/bad/negative.csv'], {env: on})])
  t.is(bad[0].code, 2)
  t.is(bad[1].code, 2)
  t.regex(bad[0].stderr, /fixtures\/bad\/negative\.csv:\d+: /)
  t.is(bad[1].stderr, bad[0].stderr)
})

// A reader's bug (not a UserError) crosses the thread as data (the worker's bugToThread, posted,
// then bugFromThread): the same built-in class, name, code, message and stack, so base-command.ts
// tells a failed allocation (a RangeError, or code ERR_STRING_TOO_LONG) from a bug as in-thread:
// one line and exit 2, not a stack and exit 1.
test('a bug from the reader thread keeps its class and code: a failed allocation is still told apart', async (t) => {
  const {port1, port2} = new MessageChannel()
  const cross = (e: Error) =>
    new Promise<Error>((resolve) => {
      port2.once('message', (m: ReturnType<typeof bugToThread>) => resolve(bugFromThread(m)))
      port1.postMessage(bugToThread(e))
    })
  try {
    const alloc = new RangeError('Invalid typed array length: -1')
    const long = Object.assign(new Error('Cannot create a string longer than 0x1fffffe8 characters'), {code: 'ERR_STRING_TOO_LONG'})
    const coded = Object.assign(new RangeError('The value of "size" is out of range.'), {code: 'ERR_OUT_OF_RANGE'})
    class ParquetGlitch extends Error {
      override name = 'ParquetGlitch'
    }
    for (const e of <Error[]>[alloc, long, coded, new TypeError('x is not a function'), new ParquetGlitch('odd')]) {
      const b = await cross(e)
      t.is(b.constructor, e instanceof RangeError ? RangeError : e instanceof TypeError ? TypeError : Error, e.message)
      t.is(b.name, e.name)
      t.is(b.message, e.message)
      t.is(b.stack, e.stack)
      t.is((b as {code?: unknown}).code, (e as {code?: unknown}).code)
      t.is(isOutOfMemory(b), isOutOfMemory(e), e.message)
    }
    t.true(isOutOfMemory(await cross(alloc)))
    t.true(isOutOfMemory(await cross(long)))
    t.false(isOutOfMemory(await cross(coded)))
  } finally {
    port1.close()
  }
})
