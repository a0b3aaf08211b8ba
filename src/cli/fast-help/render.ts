/**
 * Build step (`npm run build`, after `oclif manifest`): renders every help page with oclif's own help
 * class, at every terminal width that changes it, into dist/help-pages/ for serve.ts.
 *
 * oclif wraps help to the terminal (screen.js stdtermwidth: OCLIF_COLUMNS, else the tty's columns,
 * at least 40, or 80 off a tty), so each page is kept at every width from 40 columns up to the one
 * past which widening no longer changes it. Each argument vector the start-up path will answer is
 * then run through oclif's real entry point (main.run, a fresh config each) at 80 columns and must
 * print exactly the saved page: a mismatch fails the build rather than ship a page oclif would not
 * print.
 *
 * Nothing is written (and stale pages are removed) when the help could depend on more than the
 * manifests: hooks that run before help, a theme, a single-command CLI, flexible taxonomy.
 */
import {existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join, relative, sep} from 'node:path'
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'
import {argvKey, fnv1a, INDEX_FILE, MIN_WIDTH, pageAt, pageFile, PAGES_DIR, PAGES_SCHEMA, type HelpIndex, type HelpPage, type PagesInput} from './pages.js'

/** Hooks that never run on the way to help (plugins:* run on plugin installs; not-found is not help). */
const HARMLESS_HOOKS = new Set(['command_not_found', 'plugins:postinstall', 'plugins:postuninstall', 'plugins:preinstall'])
/** Beyond this a page that still changes is a bug here, not a terminal. */
const MAX_WIDTH = 1 << 16

// Set before oclif's screen.js reads it (so @oclif/core is imported below, not above): main.run
// renders at 80 columns here whatever the build's terminal.
process.env.OCLIF_COLUMNS = '80'
const {Config, loadHelpClass, run} = await import('@oclif/core')

// oclif's help renders every description through ejs.render(text, context) (help/util.js template),
// which compiles the text anew each time: thousands of renders here spent most of their time there.
// The compiled function depends only on the text when no options are passed, so it is kept.
const ejs = createRequire(import.meta.resolve('@oclif/core'))('ejs') as {compile: (template: string, opts?: object) => unknown}
const ejsCompile = ejs.compile
const compile = ejsCompile.bind(ejs)
const compiled = new Map<string, unknown>()
ejs.compile = (template: string, opts?: object): unknown => {
  if (opts !== undefined && Object.keys(opts).length > 0) return compile(template, opts)
  let fn = compiled.get(template)
  if (fn === undefined) compiled.set(template, (fn = compile(template, opts)))
  return fn
}

const root = fileURLToPath(new URL('../../..', import.meta.url))
const out = join(root, PAGES_DIR)

/** What a function prints on stdout and stderr (oclif's help goes through console.log). */
async function capture(fn: () => Promise<unknown>): Promise<{stdout: string; stderr: string}> {
  const stdoutWrite = process.stdout.write
  const stderrWrite = process.stderr.write
  let stdout = ''
  let stderr = ''
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write
  try {
    await fn()
  } finally {
    process.stdout.write = stdoutWrite
    process.stderr.write = stderrWrite
  }
  return {stdout, stderr}
}

function refuse(reason: string): never {
  rmSync(out, {recursive: true, force: true})
  process.stderr.write(`help pages not saved (${reason}): help goes through oclif\n`)
  process.exit(0)
}

const config = await Config.load(root)
if (config.isSingleCommandCLI) refuse('single-command CLI')
if (config.flexibleTaxonomy) refuse('flexible taxonomy')
if (config.pjson.oclif.theme !== undefined) refuse('a theme is configured')
if (config.theme !== undefined) refuse(`a theme.json in ${config.configDir}`)
for (const plugin of config.plugins.values()) {
  const hooks = Object.keys(plugin.hooks ?? {}).filter((h) => !HARMLESS_HOOKS.has(h))
  if (hooks.length > 0) refuse(`${plugin.name} has ${hooks.join(', ')} hooks`)
}

// The files the pages come from: each plugin's package.json and manifest.
const inputs: PagesInput[] = []
for (const plugin of config.plugins.values()) {
  for (const name of ['package.json', 'oclif.manifest.json']) {
    const file = join(plugin.root, name)
    if (!existsSync(file)) continue
    const bytes = readFileSync(file)
    inputs.push({path: relative(root, file).split(sep).join('/'), size: bytes.length, hash: fnv1a(bytes)})
  }
}

// oclif's help rewrites the ids and names it prints in place ('import:kvm' becomes 'import kvm', as
// formatCommands and formatTopics in help/index.js do), harmless in a process that prints one page:
// each render here starts from the ids as loaded.
const commands = new Set([...config.commands, ...[...config.plugins.values()].flatMap((p) => p.commands)])
const asLoaded = {
  commands: [...commands].map((c) => ({c, id: c.id, aliases: c.aliases})),
  topics: config.topics.map((t) => ({t, name: t.name})),
}
const restore = (): void => {
  for (const {c, id, aliases} of asLoaded.commands) Object.assign(c, {id, aliases})
  for (const {t, name} of asLoaded.topics) t.name = name
}

