/**
 * qemu-version: the rule table (src/replay/qemu-version.ts) against its doc, the version defaults
 * and refusals, and an oracle computed by hand for each engine rule: the 5 s dirty-sync timer of
 * auto-converge (9.2), switchover-ack (8.1), VFIO without dirty tracking (refused in 7.2, all dirty
 * in 8.0-9.2, not synced from 10.0).
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {resolveSettings} from '../../src/replay/config.js'
import {defaultSettings} from '../../src/replay/settings.js'
import {DEFAULT_QEMU_VERSION, QEMU_VERSIONS, rulesMarkdown, versionDefault, versionOf} from '../../src/replay/qemu-version.js'
import {labSettings} from '../../src/import/qemu/importer.js'
import type {EventRecord} from '../../src/trace/events.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT} from '../helpers/cli.js'
import {batchesOf, machine, mergeByTime, sequentialWriter, MiB} from './helpers.js'

const PS = 4096

test('docs/qemu-versions.md holds the rule table exactly as the code renders it', (t) => {
  const doc = readFileSync(join(ROOT, 'docs/qemu-versions.md'), 'utf8')
  const m = /<!-- generated:qemu-rules -->\n([\s\S]*?)\n<!-- \/generated:qemu-rules -->/.exec(doc)
  t.truthy(m, 'the generated:qemu-rules markers')
  t.is(m![1], rulesMarkdown(), 'run npx tsx scripts/gen-docs.ts')
})

test('version defaults: zero-page-detection legacy before 9.0, multifd-flush-after-each-section true before 8.1; an explicit setting wins', (t) => {
  const {header} = machine({memory: 64 * MiB})
  const at = (v: string, extra: Record<string, unknown> = {}) => resolveSettings(header, {'qemu-version': v, ...extra})
  t.deepEqual([at('7.2')['zero-page-detection'], at('7.2')['multifd-flush-after-each-section']], ['legacy', true])
  t.deepEqual([at('8.0')['zero-page-detection'], at('8.0')['multifd-flush-after-each-section']], ['legacy', true])
  t.deepEqual([at('8.1')['zero-page-detection'], at('8.1')['multifd-flush-after-each-section']], ['legacy', false])
  t.deepEqual([at('9.0')['zero-page-detection'], at('9.0')['multifd-flush-after-each-section']], ['multifd', false])
  t.deepEqual([at('10.2')['zero-page-detection'], at('10.2')['multifd-flush-after-each-section']], ['multifd', false])
  t.is(at('7.2', {'zero-page-detection': 'none'})['zero-page-detection'], 'none')
  t.is(at('7.2', {'multifd-flush-after-each-section': false})['multifd-flush-after-each-section'], false)
  // A trace param counts as explicit too; the user's --set still wins over it.
  t.is(resolveSettings(header, {'qemu-version': '7.2'}, {'zero-page-detection': 'multifd'})['zero-page-detection'], 'multifd')
  // The declared defaults are the default version's.
  t.is(DEFAULT_QEMU_VERSION, '9.2')
  const d = defaultSettings(header)
  t.is(d['qemu-version'], DEFAULT_QEMU_VERSION)
  t.deepEqual(resolveSettings(header), d)
  t.is<unknown, unknown>(d['zero-page-detection'], versionDefault('zero-page-detection', DEFAULT_QEMU_VERSION))
  t.is<unknown, unknown>(d['multifd-flush-after-each-section'], versionDefault('multifd-flush-after-each-section', DEFAULT_QEMU_VERSION))
})

test("header source.settings (an importer's fixed settings: the run's QEMU and capabilities) apply under the user's; a bad entry names the header field", (t) => {
  const {header} = machine({memory: 64 * MiB})
  const withRun = {...header, source: {...header.source, settings: ['qemu-version=7.2', 'multifd=on', 'multifd-channels=4']}}
  const s = resolveSettings(withRun)
  t.deepEqual([s['qemu-version'], s.multifd, s['multifd-channels']], ['7.2', true, 4])
  // The run's version brings its defaults, as if the user had set it.
  t.is(s['zero-page-detection'], 'legacy')
  // A what-if still wins: the user's --set (or a compare variant) over the header.
  const w = resolveSettings(withRun, {multifd: false, 'qemu-version': '9.2'})
  t.deepEqual([w.multifd, w['multifd-channels'], w['zero-page-detection']], [false, 4, 'multifd'])
  // Without source.settings nothing changes.
  t.deepEqual(resolveSettings(header), defaultSettings(header))
  for (const bad of [['multifd-channels'], ['no-such-key=1'], ['multifd-channels=0x'], 'multifd=on'])
    t.throws(() => resolveSettings({...header, source: {settings: bad}}), {instanceOf: UserError, message: /source\.settings.*bad trace header/})
})

test('refusals: a capability, parameter or compression method the version lacks; hardware compressors are not modelled', (t) => {
  const {header} = machine({memory: 64 * MiB, dirtyTracking: {mode: 'ring', ringSize: 4096}})
  const refuse = (o: Record<string, unknown>, re: RegExp) => {
    const e = t.throws(() => resolveSettings(header, o), {instanceOf: UserError})
    t.regex(`${e!.message} ${e!.field} ${e!.expected}`, re)
  }
  refuse({'qemu-version': '8.0', 'switchover-ack': true}, /switchover-ack.*qemu-version=8\.1/)
  refuse({'qemu-version': '8.0', 'dirty-limit': true}, /dirty-limit.*qemu-version=8\.1/)
  refuse({'qemu-version': '8.1', 'avail-switchover-bandwidth': '1GiB/s'}, /avail-switchover-bandwidth.*qemu-version=8\.2/)
  refuse({'qemu-version': '9.0', 'multifd-compression': 'qpl'}, /multifd-compression.*qemu-version=9\.1/)
  refuse({'qemu-version': '9.1', 'multifd-compression': 'qatzip'}, /multifd-compression.*qemu-version=9\.2/)
  refuse({'qemu-version': '9.1', 'multifd-compression': 'uadk'}, /not modelled.*never measured/)
  refuse({'qemu-version': '10.2', 'multifd-compression': 'qatzip'}, /not modelled.*Intel QAT/)
  refuse({'qemu-version': '7.2', 'vfio-tracking': 'none'}, /vfio-tracking.*qemu-version=8\.0/)
  t.is(resolveSettings(header, {'qemu-version': '8.1', 'switchover-ack': true, 'dirty-limit': true})['switchover-ack'], true)
  t.is(resolveSettings(header, {'qemu-version': '8.2', 'avail-switchover-bandwidth': '1GiB/s'})['avail-switchover-bandwidth'], 2 ** 30)
  t.throws(() => resolveSettings(header, {'qemu-version': '6.2'}), {instanceOf: UserError, message: /bad value/})
})

test('versionOf reads QEMU version strings; a lab run carries its version as qemu-version', (t) => {
  t.is(versionOf('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)'), '7.2')
  t.is(versionOf('10.0.3'), '10.0')
  t.is(versionOf('6.2.0'), undefined)
  t.deepEqual(QEMU_VERSIONS.map((v) => versionOf(`${v}.1`)), [...QEMU_VERSIONS])
  const lab = (version: string) => ({qemu_version: version, args: {multifd_channels: 2, multifd_compression: 'zstd'}}) as Parameters<typeof labSettings>[0]
  t.deepEqual(labSettings(lab('QEMU emulator version 7.2.22 (Debian)')), ['qemu-version=7.2', 'multifd=on', 'multifd-channels=2', 'multifd-compression=zstd'])
  // A version the replay does not know: its multifd rules as explicit settings.
  t.deepEqual(labSettings(lab('QEMU emulator version 6.2.0')), ['multifd=on', 'multifd-channels=2', 'multifd-compression=zstd', 'zero-page-detection=legacy', 'multifd-flush-after-each-section=on'])
})

test('7.2 rules = 9.2 with 7.2 defaults set explicitly: the same figures for a multifd run', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 0, len: 32 * MiB}]})
  const events = sequentialWriter(layout, {rate: 2000, endNs: 3e9, pages: 4096})
  const base = {'max-bandwidth': '32MiB/s', 'start-at': 0, multifd: true}
  const a = await replay({header, layout, events}, {overrides: {...base, 'qemu-version': '7.2'}})
  const b = await replay({header, layout, events}, {overrides: {...base, 'zero-page-detection': 'legacy', 'multifd-flush-after-each-section': true}})
  const c = await replay({header, layout, events}, {overrides: base})
  t.is(a.totalTimeMs, b.totalTimeMs)
  t.is(a.transferredBytes, b.transferredBytes)
  t.is(a.dirtySyncCount, b.dirtySyncCount)
  // ...and not those of 9.2: zero pages go in the channels' packets and one flush per round.
  t.not(a.transferredBytes, c.transferredBytes)
})

/**
 * The 5 s dirty-sync timer. 64 MiB guest at 1 MiB/s: pass 1 sends 16384 pages x 4104 bytes =
 * 64.1 s. At t = 1 s the guest writes pages 4096..16383 once (12288 pages, not yet sent, their
 * KVM bits cleared at the first send): sync #2 at the end of pass 1 (~63.8 s, when the pending size
 * falls below the threshold) finds them, and pass 2 re-sends them: 12288 x 4104 bytes = 48.1 s,
 * to ~112 s. Timer ticks from the start every 5 s: up to 60 s dirty-sync-count is 1 (no sync); at
 * 65 s it is 2, not the 1 seen at 60 s (no sync, remember 2); from 70 s on no sync happened since
 * the last tick, so the timer syncs at 70, 75, ..., 110 s: 9 syncs. The guest is idle by then: they
 * find nothing. QEMU 9.1 has no timer.
 */
