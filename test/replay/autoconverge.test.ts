/**
 * Auto-converge and dirty-limit. O10 (anchors.md §8) is a statement about QEMU's rule
 * (migration_trigger_throttle + mig_throttle_guest_down), so it is checked on the Throttle model
 * fed with 1-second sync periods; the engine tests check that the throttle dilates the guest's
 * timeline and is reported per iteration. The 10 ms slices of cpu_throttle_thread and the two
 * workload pacings are checked on the GuestClock with times worked out by hand.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {resolveSettings} from '../../src/replay/config.js'
import {GuestClock, throttleSleepNs} from '../../src/replay/throttle-clock.js'
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

const ms = 1e6

test('cpu_throttle_thread sleeps (int64)(pct / (1 - pct) x 10 ms + 1) ns after each 10 ms of running', (t) => {
  t.is(throttleSleepNs(20), 2_500_001)
  t.is(throttleSleepNs(50), 10_000_001)
  t.is(throttleSleepNs(90), 90_000_001)
  // 0.99 / (1 - 0.99) is 98.99999999999991 in doubles: 989,999,999.9999991 + 1 truncates to
  // 990,000,000 (QEMU's + 1 ns is there for such rounding).
  t.is(throttleSleepNs(99), 990_000_000)
})

test('slices, cpu pacing: each event moves by the sleeps before it; a new level waits for the next tick; the stop ends a sleep', (t) => {
  const c = new GuestClock(1, 'cpu')
  t.is(c.toWall(50 * ms), 50 * ms)
  // 50 % at wall 100 ms (guest 100 ms): the first tick is at once, sleep 10.000001 ms first, then
  // 10 ms runs, ticks every 20.000001 ms.
  c.setThrottle(50, 100 * ms)
  t.false(c.linear)
  t.is(c.toWall(100 * ms), 110_000_001)
  t.is(c.toWall(105 * ms), 115_000_001)
  t.is(c.toWall(110 * ms), 130_000_002, 'the second run slice follows the second sleep')
  t.is(c.toWall(119 * ms), 139_000_002)
  t.is(c.toGuest(105 * ms), 100 * ms, 'asleep: the guest does not advance')
  t.is(c.toGuest(115_000_001), 105 * ms)
  // Sleeps by 130 ms: one full (10.000001) + 9.999999 ms of the second = 20 ms.
  t.is(c.slowdownNs(130 * ms), 20 * ms)
  // 20 % asked at 105 ms: the next tick is 120.000001 ms (guest 110 ms); from there 2.500001 ms sleeps.
  c.setThrottle(20, 105 * ms)
  t.is(c.throttlePct, 20, 'query-migrate shows the new level at once')
  t.is(c.toWall(109 * ms), 119_000_001, 'still the 50 % slice')
  t.is(c.toWall(110 * ms), 122_500_002)
  t.is(c.toWall(125 * ms), 122_500_002 + 5 * ms + 10 * ms + 2_500_001)
  // The switchover at 121 ms (asleep since 120.000001): the guest resumes at once, unthrottled.
  c.setThrottle(0, 121 * ms)
  t.true(c.linear)
  t.is(c.toWall(110 * ms), 121 * ms)
  t.is(c.toWall(111 * ms), 122 * ms)
  t.is(c.slowdownNs(200 * ms), 10_000_001 + 999_999)
})

test('slices, wall pacing: an event due during a sleep happens at the wake-up, others on time', (t) => {
  const c = new GuestClock(1, 'wall')
  c.setThrottle(50, 100 * ms)
  t.is(c.toWall(100 * ms), 110_000_001)
  t.is(c.toWall(105 * ms), 110_000_001)
  t.is(c.toWall(112 * ms), 112 * ms)
  t.is(c.toWall(120_000_001), 130_000_002, 'the second tick: asleep again')
  t.is(c.toWall(131 * ms), 131 * ms)
  // The rate barely drops: of the events due in [100, 140.000002) ms, all have happened by the end
  // of the second run slice; the vCPU slept as long as with cpu pacing.
  t.is(c.toGuest(135 * ms), 135 * ms)
  t.is(c.slowdownNs(130 * ms), 20 * ms)
})

test('the engine: a CPU-bound writer slows down under auto-converge, a wall-paced one keeps its rate', async (t) => {
  const {header, layout} = machine({memory: 4096 * MiB, populated: 'none'})
  const pages = (4096 * MiB) / 4096
  const rate = (30 * MiB) / 4096
  const events = sequentialWriter(layout, {rate, endNs: 200e9, pages}, 1 << 16)
  const base = {'max-bandwidth': (10 * MiB * 4104) / 4096, 'start-at': 0, 'stop-policy': 'rounds' as const, 'max-iterations': 6, 'auto-converge': true}
  const cpu = await replay({header, layout, events}, {overrides: {...base, 'workload-pacing': 'cpu'}})
  const wall = await replay({header, layout, events}, {overrides: {...base, 'workload-pacing': 'wall'}})
  // The sequential writer never rewrites a page: the pages dirtied in a round are the writes whose
  // wall time fell in it. Wall pacing: the writes of a round are those due in it, give or take one
  // sleep at each end (each write is at most one sleep late). CPU pacing: (1 - pct) of them.
  const check = (r: typeof cpu, pacing: string): number => {
    let n = 0
    for (const row of r.rows.filter((x) => x.phase === 'live' && x.iteration > 0 && (x.throttlePct ?? 0) > 0)) {
      const prev = r.rows[row.iteration - 1]!
      const pct = row.throttlePct ?? 0
      if (prev.throttlePct !== pct) continue
      const due = ((row.startNs - prev.startNs) / 1e9) * rate
      const got = row.newDirtyPages
      const slack = (2 * throttleSleepNs(pct) * rate) / 1e9 + 2
      const want = pacing === 'wall' ? due : due * (1 - pct / 100)
      t.true(Math.abs(got - want) <= (pacing === 'wall' ? slack : 0.01 * due + slack), `${pacing} at ${pct} %: ${got} new pages, want ${want.toFixed(0)}`)
      n++
    }
    return n
  }
  t.true(check(cpu, 'cpu') >= 1)
  t.true(check(wall, 'wall') >= 1)
  // The same throttle, but the wall-paced guest wrote as much as unthrottled: more pages by the end.
  t.deepEqual(wall.throttle!.steps.map((s) => s.pct), cpu.throttle!.steps.map((s) => s.pct))
  t.true(wall.events.writes > cpu.events.writes, `${wall.events.writes} vs ${cpu.events.writes}`)
})

test('hold (a live sync under TCG, wall-paced writer): an event due in [from, to) happens at to, later ones on time; a pause from to moves the held ones to the resume', (t) => {
  const c = new GuestClock(1, 'wall')
  c.hold(100 * ms, 150 * ms)
  t.false(c.linear, 'events before the hold end go through toWall')
  t.is(c.toWall(90 * ms), 90 * ms)
  t.is(c.toWall(100 * ms), 150 * ms)
  t.is(c.toWall(149 * ms), 150 * ms)
  t.is(c.toWall(150 * ms), 150 * ms)
  t.is(c.toWall(160 * ms), 160 * ms, 'no shift after the hold (a pause would give 210 ms)')
  t.true(c.linear, 'past the hold the line is back')
  // A second hold, then the switchover pauses the guest at its end until 300 ms.
  c.hold(200 * ms, 220 * ms)
  c.pause(220 * ms, 300 * ms)
  t.false(c.linear)
  t.is(c.toWall(199 * ms), 199 * ms)
  t.is(c.toWall(210 * ms), 300 * ms, 'held to 220 ms, where the guest is paused: at the resume')
  t.is(c.toWall(220 * ms), 300 * ms)
  t.is(c.toWall(230 * ms), 310 * ms, 'the pause shifts what follows it')
  t.true(c.linear)
})
