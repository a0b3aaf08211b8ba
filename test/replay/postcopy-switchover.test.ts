/**
 * The postcopy switchover's downtime (QEMU 7.2 postcopy_start): the VM stops, then
 * ram_postcopy_send_discard_bitmap syncs (migration_bitmap_sync) and sends the discard runs, then
 * the package (LISTEN, device state, RUN) goes; ms->downtime is taken after the package. So the
 * switchover sync's time (the host's sync cost) is inside the downtime, before the discards.
 * Oracles by hand: 1 GiB guest, sync-cost per GiB.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {machine, sequentialWriter, MiB} from './helpers.js'

const wire = (mibPerS: number): number => (mibPerS * MiB * 4104) / 4096

/** A 1 GiB guest switching to postcopy at once on a 156.25 MiB/s link, 4 MiB of device state. */
function gibSwitchover() {
  const {header, layout} = machine({memory: 1024 * MiB})
  const events = sequentialWriter(layout, {rate: 1000, endNs: 2e9, pages: 1024})
  const device = 4 * MiB
  const link = wire(156.25)
  const base = {'max-bandwidth': link, 'start-at': 0, 'postcopy-after': 0, 'device-state-bytes': device}
  return {header, layout, events, device, link, base}
}

test('the switchover sync is in the postcopy downtime: downtime = sync cost + (discards + device state) / link', async (t) => {
  const {header, layout, events, device, link, base} = gibSwitchover()
  const r0 = await replay({header, layout, events}, {overrides: base})
  const r1 = await replay({header, layout, events}, {overrides: {...base, 'sync-cost': '50ms'}})
  const pc0 = r0.postcopy!
  const pc1 = r1.postcopy!
  // Without a sync cost: the package alone (O11).
  t.true(Math.abs(r0.downtimeMs - ((device + pc0.discardBytes) * 1000) / link) < 1e-9, `downtime ${r0.downtimeMs}`)
  // 50 ms per GiB of guest RAM, 1 GiB: the sync takes 50 ms with the VM stopped, before the discards.
  t.true(Math.abs(r1.downtimeMs - (50 + ((device + pc1.discardBytes) * 1000) / link)) < 1e-9, `downtime ${r1.downtimeMs}`)
  t.true(Math.abs(r1.downtime.ramMs - (50 + (pc1.discardBytes * 1000) / link)) < 1e-9, `ram part ${r1.downtime.ramMs}`)
  // The destination guest runs 50 ms later too (one-way latency after the package).
  t.true(Math.abs(pc1.guestResumeMs - pc1.switchoverMs - (r1.downtimeMs + 0.1)) < 1e-9, `resume ${pc1.guestResumeMs - pc1.switchoverMs}`)
  t.is(pc1.pagesSentTwiceAfterSwitchover, 0)
  t.is(pc1.destinationMissingPages, 0)
})

test('postcopy-stop-cost and postcopy-package-cost: the stop before the sync, the package after the discards, both in the downtime', async (t) => {
  const {header, layout, events, device, link, base} = gibSwitchover()
  const r = await replay({header, layout, events}, {overrides: {...base, 'postcopy-stop-cost': '2ms', 'postcopy-package-cost': '5ms'}})
  const pc = r.postcopy!
  // downtime = 2 ms stop + discards / link + 5 ms package + device state / link.
  t.true(Math.abs(r.downtimeMs - (2 + 5 + ((device + pc.discardBytes) * 1000) / link)) < 1e-9, `downtime ${r.downtimeMs}`)
  t.true(Math.abs(r.downtime.ramMs - (2 + (pc.discardBytes * 1000) / link)) < 1e-9, `ram part ${r.downtime.ramMs}`)
  t.true(Math.abs(r.downtime.deviceStateMs - (5 + (device * 1000) / link)) < 1e-9, `device part ${r.downtime.deviceStateMs}`)
  // The destination guest runs one way (0.1 ms) after the package.
  t.true(Math.abs(pc.guestResumeMs - pc.switchoverMs - (r.downtimeMs + 0.1)) < 1e-9, `resume ${pc.guestResumeMs - pc.switchoverMs}`)
})

test("the destination applies the discards before the package: the guest resumes, and the stream is read, only after (postcopy-discard-page-cost)", async (t) => {
  // 64 MiB guest, switch right after sync #1: all 16 384 pages are dirty, one discard range.
  const {header, layout} = machine({memory: 64 * MiB})
  const events = sequentialWriter(layout, {rate: 1000, endNs: 2e9, pages: 1024})
  const link = wire(156.25)
  const base = {'max-bandwidth': link, 'start-at': 0, 'postcopy-after': 0}
  const r0 = await replay({header, layout, events}, {overrides: base})
  const r1 = await replay({header, layout, events}, {overrides: {...base, 'postcopy-discard-page-cost': '10us'}})
  const pc0 = r0.postcopy!
  const pc1 = r1.postcopy!
  t.is(pc1.pagesAfterSwitchover, 16384)
  // 16 384 pages x 10 us = 163.84 ms of madvise on the destination; the discards arrive one-way
  // (rtt 0.2 ms / 2) after the stop: the guest runs at 0.1 + 163.84 ms, not at package + 0.1 ms.
  t.is(pc0.discardApplyMs, 0)
  t.true(Math.abs(pc1.discardApplyMs - 163.84) < 1e-9, `apply ${pc1.discardApplyMs}`)
  t.true(Math.abs(pc1.guestResumeMs - pc1.switchoverMs - (0.1 + 163.84)) < 1e-9, `resume ${pc1.guestResumeMs - pc1.switchoverMs}`)
  // QEMU's downtime ends when the source has sent the package: unchanged.
  t.is(r1.downtimeMs, r0.downtimeMs)
  // The link-bound stream's first byte leaves at 163.84 ms (arriving at the resume) instead of at the
  // package's end (the downtime, 0.17 us here), so it ends that much later.
  t.true(Math.abs(r1.totalTimeMs - r0.totalTimeMs - (163.84 - r0.downtimeMs)) < 1e-9, `total ${r1.totalTimeMs - r0.totalTimeMs}`)
  t.is(pc1.destinationMissingPages, 0)
})

test('after the switchover no source vCPU runs: the postcopy stream gets the host cores alone (host-cpus)', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const events = sequentialWriter(layout, {rate: 1000, endNs: 2e9, pages: 1024})
  // A fast link and 50 us of sender CPU per page: the stream is CPU-bound. One vCPU: with
  // host-cpus=1 a running guest would leave the migration thread half a core (1 / (1 + 1)).
  const base = {'max-bandwidth': wire(10240), 'start-at': 0, 'postcopy-after': 0, 'sender-page-cost': '50us', 'zero-page-cost': '50us'}
  const free = await replay({header, layout, events}, {overrides: base})
  const one = await replay({header, layout, events}, {overrides: {...base, 'host-cpus': 1}})
  // The source VM is stopped from the switch on: one core is all the thread needs, as unlimited.
  t.true(free.totalTimeMs > 16384 * 0.05, `CPU-bound: ${free.totalTimeMs}`)
  t.true(Math.abs(one.totalTimeMs - free.totalTimeMs) < 1e-9, `host-cpus=1 ${one.totalTimeMs} vs unlimited ${free.totalTimeMs}`)
})