test('periodic-dirty-sync (9.2): with auto-converge a sync every 5 s during a long pass, none in the first; none in 9.1', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const events = sequentialWriter(layout, {rate: 12288e3, startNs: 1e9, endNs: 1e9 + 1e6, first: 4096, pages: 12288})
  const base = {'max-bandwidth': '1MiB/s', 'start-at': 0, 'auto-converge': true}
  const r92 = await replay({header, layout, events}, {overrides: {...base, 'qemu-version': '9.2'}})
  const r91 = await replay({header, layout, events}, {overrides: {...base, 'qemu-version': '9.1'}})
  const timerRows = (r: typeof r92) => r.rows.filter((x) => x.phase === 'live' && x.startNs > 0 && x.startNs % 5e9 === 0).map((x) => x.startNs / 1e9)
  t.deepEqual(timerRows(r92), [70, 75, 80, 85, 90, 95, 100, 105, 110])
  t.deepEqual(timerRows(r91), [])
  t.is(r92.dirtySyncCount, r91.dirtySyncCount + 9)
  // The timer's rows take their share of the sends: the rows still add up to the totals.
  t.is(r92.rows.reduce((n, x) => n + x.pagesSent, 0), r92.totals.pagesSent)
  for (const row of r92.rows.filter((x) => x.startNs % 5e9 === 0 && x.startNs > 0)) t.is(row.newDirtyPages, 0, 'the guest is idle')
  // The pass lengths do not change: the same pages, the same end.
  t.is(r92.stopReason, 'converged')
  t.is(r92.transferredBytes, r91.transferredBytes)
  t.true(Math.abs(r92.totalTimeMs - r91.totalTimeMs) < 1, `${r92.totalTimeMs} vs ${r91.totalTimeMs}`)
  t.true(r92.notes.some((n) => /^9 syncs by the 5 s dirty-sync timer/.test(n)), r92.notes.join('\n'))
  // Without auto-converge there is no timer.
  const off = await replay({header, layout, events}, {overrides: {...base, 'auto-converge': false, 'qemu-version': '9.2'}})
  t.is(off.dirtySyncCount, r91.dirtySyncCount)
})