const Help = await loadHelpClass(config)
const helpOptions = config.pjson.oclif.helpOptions ?? {}
const render = async (words: string[], maxWidth: number): Promise<string> => {
  restore()
  const {stdout, stderr} = await capture(() => new Help(config, {...helpOptions, maxWidth}).showHelp(words))
  restore()
  if (stderr !== '') throw new Error(`help for '${words.join(' ')}' wrote to stderr: ${stderr}`)
  return stdout
}

/**
 * One page at every width that changes it. Each of oclif's layout choices is a threshold on the width
 * (wrap-ansi's greedy line filling; a flag's summary beside it or below), so a page the same at two
 * widths is the same at every width between them: bisection finds where it changes, and from the
 * first width at which it equals the page at unlimited width it no longer changes.
 */
async function renderPage(words: string[]): Promise<{page: HelpPage; root: boolean}> {
  const widest = await render(words, MAX_WIDTH)
  let top = Math.max(80, ...widest.split('\n').map((l) => l.length + 1))
  let atTop = await render(words, top)
  while (atTop !== widest) {
    if (top >= MAX_WIDTH) throw new Error(`help for '${words.join(' ')}' still changes at ${MAX_WIDTH} columns`)
    top = Math.min(MAX_WIDTH, top * 2)
    atTop = await render(words, top)
  }
  const byWidth = new Map<number, string>([[top, atTop]])
  const fill = async (lo: number, hi: number): Promise<void> => {
    if (hi - lo < 2 || byWidth.get(lo) === byWidth.get(hi)) return
    const mid = (lo + hi) >> 1
    byWidth.set(mid, await render(words, mid))
    await fill(lo, mid)
    await fill(mid, hi)
  }
  byWidth.set(MIN_WIDTH, await render(words, MIN_WIDTH))
  byWidth.set(80, await render(words, 80))
  await fill(MIN_WIDTH, 80)
  await fill(80, top)
  const page: HelpPage = {widths: [], lines: [], texts: []}
  const lineIndex = new Map<string, number>()
  let previous: string | undefined
  for (const w of [...byWidth.keys()].sort((a, b) => a - b)) {
    const text = byWidth.get(w)!
    if (text === previous) continue
    previous = text
    const lines = text.split('\n').map((line) => {
      let l = lineIndex.get(line)
      if (l === undefined) lineIndex.set(line, (l = page.lines.push(line) - 1))
      return l
    })
    page.widths.push([w, page.texts.push(lines) - 1])
  }
  // oclif's getHelpSubject skips 'help' and the help flags: nothing else left is the root page,
  // which alone prints the user agent.
  const root = words.every((w) => w === 'help' || helpFlags.includes(w))
  return {page, root}
}

const helpFlags = [...new Set([...(config.pjson.oclif.additionalHelpFlags ?? []), '--help'])]
const pages: HelpPage[] = []
const roots: {root: boolean}[] = []
const keys: Record<string, number> = {}
/** The argument vectors that print each page, checked against main.run at 80 columns. */
const checks: {argv: string[]; expected: string}[] = []

async function addPage(words: string[], argvs: string[][]): Promise<void> {
  const {page, root} = await renderPage(words)
  const p = pages.push(page) - 1
  roots.push({root})
  for (const argv of argvs) {
    keys[argvKey(argv)] = p
    // What start-up will print at 80 columns, through the same decoding.
    checks.push({argv, expected: pageAt(page, 80)})
  }
}

await addPage([], [[], ['help'], ...helpFlags.flatMap((f) => [[f], ['help', f]])])
const seen = new Set<string>()
for (const cmd of config.commands) {
  // Dynamic help loads the command to compute flag defaults at run time: not a fixed page.
  if (cmd.hasDynamicHelp) continue
  for (const id of [cmd.id, ...cmd.aliases]) {
    if (seen.has(id)) continue
    seen.add(id)
    const words = id.split(':')
    await addPage(words, [...helpFlags.map((f) => [...words, f]), ['help', ...words]])
  }
}
for (const topic of config.topics) {
  if (seen.has(topic.name)) continue // a command of that name: its page is the command's
  const words = topic.name.split(':')
  await addPage(words, [...helpFlags.map((f) => [...words, f]), ['help', ...words], words])
}

// The check goes through oclif untouched.
ejs.compile = ejsCompile
for (const {argv, expected} of checks) {
  const {stdout, stderr} = await capture(() => run(argv, root))
  if (stdout !== expected || stderr !== '') {
    throw new Error(`'migtrace ${argv.join(' ')}' through oclif differs from its saved help page`)
  }
}

const index: HelpIndex = {schema: PAGES_SCHEMA, userAgent: config.userAgent, dirname: config.dirname, inputs, pages: roots, keys}
rmSync(out, {recursive: true, force: true})
mkdirSync(out, {recursive: true})
for (const [n, page] of pages.entries()) writeFileSync(join(out, pageFile(n)), JSON.stringify(page))
writeFileSync(join(out, INDEX_FILE), JSON.stringify(index))
