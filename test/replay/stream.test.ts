/**
 * The migration stream (docs/stream.md): the sender's CPU, each rule with a hand-computed oracle.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import type {RawOverrides} from '../../src/replay/config.js'
import {batchesOf, machine, MiB} from './helpers.js'

const WIRE = 4104 // a 4 KiB page and its 8-byte record header
const GiBps = 2 ** 30
const close = (got: number, want: number, eps = 1e-6): boolean => Math.abs(got - want) <= eps

/** An idle 64 MiB guest (16384 populated pages, one vCPU), migrated at once on a 1 GiB/s link with no rate limit. */
async function idle(extra: RawOverrides, events: {t_ns: number; kind: 'write' | 'read'; gpa: number}[] = []) {
  const {header, layout} = machine({memory: 64 * MiB})
  const recs = [...events.map((e) => ({...e, vcpu: 0, len: 8})), {t_ns: 60e9, kind: 'read' as const, vcpu: 0, gpa: 0, len: 8}]
  return replay({header, layout, events: batchesOf(layout, recs)}, {overrides: {'start-at': 0, 'max-bandwidth': 0, 'link-bandwidth': '1GiB/s', 'stop-policy': 'rounds', ...extra}})
}

test('sender-page-cost: a CPU-bound migration thread sends a page per cost, not at the link rate', async (t) => {
  // 10 us per page > 4104 B / 1 GiB/s = 3.82 us on the link: the pass takes 16384 x 10 us.
  const r = await idle({'sender-page-cost': '0.01ms'})
  t.is(r.totals.pagesSent, 16384)
  t.true(close(r.rows[0]!.endNs / 1e6, 163.84, 1e-6), `pass ${r.rows[0]!.endNs / 1e6}`)
  t.true(close(r.totalTimeMs, 163.84, 1e-6), `total ${r.totalTimeMs}`)
  t.is(r.transferredBytes, 16384 * WIRE, 'the CPU changes the time, not the bytes')
})

test('sender-page-cost below the link time: the link is the bound, the figures do not move', async (t) => {
  const linkMs = (16384 * WIRE * 1000) / GiBps
  const base = await idle({})
  const r = await idle({'sender-page-cost': '0.001ms'})
  t.true(close(base.totalTimeMs, linkMs, 1e-6), `base ${base.totalTimeMs}`)
  t.true(close(r.totalTimeMs, linkMs, 1e-6), `total ${r.totalTimeMs} vs ${linkMs}`)
})

test('host-cpus: one core shared by the migration thread and a busy vCPU halves what the thread produces', async (t) => {
  // share = 1 x min(1, 1 / (1 thread + 1 vCPU)) = 0.5 core: 20 us per page; 2 cores: a core each.
  const one = await idle({'sender-page-cost': '0.01ms', 'host-cpus': 1})
  t.true(close(one.totalTimeMs, 327.68, 1e-6), `1 core ${one.totalTimeMs}`)
  const two = await idle({'sender-page-cost': '0.01ms', 'host-cpus': 2})
  t.true(close(two.totalTimeMs, 163.84, 1e-6), `2 cores ${two.totalTimeMs}`)
})

test('sender-page-cost in the downtime: the pages left go at the slower of link and CPU', async (t) => {
  // At 1 ms the cursor is near page 100 (1 ms / 10 us): pages 0 and 1 written then are re-dirtied
  // behind it. max-iterations=1 forces the switchover after the first pass, so both go in the downtime.
  const r = await idle({'sender-page-cost': '0.01ms', 'downtime-limit': '0.001ms', 'max-iterations': 1}, [
    {t_ns: 1e6, kind: 'write', gpa: 0},
    {t_ns: 1e6, kind: 'write', gpa: 4096},
  ])
  t.is(r.stopReason, 'max-iterations')
  t.is(r.downtime.ramPages, 2)
  // 2 pages x 10 us of CPU (each above its 3.82 us on the link).
  t.true(close(r.downtime.ramMs, 0.02, 1e-9), `downtime RAM ${r.downtime.ramMs}`)
})
