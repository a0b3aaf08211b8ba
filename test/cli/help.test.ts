// Help, "did you mean", and one-line usage errors, through the built CLI.
import test from 'ava'
import {runCli} from '../helpers/cli.js'
import {editDistance, nearest} from '../../src/util/nearest.js'

test('editDistance counts a swap of neighbours as one edit', (t) => {
  t.is(editDistance('repaly', 'replay'), 1)
  t.is(editDistance('', 'abc'), 3)
  t.is(editDistance('kitten', 'sitting'), 3)
  t.is(editDistance('same', 'same'), 0)
})

test('nearest suggests typos only, not the least far word', (t) => {
  const cmds = ['replay', 'report', 'validate', 'inspect', 'import:qemu']
  t.is(nearest('repaly', cmds), 'replay')
  t.is(nearest('vaildate', cmds), 'validate')
  t.is(nearest('rep', cmds), undefined) // a prefix of two commands
  t.is(nearest('insp', cmds), 'inspect') // a prefix of one
  t.is(nearest('xyzzy', cmds), undefined)
})

test('migtrace help replay and replay -h print the command help', async (t) => {
  const a = await runCli(['help', 'replay'])
  const b = await runCli(['replay', '-h'])
  t.is(a.code, 0)
  t.is(b.code, 0)
  t.regex(a.stdout, /^USAGE\n {2}\$ migtrace replay TRACE/m)
  t.is(a.stdout, b.stdout)
})

test('a misspelled command suggests the nearest one, exit 127', async (t) => {
  const r = await runCli(['repaly', 'traces/converging.csv.gz'])
  t.is(r.code, 127)
  t.is(r.stdout, '')
  t.is(r.stderr, "migtrace: 'repaly' is not a migtrace command; did you mean 'replay'? Run 'migtrace help' for the list.\n")
  const q = await runCli(['import', 'qemuu', 'x.log'])
  t.is(q.stderr, "migtrace: 'import qemuu' is not a migtrace command; did you mean 'import qemu'? Run 'migtrace help' for the list.\n")
  const far = await runCli(['frobnicate'])
  t.is(far.stderr, "migtrace: 'frobnicate' is not a migtrace command. Run 'migtrace help' for the list.\n")
})

test('a misspelled flag is one line with the nearest flag and a pointer to --help, exit 2', async (t) => {
  const r = await runCli(['replay', 'traces/converging.csv.gz', '--ot', 'x'])
  t.is(r.code, 2)
  t.is(r.stdout, '')
  t.is(r.stderr, "migtrace: unknown flag --ot (did you mean --out?); see 'migtrace replay --help'\n")
})

test('a missing argument is one line, exit 2', async (t) => {
  const r = await runCli(['replay'])
  t.is(r.code, 2)
  t.is(r.stderr, "migtrace: missing argument TRACE; see 'migtrace replay --help'\n")
  const f = await runCli(['report', 'traces/converging.csv.gz'])
  t.is(f.code, 2)
  t.is(f.stderr, "migtrace: Missing required flag out; see 'migtrace report --help'\n")
})

test('a bad flag value is one line, also in --json mode', async (t) => {
  const r = await runCli(['validate', 'x.csv', '--max-errors', '0'])
  t.is(r.code, 2)
  t.is(r.stderr, "migtrace: Parsing --max-errors: Expected an integer greater than or equal to 1 but received: 0; see 'migtrace validate --help'\n")
  const o = await runCli(['replay', 'x.csv', '--format', 'xml'])
  t.is(o.stderr, "migtrace: Expected --format=xml to be one of: text, json, csv, md, arrow, parquet; see 'migtrace replay --help'\n")
  const j = await runCli(['replay', 'x.csv', '--bogus', '--json'])
  t.is(j.code, 2)
  t.deepEqual(JSON.parse(j.stdout), {schema: 'migtrace.error/1', error: {message: "unknown flag --bogus; see 'migtrace replay --help'"}})
})

test('autocomplete is registered', async (t) => {
  const r = await runCli(['autocomplete', '--help'])
  t.is(r.code, 0)
  t.regex(r.stdout, /bash|zsh/)
})
