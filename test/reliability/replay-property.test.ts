/**
 * Issue 17: no correct configuration loses a write. Random small traces (vCPU writes and reads,
 * emulated DMA, a VFIO device mapping, pinning and writing by DMA, a migration start and maybe a
 * postcopy switch as trace events) replayed through the public replay() under random correct
 * settings: every run ends with 0 lost writes, and a run that switched to postcopy also keeps the
 * postcopy invariants (no page sent twice after the switchover, none missing on the destination),
 * also across a network failure and its recovery (every page lost in flight sent again).
 *
 * "Correct" leaves out what is documented to lose writes on purpose: clear-policy=all-ones (the
 * 2019 race, docs/replay.md) and the recorded driver (it follows a real run, whatever it did).
 * Seeded (fast-check), so a failure prints a counterexample that reproduces.
 */
import test from 'ava'
import fc from 'fast-check'
import type {EventRecord} from '../../src/trace/events.js'
import {replay} from '../../src/replay/index.js'
import {UserError} from '../../src/util/errors.js'
import {MiB, batchesOf, machine} from '../replay/helpers.js'

const PAGE = 4096
/** Fixed, so a failure reproduces; MIGTRACE_PROPERTY_SEED / _RUNS explore further. */
const SEED = Number(process.env.MIGTRACE_PROPERTY_SEED ?? 17_2026)
const RUNS = Number(process.env.MIGTRACE_PROPERTY_RUNS ?? 500)

type Overrides = Record<string, string | number | boolean>

interface Scenario {
  memoryMiB: number
  vcpus: number
  vfio?: {tracking: 'none' | 'type1' | 'device'; dmaLogging: boolean; mapPages: number; pinPages: number}
  events: {t: number; kind: 'write' | 'read' | 'dma_write' | 'vfio_dma_write'; vcpu: number; page: number; len: number}[]
  migStartMs?: number
  postcopyEventMs?: number
  settings: Overrides
}

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    memoryMiB: fc.constantFrom(4, 8, 16),
    vcpus: fc.integer({min: 1, max: 3}),
    vfio: fc.option(
      fc.record({
        tracking: fc.constantFrom('none' as const, 'type1' as const, 'device' as const),
        dmaLogging: fc.boolean(),
        mapPages: fc.integer({min: 1, max: 1024}),
        pinPages: fc.integer({min: 0, max: 1024}),
      }),
      {nil: undefined},
    ),
    events: fc.array(
      fc.record({
        t: fc.integer({min: 0, max: 2_000_000_000}),
        kind: fc.constantFrom('write' as const, 'write' as const, 'write' as const, 'read' as const, 'dma_write' as const, 'vfio_dma_write' as const),
        vcpu: fc.integer({min: 0, max: 2}),
        page: fc.oneof(fc.integer({min: 0, max: 4095}), fc.integer({min: 0, max: 15})),
        len: fc.constantFrom(8, 64, PAGE),
      }),
      {maxLength: 1500},
    ),
    migStartMs: fc.option(fc.integer({min: 0, max: 1000}), {nil: undefined}),
    postcopyEventMs: fc.option(fc.integer({min: 0, max: 2000}), {nil: undefined}),
    settings: fc.record(
      {
        'max-bandwidth': fc.constantFrom('2MiB/s', '16MiB/s', '128MiB/s', '1GiB/s'),
        'downtime-limit': fc.constantFrom('5ms', '50ms', '300ms', '2s'),
        'stop-policy': fc.constantFrom('qemu', 'rounds', 'xen'),
        'dirty-log': fc.constantFrom('bitmap', 'manual', 'manual-initially-set', 'ring'),
        'lazy-clear': fc.boolean(),
        'x-clear-bitmap-shift': fc.integer({min: 6, max: 18}),
        'trace-end': fc.constantFrom('idle', 'switchover'),
        'max-iterations': fc.integer({min: 0, max: 4}),
        'time-cap': fc.constantFrom('0', '200ms', '3s'),
        'setup-time': fc.constantFrom('0', '20ms'),
        'sync-cost': fc.constantFrom('0', '5ms'),
        'zero-page-detection': fc.constantFrom('none', 'legacy', 'multifd'),
        'device-state-bytes': fc.constantFrom('0', '1MiB'),
        'vfio-tracking': fc.constantFrom('auto', 'none', 'cumulative', 'reset-readd-pinned', 'deferred-pinned', 'device'),
        'postcopy-after': fc.integer({min: 0, max: 3}),
        'postcopy-at': fc.constantFrom('0', '100ms', '800ms'),
        'postcopy-on-stall': fc.boolean(),
        'postcopy-preempt': fc.boolean(),
        'postcopy-fail-at': fc.constantFrom('0', '1ms', '30ms', '300ms'),
        'postcopy-recover-after': fc.constantFrom('0', '50ms'),
        transport: fc.constantFrom('network', 'local-remap', 'shared'),
        'auto-converge': fc.boolean(),
        'dirty-limit': fc.boolean(),
        'workload-pacing': fc.constantFrom('cpu', 'wall'),
        'qemu-version': fc.constantFrom('7.2', '8.1', '9.2', '10.2'),
        'switchover-ack': fc.boolean(),
      },
      {requiredKeys: []},
    ),
  })
  .map((s) => {
    const settings = {...s.settings} as Overrides
    // dirty-limit needs the KVM dirty ring and excludes auto-converge (the settings refuse both).
    if (settings['dirty-limit'] === true) {
      settings['dirty-log'] = 'ring'
      delete settings['auto-converge']
    }
    // From 10.0 QEMU does not sync a VFIO container without dirty tracking, so the device's DMA
    // writes are lost: QEMU's behaviour (test/replay/qemu-version.test.ts), not a correct one.
    const noTracking = settings['vfio-tracking'] === 'none' || ((settings['vfio-tracking'] ?? 'auto') === 'auto' && s.vfio?.tracking === 'none')
    if (s.vfio && noTracking && String(settings['qemu-version']).startsWith('10.')) settings['qemu-version'] = '9.2'
    return {...s, settings}
  })

