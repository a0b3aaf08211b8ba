/** A trace of dirty-ring records only (a KVM host's own log) replays as the guest's writes; ignored kinds are named. */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, MiB} from './helpers.js'

const ringGuest = () => machine({memory: 64 * MiB, dirtyTracking: {mode: 'ring', ringSize: 4096}})

test('kvm_dirty_ring_page records with no write events are the guest writes they stand for', async (t) => {
  const {header, layout} = ringGuest()
  const slot = layout.slots[0]!
  // Pages 10..19 reported dirty at 200 ms: long after the first pass sent them (~0.3 ms in).
  const records: EventRecord[] = []
  for (let p = 10; p < 20; p++) records.push({t_ns: 200e6, kind: 'kvm_dirty_ring_page', vcpu: 0, slot: slot.id, page: p})
  const r = await replay({header, layout, events: batchesOf(layout, records)}, {overrides: {'start-at': 0}})
  t.is(r.totals.redirtiedPages, 10, 'each reported page is sent again')
  t.is(r.lostWrites, 0)
  t.true(r.notes.some((n) => n.startsWith('10 kvm_dirty_ring_page records replayed as guest writes')), r.notes.join('\n'))
  t.false(r.notes.some((n) => n.startsWith('events this replay ignored')))
})

test('with write events present, ring records are not writes again: ignored and named', async (t) => {
  const {header, layout} = ringGuest()
  const slot = layout.slots[0]!
  const records: EventRecord[] = [
    {t_ns: 100e6, kind: 'write', vcpu: 0, gpa: 10 * 4096, len: 8},
    {t_ns: 200e6, kind: 'kvm_dirty_ring_page', vcpu: 0, slot: slot.id, page: 10},
  ]
  const r = await replay({header, layout, events: batchesOf(layout, records)}, {overrides: {'start-at': 0}})
  t.is(r.totals.redirtiedPages, 1)
  t.deepEqual(r.events.ignored, {kvm_dirty_ring_page: 1})
  t.true(r.notes.some((n) => n.startsWith('events this replay ignored: kvm_dirty_ring_page (1)')), r.notes.join('\n'))
})
