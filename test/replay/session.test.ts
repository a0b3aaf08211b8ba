/** The session's write path: the fast loop and the slow (clock) path touch exactly TraceLayout.pageSpanEnd's pages. */
import test from 'ava'
import {HostModel} from '../../src/replay/host.js'
import {ReplaySession} from '../../src/replay/session.js'
import {APPLY, Taken, type ReplayDriver} from '../../src/replay/driver.js'
import {resolveSettings} from '../../src/replay/config.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, MiB} from './helpers.js'

function idleDriver(slow: boolean, settings: ReturnType<typeof resolveSettings>): ReplayDriver {
  return {
    name: 'qemu',
    settings,
    done: false,
    due: Infinity,
    endNs: Number.NaN,
    hostTimers: false,
    slow,
    wantsEventsAfter: false,
    act: () => {},
    control: () => Taken.No,
    access: () => APPLY,
    endOfTrace: () => {},
    figures: () => {
      throw new Error('not used')
    },
  }
}

for (const slow of [false, true]) {
  test(`${slow ? 'slow' : 'fast'} path: a write marks the pages pageSpanEnd names, no more`, (t) => {
    const {header, layout} = machine({memory: 16 * MiB})
    const settings = resolveSettings(header)
    const host = new HostModel(header, layout, settings)
    host.memory.modified.fill(false)
    const session = new ReplaySession(host, header.vcpus)
    session.driver = idleDriver(slow, settings)
    const cases: [number, number][] = [
      [0, 8],
      [4090, 8],
      [4096 * 3 + 100, 3 * 4096],
      [4096 * 10, 0],
      [4096 * 20 - 1, 1],
      [4096 * 30 - 1, 2],
    ]
    const records: EventRecord[] = cases.map(([gpa, len], i) => ({t_ns: i, kind: 'write', vcpu: 0, gpa, len}))
    for (const b of batchesOf(layout, records)) session.feed(b)
    const expected = new Set<number>()
    for (const [gpa, len] of cases) {
      const p0 = layout.gpaToPage(gpa)
      for (let p = p0; p < layout.pageSpanEnd(gpa, len, p0); p++) expected.add(p)
    }
    const marked: number[] = []
    for (let p = 0; p < layout.totalPages; p++) if (host.memory.modified.get(p)) marked.push(p)
    t.deepEqual(marked, [...expected].sort((a, b) => a - b))
    t.deepEqual(marked, [0, 1, 3, 4, 5, 6, 10, 19, 29, 30])
    t.is(session.writes, cases.length)
  })
}
