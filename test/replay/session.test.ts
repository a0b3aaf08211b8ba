/** The session's write path: the fast loop and the slow (clock) path touch exactly TraceLayout.pageSpanEnd's pages. */
import test from 'ava'
import {HostModel} from '../../src/replay/host.js'
import {Bitmap} from '../../src/model/bitmap.js'
import {ReplaySession} from '../../src/replay/session.js'
import {APPLY, Taken, type ReplayDriver} from '../../src/replay/driver.js'
import {resolveSettings} from '../../src/replay/config.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, HOLES_1MIB_64K, machine, MiB} from './helpers.js'
import {GRANULE_MIXED} from '../../src/trace/layout.js'

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

// The fast path's page arithmetic (a multiplication by 1 / pageSize, exact for the power-of-two
// page sizes the header allows) against pageSpanEnd, on both sides of 4 GiB and with large pages;
// and guest memory's two bits: a write to a page already modified (nonzero then) stores nothing
// more, and once a send cleared modified, writing again sets it again and counts it as new.
// With KVM logging every slot (`logging`: a mode whose log starts empty), the loop's specialised write (KvmListener.writeWords)
// sets the dirty log's bits itself: the same pages, and loggedWrites counts each page once.
for (const [pageSize, logging] of [[4096, undefined], [65536, undefined], [4096, 'bitmap'], [4096, 'manual']] as const) {
  test(`fast path, ${pageSize / 1024} KiB pages, a 6 GiB guest${logging ? `, KVM logging (${logging})` : ''}: seeded writes mark pageSpanEnd's pages; nonzero covers modified`, (t) => {
    const {header, layout} = machine({memory: '6G', pageSize})
    const settings = resolveSettings(header, logging ? {'dirty-log': logging} : {})
    const host = new HostModel(header, layout, settings)
    host.memory.reset('none')
    if (logging) host.kvm.logStart(0)
    t.is(host.kvm.writeWords !== undefined, logging !== undefined)
    const session = new ReplaySession(host, header.vcpus)
    session.driver = idleDriver(false, settings)
    let s = 99
    const rnd = (): number => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296)
    const records: EventRecord[] = []
    for (let i = 0; i < 4000; i++) {
      const slot = layout.slots[i % layout.slots.length]!
      // Page edges and random offsets, lengths from 1 byte to a few pages (none crossing the slot's end).
      const gpa = slot.gpaStart + Math.floor(rnd() * (slot.gpaEnd - slot.gpaStart - 4 * pageSize)) + (i % 7 === 0 ? pageSize - 1 - (i % 3) : 0)
      const len = 1 + Math.floor(rnd() * (i % 5 === 0 ? 3 * pageSize : 64))
      records.push({t_ns: i, kind: 'write', vcpu: i % header.vcpus, gpa, len})
    }
    // Every page again, once: the writes to pages already modified.
    const again = records.map((r, i) => ({...r, t_ns: 4000 + i}))
    const expected = new Set<number>()
    for (const r of records) {
      const p0 = layout.gpaToPage(r.gpa!)
      for (let p = p0; p < layout.pageSpanEnd(r.gpa!, r.len!, p0); p++) expected.add(p)
    }
    t.true([...expected].some((p) => layout.pageToGpa(p) >= 2 ** 32), 'some writes above 4 GiB')
    for (const b of batchesOf(layout, [...records, ...again])) session.feed(b)
    const marked = (bits: 'modified' | 'nonzero'): number[] => {
      const out: number[] = []
      for (let p = 0; p < layout.totalPages; p++) if (host.memory[bits].get(p)) out.push(p)
      return out
    }
    const want = [...expected].sort((a, b) => a - b)
    t.deepEqual(marked('modified'), want)
    t.deepEqual(marked('nonzero'), want)
    t.is(host.memory.newlyModified, want.length)
    if (logging) {
      // KVM_GET_DIRTY_LOG of every slot: the log's bits, through QEMU's per-slot cache.
      for (let s = 0; s < layout.slots.length; s++) host.kvm.getSlot(s)
      const dirty = new Bitmap(layout.totalPages)
      dirty.words.set(host.kvm.cache.words)
      const got: number[] = []
      for (let q = 0; q < layout.totalPages; q++) if (dirty.get(q)) got.push(q)
      t.is(got.length, want.length)
      t.true(got.every((q, i) => q === want[i]), 'the dirty log holds the written pages')
      t.is(host.kvm.data().loggedWrites, want.length)
    } else t.is(host.kvm.data().loggedWrites, 0)
    // A send clears modified alone; the next write sets it again, counted as new.
    const p = want[want.length >> 1]!
    host.memory.modified.clear(p)
    const before = host.memory.newlyModified
    host.memory.write(p)
    t.true(host.memory.modified.get(p) && host.memory.nonzero.get(p))
    t.is(host.memory.newlyModified, before + 1)
    host.memory.write(p)
    t.is(host.memory.newlyModified, before + 1)
  })
}

