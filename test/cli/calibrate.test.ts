/**
 * `migtrace calibrate` end to end on synthetic runs (test/calibrate/synthetic.ts), and its
 * one-line errors (exit 2) on bad input.
 */
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'
import {OUTPUT_SCHEMAS} from '../../src/schemas/outputs.js'
import {makeRun, SPECS, TRUTH} from '../calibrate/synthetic.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-calibrate-cli-'))
test.after.always(() => rmSync(dir, {recursive: true, force: true}))
const made = Promise.all(SPECS.map((s) => makeRun(dir, s)))

test('calibrate --fit/--check --json --out: a migtrace.calibrate/1 document, the check run reported apart, a settings file replay --config reads', async (t) => {
  await made
  const out = join(dir, 'calibration.json')
  const r = await runCli(['calibrate', '--runs-dir', dir, '--fit', 'quiet,large', '--check', 'busy', '--set', 'lazy-clear=false', '--set', 'sender-page-cost=0.02', '--max-evals', '40', '--out', out, '--json'])
  t.is(r.code, 0, r.stderr)
  const doc = JSON.parse(r.stdout) as {schema: string; runs: {name: string; role: string}[]; params: {name: string; value: number; start: number}[]; residuals: {run: string; role: string}[]; sumOfSquares: {fitBefore: number; fitAfter: number}; settings: Record<string, unknown>}
  const parsed = OUTPUT_SCHEMAS.calibrate.safeParse(doc)
  t.true(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3)))
  t.deepEqual(doc.runs.map((x) => [x.name, x.role]).sort(), [['busy', 'check'], ['large', 'fit'], ['quiet', 'fit']])
  t.deepEqual(doc.params.map((p) => p.name), ['zero-page-cost', 'sender-page-cost', 'sync-page-cost'])
  t.is(doc.params[1]!.start, 0.02, 'a --set of a fitted key is its start')
  t.true(doc.sumOfSquares.fitAfter < doc.sumOfSquares.fitBefore)
  t.true(doc.residuals.some((x) => x.run === 'busy' && x.role === 'check'))
  // The file: the --set base (lazy-clear) and the fitted values, nothing else.
  const file = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>
  t.deepEqual(Object.keys(file).sort(), ['lazy-clear', 'sender-page-cost', 'sync-page-cost', 'zero-page-cost'])
  t.is(file['lazy-clear'], false)
  t.deepEqual(file, doc.settings)
  const rep = await runCli(['replay', join(dir, 'busy', 'trace.csv'), '--config', out, '--json'])
  t.is(rep.code, 0, rep.stderr)
  const settings = (JSON.parse(rep.stdout) as {settings: Record<string, unknown>}).settings
  for (const k of ['sender-page-cost', 'sync-page-cost', 'zero-page-cost']) t.is(settings[k], file[k])
  // Text output: the parameter table and the residual table.
  const txt = await runCli(['calibrate', join(dir, 'quiet'), '--set', 'lazy-clear=false', '--params', 'sync-page-cost', '--set', `zero-page-cost=${TRUTH['zero-page-cost']}`, '--set', `sender-page-cost=${TRUTH['sender-page-cost']}`, '--max-evals', '30'])
  t.is(txt.code, 0, txt.stderr)
  t.regex(txt.stdout, /^sync-page-cost\s+0\.00[78]\d*/m)
  t.regex(txt.stdout, /quiet\s+fit\s+total-time/)
})

test('bad input: one line, exit 2', async (t) => {
  await made
  const notRun = join(dir, 'not-a-run')
  mkdirSync(notRun, {recursive: true})
  writeFileSync(join(notRun, 'notes.txt'), 'hello\n')
  const noObs = join(dir, 'no-observation')
  mkdirSync(noObs, {recursive: true})
  writeFileSync(join(noObs, 'trace.csv'), '# {"format":"migtrace","version":1,"memory":8388608}\nt_ns,kind,vcpu,dev,slot,gpa,iova,len,page,count,value,op,params\n0,mig_start,,,,,,,,,,,\n')
  const labLike = join(dir, 'lab-like')
  mkdirSync(labLike, {recursive: true})
  writeFileSync(join(labLike, 'trace-src.log.gz'), '')
  const cases: [string[], RegExp][] = [
    [['calibrate', notRun], /not-a-run: not a run directory/],
    [['calibrate', join(dir, 'missing')], /missing: not a run directory/],
    [['calibrate', noObs], /no observation.*observed/],
    [['calibrate', labLike], /lacks a file.*config\.json/],
    [['calibrate', '--runs-dir', dir, '--fit', 'quiet,nope'], /--fit'?: no such run.*nope/],
    [['calibrate', join(dir, 'quiet'), '--params', 'max-bandwidth'], /--params'?: not a parameter.*max-bandwidth/],
    [['calibrate', '--runs-dir', dir, '--fit', 'quiet', '--check', 'quiet'], /both fitted and checked/],
  ]
  for (const [args, re] of cases) {
    const r = await runCli(args)
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('calibrate: loading'))
    t.is(lines.length, 1, r.stderr)
    t.regex(lines[0]!, re)
  }
  t.false(existsSync(join(dir, 'calibration-bad.json')))
})
