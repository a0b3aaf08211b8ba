/**
 * `sync-cost`: a bitmap sync takes the migration thread time (KVM_GET_DIRTY_LOG per slot and the
 * bitmap walk, per GiB of RAM), and guest writes land between the GET and the lazy CLEAR that
 * the next send triggers. That is the window of the 2019 KVM_CLEAR_DIRTY_LOG race
 * (kvm_log_clear_one_slot): clearing all ones loses those writes, clearing only the bits of the
 * last GET (known-dirty) does not.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, MiB} from './helpers.js'

/** Random 8-byte writes over `pages` pages, one every ~200 µs, from a seeded LCG. */
function randomWrites(pages: number, endNs: number, seed: number): EventRecord[] {
  let x = seed
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    return x / 2 ** 32
  }
  const recs: EventRecord[] = []
  for (let t = 0; t < endNs; t += 1 + Math.floor(rnd() * 400e3)) recs.push({t_ns: t, kind: 'write', vcpu: 0, gpa: Math.floor(rnd() * pages) * 4096, len: 8})
  return recs
}

test('with syncs that take time, all-ones CLEAR loses writes at the default chunk size; known-dirty never does', async (t) => {
  // 64 MiB guest: one 1 GiB lazy-clear chunk, cleared at the first send after each sync.
  const {header, layout} = machine({memory: 64 * MiB})
  const base = {'max-bandwidth': 32 * MiB, 'start-at': 0, 'stop-policy': 'rounds'} as const
  let lost = 0
  for (let seed = 1; seed <= 3; seed++) {
    const events = batchesOf(layout, randomWrites(16384, 8e9, seed))
    const instant = await replay({header, layout, events}, {overrides: {...base, 'clear-policy': 'all-ones'}})
    t.is(instant.lostWrites, 0, 'an instantaneous sync leaves no window in the chunk being sent')
    const safe = await replay({header, layout, events}, {overrides: {...base, 'sync-cost': 100, 'clear-policy': 'known-dirty'}})
    t.is(safe.lostWrites, 0)
    const naive = await replay({header, layout, events}, {overrides: {...base, 'sync-cost': 100, 'clear-policy': 'all-ones'}})
    lost += naive.lostWrites
  }
  t.true(lost > 0, `all-ones lost ${lost} pages`)
})

test('the last-stage sync is part of the downtime', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const events = batchesOf(layout, randomWrites(16384, 8e9, 7))
  const base = {'max-bandwidth': 32 * MiB, 'start-at': 0, 'stop-policy': 'rounds'} as const
  const a = await replay({header, layout, events}, {overrides: base})
  // 64 MiB = 1/16 GiB: 16 ms per GiB is 1 ms per sync. The switchover has two: the policy's decision
  // sync (migration_iteration_run), which runs while the guest still runs, and the last-stage sync
  // (ram_save_complete) after vm_stop: only that one is downtime (qemu-semantics.md §3.8).
  const b = await replay({header, layout, events}, {overrides: {...base, 'sync-cost': 16}})
  t.is(a.verdict, 'converged')
  const sendMs = (r: typeof a): number => (r.downtime.ramBytes * 1000) / (32 * MiB)
  t.true(Math.abs(a.downtime.ramMs - sendMs(a)) < 1e-6, 'an instantaneous sync: the RAM part is the sending alone')
  t.true(Math.abs(b.downtime.ramMs - sendMs(b) - 1) < 1e-6, `${b.downtime.ramMs} = ${sendMs(b)} + 1 ms of sync`)
  t.true(b.totalTimeMs > a.totalTimeMs)
})