// The fast path finds a write's page in the layout's granule table (a 6 GiB guest's writes
// alternate between its two RAM slots): writes alternating between them, one in the hole between
// them (a granule of -1: counted as unmapped, marking nothing), then alternating again.
test('fast path, a 6 GiB guest: writes alternating between the two slots and one in the hole between them', (t) => {
  const {header, layout} = machine({memory: '6G'})
  const settings = resolveSettings(header, {})
  const host = new HostModel(header, layout, settings)
  host.memory.reset('none')
  const session = new ReplaySession(host, header.vcpus)
  session.driver = idleDriver(false, settings)
  t.is(layout.slots.length, 2)
  const [low, high] = layout.slots as [(typeof layout.slots)[0], (typeof layout.slots)[0]]
  t.true(low.gpaEnd < high.gpaStart, 'a hole between the slots')
  const records: EventRecord[] = []
  const want = new Set<number>()
  for (let i = 0; i < 40; i++) {
    if (i === 21) {
      records.push({t_ns: i, kind: 'write', vcpu: 0, gpa: low.gpaEnd + 4096, len: 8})
      continue
    }
    const slot = i % 2 === 0 ? low : high
    const gpa = slot.gpaStart + (i * 37 + 5) * 4096 + 100
    records.push({t_ns: i, kind: 'write', vcpu: 0, gpa, len: 8})
    want.add(slot.firstPage + i * 37 + 5)
  }
  for (const b of batchesOf(layout, records)) session.feed(b)
  t.is(session.unmapped, 1)
  t.is(session.writes, 39)
  const got: number[] = []
  for (let p = 0; p < layout.totalPages; p++) if (host.memory.modified.get(p)) got.push(p)
  t.deepEqual(got, [...want].sort((a, b) => a - b))
})

// The memslots of a QEMU capture (lab/runs/*/recording.csv.gz's header shape): pc.ram's slots end
// on 8 KiB past a GiB (-m 6291464K: 6 GiB + 8 KiB, split at 3 GiB, the rest from 4 GiB), pc.bios's
// 256 KiB below 4 GiB and 4 KiB / 128 KiB ROM slots above. The bounds' alignment (4 KiB) would need
// 2.4 million granules; the table takes 4 MiB granules (2305 of them, 9 GiB + 128 KiB / 4 MiB)
// and marks the five that hold a slot edge GRANULE_MIXED. Writes inside pc.ram's slots, alternating
// between them, are found in the table (no gpaToPage call); only the rows in a mixed granule ask
// gpaToPage; a row in the hole between the RAM slots is -1 in the table. Pages as gpaToPage's.
test('fast path, a QEMU capture\'s memslots (bounds on 4 KiB, ROM slots): the granule table serves pc.ram\'s writes', (t) => {
  const GiB = 1024 * MiB
  const ram = 6 * GiB + 8192
  const {header, layout} = machine({
    ramBlocks: [
      {name: 'pc.ram', size: ram},
      {name: 'pc.bios', size: 256 * 1024},
      {name: 'rom_etc_acpi_tables', size: 128 * 1024},
      {name: 'rom_etc_table-loader', size: 4096},
    ],
    memslots: [
      {id: 0, base: 0, size: 3 * GiB, ramBlock: 'pc.ram', offset: 0},
      {id: 1, base: 4 * GiB - 256 * 1024, size: 256 * 1024, ramBlock: 'pc.bios', offset: 0},
      {id: 2, base: 4 * GiB, size: ram - 3 * GiB, ramBlock: 'pc.ram', offset: 3 * GiB},
      {id: 3, base: 8 * GiB, size: 4096, ramBlock: 'rom_etc_table-loader', offset: 0},
      {id: 4, base: 9 * GiB, size: 128 * 1024, ramBlock: 'rom_etc_acpi_tables', offset: 0},
    ],
  })
  t.is(layout.granule, 4 * MiB)
  t.is(layout.granulePage.length, 2305)
  const mixed: number[] = []
  layout.granulePage.forEach((v, j) => {
    if (v === GRANULE_MIXED) mixed.push(j)
  })
  // 4 GiB - 256 KiB (pc.bios), 7 GiB + 8 KiB (pc.ram's high slot's end), 8 GiB, 9 GiB (ROMs).
  t.deepEqual(mixed, [1023, 1792, 2048, 2304])
  const settings = resolveSettings(header, {})
  const host = new HostModel(header, layout, settings)
  host.memory.reset('none')
  const session = new ReplaySession(host, header.vcpus)
  session.driver = idleDriver(false, settings)
  const [low, , high] = layout.slots as [(typeof layout.slots)[0], unknown, (typeof layout.slots)[0]]
  const gpas: number[] = []
  let seed = 11
  for (let i = 0; i < 400; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const slot = i % 2 === 0 ? low : high
    // Inside the slot, clear of its last (mixed) granule.
    gpas.push(slot.gpaStart + Math.floor((seed / 2 ** 32) * (slot.gpaEnd - slot.gpaStart - 4 * MiB)))
  }
  const edge = [7 * GiB + 4096 + 100, 4 * GiB - 4096, 8 * GiB + 10, 7 * GiB + 8192 + 4096]
  const hole = 3.5 * GiB
  gpas.push(...edge, hole)
  const records: EventRecord[] = gpas.map((gpa, i) => ({t_ns: i, kind: 'write', vcpu: 0, gpa, len: 8}))
  const want = new Set<number>()
  for (const g of gpas) {
    const p0 = layout.gpaToPage(g)
    if (p0 >= 0) for (let p = p0; p < layout.pageSpanEnd(g, 8, p0); p++) want.add(p)
  }
  const batches = [...batchesOf(layout, records)]
  const lookup = layout.gpaToPage.bind(layout)
  let calls = 0
  layout.gpaToPage = (g: number) => {
    calls++
    return lookup(g)
  }
  for (const b of batches) session.feed(b)
  t.is(calls, edge.length, 'gpaToPage only for the rows in a mixed granule')
  // The last edge row is past the high slot's end (in its mixed granule), the hole row between the RAM slots.
  t.is(session.unmapped, 2)
  t.is(session.writes, gpas.length - 2)
  const got: number[] = []
  for (let p = 0; p < layout.totalPages; p++) if (host.memory.modified.get(p)) got.push(p)
  t.deepEqual(got, [...want].sort((a, b) => a - b))
})

