/**
 * Auto-converge and dirty-limit. O10 (anchors.md §8) is a statement about QEMU's rule
 * (migration_trigger_throttle + mig_throttle_guest_down), so it is checked on the Throttle model
 * fed with 1-second sync periods; the engine tests check that the throttle dilates the guest's
 * timeline and is reported per iteration.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {resolveSettings} from '../../src/replay/config.js'
import {GuestClock} from '../../src/replay/throttle-clock.js'
import {Throttle} from '../../src/replay/throttle.js'
import {UserError} from '../../src/util/errors.js'
import {machine, sequentialWriter, MiB} from './helpers.js'

const MB = 1e6

test('O10: dirty 300 MB/s against 100 MB/s sent: steps 20, 30, ..., 90 %, two qualifying periods each; lambda < 1 first at 70 %', (t) => {
  const {header} = machine({memory: 64 * MiB})
  const settings = resolveSettings(header, {'auto-converge': true})
  const clock = new GuestClock(1)
  const ps = 4096
  const th = new Throttle(settings, clock, ps, 0)
  th.start(0, 0)
  const periodNs = 1.001e9
  let now = 0
  let sent = 0
  const levelAtPeriod: number[] = []
  let firstLambdaBelow1: number | undefined
  for (let k = 0; k < 40; k++) {
    // Effective dirty rate 300 x (1 - p): the guest runs (1 - p) of the time.
    const dirtyBytes = 300 * MB * (1 - clock.throttlePct / 100) * (periodNs / 1e9)
    if (firstLambdaBelow1 === undefined && dirtyBytes < 100 * MB * (periodNs / 1e9)) firstLambdaBelow1 = clock.throttlePct
    now += periodNs
    sent += 100 * MB * (periodNs / 1e9)
    th.onSync(now, Math.round(dirtyBytes / ps), sent, k)
    levelAtPeriod.push(th.pct)
  }
  t.deepEqual(
    th.steps.map((s) => s.pct),
    [20, 30, 40, 50, 60, 70, 80, 90],
  )
  // Stops once 300 x (1 - p) <= 50 MB/s (p = 90 %: 30 MB/s).
  t.is(th.pct, 90)
  t.is(firstLambdaBelow1, 70)
  // Each step needs two qualifying periods: steps land on periods 2, 4, 6, ...
  t.deepEqual(
    th.steps.map((s) => s.iteration),
    [1, 3, 5, 7, 9, 11, 13, 15],
  )
  t.is(th.triggerPeriods, 16 + 0)
  t.is(levelAtPeriod.at(-1), 90)
})

test('tailslow: the step shrinks to what reaches the threshold; max-cpu-throttle caps it', (t) => {
  const {header} = machine({memory: 64 * MiB})
  const run = (extra: Record<string, unknown>): number[] => {
    const clock = new GuestClock(1)
    const th = new Throttle(resolveSettings(header, {'auto-converge': true, ...extra}), clock, 4096, 0)
    th.start(0, 0)
    let now = 0
    let sent = 0
    for (let k = 0; k < 40; k++) {
      const dirty = 300 * MB * (1 - clock.throttlePct / 100)
      now += 1.001e9
      sent += 100 * MB
      th.onSync(now, Math.round(dirty / 4096), sent, k)
    }
    return th.steps.map((s) => s.pct)
  }
  // At 80 %: cpu_now 20, dirty 60 MB vs threshold 50 MB, cpu_ideal = floor(20 x 50/60) = 16: +4.
  t.deepEqual(run({'cpu-throttle-tailslow': true}), [20, 30, 40, 50, 60, 70, 80, 84])
  t.deepEqual(run({'max-cpu-throttle': 45}), [20, 30, 40, 45])
})

test('the engine: auto-converge throttles a guest that outruns the link, dilates its timeline and reports the level per iteration', async (t) => {
  const {header, layout} = machine({memory: 4096 * MiB, populated: 'none'})
  const pages = (4096 * MiB) / 4096
  // 30 MiB/s of distinct pages against 10 MiB/s sent (O10 at 1/10 scale).
  const events = sequentialWriter(layout, {rate: (30 * MiB) / 4096, endNs: 200e9, pages}, 1 << 16)
  const base = {'max-bandwidth': (10 * MiB * 4104) / 4096, 'start-at': 0, 'stop-policy': 'rounds' as const}
  const off = await replay({header, layout, events}, {overrides: {...base, 'max-iterations': 6}})
  t.is(off.throttle, undefined)
  t.is(off.verdict, 'not-converged')
  t.is(off.stopReason, 'max-iterations')
  const r = await replay({header, layout, events}, {overrides: {...base, 'max-iterations': 6, 'auto-converge': true}})
  const th = r.throttle!
  t.is(th.mode, 'auto-converge')
  t.deepEqual(
    th.steps.map((s) => s.pct),
    [20, 30],
  )
  // Each step comes from a second qualifying period.
  t.true(th.triggerPeriods >= 2 * th.steps.length)
  // Per-iteration level: the row opened by the stepping sync carries the new level.
  for (const s of th.steps) t.is(r.rows[s.iteration]!.throttlePct, s.pct)
  t.is(r.rows[0]!.throttlePct, 0)
  // The guest's timeline stretched: its last replayed write ran later than in the trace by the
  // slowdown, so fewer writes fit before the switchover than without throttling.
  t.true(th.guestSlowdownMs > 1000, `slowdown ${th.guestSlowdownMs}`)
  t.true(r.events.writes < off.events.writes, `${r.events.writes} vs ${off.events.writes}`)
  const wallOfLast = r.traceEndNs
  const guestOfLast = (r.events.writes - 1) / ((30 * MiB) / 4096)
  t.true(Math.abs((wallOfLast - guestOfLast * 1e9) / 1e6 - th.guestSlowdownMs) < 2, `dilation ${(wallOfLast - guestOfLast * 1e9) / 1e6} vs ${th.guestSlowdownMs}`)
})

test('dirty-limit caps each vCPU at vcpu-dirty-limit once triggered, and needs the dirty ring', async (t) => {
  const {header, layout} = machine({memory: 1024 * MiB, populated: 'none', vcpus: 2, dirtyTracking: {mode: 'ring', ringSize: 4096}})
  const pages = (1024 * MiB) / 4096
  const events = sequentialWriter(layout, {rate: (20 * MiB) / 4096, endNs: 30e9, pages}, 1 << 16)
  const r = await replay({header, layout, events}, {overrides: {'max-bandwidth': (4 * MiB * 4104) / 4096, 'start-at': 0, 'stop-policy': 'rounds', 'max-iterations': 6, 'dirty-limit': true, 'vcpu-dirty-limit': 2}})
  const th = r.throttle!
  t.is(th.mode, 'dirty-limit')
  t.is(th.steps.length, 1)
  t.is(th.steps[0]!.pct, 2, 'the quota in MiB/s')
  // After the limit: the vCPU's dirty rate is its quota, so it ran late by 1 - 2/20 of the time.
  t.true(th.slowdownMsPerVcpu[0]! > 1000, `slowdown ${th.slowdownMsPerVcpu[0]}`)
  const lastRow = r.rows.filter((x) => x.phase === 'live').at(-1)!
  const rateMiB = (lastRow.newDirtyPages * 4096) / MiB / ((lastRow.startNs - r.rows.at(-3)!.startNs) / 1e9)
  t.true(rateMiB < 2.5, `dirty rate after the limit ${rateMiB} MiB/s`)
  t.throws(() => resolveSettings(machine({memory: 64 * MiB}).header, {'dirty-limit': true}), {instanceOf: UserError, message: /dirty ring/})
})
