/**
 * virtio-mem through the whole engine: O14 (anchors.md §8), BUSY during migration, VFIO following
 * plug/unplug, a malicious guest writing unplugged memory, postcopy.
 * O14 runs at full size (4 GiB base + 64 GiB region, 8 GiB plugged, 2 MiB blocks: ~4 s); `scale`
 * divides every size, keeping the ratio, should it ever need to be faster.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, mergeByTime, GiB, MiB} from './helpers.js'

const PS = 4096
const BASE = 4 * GiB
const until = (t: number): EventRecord => ({t_ns: t, kind: 'read', vcpu: 0, gpa: 0, len: 8})

function o14(scale: number) {
  return machine({memory: (4 * GiB) / scale, virtioMem: [{id: 'vm0', base: 16 * GiB, regionSize: (64 * GiB) / scale, blockSize: 2 * MiB, plugged: (8 * GiB) / scale}]})
}

test('O14: base RAM + a large virtio-mem region with a little plugged: the first round sends base + plugged only', async (t) => {
  const scale = 1
  const {header, layout} = o14(scale)
  const events = batchesOf(layout, [until(1e9)])
  const overrides = {'max-bandwidth': '8GiB/s', 'start-at': 0, 'stop-policy': 'rounds'} as const
  const aware = await replay({header, layout, events}, {overrides})
  const round0 = aware.rows[0]!
  t.is(round0.pagesSent, (12 * GiB) / scale / PS, '12 GiB at full scale')
  t.is(round0.dirtyPagesAtSync, (12 * GiB) / scale / PS)
  const unplugged = (56 * GiB) / scale / PS
  // Unplugged blocks never appear in the send ledger: exactly the unplugged pages were sent 0 times.
  t.is(aware.sendHistogram[0], unplugged + (layout.totalPages - layout.guestMemoryBytes / PS))
  t.is(aware.totals.pagesSent, (12 * GiB) / scale / PS)
  const dev = (aware.components['virtio-mem'] as {devices: {pagesSkippedUnplugged: number; wastePages: number}[]}).devices[0]!
  t.is(dev.pagesSkippedUnplugged, unplugged)
  t.is(dev.wastePages, 0)

  const older = await replay({header, layout, events}, {overrides: {...overrides, 'virtio-mem-discard-aware': false}})
  t.is(older.rows[0]!.pagesSent, (68 * GiB) / scale / PS, '68 GiB at full scale')
  const od = (older.components['virtio-mem'] as {devices: {wastePages: number; wasteBytes: number}[]}).devices[0]!
  t.is(od.wastePages, unplugged, 'every unplugged page sent once: waste')
  t.is(od.wasteBytes, unplugged * 9, 'as zero pages (9 bytes each)')
  t.is(older.totals.zeroPages, unplugged)
})

function small(extra: Record<string, unknown> = {}) {
  return machine({
    memory: 64 * MiB,
    virtioMem: [{id: 'vm0', base: BASE, regionSize: 64 * MiB, blockSize: 2 * MiB, plugged: 16 * MiB, requestedSize: 64 * MiB}],
    ...extra,
  })
}

test('plug and unplug requests answer BUSY during the migration and ACK before it', async (t) => {
  const {header, layout} = small()
  const rec: EventRecord[] = [
    {t_ns: 1e6, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 16 * MiB, count: 2},
    {t_ns: 2e6, kind: 'mig_start'},
    {t_ns: 3e6, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 20 * MiB, count: 2},
    {t_ns: 4e6, kind: 'vmem_unplug', dev: 'vm0', gpa: BASE, count: 1},
    {t_ns: 5e6, kind: 'vmem_unplug_all', dev: 'vm0'},
    {t_ns: 6e6, kind: 'vmem_state', dev: 'vm0', gpa: BASE, count: 2},
    until(5e9),
  ]
  const r = await replay({header, layout, events: batchesOf(layout, rec)}, {overrides: {'max-bandwidth': '1GiB/s'}})
  const vm = r.components['virtio-mem'] as {requestLog: {request: string; response: string}[]; devices: {pluggedBytes: number; pluggedOverTime: {pluggedBytes: number}[]}[]}
  t.deepEqual(
    vm.requestLog.map((x) => `${x.request}:${x.response}`),
    ['plug:ACK', 'plug:BUSY', 'unplug:BUSY', 'unplug_all:BUSY', 'state:ACK'],
  )
  t.is(vm.devices[0]!.pluggedBytes, 20 * MiB)
  t.is(r.rows[0]!.pagesSent, (64 * MiB + 20 * MiB) / PS, 'the block plugged before the migration is migrated')
})

test('after the migration the same requests succeed (the destination device is not busy)', async (t) => {
  const {header, layout} = small()
  const rec: EventRecord[] = [
    {t_ns: 2e6, kind: 'mig_start'},
    {t_ns: 3e6, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 20 * MiB, count: 2},
    // 84 MiB at 1 GiB/s takes ~82 ms: these come well after the switchover.
    {t_ns: 2e9, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 20 * MiB, count: 2},
    {t_ns: 3e9, kind: 'vmem_unplug', dev: 'vm0', gpa: BASE, count: 1},
    {t_ns: 4e9, kind: 'vmem_unplug_all', dev: 'vm0'},
    until(5e9),
  ]
  const r = await replay({header, layout, events: batchesOf(layout, rec)}, {overrides: {'max-bandwidth': '1GiB/s'}})
  t.is(r.verdict, 'converged')
  t.true(r.endNs < 2e9)
  const vm = r.components['virtio-mem'] as {requestLog: {request: string; response: string}[]; devices: {pluggedBytes: number; pluggedOverTime: {tNs: number; pluggedBytes: number}[]}[]}
  t.deepEqual(
    vm.requestLog.map((x) => `${x.request}:${x.response}`),
    ['plug:BUSY', 'plug:ACK', 'unplug:ACK', 'unplug_all:ACK'],
  )
  t.is(vm.devices[0]!.pluggedBytes, 0)
  t.deepEqual(
    vm.devices[0]!.pluggedOverTime.filter((x) => x.tNs >= 2e9).map((x) => x.pluggedBytes / MiB),
    [20, 18, 0],
  )
})

test('a malicious guest writing unplugged memory: counted, re-marked by a sync (an anomaly with its pages), sent as waste', async (t) => {
  const {header, layout} = small()
  // 1 write per ms into the unplugged block at 48 MiB, from 100 ms to 600 ms.
  const rec: EventRecord[] = []
  for (let i = 0; i < 500; i++) rec.push({t_ns: 100e6 + i * 1e6, kind: 'write', vcpu: 0, gpa: BASE + 48 * MiB + (i % 256) * PS, len: PS})
  rec.push(until(5e9))
  const overrides = {'max-bandwidth': '64MiB/s', 'start-at': 0}
  const r = await replay({header, layout, events: batchesOf(layout, rec)}, {overrides})
  const vm = r.components['virtio-mem'] as {devices: {unpluggedWriteEvents: number; unpluggedWritePages: number; anomalyPages: number; wastePages: number}[]; anomalies: {pages: number; ranges: {gpa: number; pages: number}[]}[]}
  const d = vm.devices[0]!
  t.is(d.unpluggedWriteEvents, 500)
  t.is(d.unpluggedWritePages, 256)
  t.is(d.anomalyPages, 256, 'KVM logged them: a sync re-marked the discarded pages')
  t.is(vm.anomalies[0]!.ranges[0]!.gpa, BASE + 48 * MiB)
  t.is(d.wastePages, 256)
  t.is(r.lostWrites, 0)

  const refused = await replay({header, layout, events: batchesOf(layout, rec)}, {overrides: {...overrides, 'virtio-mem-unplugged-write': 'refuse'}})
  const rd = (refused.components['virtio-mem'] as {devices: {unpluggedWriteEvents: number; refusedWrites: number; anomalyPages: number; wastePages: number}[]}).devices[0]!
  t.is(rd.unpluggedWriteEvents, 500)
  t.is(rd.refusedWrites, 500)
  t.is(rd.anomalyPages, 0)
  t.is(rd.wastePages, 0)
})

test('unplugged memory written before the migration is not migrated, and that is not a lost write', async (t) => {
  const {header, layout} = small()
  // 50 writes into the unplugged block at 48 MiB before the migration starts at 100 ms: the setup
  // (discard-aware) drops those pages from the bitmap, so they are never sent; the destination
  // discards unplugged memory anyway (virtio_mem_post_load -> virtio_mem_restore_unplugged).
  const rec: EventRecord[] = []
  for (let i = 0; i < 50; i++) rec.push({t_ns: 10e6 + i * 1e6, kind: 'write', vcpu: 0, gpa: BASE + 48 * MiB + i * PS, len: PS})
  rec.push(until(5e9))
  const r = await replay({header, layout, events: batchesOf(layout, rec)}, {overrides: {'max-bandwidth': '64MiB/s', 'start-at': 100}})
  const d = (r.components['virtio-mem'] as {devices: {unpluggedWritePages: number; unpluggedNotMigratedPages: number; wastePages: number}[]}).devices[0]!
  t.is(d.unpluggedWritePages, 50)
  t.is(d.wastePages, 0)
  t.is(d.unpluggedNotMigratedPages, 50)
  t.is(r.lostWrites, 0)
})

test('postcopy final-sync hole: pages the guest wrote unplugged are re-marked by the switchover sync and migrated, unless the hole is closed', async (t) => {
  const {header, layout} = small()
  const rec: EventRecord[] = []
  for (let i = 0; i < 200; i++) rec.push({t_ns: 10e6 + i * 1e6, kind: 'write', vcpu: 0, gpa: BASE + 48 * MiB + i * PS, len: PS})
  rec.push(until(5e9))
  const r = await replay({header, layout, events: batchesOf(layout, rec)}, {overrides: {'max-bandwidth': '64MiB/s', 'start-at': 0, 'postcopy-at': '500ms'}})
  t.is(r.stopReason, 'postcopy')
  const vm = r.components['virtio-mem'] as {devices: {anomalyPages: number; wastePages: number; unpluggedWritePages: number}[]}
  t.is(vm.devices[0]!.unpluggedWritePages, 200)
  t.is(vm.devices[0]!.anomalyPages, 200)
  t.is(vm.devices[0]!.wastePages, 200, 'shown as migrated')

  // The hole closed: the switchover clears discarded ranges again, so none of them is sent.
  const closed = await replay(
    {header, layout, events: batchesOf(layout, rec)},
    {overrides: {'max-bandwidth': '64MiB/s', 'start-at': 0, 'postcopy-at': '500ms', 'virtio-mem-postcopy-hole': false}},
  )
  const cd = (closed.components['virtio-mem'] as {devices: {wastePages: number; unpluggedWritePages: number}[]}).devices[0]!
  t.is(cd.unpluggedWritePages, 200, 'still counted as guest misbehaviour')
  t.is(cd.wastePages, 0, 'not migrated')
  t.is(closed.totals.pagesSent, r.totals.pagesSent - 200)
})

test('VFIO follows virtio-mem: only plugged blocks are mapped, and no-tracking reports only them', async (t) => {
  const {header, layout} = small({vfio: [{id: 'vfio0', dirtyTracking: 'none', devices: [{id: 'dev0'}]}]})
  const rec: EventRecord[] = [
    {t_ns: 0, kind: 'vfio_map', dev: 'vfio0', iova: 0, gpa: 0, len: 64 * MiB},
    {t_ns: 0, kind: 'vfio_map', dev: 'vfio0', iova: BASE, gpa: BASE, len: 64 * MiB},
    {t_ns: 1e6, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 16 * MiB, count: 4},
    {t_ns: 2e6, kind: 'vmem_unplug', dev: 'vm0', gpa: BASE, count: 2},
    until(2e9),
  ]
  const r = await replay({header, layout, events: mergeByTime(layout, batchesOf(layout, rec))}, {overrides: {'max-bandwidth': '1GiB/s', 'start-at': 10, 'max-iterations': 2}})
  const c = (r.components.vfio as {containers: {mappedPages: number; perSync: {reportedDirtyPages: number}[]}[]}).containers[0]!
  const want = (64 * MiB + 16 * MiB + 8 * MiB - 4 * MiB) / PS
  t.is(c.mappedPages, want)
  t.true(c.perSync.every((s) => s.reportedDirtyPages === want))
})