function buildTrace(s: Scenario): {header: ReturnType<typeof machine>['header']; layout: ReturnType<typeof machine>['layout']; records: EventRecord[]} {
  const memory = s.memoryMiB * MiB
  const pages = memory / PAGE
  const vfio = s.vfio ? [{id: 'c0', iommuPageSize: PAGE, dirtyTracking: s.vfio.tracking, devices: [{id: 'nic0', dmaLogging: s.vfio.dmaLogging}]}] : []
  const {header, layout} = machine({memory, vcpus: s.vcpus, vfio})
  const records: EventRecord[] = []
  const mapPages = s.vfio ? Math.min(s.vfio.mapPages, pages) : 0
  if (s.vfio) {
    records.push({t_ns: 0, kind: 'vfio_map', dev: 'c0', iova: 0, gpa: 0, len: mapPages * PAGE})
    const pin = Math.min(s.vfio.pinPages, mapPages)
    if (pin > 0) records.push({t_ns: 0, kind: 'vfio_pin', dev: 'c0', iova: 0, count: pin})
  }
  if (s.migStartMs !== undefined) records.push({t_ns: s.migStartMs * 1e6, kind: 'mig_start'})
  if (s.postcopyEventMs !== undefined && s.migStartMs !== undefined && s.postcopyEventMs >= s.migStartMs) records.push({t_ns: s.postcopyEventMs * 1e6, kind: 'mig_postcopy'})
  for (const e of s.events) {
    const page = e.page % pages
    const gpa = page * PAGE + (e.len === PAGE ? 0 : (e.t % (PAGE / e.len)) * e.len)
    if (e.kind === 'vfio_dma_write') {
      if (!s.vfio) continue
      records.push({t_ns: e.t, kind: 'vfio_dma_write', dev: 'nic0', iova: (page % mapPages) * PAGE, len: e.len})
    } else if (e.kind === 'dma_write') records.push({t_ns: e.t, kind: 'dma_write', gpa, len: e.len})
    else records.push({t_ns: e.t, kind: e.kind, vcpu: e.vcpu % s.vcpus, gpa, len: e.len})
  }
  // Stable by time (the map, pin and start at time 0 stay first).
  records.sort((a, b) => a.t_ns - b.t_ns)
  return {header, layout, records}
}

test('no correct configuration loses a write; postcopy keeps its invariants (property)', async (t) => {
  const tally = {runs: 0, postcopy: 0, recovered: 0, refused: 0, lostWritesChecked: 0}
  const refusals = new Map<string, number>()
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      tally.runs++
      const {header, layout, records} = buildTrace(s)
      let r
      try {
        r = await replay({header, layout, events: batchesOf(layout, records)}, {overrides: s.settings, noStartEvent: s.migStartMs === undefined && s.settings['start-at'] === undefined})
      } catch (e) {
        // A combination the settings refuse (dirty-limit without the ring, ...) is the user's
        // mistake, reported in one line: fine, and not a lost write.
        if (e instanceof UserError) {
          tally.refused++
          const key = e.message.replace(/\(.*$/, '').slice(0, 80)
          refusals.set(key, (refusals.get(key) ?? 0) + 1)
          return
        }
        throw e
      }
      tally.lostWritesChecked++
      if (r.lostWrites !== 0) throw new Error(`${r.lostWrites} lost writes (verdict ${r.verdict}, stop ${r.stopReason})`)
      if (r.postcopy) {
        tally.postcopy++
        if (r.postcopy.pagesSentTwiceAfterSwitchover !== 0) throw new Error(`${r.postcopy.pagesSentTwiceAfterSwitchover} pages sent twice after the switchover`)
        if (r.postcopy.destinationMissingPages !== 0) throw new Error(`${r.postcopy.destinationMissingPages} pages missing on the destination`)
        const rec = r.postcopy.recovery
        if (rec) {
          tally.recovered++
          if (rec.pagesResent !== rec.pagesLost) throw new Error(`${rec.pagesLost} pages lost at a network failure, ${rec.pagesResent} sent again`)
        }
      }
    }),
    {seed: SEED, numRuns: RUNS},
  )
  t.log(`${tally.runs} random configurations: ${tally.lostWritesChecked} replayed with 0 lost writes (${tally.postcopy} through postcopy, ${tally.recovered} of them recovering from a network failure), ${tally.refused} refused by the settings`)
  t.log([...refusals].map(([k, n]) => `${n}x ${k}`).join('\n'))
  // The property must exercise what it claims to: most runs replay, and postcopy is among them.
  t.true(tally.lostWritesChecked >= RUNS / 2, `only ${tally.lostWritesChecked} runs replayed`)
  t.true(tally.postcopy >= RUNS / 10, `only ${tally.postcopy} runs went through postcopy`)
  t.true(tally.recovered >= RUNS / 50, `only ${tally.recovered} runs recovered from a postcopy network failure`)
})
