/**
 * Regression: the replay's predictions on the committed real captures (qemu-lab, QEMU 7.2 under
 * TCG, imported with --pfnmap so the dirtier's writes are exact) against QEMU's own query-migrate.
 * Settings: the header's TCG mode (legacy get-and-clear bitmap) and lazy-clear=false (TCG has no
 * log_clear listener, so QEMU's lazy clear does nothing there).
 *
 * zero-page-cost=1.5us: in the lab each zero-page record costs the sender ~1.5 µs beyond its 9 wire
 * bytes (buffer_is_zero on the source, the destination's ram_load loop behind TCP back-pressure).
 * It was calibrated once, on 01-idle (989 ms observed for ~240 k zero pages, against 611 ms for the
 * link alone), and is a property of the lab host, like its link bandwidth; the other runs check it.
 *
 * Targets NOT met today by --driver qemu (left out below, not loosened; see docs/import-qemu.md):
 *  - dirty-sync-count on 02 (4 vs 5) and 06 (3 vs 4): in both runs QEMU synced once more, because
 *    a pending-size check fell under a threshold that a short real 100 ms window had lowered
 *    (TCG competes with the migration thread for the 2 host CPUs; the model's windows always
 *    carry the full max-bandwidth budget), and that sync still found the dirty set too large;
 *  - transferred on 02 (-5.0 %, just outside): the guest kernel's own writes (not in the trace)
 *    add ~4 000 normal pages that the model sends as zero pages.
 * The recorded driver, which follows the real sends, meets all three targets on every run.
 */
import {join} from 'node:path'
import test from 'ava'
import {compareWithObserved, type ExpectRow} from '../../src/analysis/expect.js'
import {replay} from '../../src/replay/index.js'
import {resolveSettings} from '../../src/replay/config.js'
import {openTrace} from '../../src/trace/read/open.js'
import {ROOT} from '../helpers/cli.js'

async function rows(run: string, driver: 'qemu' | 'recorded'): Promise<Record<string, ExpectRow>> {
  const file = join(ROOT, `traces/qemu-${run}-pfnmap.csv.gz`)
  const trace = await openTrace(file)
  const overrides = {'lazy-clear': false, 'zero-page-cost': '1.5us'}
  const settings = resolveSettings(trace.header, overrides)
  const r = await replay({header: trace.header, layout: trace.layout, events: trace.events(), file}, {driver, settings, overrides})
  return Object.fromEntries(compareWithObserved(trace.header.observed!, r, {mode: 'precopy'}).map((x) => [x.metric, x]))
}

const met: Record<string, Record<'qemu' | 'recorded', string[]>> = {
  '01-idle': {qemu: ['transferred', 'dirty-sync-count', 'downtime'], recorded: ['transferred', 'dirty-sync-count', 'downtime']},
  '02-moderate-random': {qemu: ['downtime'], recorded: ['transferred', 'dirty-sync-count', 'downtime']},
  '03-hotspot': {qemu: ['transferred', 'dirty-sync-count', 'downtime'], recorded: ['transferred', 'dirty-sync-count', 'downtime']},
  '06-virtio-mem': {qemu: ['transferred', 'downtime'], recorded: ['transferred', 'dirty-sync-count', 'downtime']},
}

for (const [run, byDriver] of Object.entries(met))
  for (const driver of ['qemu', 'recorded'] as const)
    test(`${run} --driver ${driver}: ${byDriver[driver].join(', ')} within the issue's targets`, async (t) => {
      const r = await rows(run, driver)
      for (const m of byDriver[driver]) t.true(r[m]!.pass, `${m}: observed ${r[m]!.observed}, predicted ${r[m]!.predicted}`)
      // The recorded driver follows QEMU's own sends: its dirty-sync-count is QEMU's, exactly.
      if (driver === 'recorded') t.is(r['dirty-sync-count']!.error, 0)
    })