/**
 * switchover-ack. An idle 16 MiB guest at 16 MiB/s converges after one pass (~1.0 s). A VFIO
 * device with 1 MiB of precopy initial data hands it over in the first loop turn at t = 0
 * (vfio_save_iterate: one 1 MiB chunk), which takes 1 MiB / 16 MiB/s = 62.5 ms on the link; with
 * rtt = 2 s the ack arrives at 62.5 + 2000 = 2062.5 ms. The switchover waits for it: the VM stops
 * at 2062.5 ms. Without the capability it stops at the end of the pass.
 */
test('switchover-ack (8.1): no switchover until the destination acks the device initial data, one rtt after it left', async (t) => {
  const mem = 16 * MiB
  const {header, layout} = machine({memory: mem, vfio: [{id: 'vfio0', dirtyTracking: 'device', devices: [{id: 'dev0', dmaLogging: true, precopyBytes: MiB}]}]})
  const events = batchesOf(layout, [{t_ns: 0, kind: 'vfio_map', dev: 'vfio0', iova: 0, gpa: 0, len: mem}])
  const base = {'max-bandwidth': '16MiB/s', 'start-at': 0, rtt: '2s'}
  const off = await replay({header, layout, events}, {overrides: base})
  const on = await replay({header, layout, events}, {overrides: {...base, 'switchover-ack': true}})
  t.is(off.stopReason, 'converged')
  t.true(off.totalTimeMs < 1200, `${off.totalTimeMs}`)
  t.is(on.stopReason, 'converged')
  const stop = on.rows.find((x) => x.phase === 'stop-copy')!
  t.is(stop.startNs, 2062.5e6)
  t.true(on.notes.some((n) => n.startsWith('switchover-ack: the destination acked at 2062.500 ms; the switchover waited')), on.notes.join('\n'))
  // No device with initial data: the destination acks when the return path opens, one rtt in.
  const plain = machine({memory: mem})
  const idle = await replay({header: plain.header, layout: plain.layout, events: batchesOf(plain.layout, [{t_ns: 0, kind: 'read', vcpu: 0, gpa: 0, len: 8}])}, {overrides: {...base, 'switchover-ack': true}})
  t.is(idle.rows.find((x) => x.phase === 'stop-copy')!.startNs, 2000e6)
  const e = await t.throwsAsync(replay({header, layout, events}, {overrides: {...base, 'switchover-ack': true, 'qemu-version': '8.0'}}), {instanceOf: UserError})
  t.regex(e!.expected ?? '', /qemu-version=8\.1/)
})