// dma_write and vhost_write rows: with a driver that leaves them to the model
// (deviceWritesToModel), the fast loop applies them itself; without, they go through control and
// the QEMU-side source's handleEvent. Both give the pages gpaToPage/pageSpanEnd name (a row
// crossing a page edge marks two), the same counts (an unmapped row is the source's) and the same
// bits at the next sync. Also on a layout whose memslot bounds are on a page alignment, whose
// table has coarser granules and marks those holding a slot edge GRANULE_MIXED (the loop asks
// gpaToPage there: the row in the hole after slot 0 is one).
const SLOTS_ON_PAGES = {
  ramBlocks: [{name: 'pc.ram', size: 64 * MiB}],
  memslots: [
    {id: 0, base: 0, size: 20 * MiB + 4096, ramBlock: 'pc.ram', offset: 0},
    {id: 1, base: 32 * MiB, size: 44 * MiB - 4096, ramBlock: 'pc.ram', offset: 20 * MiB + 4096},
  ],
}
for (const [name, spec] of [['a 6 GiB guest (page table)', {memory: '6G'}], ['memslots on page bounds (mixed granules)', SLOTS_ON_PAGES]] as const) {
  test(`fast path, ${name}: dma and vhost rows applied in the loop as through control`, (t) => {
    const {header, layout} = machine(spec)
    t.is(layout.granulePage.includes(GRANULE_MIXED), name.includes('mixed granules'))
    const settings = resolveSettings(header, {})
    const records: EventRecord[] = []
    const want = {dma: new Set<number>(), vhost: new Set<number>()}
    const hole = layout.slots[0]!.gpaEnd + 4096
    for (let i = 0; i < 60; i++) {
      const slot = layout.slots[i % 2]!
      const kind = i % 3 === 0 ? 'write' : i % 3 === 1 ? 'dma_write' : 'vhost_write'
      // Every fifth row 100 bytes before a page's end, 1500 long: two pages.
      const gpa = i === 31 ? hole : slot.gpaStart + (i * 53 + 7) * 4096 + (i % 5 === 0 ? 3996 : 64)
      const len = i % 5 === 0 ? 1500 : 8
      records.push({t_ns: i, kind, vcpu: kind === 'write' ? 0 : undefined, gpa, len})
      if (kind === 'write' || i === 31) continue
      const p0 = layout.gpaToPage(gpa)
      for (let p = p0; p < layout.pageSpanEnd(gpa, len, p0); p++) want[kind === 'dma_write' ? 'dma' : 'vhost'].add(p)
    }
    const run = (toModel: boolean) => {
      const host = new HostModel(header, layout, settings)
      host.memory.reset('none')
      host.dma.logStart()
      host.vhost.logStart()
      const session = new ReplaySession(host, header.vcpus)
      session.driver = {...idleDriver(false, settings), deviceWritesToModel: toModel}
      for (const b of batchesOf(layout, records)) session.feed(b)
      const merged: Record<string, number[]> = {dma: [], vhost: []}
      for (const id of ['dma', 'vhost'] as const)
        host[id].logSync({mergeWord: (w: number, bits: number) => {
          for (let j = 0; j < 32; j++) if ((bits >>> j) & 1) merged[id]!.push(w * 32 + j)
        }})
      const modified: number[] = []
      for (let p = 0; p < layout.totalPages; p++) if (host.memory.modified.get(p)) modified.push(p)
      return {dma: host.dma.data(), vhost: host.vhost.data(), merged, modified, unmapped: session.unmapped, writes: session.writes, replayed: session.replayed}
    }
    const fast = run(true)
    t.deepEqual(fast, run(false))
    // Rows 1, 4, ... are dma (20; row 31, in the hole, unmapped), 2, 5, ... vhost (20).
    t.deepEqual(fast.dma, {writes: 19, pagesMarked: want.dma.size, unmapped: 1})
    t.deepEqual(fast.vhost, {writes: 20, pagesMarked: want.vhost.size, unmapped: 0})
    t.deepEqual(fast.merged.dma, [...want.dma].sort((a, b) => a - b))
    t.deepEqual(fast.merged.vhost, [...want.vhost].sort((a, b) => a - b))
    t.true(want.dma.size > 19 && want.vhost.size > 20, 'some rows cross a page edge')
    t.is(fast.writes, 20)
    t.is(fast.unmapped, 0)
    t.is(fast.replayed, 60)
  })
}

