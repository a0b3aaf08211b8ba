// Every example of README.md and docs/*.md runs as written (see examples.ts for what counts as an
// example and how slow ones are marked), against the built CLI, in a scratch folder where traces/
// and fixtures/ are the repository's.
import {spawnSync} from 'node:child_process'
import {cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {ROOT} from '../helpers/cli.js'
import {examplesOf, type Example} from './examples.js'

const ALL = process.env.DOC_EXAMPLES === 'all'
const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]
const dirs: string[] = []
test.after.always(() => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'migtrace-docs-'))
  dirs.push(d)
  // copies (14 MB), so an example that writes into traces/ never touches the repository's
  for (const name of ['traces', 'fixtures']) cpSync(join(ROOT, name), join(d, name), {recursive: true})
  // `node bin/dev.js ...` examples: node follows the link to the repository's bin/ and package
  symlinkSync(join(ROOT, 'bin'), join(d, 'bin'))
  return d
}

/**
 * Run commands in `cwd` with `migtrace` bound to the built CLI: a console command alone, a whole
 * sh block as one script (its variables carry from line to line) that stops at the first failure,
 * with the failing command shown (set -x).
 */
function run(cmd: string, cwd: string, block = false): {code: number; out: string} {
  const script = `migtrace() { node "${ROOT}/bin/run.js" "$@"; }\nset -o pipefail\n${block ? 'set -ex\n' : ''}${cmd}\n`
  const r = spawnSync('bash', ['-c', script], {cwd, encoding: 'utf8', env: {...process.env, NODE_ENV: 'production'}, timeout: 10 * 60_000})
  return {code: r.status ?? -1, out: `${r.stdout}${r.stderr}`.slice(-2000)}
}

test('the example extractor: sh and console blocks, exit codes, marks', (t) => {
  const md = [
    '```sh',
    '# a comment',
    'migtrace validate a.csv   # trailing comment',
    'migtrace grid t.csv --bandwidth 1Gbit/s \\',
    '  --downtime 1s',
    'npm start',
    '```',
    '<!-- example: slow -->',
    '```console',
    '$ migtrace validate bad.csv',
    'migtrace: bad.csv:4: ...',
    '$ echo $?',
    '2',
    '```',
    '```',
    'migtrace replay <trace> [--set k=v]',
    '```',
  ].join('\n')
  const ex = examplesOf('x.md', md)
  t.is(ex.length, 2)
  t.deepEqual(
    ex[0]!.commands.map((c) => [c.line, c.exit]),
    [
      [3, 0],
      [4, 0],
    ],
  )
  t.is(ex[0]!.commands[1]!.text, 'migtrace grid t.csv --bandwidth 1Gbit/s \\\n  --downtime 1s')
  t.is(ex[1]!.mark, 'slow')
  t.deepEqual(ex[1]!.commands, [{line: 10, text: 'migtrace validate bad.csv', exit: 2}])
  t.throws(() => examplesOf('y.md', '<!-- example: skip -->\n```sh\nmigtrace x\n```\n'), {message: /needs a reason/})
})

for (const file of files) {
  const examples: Example[] = examplesOf(join(ROOT, file)).map((e) => ({...e, file}))
  if (examples.length === 0) continue
  test(`${file}: every example runs as written`, (t) => {
    const cwd = scratch()
    let ran = 0
    for (const ex of examples) {
      if (ex.mark === 'skip' || (ex.mark === 'slow' && !ALL)) {
        t.log(`${file}:${ex.line}: ${ex.mark === 'skip' ? `skipped: ${ex.reason}` : 'slow (DOC_EXAMPLES=all runs it)'}`)
        continue
      }
      if (ex.lang === 'sh') {
        const r = run(ex.commands.map((c) => c.text).join('\n'), cwd, true)
        t.is(r.code, 0, `${file}:${ex.line}: the sh block stopped here:\n${r.out}`)
        ran += ex.commands.length
        continue
      }
      for (const c of ex.commands) {
        const r = run(c.text, cwd)
        t.is(r.code, c.exit, `${file}:${c.line}: ${c.text}\n${r.out}`)
        ran++
      }
    }
    t.log(`${ran} commands`)
    if (ran === 0) t.pass('every example of this file is marked slow or skip')
  })
}
