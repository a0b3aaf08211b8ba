/**
 * virtio-mem system reset (`vmem_reset`, virtio_mem_system_reset_hold -> virtio_mem_unplug_all),
 * hand oracles on 64 MiB of base RAM and a 1 GiB virtio-mem region (2 MiB blocks) with 16 MiB
 * plugged and a requested size of 512 MiB, so the usable region is min(1 GiB, 512 + 256 MiB) =
 * 768 MiB. Pages are 4 KiB: base RAM 16,384 pages, plugged 4,096, the region 262,144.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {RawOverrides} from '../../src/replay/config.js'
import type {EventRecord} from '../../src/trace/events.js'
import type {VirtioMemData} from '../../src/model/virtio-mem/component.js'
import {batchesOf, machine, GiB, MiB} from './helpers.js'

const PS = 4096
const BASE = 4 * GiB
const BASE_PAGES = (64 * MiB) / PS
const PLUGGED_PAGES = (16 * MiB) / PS
const REGION_PAGES = GiB / PS
const until = (t: number): EventRecord => ({t_ns: t, kind: 'read', vcpu: 0, gpa: 0, len: 8})

function guest() {
  return machine({memory: 64 * MiB, virtioMem: [{id: 'vm0', base: BASE, regionSize: GiB, blockSize: 2 * MiB, plugged: 16 * MiB, requestedSize: 512 * MiB}]})
}

async function run(rec: EventRecord[], overrides: RawOverrides = {}) {
  const {header, layout} = guest()
  const r = await replay({header, layout, events: batchesOf(layout, [...rec, until(3e9)])}, {overrides: {'max-bandwidth': '1GiB/s', ...overrides}})
  return {r, dev: (r.components['virtio-mem'] as VirtioMemData).devices[0]!}
}

test('a reset before the migration unplugs everything and shrinks the usable region: discard-aware migration skips the region', async (t) => {
  const none = await run([{t_ns: 2e6, kind: 'mig_start'}])
  t.is(none.r.rows[0]!.pagesSent, BASE_PAGES + PLUGGED_PAGES)
  t.is(none.dev.usableRegionSize, 768 * MiB)

  // requested-size down to 16 MiB: the usable region does not shrink on a resize; the reset
  // shrinks it to align_up(16 + 256 MiB, 2 MiB) = 272 MiB.
  const {r, dev} = await run([
    {t_ns: 0.5e6, kind: 'vmem_resize', dev: 'vm0', value: 16 * MiB},
    {t_ns: 1e6, kind: 'vmem_reset', dev: 'vm0'},
    {t_ns: 2e6, kind: 'mig_start'},
  ])
  t.is(dev.resets, 1)
  t.is(dev.resetsRefused, 0)
  t.is(dev.pluggedBytes, 0)
  t.is(dev.usableRegionSize, 272 * MiB)
  t.deepEqual(
    dev.pluggedOverTime.map((p) => p.pluggedBytes),
    [16 * MiB, 0, 0, 0],
  )
  // Only base RAM is sent; every page of the region leaves the bitmap at setup.
  t.is(r.rows[0]!.pagesSent, BASE_PAGES)
  t.is(r.totals.pagesSent, BASE_PAGES)
  t.is(dev.pagesSkippedUnplugged, REGION_PAGES)
  t.is(dev.wastePages, 0)
  t.is(r.lostWrites, 0)
})

test('without discard-aware migration the reset region is sent as zero pages: waste', async (t) => {
  const {r, dev} = await run([{t_ns: 1e6, kind: 'vmem_reset', dev: 'vm0'}, {t_ns: 2e6, kind: 'mig_start'}], {'virtio-mem-discard-aware': false})
  t.is(r.rows[0]!.pagesSent, BASE_PAGES + REGION_PAGES)
  t.is(dev.wastePages, REGION_PAGES)
  t.is(dev.wasteBytes, REGION_PAGES * 9)
  // The once plugged 16 MiB were discarded too: they go as zero pages like the rest.
  const before = await run([{t_ns: 2e6, kind: 'mig_start'}], {'virtio-mem-discard-aware': false})
  t.is(before.dev.wastePages, REGION_PAGES - PLUGGED_PAGES)
  t.is(r.totals.zeroPages - before.r.totals.zeroPages, PLUGGED_PAGES)
})

test('a reset during the migration is refused (-EBUSY): nothing unplugged, the plugged memory migrated; after it the reset unplugs', async (t) => {
  const {r, dev} = await run([
    {t_ns: 2e6, kind: 'mig_start'},
    {t_ns: 3e6, kind: 'vmem_resize', dev: 'vm0', value: 16 * MiB},
    {t_ns: 4e6, kind: 'vmem_reset', dev: 'vm0'},
    {t_ns: 5e6, kind: 'vmem_unplug_all', dev: 'vm0'},
    // 80 MiB at 1 GiB/s take ~80 ms: this one comes after the migration.
    {t_ns: 2e9, kind: 'vmem_reset', dev: 'vm0'},
  ])
  t.is(r.rows[0]!.pagesSent, BASE_PAGES + PLUGGED_PAGES)
  t.is(r.totals.pagesSent, BASE_PAGES + PLUGGED_PAGES)
  t.is(dev.resets, 2)
  t.is(dev.resetsRefused, 1)
  // The guest's own UNPLUG_ALL after the reboot is BUSY as well.
  t.is(dev.requests.unplug_all!.BUSY, 1)
  // The second reset, after the migration, unplugged and shrank the usable region.
  t.is(dev.pluggedBytes, 0)
  t.is(dev.usableRegionSize, 272 * MiB)
  t.is(r.lostWrites, 0)
})

test('a wake-up from suspend (value 1) keeps the memory plugged', async (t) => {
  const {r, dev} = await run([{t_ns: 1e6, kind: 'vmem_reset', dev: 'vm0', value: 1}, {t_ns: 2e6, kind: 'mig_start'}])
  t.is(dev.resets, 1)
  t.is(dev.resetsWakeup, 1)
  t.is(dev.pluggedBytes, 16 * MiB)
  t.is(r.rows[0]!.pagesSent, BASE_PAGES + PLUGGED_PAGES)
})

test('guest writes to the memory a reset unplugged follow virtio-mem-unplugged-write', async (t) => {
  const rec: EventRecord[] = [
    // An unplugged block (the plugged 16 MiB are blocks 0..7) written before the reset.
    {t_ns: 0.5e6, kind: 'write', vcpu: 0, gpa: BASE + 32 * MiB, len: 4096},
    {t_ns: 1e6, kind: 'vmem_reset', dev: 'vm0'},
    {t_ns: 1.5e6, kind: 'write', vcpu: 0, gpa: BASE + 4096, len: 4096},
    {t_ns: 2e6, kind: 'mig_start'},
  ]
  const refuse = await run(rec, {'virtio-mem-unplugged-write': 'refuse'})
  t.is(refuse.dev.refusedWrites, 2)
  t.is(refuse.r.totals.pagesSent, BASE_PAGES)
  // populate: the pages take the data. The reset discards the whole backend
  // (ram_block_discard_range over used_length): the page written before it is zero again. The one
  // written after it is unplugged: discard-aware setup skips it and the destination discards
  // unplugged memory, so it is not a lost write.
  const populate = await run(rec)
  t.is(populate.dev.unpluggedWritePages, 2)
  t.is(populate.dev.refusedWrites, 0)
  t.is(populate.dev.unpluggedNotMigratedPages, 1)
  t.is(populate.r.totals.pagesSent, BASE_PAGES)
  t.is(populate.r.lostWrites, 0)
})