// The write loop's page lookup (feedFast: the granule table's `* ginv`, `* inv`, `rel - q * ps`,
// and gpaToPage in a mixed granule) against gpaToPage/pageSpanEnd, write by write, on layouts
// whose table has holes inside and after it (1 MiB granules, 64 KiB pages) and mixed granules
// (memslot bounds on a page alignment): every slot bound and its neighbours, and seeded addresses
// up to two granules past the last slot, 8 bytes long or crossing a page edge.
for (const [name, spec] of [
  ['1 MiB granules, 64 KiB pages, holes between and after', HOLES_1MIB_64K],
  ['memslot bounds on pages, mixed granules', SLOTS_ON_PAGES],
] satisfies [string, Parameters<typeof machine>[0]][]) {
  test(`fast path, ${name}: each write's pages as gpaToPage and pageSpanEnd name them`, (t) => {
    const {header, layout} = machine(spec)
    const settings = resolveSettings(header, {})
    const host = new HostModel(header, layout, settings)
    host.memory.reset('none')
    const session = new ReplaySession(host, header.vcpus)
    session.driver = idleDriver(false, settings)
    const ps = layout.pageSize
    const gpas: number[] = []
    for (const s of layout.slots) for (const x of [s.gpaStart, s.gpaEnd]) for (const d of [-ps - 1, -ps, -1, 0, 1, ps - 1, ps]) if (x + d >= 0) gpas.push(x + d)
    const end = layout.slots[layout.slots.length - 1]!.gpaEnd + 2 * layout.granule
    let seed = 5
    for (let i = 0; i < 300; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
      gpas.push(Math.floor((seed / 2 ** 32) * end))
    }
    let unmapped = 0
    let tNs = 0
    for (const [i, gpa] of gpas.entries()) {
      const len = i % 3 === 0 ? ps : 8
      const p0 = layout.gpaToPage(gpa)
      const want: number[] = []
      if (p0 < 0) unmapped++
      // (A write over the last slot's end names a page past totalPages, which no bitmap holds.)
      else for (let p = p0; p < Math.min(layout.pageSpanEnd(gpa, len, p0), layout.totalPages); p++) want.push(p)
      for (const b of batchesOf(layout, [{t_ns: tNs++, kind: 'write', vcpu: 0, gpa, len}])) session.feed(b)
      const got: number[] = []
      for (let p = 0; p < layout.totalPages; p++) if (host.memory.modified.get(p)) got.push(p)
      t.deepEqual(got, want, `gpa ${gpa} len ${len}`)
      host.memory.modified.fill(false)
    }
    t.is(session.unmapped, unmapped)
    t.true(unmapped > 0 && unmapped < gpas.length, 'probes in and out of the slots')
  })
}
