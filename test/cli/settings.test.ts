/** migtrace settings, and the nearest-key hint for a misspelled --set key. */
import test from 'ava'
import {SETTINGS} from '../../src/replay/settings.js'
import {runCli} from '../helpers/cli.js'

test('settings --json lists every key once, with its unit, default and whether it is fixed', async (t) => {
  const r = await runCli(['settings', '--json'])
  t.is(r.code, 0)
  const doc = JSON.parse(r.stdout) as {schema: string; settings: {key: string; unit: string; default: string; fixed: boolean}[]}
  t.is(doc.schema, 'migtrace.settings/1')
  t.deepEqual(
    doc.settings.map((s) => s.key),
    SETTINGS.map((s) => s.key),
  )
  const dirtyLog = doc.settings.find((s) => s.key === 'dirty-log')!
  t.deepEqual([dirtyLog.default, dirtyLog.fixed], ['from the trace header', true])
  t.false(doc.settings.find((s) => s.key === 'max-bandwidth')!.fixed, 'a live QEMU parameter a trace may change')
})

test('settings FILTER shows the matching keys; a filter that matches nothing is one line, exit 2', async (t) => {
  const r = await runCli(['settings', 'throttle'])
  t.is(r.code, 0)
  t.deepEqual(
    r.stdout.split('\n').filter((l) => /^\S/.test(l)).map((l) => l.split(' ')[0]),
    ['cpu-throttle-initial', 'cpu-throttle-increment', 'cpu-throttle-tailslow', 'max-cpu-throttle', 'throttle-trigger-threshold'],
  )
  const bad = await runCli(['settings', 'zzz'])
  t.is(bad.code, 2)
  t.is(bad.stderr.trim().split('\n').length, 1)
})

test('a misspelled --set key names the nearest keys instead of listing them all', async (t) => {
  const r = await runCli(['replay', 'fixtures/replay/small.csv', '--set', 'downtime-limt=100ms'])
  t.is(r.code, 2)
  t.is(r.stderr.trim(), "migtrace: field 'downtime-limt': unknown setting in --set (expected downtime-limit (migtrace settings lists every key), found 'downtime-limt')")
})
