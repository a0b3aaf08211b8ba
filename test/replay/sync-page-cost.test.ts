/**
 * `sync-page-cost`: QEMU 7.2's cpu_physical_memory_sync_dirty_bitmap walks a RAM block whose
 * length is not a multiple of 64 pages page by page (cpu_physical_memory_test_and_clear_dirty,
 * with a TCG TLB reset per dirty page); each dirty page it finds costs the migration thread time,
 * at every sync. Sync #1 (ram_init_bitmaps -> migration_bitmap_sync_precopy) finds every page
 * dirty (ram_block_add set them for every client), so it delays the first send. The guest runs
 * during a sync: its writes land after the GET, in the next pass. Oracles by hand.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, MiB} from './helpers.js'

const GiBps = 2 ** 30
/** 64 MiB + one page: 16 385 pages, not a multiple of 64: the per-page path. */
const PADDED = 64 * MiB + 4096
const base = {'max-bandwidth': GiBps, 'start-at': 0, 'stop-policy': 'rounds', 'lazy-clear': false} as const

/** Pages 0..n-1 written once each (8 bytes), evenly between t0 and t1 ms. */
function writesOnce(n: number, t0: number, t1: number): EventRecord[] {
  return Array.from({length: n}, (_, i) => ({t_ns: Math.round((t0 + ((t1 - t0) * i) / n) * 1e6), kind: 'write' as const, vcpu: 0, gpa: i * 4096, len: 8}))
}

const near = (t: {true: (v: boolean, m?: string) => void}, a: number, b: number, what: string): void => t.true(Math.abs(a - b) < 1e-6, `${what}: ${a} against ${b}`)

test('an idle guest: sync #1 finds every page of a per-page-path block dirty and delays the first send; later syncs find none', async (t) => {
  const {header, layout} = machine({memory: PADDED, populated: 'none'})
  t.is(layout.guestPages, 16385)
  const idle = await replay({header, layout, events: []}, {overrides: base})
  const costly = await replay({header, layout, events: []}, {overrides: {...base, 'sync-page-cost': 0.01}})
  // 16 385 pages x 10 us = 163.85 ms of setup; nothing is dirty afterwards, so nothing else changes.
  near(t, idle.setupTimeMs, 0, 'free sync')
  near(t, costly.setupTimeMs, 163.85, 'setup')
  near(t, costly.totalTimeMs - idle.totalTimeMs, 163.85, 'total time')
  t.is(costly.dirtySyncCount, idle.dirtySyncCount)
  t.is(costly.transferredBytes, idle.transferredBytes)
  near(t, costly.downtimeMs, idle.downtimeMs, 'downtime')
})

test('a block whose length is a multiple of 64 pages takes the fast path: no per-page cost', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, populated: 'none'})
  const free = await replay({header, layout, events: batchesOf(layout, writesOnce(1000, 1, 2))}, {overrides: base})
  const costly = await replay({header, layout, events: batchesOf(layout, writesOnce(1000, 1, 2))}, {overrides: {...base, 'sync-page-cost': 0.01}})
  t.is(costly.setupTimeMs, 0)
  t.is(costly.totalTimeMs, free.totalTimeMs)
})

test('writes during sync #1 land in the next pass, and the sync that finds them costs them too', async (t) => {
  const {header, layout} = machine({memory: PADDED, populated: 'none'})
  // 1 000 pages written once, between 10 and 50 ms: during sync #1 (0 to 163.85 ms).
  const events = batchesOf(layout, writesOnce(1000, 10, 50))
  const r = await replay({header, layout, events}, {overrides: {...base, 'sync-page-cost': 0.01}})
  // Pass 0 sends from 163.85 ms: 1 000 written pages (8 + 4096 bytes) and 15 385 zero pages
  // (9 bytes) at 1 GiB/s. Sync #2 then finds the 1 000 pages (written after sync #1's GET): 10 ms;
  // the rounds policy stops there (4 MB fit in 300 ms), and the VM stops when that sync is done.
  // The last-stage sync finds nothing (0 ms), then the 1 000 pages go again.
  const pass0 = ((1000 * 4104 + 15385 * 9) / GiBps) * 1000
  const final = ((1000 * 4104) / GiBps) * 1000
  near(t, r.setupTimeMs, 163.85, 'setup')
  t.is(r.dirtySyncCount, 3)
  t.is(r.rows[1]!.dirtyPagesAtSync, 1000)
  near(t, r.downtimeMs, final, 'downtime')
  near(t, r.totalTimeMs, 163.85 + pass0 + 10 + final, 'total')
  t.is(r.lostWrites, 0)
})

test('sync-first-page-cost: sync #1 alone at its own cost a page, the later syncs at sync-page-cost', async (t) => {
  const {header, layout} = machine({memory: PADDED, populated: 'none'})
  const events = batchesOf(layout, writesOnce(1000, 10, 50))
  const r = await replay({header, layout, events}, {overrides: {...base, 'sync-page-cost': 0.01, 'sync-first-page-cost': 0.004}})
  // Sync #1: 16 385 pages x 4 us = 65.54 ms. Pass 0 from there; sync #2 finds the 1 000 pages at
  // 10 us each (10 ms, as without the setting); then the last stage, as in the test above.
  const pass0 = ((1000 * 4104 + 15385 * 9) / GiBps) * 1000
  const final = ((1000 * 4104) / GiBps) * 1000
  near(t, r.setupTimeMs, 65.54, 'setup')
  t.is(r.dirtySyncCount, 3)
  t.is(r.rows[1]!.dirtyPagesAtSync, 1000)
  near(t, r.totalTimeMs, 65.54 + pass0 + 10 + final, 'total')
  // unset: sync-page-cost for sync #1 too (the test above)
  const unset = await replay({header, layout, events: batchesOf(layout, writesOnce(1000, 10, 50))}, {overrides: {...base, 'sync-page-cost': 0.01}})
  near(t, unset.setupTimeMs, 163.85, 'setup, unset')
})
