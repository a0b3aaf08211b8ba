/**
 * The recording plugin (native/record-plugin/migtrace-record.c) is built on first use with the
 * system's C compiler and cached by the hash of its source, the compiler and the flags: a changed
 * source or a new compiler gives a new .so, an unchanged one is reused without compiling.
 *
 * Cache: $MIGTRACE_CACHE_DIR, else $XDG_CACHE_HOME/migtrace, else ~/.cache/migtrace. The .so is
 * written to a temporary name and renamed into place, so two recordings starting at once never
 * load a half-written file.
 */
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, renameSync, rmSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {UserError} from '../util/errors.js'

/** -fvisibility=hidden: only qemu_plugin_install and qemu_plugin_version are exported. */
export const PLUGIN_CFLAGS = ['-O2', '-shared', '-fPIC', '-fvisibility=hidden', '-pthread', '-Wall', '-Wextra']

/** The plugin's C source in the package (dist/record/ and src/record/ both sit two levels down). */
export function pluginSourcePath(): string {
  return fileURLToPath(new URL('../../native/record-plugin/migtrace-record.c', import.meta.url))
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MIGTRACE_CACHE_DIR) return env.MIGTRACE_CACHE_DIR
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'migtrace')
  return join(homedir(), '.cache', 'migtrace')
}

export interface BuiltPlugin {
  path: string
  /** The cache key (source + compiler + flags), 16 hex digits. */
  hash: string
  /** True when this call compiled it. */
  built: boolean
  compiler: string
}

/** $CC, else cc, else gcc: the first that runs. */
function findCompiler(env: NodeJS.ProcessEnv): {cc: string; version: string} | undefined {
  const candidates = env.CC ? [env.CC] : ['cc', 'gcc']
  for (const cc of candidates) {
    const r = spawnSync(cc, ['--version'], {encoding: 'utf8', env})
    if (r.error === undefined && r.status === 0) return {cc, version: r.stdout.split('\n')[0] ?? ''}
  }
  return undefined
}

/** Build the plugin unless the cache already holds this version; returns the .so path. */
export function ensurePlugin(opts: {source?: string; cacheDir?: string; env?: NodeJS.ProcessEnv} = {}): BuiltPlugin {
  const env = opts.env ?? process.env
  const source = opts.source ?? pluginSourcePath()
  let text: Buffer
  try {
    text = readFileSync(source)
  } catch (e) {
    throw new Error(`bug: the recording plugin's source is missing from the package (${source}: ${(e as NodeJS.ErrnoException).code})`)
  }
  const compiler = findCompiler(env)
  if (compiler === undefined)
    throw new UserError(
      env.CC
        ? `the C compiler $CC=${env.CC} does not run; migtrace record builds its QEMU plugin with it (unset CC to use cc, or install gcc: apt-get install gcc libc6-dev)`
        : 'no C compiler found (cc or gcc): migtrace record builds its QEMU plugin on first use; install one with: apt-get install gcc libc6-dev',
    )
  const hash = createHash('sha256').update(text).update('\0').update(compiler.version).update('\0').update(PLUGIN_CFLAGS.join(' ')).digest('hex').slice(0, 16)
  const dir = opts.cacheDir ?? cacheDir(env)
  const out = join(dir, `migtrace-record-${hash}.so`)
  if (existsSync(out)) return {path: out, hash, built: false, compiler: compiler.version}
  try {
    mkdirSync(dir, {recursive: true})
  } catch (e) {
    throw new UserError('cannot create the plugin cache directory (set MIGTRACE_CACHE_DIR to a writable one)', {file: dir, found: (e as NodeJS.ErrnoException).code ?? String(e)})
  }
  const tmp = `${out}.tmp-${process.pid}`
  const r = spawnSync(compiler.cc, [...PLUGIN_CFLAGS, '-o', tmp, source], {encoding: 'utf8', env})
  if (r.status !== 0 || r.error !== undefined) {
    rmSync(tmp, {force: true})
    const msg = (r.stderr ?? '') + (r.error?.message ?? '')
    // The usual cause on Debian: gcc without the C library headers (libc6-dev).
    if (/fatal error: .*\.h: No such file/.test(msg))
      throw new UserError(`the C compiler cannot find the C library headers to build the QEMU plugin: install them with: apt-get install libc6-dev (${firstLine(msg)})`)
    throw new Error(`bug: the recording plugin did not compile with ${compiler.cc} (${compiler.version}):\n${msg}`)
  }
  renameSync(tmp, out)
  return {path: out, hash, built: true, compiler: compiler.version}
}

function firstLine(s: string): string {
  return s.split('\n').find((l) => l.includes('error')) ?? s.split('\n')[0] ?? ''
}
