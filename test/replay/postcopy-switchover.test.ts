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

test('the switchover sync is in the postcopy downtime: downtime = sync cost + (discards + device state) / link', async (t) => {
  const {header, layout} = machine({memory: 1024 * MiB})
  const events = sequentialWriter(layout, {rate: 1000, endNs: 2e9, pages: 1024})
  const device = 4 * MiB
  const link = wire(156.25)
  const base = {'max-bandwidth': link, 'start-at': 0, 'postcopy-after': 0, 'device-state-bytes': device}
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
