import test from 'ava'
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {AtomicOutput, abortAllOutputs, writeFileAtomic} from '../../src/io/atomic-output.js'
import {checkOutputDir, checkOutputFile} from '../../src/io/output-path.js'
import {UserError} from '../../src/util/errors.js'
import {fileErrorReason} from '../../src/util/fs-errors.js'
import {ROOT} from '../helpers/cli.js'

const fresh = (): string => mkdtempSync(join(tmpdir(), 'atomic-'))
const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: raw, open '/x/.y.tmp-1-0'`), {code, syscall: 'open'})

test('files appear together at commit, with nothing else left beside them', (t) => {
  const dir = fresh()
  const out = new AtomicOutput('the tables', '--out')
  out.writeFile(join(dir, 'a.csv'), 'a\n')
  out.writeFile(join(dir, 'sub', 'b.csv'), 'b\n')
  t.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.')), ['sub'])
  t.false(existsSync(join(dir, 'a.csv')))
  out.commit()
  t.is(readFileSync(join(dir, 'a.csv'), 'utf8'), 'a\n')
  t.is(readFileSync(join(dir, 'sub', 'b.csv'), 'utf8'), 'b\n')
  t.deepEqual(readdirSync(dir).sort(), ['a.csv', 'sub'])
  t.deepEqual(readdirSync(join(dir, 'sub')), ['b.csv'])
})

test('abort removes the temps and the directories the output created, not the ones that were there', (t) => {
  const dir = fresh()
  mkdirSync(join(dir, 'kept'))
  writeFileSync(join(dir, 'kept', 'old.csv'), 'old\n')
  const out = new AtomicOutput('the tables')
  out.writeFile(join(dir, 'kept', 'old.csv'), 'new\n')
  out.writeFile(join(dir, 'new', 'deeper', 'x.csv'), 'x\n')
  const s = out.createStream(join(dir, 'kept', 'stream.csv'))
  s.end('y\n')
  out.abort()
  t.deepEqual(readdirSync(dir).sort(), ['kept'])
  t.deepEqual(readdirSync(join(dir, 'kept')), ['old.csv'])
  t.is(readFileSync(join(dir, 'kept', 'old.csv'), 'utf8'), 'old\n')
  t.false(out.isOpen)
})

test('abortAllOutputs (the interrupt path) drops every live output and counts them', (t) => {
  const dir = fresh()
  const a = new AtomicOutput('a')
  const b = new AtomicOutput('b')
  a.writeFile(join(dir, 'a'), '1')
  b.writeFile(join(dir, 'b'), '2')
  b.commit()
  t.true(abortAllOutputs() >= 1)
  t.deepEqual(readdirSync(dir), ['b'])
})

test('writeFileAtomic replaces a file whole', (t) => {
  const dir = fresh()
  const p = join(dir, 'page.html')
  writeFileSync(p, 'old')
  writeFileAtomic(p, 'new', 'the page', '--html')
  t.is(readFileSync(p, 'utf8'), 'new')
  t.deepEqual(readdirSync(dir), ['page.html'])
})

test('file-system errors are said in words, naming the target and never the temp file', (t) => {
  const out = new AtomicOutput('the trace', '--out')
  const cases: [string, string][] = [
    ['ENOSPC', "run.csv.gz: field '--out': cannot write the trace: no space left on the device"],
    ['EACCES', "run.csv.gz: field '--out': cannot write the trace: permission denied"],
    ['EROFS', "run.csv.gz: field '--out': cannot write the trace: read-only file system"],
    ['EDQUOT', "run.csv.gz: field '--out': cannot write the trace: disk quota exceeded"],
    ['ENOTDIR', "run.csv.gz: field '--out': cannot write the trace: a part of the path is a file, not a directory"],
  ]
  for (const [code, want] of cases) {
    const e = out.failure(errno(code), 'run.csv.gz')
    t.true(e instanceof UserError)
    t.is(e.message, want)
  }
  out.abort()
  const bug = new TypeError('x is undefined')
  t.is(out.failure(bug), bug)
  t.is(fileErrorReason(errno('EWHATEVER')), 'ewhatever')
})

test('output paths are checked before any work', (t) => {
  const dir = fresh()
  writeFileSync(join(dir, 'file'), '')
  const msg = (f: () => void): string => t.throws(f, {instanceOf: UserError}).message
  t.is(msg(() => checkOutputFile(dir, {what: 'the trace', field: '--out'})), `${dir}: field '--out': cannot write the trace: is a directory (expected a file name)`)
  t.is(msg(() => checkOutputFile(join(dir, 'file', 'x.csv'), {what: 'the trace'})), `${join(dir, 'file', 'x.csv')}: cannot write the trace: ${join(dir, 'file')} is a file, not a directory (expected a path inside a directory)`)
  t.is(msg(() => checkOutputFile(join(dir, 'file', 'a', 'b', 'x.csv'), {what: 'the trace'})), `${join(dir, 'file', 'a', 'b', 'x.csv')}: cannot write the trace: ${join(dir, 'file')} is a file, not a directory (expected a path inside a directory)`)
  t.is(msg(() => checkOutputFile('/dev/null', {what: 'the trace'})), '/dev/null: cannot write the trace: not a regular file (expected a file name)')
  t.is(msg(() => checkOutputDir(join(dir, 'file'), {what: 'the tables', field: '--out'})), `${join(dir, 'file')}: field '--out': cannot write the tables: is a file, not a directory (expected a directory (created when missing))`)
  t.notThrows(() => checkOutputFile(join(dir, 'new', 'deeper', 'x.csv'), {what: 'the trace'}))
  t.notThrows(() => checkOutputDir(join(dir, 'new', 'deeper'), {what: 'the tables'}))
  t.notThrows(() => checkOutputFile(join(dir, 'file'), {what: 'the trace'}))
})

/** A child that holds an unfinished output until it is signalled (src/io/interrupt.ts as the CLI installs it). */
const child = (): string => `
import {AtomicOutput} from ${JSON.stringify(join(ROOT, 'src/io/atomic-output.ts'))}
import {installInterruptHandler} from ${JSON.stringify(join(ROOT, 'src/io/interrupt.ts'))}
installInterruptHandler()
const dir = process.argv[2]
const out = new AtomicOutput('the trace')
out.writeFile(dir + '/new/sub/a.csv', 'a')
const s = out.createStream(dir + '/b.csv')
s.write('b', () => process.stdout.write('ready\\n'))
setInterval(() => s.write('more'), 5)
`

for (const [signal, status] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`${signal}: unfinished outputs and created directories removed, one line, the process dies of ${signal}`, async (t) => {
    const dir = fresh()
    const out = join(dir, 'out')
    mkdirSync(out)
    writeFileSync(join(dir, 'child.ts'), child())
    const proc = spawn(process.execPath, ['--import', 'tsx', join(dir, 'child.ts'), out], {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    await new Promise<void>((resolve) => proc.stdout.once('data', () => resolve()))
    const names = readdirSync(out)
    t.true(names.some((f) => f.startsWith('.b.csv.tmp-')), names.join(' '))
    t.true(existsSync(join(out, 'new', 'sub', readdirSync(join(out, 'new', 'sub'))[0]!)))
    proc.kill(signal)
    const [code, sig] = await new Promise<[number | null, string | null]>((resolve) => proc.on('close', (c, s) => resolve([c, s])))
    t.true(sig === signal || code === status, `exit ${code} signal ${sig}`)
    t.is(stderr, `migtrace: interrupted by ${signal}; the unfinished output was removed\n`)
    t.deepEqual(readdirSync(out), [])
  })
}
