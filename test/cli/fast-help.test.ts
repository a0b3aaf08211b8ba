// The help pages bin/run.js prints without oclif (src/cli/fast-help) against oclif's own output: every
// saved argument vector at 80 columns, a few at other widths, and the cases that must go to oclif.
import {spawnSync} from 'node:child_process'
import {cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import test from 'ava'
import {ROOT, runCli, type CliResult} from '../helpers/cli.js'
import {serveHelp} from '../../src/cli/fast-help/serve.js'
import {INDEX_FILE, PAGES_DIR, type HelpIndex} from '../../src/cli/fast-help/pages.js'

const index = JSON.parse(readFileSync(join(ROOT, PAGES_DIR, INDEX_FILE), 'utf8')) as HelpIndex
const saved = Object.keys(index.keys).map((k) => (k === '' ? [] : k.split('\u0000')))

/** oclif itself, the fast path turned off. */
const oclif = (argv: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(argv, {env: {MIGTRACE_NO_FAST_HELP: '1', ...env}})

/** Runs at most `limit` at once: each oclif run is a node process loading all of oclif. */
async function pooled<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = []
  let next = 0
  await Promise.all(
    Array.from({length: limit}, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!)
      }
    }),
  )
  return out
}

/** serveHelp in this process, as bin/run.js calls it, with the environment given and what it printed. */
function fast(argv: string[], env: Record<string, string | undefined> = {}, root = ROOT): {served: boolean; stdout: string} {
  const saved = {...process.env}
  const write = process.stdout.write
  let stdout = ''
  // ava's NODE_ENV=test would send help to oclif (which reads src/ then); a user's is unset.
  Object.assign(process.env, {NODE_ENV: 'production', OCLIF_COLUMNS: '80'}, env)
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write
  try {
    return {served: serveHelp(root, argv), stdout}
  } finally {
    process.stdout.write = write
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
    Object.assign(process.env, saved)
  }
}

test('every saved help invocation prints exactly what oclif prints, exit 0', async (t) => {
  t.true(saved.length > 60, `only ${saved.length} saved invocations`)
  for (const must of [[], ['--help'], ['-h'], ['help'], ['replay', '--help'], ['help', 'replay'], ['import', 'qemu', '-h'], ['lab'], ['lab', '--help']]) {
    t.true(saved.some((a) => a.join(' ') === must.join(' ')), `'${must.join(' ')}' is not saved`)
  }
  const results = await pooled(saved, 3, (argv) => oclif(argv))
  for (const [i, argv] of saved.entries()) {
    const f = fast(argv)
    t.true(f.served, `'${argv.join(' ')}' went to oclif`)
    t.is(results[i]!.code, 0)
    t.is(results[i]!.stderr, '')
    t.is(f.stdout, results[i]!.stdout, `'migtrace ${argv.join(' ')}'`)
  }
})

test('help pages at other widths are oclif\'s at that width', async (t) => {
  const cases = [['--help'], ['replay', '--help'], ['help', 'lab', 'run'], ['lab'], ['import', 'kvm', '-h']].flatMap((argv) =>
    ['40', '57', '137', '1500'].map((columns) => ({argv, columns})),
  )
  const results = await pooled(cases, 3, ({argv, columns}) => oclif(argv, {OCLIF_COLUMNS: columns}))
  for (const [i, {argv, columns}] of cases.entries()) {
    const f = fast(argv, {OCLIF_COLUMNS: columns})
    t.true(f.served)
    t.is(f.stdout, results[i]!.stdout, `'migtrace ${argv.join(' ')}' at ${columns} columns`)
  }
})

test('bin/run.js prints the saved page off a terminal (80 columns) as oclif does', async (t) => {
  for (const argv of [['--help'], ['grid', '-h']]) {
    const [a, b] = await Promise.all([runCli(argv), oclif(argv)])
    t.deepEqual(a, b)
  }
})

test('a reader that has gone (EPIPE) ends help quietly with exit 0, as through oclif', (t) => {
  // `true` exits long before node has started, so the page's write meets a closed pipe.
  for (const env of [{}, {MIGTRACE_NO_FAST_HELP: '1'}]) {
    const r = spawnSync('bash', ['-c', '"$0" "$1" lab run --help | true; echo "${PIPESTATUS[0]}"', process.execPath, join(ROOT, 'bin/run.js')], {
      env: {...process.env, NODE_ENV: 'production', ...env},
      encoding: 'utf8',
    })
    t.is(r.stdout, '0\n')
    t.is(r.stderr, '')
  }
})

