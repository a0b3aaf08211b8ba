import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {spawnSync} from 'node:child_process'
import test from 'ava'
import {ensurePlugin, pluginSourcePath} from '../../src/record/plugin-build.js'
import {UserError} from '../../src/util/errors.js'

const hasCc = spawnSync('cc', ['--version']).status === 0
const ctest = hasCc ? test : test.skip
if (!hasCc) console.log('plugin build tests skipped: no C compiler (cc); Debian: apt-get install gcc libc6-dev')

ctest('built once, then reused from the cache; a changed source is a new build', (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'migtrace-plugin-'))
  const a = ensurePlugin({cacheDir: cache})
  t.true(a.built)
  t.true(existsSync(a.path))
  t.regex(a.path, /migtrace-record-[0-9a-f]{16}\.so$/)
  // The plugin exports what QEMU's loader looks for, and nothing else of its own.
  const nm = spawnSync('nm', ['-D', '--defined-only', a.path], {encoding: 'utf8'})
  if (nm.status === 0) t.deepEqual(nm.stdout.split('\n').filter((l) => / [TD] /.test(l)).map((l) => l.split(' ').at(-1)).sort(), ['qemu_plugin_install', 'qemu_plugin_version'])
  const b = ensurePlugin({cacheDir: cache})
  t.false(b.built)
  t.is(b.path, a.path)
  const src = join(cache, 'changed.c')
  writeFileSync(src, readFileSync(pluginSourcePath(), 'utf8') + '\n/* changed */\n')
  const c = ensurePlugin({cacheDir: cache, source: src})
  t.true(c.built)
  t.not(c.hash, a.hash)
})

test('no compiler: one line naming the Debian package', (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'migtrace-plugin-'))
  const e = t.throws(() => ensurePlugin({cacheDir: cache, env: {PATH: '/nonexistent'}}), {instanceOf: UserError})
  t.regex(e.message, /no C compiler found .*apt-get install gcc/)
  const f = t.throws(() => ensurePlugin({cacheDir: cache, env: {CC: '/nonexistent/cc', PATH: process.env.PATH}}), {instanceOf: UserError})
  t.regex(f.message, /\$CC=\/nonexistent\/cc does not run/)
})

ctest('missing C headers: names libc6-dev', (t) => {
  const cache = mkdtempSync(join(tmpdir(), 'migtrace-plugin-'))
  const src = join(cache, 'hdr.c')
  writeFileSync(src, '#include <migtrace_no_such_header.h>\nint x;\n')
  const e = t.throws(() => ensurePlugin({cacheDir: cache, source: src}), {instanceOf: UserError})
  t.regex(e.message, /apt-get install libc6-dev/)
  t.false(existsSync(join(cache, 'hdr.so')))
})
