import test from 'ava'
import {FirstRound} from '../../src/import/qemu/first-round.js'

/** A live sync: migration_bitmap_sync_start, then _end. */
const sync = (r: FirstRound): void => {
  r.syncStart()
  r.syncEnd()
}

const P = 4096

test('FirstRound: pages after the second sync are first visits until the cursor wraps (a lower offset)', (t) => {
  const r = new FirstRound()
  sync(r) // sync #1 (setup)
  t.true(r.page('pc.ram', 0 * P))
  t.true(r.page('pc.ram', 7 * P))
  sync(r) // sync #2: pending fell under the threshold mid-round
  t.false(r.beforeSecondSync)
  t.true(r.page('pc.ram', 9 * P)) // the cursor went on from page 7
  t.false(r.page('pc.ram', 3 * P)) // wrapped: page 3 was re-dirtied after its visit
  t.false(r.page('pc.ram', 20 * P)) // the round is over for good
})

test('FirstRound: a switchover before the wrap: the stop-copy continues the round (ram_save_complete resumes at the cursor)', (t) => {
  const r = new FirstRound()
  sync(r)
  t.true(r.page('pc.ram', 100 * P))
  sync(r) // the deciding sync, right after a window of normal pages
  r.stop()
  sync(r) // the last-stage sync: no page since sync #2, but the guest is stopped
  t.true(r.page('pc.ram', 200 * P)) // the rest of the first round, sent in the downtime
  t.true(r.page('pc.bios', 0)) // the next RAMBlock in list order: still the round
  t.false(r.page('pc.ram', 150 * P)) // an earlier block again: wrapped (re-dirtied pages)
})

test('FirstRound: a block earlier in the round order ends the round even at a higher offset', (t) => {
  const r = new FirstRound()
  t.true(r.page('pc.ram', 10 * P))
  t.true(r.page('pc.bios', 0))
  t.false(r.page('pc.ram', 500 * P))
})

test('FirstRound: a thinned trace (no pages between two live syncs after the second) ends the round there, so its stop-copy is not taken for it', (t) => {
  const r = new FirstRound()
  sync(r)
  t.true(r.page('pc.ram', 10 * P))
  sync(r) // sync #2; the iteration passes' lines were dropped by keep.ts
  sync(r) // sync #3, live, with no ram_save_page since sync #2
  r.stop()
  t.false(r.page('pc.ram', 400 * P)) // a stop-copy page above the round's last: not a first visit
})

test('FirstRound: postcopy_start ends the round (the discard bitmap resets the cursor)', (t) => {
  const r = new FirstRound()
  t.true(r.page('pc.ram', 10 * P))
  r.stop(true)
  t.false(r.page('pc.ram', 20 * P))
})
