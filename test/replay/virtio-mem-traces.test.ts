/** The bundled VFIO / virtio-mem / malicious traces show their point (traces/README.md). */
import {join} from 'node:path'
import test from 'ava'
import {openTrace} from '../../src/trace/read/open.js'
import {replay} from '../../src/replay/index.js'
import {replayText} from '../../src/report/replay-report.js'
import {ROOT} from '../helpers/cli.js'

async function run(name: string) {
  const file = `traces/${name}.csv.gz`
  const trace = await openTrace(join(ROOT, file))
  return replay({header: trace.header, layout: trace.layout, events: trace.events(), file})
}

test('vfio-passthrough: an IOMMU-backed type1 device keeps the whole mapping dirty, precopy never converges (O12)', async (t) => {
  const r = await run('vfio-passthrough')
  t.is(r.verdict, 'not-converged')
  const c = (r.components.vfio as {containers: {perSync: {reportedDirtyPages: number}[]; mappedPages: number}[]}).containers[0]!
  t.true(c.perSync.every((s) => s.reportedDirtyPages === c.mappedPages))
  t.true(r.totals.redundantByCause['vfio-no-tracking']! > 4 * c.mappedPages)
  t.is(r.downtime.vfioStateBytes, 16 * 2 ** 20)
  t.regex(replayText(r, {trace: 'x'}), /\nVFIO\n {2}container vfio0: tracking reset-readd-pinned/)
})

test('virtio-mem: unplugged memory stays out of the stream; requests ACK before the migration, BUSY during it', async (t) => {
  const r = await run('virtio-mem')
  const vm = r.components['virtio-mem'] as {devices: {pagesSkippedUnplugged: number; wastePages: number}[]; requestLog: {response: string; duringMigration: boolean}[]}
  t.true(vm.devices[0]!.pagesSkippedUnplugged > 0)
  t.is(vm.devices[0]!.wastePages, 0)
  t.true(vm.requestLog.filter((q) => q.duringMigration).every((q) => q.response === 'BUSY'))
  t.true(vm.requestLog.some((q) => !q.duringMigration && q.response === 'ACK'))
})

test('malicious: writes into unplugged blocks are counted and the syncs that re-mark them are anomalies', async (t) => {
  const r = await run('malicious')
  const vm = r.components['virtio-mem'] as {devices: {unpluggedWritePages: number; anomalyPages: number}[]; anomalies: unknown[]}
  t.true(vm.devices[0]!.unpluggedWritePages > 1000)
  t.true(vm.anomalies.length > 0)
  t.true(vm.devices[0]!.anomalyPages > 1000)
})