test('anything not saved goes to oclif: same output and exit code as before', async (t) => {
  for (const argv of [['repaly', '--help'], ['replay', '--bogus', '--help'], ['help', '-n'], ['help', 'nothing'], ['replay'], ['lab', 'image', 'x', '--help']]) {
    t.false(fast(argv).served, `'${argv.join(' ')}' was served`)
    const [a, b] = await Promise.all([runCli(argv), oclif(argv)])
    t.deepEqual(a, b, `'migtrace ${argv.join(' ')}'`)
  }
  const r = await runCli(['repaly', 'x', '--help'])
  t.is(r.code, 2)
  t.regex(r.stderr, /Command repaly:x not found\./)
})

test('the environment oclif would read, or a narrower width than oclif\'s floor, sends help to oclif', (t) => {
  t.true(fast(['--help']).served)
  t.false(fast(['--help'], {NODE_ENV: 'test'}).served)
  t.false(fast(['--help'], {NODE_ENV: 'development'}).served)
  t.false(fast(['--help'], {DEBUG: '*'}).served)
  t.false(fast(['--help'], {MIGTRACE_CONFIG_DIR: '/nowhere'}).served)
  t.false(fast(['--help'], {OCLIF_DISABLE_RC: '1'}).served)
  t.false(fast(['--help'], {OCLIF_COLUMNS: '39'}).served)
  t.false(fast(['--help'], {OCLIF_COLUMNS: '-5'}).served)
  t.true(fast(['--help'], {OCLIF_COLUMNS: 'wide'}).served) // oclif ignores it too: 80 off a terminal
  const home = mkdtempSync(join(tmpdir(), 'migtrace-theme-'))
  try {
    t.true(fast(['--help'], {XDG_CONFIG_HOME: home}).served)
    mkdirSync(join(home, index.dirname))
    writeFileSync(join(home, index.dirname, 'theme.json'), '{"bin": "red"}')
    t.false(fast(['--help'], {XDG_CONFIG_HOME: home}).served)
    // Without XDG_CONFIG_HOME oclif looks in ~/.config.
    mkdirSync(join(home, '.config', index.dirname), {recursive: true})
    t.true(fast(['--help'], {XDG_CONFIG_HOME: undefined, HOME: home}).served)
    writeFileSync(join(home, '.config', index.dirname, 'theme.json'), '{"bin": "red"}')
    t.false(fast(['--help'], {XDG_CONFIG_HOME: undefined, HOME: home}).served)
  } finally {
    rmSync(home, {recursive: true, force: true})
  }
})

test('a changed manifest or package.json, or another node for the root page, sends help to oclif', (t) => {
  // A copy of the package holding only what the fast path reads.
  const root = mkdtempSync(join(tmpdir(), 'migtrace-pages-'))
  try {
    for (const path of [PAGES_DIR, ...index.inputs.map((i) => i.path)]) {
      mkdirSync(dirname(join(root, path)), {recursive: true})
      cpSync(join(ROOT, path), join(root, path), {recursive: true})
    }
    t.true(fast(['--help'], {}, root).served)
    t.true(fast(['replay', '--help'], {}, root).served)

    const edited = {...index, userAgent: index.userAgent.replace(/node-v[\d.]+/, 'node-v0.0.1')}
    writeFileSync(join(root, PAGES_DIR, INDEX_FILE), JSON.stringify(edited))
    t.false(fast(['--help'], {}, root).served)
    t.true(fast(['replay', '--help'], {}, root).served) // a command's page has no user agent
    writeFileSync(join(root, PAGES_DIR, INDEX_FILE), JSON.stringify(index))

    for (const input of index.inputs) {
      const file = join(root, input.path)
      const original = readFileSync(file)
      writeFileSync(file, Buffer.concat([original, Buffer.from(' ')]))
      t.false(fast(['replay', '--help'], {}, root).served, `${input.path} changed`)
      writeFileSync(file, original)
    }
    t.true(index.inputs.some((i) => i.path === 'oclif.manifest.json'))
    t.true(index.inputs.some((i) => i.path === 'package.json'))
    t.true(fast(['replay', '--help'], {}, root).served)
    rmSync(join(root, index.inputs[0]!.path))
    t.false(fast(['replay', '--help'], {}, root).served)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