/**
 * VFIO without dirty tracking. 64 MiB guest at 64 MiB/s (one pass ~1.0 s); the device's first
 * MiB (256 pages) is mapped; at t = 500 ms the device writes pages 0..9 by DMA, sent at the start
 * of pass 1. 8.0-9.2: every mapped page reads dirty at every sync, so they are sent again: 0 lost.
 * 10.0: the sync is skipped, nothing reports them: 10 lost writes. 7.2: refused.
 */
test('VFIO without dirty tracking: all mapped pages dirty in 9.2, lost DMA writes in 10.0, refused in 7.2', async (t) => {
  const mem = 64 * MiB
  const {header, layout} = machine({memory: mem, vfio: [{id: 'vfio0', dirtyTracking: 'none', devices: [{id: 'dev0'}]}]})
  const recs: EventRecord[] = [{t_ns: 0, kind: 'vfio_map', dev: 'vfio0', iova: 0, gpa: 0, len: MiB}]
  for (let p = 0; p < 10; p++) recs.push({t_ns: 500e6 + p, kind: 'vfio_dma_write', dev: 'dev0', iova: p * PS, len: PS})
  const events = mergeByTime(layout, batchesOf(layout, recs))
  const base = {'max-bandwidth': '64MiB/s', 'start-at': 0}
  const v92 = await replay({header, layout, events}, {overrides: {...base, 'qemu-version': '9.2'}})
  const v10 = await replay({header, layout, events}, {overrides: {...base, 'qemu-version': '10.0'}})
  t.is(v92.lostWrites, 0)
  t.is(v10.lostWrites, 10)
  const perSync = (r: typeof v92) => (r.components.vfio as {containers: {perSync: {reportedDirtyPages: number}[]}[]}).containers[0]!.perSync.map((s) => s.reportedDirtyPages)
  // Sync #1 runs at setup before the map at t = 0; every later one reads the 256 mapped pages (9.2) or nothing (10.0).
  t.true(perSync(v92).slice(1).every((n) => n === 256) && perSync(v92).length > 1, perSync(v92).join(','))
  t.true(perSync(v10).every((n) => n === 0), perSync(v10).join(','))
  const e = await t.throwsAsync(replay({header, layout, events}, {overrides: {...base, 'qemu-version': '7.2'}}), {instanceOf: UserError})
  t.regex(`${e!.message} ${e!.expected}`, /7\.2 cannot migrate a VFIO device without dirty tracking.*qemu-version=8\.0/)
})
