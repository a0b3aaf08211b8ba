/**
 * Start-up's fast path for help (bin/run.js): when the arguments ask for a help page that the build
 * saved (render.ts), print it and return true without loading oclif; otherwise return false and
 * bin/run.js hands over to oclif, as for everything else. Whenever anything oclif would consult
 * could make its help differ from the saved page, this returns false:
 *
 * - NODE_ENV development or test (oclif then reads the TypeScript sources, not the manifest);
 * - DEBUG, OCLIF_* (but OCLIF_COLUMNS) or MIGTRACE_* in the environment (debug output, a theme
 *   switch, other config, data or cache directories); MIGTRACE_NO_FAST_HELP=1 is the explicit way;
 * - a theme.json in oclif's config directory (coloured help);
 * - a width below 40 columns (only OCLIF_COLUMNS gives one; oclif's floor for a terminal is 40);
 * - a package.json or oclif manifest (this package's or a plugin's) other than the ones rendered;
 * - for the root help, another user agent (node version, platform) than the one rendered.
 *
 * Only node: built-ins are imported, and only what is needed: node:crypto alone would cost more
 * than the rest of this path.
 */
import {existsSync, readFileSync} from 'node:fs'
import {release} from 'node:os'
import {join} from 'node:path'
import {argvKey, fnv1a, INDEX_FILE, MIN_WIDTH, pageAt, pageFile, PAGES_DIR, PAGES_SCHEMA, type HelpIndex, type HelpPage} from './pages.js'

/** Whether oclif would answer these arguments with help at all (main.ts helpAddition, the help command, a bare topic). */
function mayBeHelp(argv: readonly string[]): boolean {
  if (argv.length === 0 || argv[0] === 'help') return true
  const last = argv.at(-1)
  // A bare topic ('migtrace lab') is a single word; anything longer must end in a help flag to be
  // one of the saved argument vectors.
  return argv.length === 1 || last === '--help' || last === '-h'
}

/** oclif's help width (screen.js): OCLIF_COLUMNS, else the terminal's columns (at least 40), else 80. */
function helpWidth(): number {
  const columns = Number.parseInt(process.env.OCLIF_COLUMNS ?? '', 10)
  if (columns) return columns
  const out = process.stdout
  if (!out.isTTY) return 80
  const width = out.getWindowSize()[0]
  if (width < 1) return 80
  return Math.max(width, MIN_WIDTH)
}

function environmentAllows(): boolean {
  const env = process.env
  if (env.NODE_ENV === 'development' || env.NODE_ENV === 'test') return false
  for (const name of Object.keys(env)) {
    if (name === 'DEBUG' || name.startsWith('MIGTRACE_') || (name.startsWith('OCLIF_') && name !== 'OCLIF_COLUMNS')) return false
  }
  return true
}

/** oclif's config.userAgent, as config.ts builds it (WSL, which oclif names 'wsl', is left to oclif). */
function userAgentLike(index: HelpIndex): string | undefined {
  if (process.platform === 'linux' && release().toLowerCase().includes('microsoft')) return undefined
  const arch = process.arch === 'ia32' ? 'x86' : process.arch
  const name = index.userAgent.split(' ')[0]!
  return `${name} ${process.platform}-${arch} node-${process.version}`
}

/** oclif's configDir (config.ts dir('config')); MIGTRACE_CONFIG_DIR has already sent us to oclif. */
function configDir(dirname: string): string | undefined {
  const base = process.env.XDG_CONFIG_HOME || (process.platform === 'win32' ? process.env.LOCALAPPDATA : undefined)
  const home = process.env.HOME
  if (base) return join(base, dirname)
  return home ? join(home, '.config', dirname) : undefined
}

function inputsUnchanged(root: string, index: HelpIndex): boolean {
  for (const input of index.inputs) {
    let bytes: Buffer
    try {
      bytes = readFileSync(join(root, input.path))
    } catch {
      return false
    }
    if (bytes.length !== input.size || fnv1a(bytes) !== input.hash) return false
  }
  return true
}

function ignoreWriteError(): void {}

/** Prints the saved help page for argv and returns true, or returns false for oclif to handle argv. */
export function serveHelp(root: string, argv: readonly string[]): boolean {
  if (!mayBeHelp(argv) || !environmentAllows()) return false
  const dir = join(root, PAGES_DIR)
  let index: HelpIndex
  try {
    index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8')) as HelpIndex
  } catch {
    return false
  }
  if (index.schema !== PAGES_SCHEMA) return false
  const key = argvKey(argv)
  if (!Object.hasOwn(index.keys, key)) return false
  const n = index.keys[key]!
  if (index.pages[n]?.root && userAgentLike(index) !== index.userAgent) return false
  const width = helpWidth()
  if (!(width >= MIN_WIDTH)) return false
  const themeDir = configDir(index.dirname)
  if (themeDir === undefined || existsSync(join(themeDir, 'theme.json'))) return false
  if (!inputsUnchanged(root, index)) return false
  let page: HelpPage
  try {
    page = JSON.parse(readFileSync(join(dir, pageFile(n)), 'utf8')) as HelpPage
  } catch {
    return false
  }
  // oclif prints through console.log, which ignores write errors: `migtrace --help | true` (the
  // reader gone, EPIPE) exits 0 without a word. The same here, not an unhandled 'error' event.
  process.stdout.off('error', ignoreWriteError).on('error', ignoreWriteError) // once, however often called
  process.stdout.write(pageAt(page, width))
  return true
}
