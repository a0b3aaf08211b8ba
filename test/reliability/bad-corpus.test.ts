/**
 * The bad-input corpus (issue 17): every file in fixtures/bad with the one line a user sees for it,
 * through the built CLI (test/helpers/run-many.ts: loaded once). The trace-reader files that
 * test/trace/read.test.ts pins with exact messages are run here too, for the CLI's side of the
 * contract: exit 2, one line starting 'migtrace: ', nothing written. The files added for issue 17
 * (side files, QEMU logs, specs, shards, scenarios, gzip and encoding mistakes) have their exact
 * message here.
 */
import test from 'ava'
import {spawn} from 'node:child_process'
import {mkdtempSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {ROOT} from '../helpers/cli.js'
import {BAD_CORPUS, BAD_CORPUS_ACCEPTED, BAD_CORPUS_COMPANIONS, F, OUT} from '../helpers/bad-corpus.js'

const out = mkdtempSync(join(tmpdir(), 'bad-corpus-'))
const O = (name: string): string => join(out, name)


interface Outcome {
  code: number
  stdout: string
  stderr: string
  crash?: string
}

function runMany(cases: {cwd: string; argv: string[]}[]): Promise<Outcome[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/run-many.ts')], {cwd: ROOT, env: {...process.env, NODE_ENV: 'production'}, stdio: ['pipe', 'pipe', 'inherit']})
    let text = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d))
    child.on('error', reject)
    child.on('close', () => resolve(text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Outcome)))
    child.stdin.end(JSON.stringify(cases))
  })
}

const withFile = (argv: string[], file: string): string[] => argv.map((a) => (a === F ? `fixtures/bad/${file}` : a.startsWith(OUT) ? O(a.slice(OUT.length)) : a))
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

test('bad-input corpus: at least 60 files, each refused with its one line (or accepted, where listed)', async (t) => {
  const files = readdirSync(join(ROOT, 'fixtures/bad')).sort()
  t.true(files.length >= 60, `only ${files.length} files`)
  const pinned = new Set(BAD_CORPUS.map(([f]) => f))
  // Files whose exact message test/trace/read.test.ts pins: the CLI must agree on exit 2 and one line.
  const readerFiles = files.filter((f) => !pinned.has(f) && !BAD_CORPUS_COMPANIONS.includes(f))
  const cases = [...BAD_CORPUS.map(([f, argv]) => ({cwd: ROOT, argv: withFile(argv, f)})), ...readerFiles.map((f) => ({cwd: ROOT, argv: ['convert', `fixtures/bad/${f}`, O(`${f}.out.csv`)]}))]
  const outcomes = await runMany(cases)
  t.is(outcomes.length, cases.length)
  BAD_CORPUS.forEach(([f, , want], i) => {
    const o = outcomes[i]!
    t.is(o.crash, undefined, f)
    if (want === undefined) {
      t.is(o.code, 0, `${f}: ${o.stderr}`)
      return
    }
    t.is(o.code, 2, f)
    t.is(o.stderr.split('\n').filter((l) => l !== '').length, 1, `${f}: ${o.stderr}`)
    const line = o.stderr.replace(/\n$/, '')
    if (typeof want === 'string') t.is(line, `migtrace: ${want}`, f)
    else t.regex(line.replace(/^migtrace: /, ''), want, f)
  })
  readerFiles.forEach((f, k) => {
    const o = outcomes[BAD_CORPUS.length + k]!
    t.is(o.crash, undefined, f)
    if (BAD_CORPUS_ACCEPTED.includes(f)) t.is(o.code, 0, `${f}: ${o.stderr}`)
    else {
      t.is(o.code, 2, `${f}: ${o.stderr}`)
      t.regex(o.stderr, new RegExp(`^migtrace: fixtures/bad/${escape(f)}(:\\d+)?: [^\\n]+\\n$`), f)
    }
  })
  // Only the accepted files left an output.
  const outputs = new Set([...BAD_CORPUS_ACCEPTED.map((f) => `${f}.out.csv`), 'o.jsonl'])
  t.deepEqual(readdirSync(out).filter((f) => !outputs.has(f)), [])
})
