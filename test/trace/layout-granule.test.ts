/** TraceLayout's page-lookup table (granule, granulePage) against gpaToPage, the rule it stands for. */
import test from 'ava'
import {GRANULE_MIXED, GRANULE_TABLE_MAX, type TraceLayout} from '../../src/trace/layout.js'
import {HOLES_1MIB_64K, machine} from '../replay/helpers.js'

const MiB = 2 ** 20
const GiB = 2 ** 30

/** The lookup the replay's write loop makes with the table (session.ts feedFast). */
function tablePage(layout: TraceLayout, gpa: number): number {
  const j = Math.floor(gpa / layout.granule)
  const base = j >= 0 && j < layout.granulePage.length ? layout.granulePage[j]! : -1
  if (base === GRANULE_MIXED) return layout.gpaToPage(gpa)
  if (base < 0) return -1
  return base + Math.floor((gpa - j * layout.granule) / layout.pageSize)
}

/** Slot bounds and their neighbours, and seeded addresses up to past the last slot's end. */
function probes(layout: TraceLayout, n: number): number[] {
  const out: number[] = []
  const ps = layout.pageSize
  for (const s of layout.slots) for (const x of [s.gpaStart, s.gpaEnd]) for (const d of [-ps - 1, -ps, -1, 0, 1, ps - 1, ps]) if (x + d >= 0) out.push(x + d)
  const end = layout.slots[layout.slots.length - 1]!.gpaEnd + 2 * layout.granule
  let seed = 7
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const hi = (Math.imul(seed, 2654435761) >>> 0) / 2 ** 32
    out.push(Math.floor(hi * end))
  }
  return out
}

// Granules computed by hand: the largest power of two dividing every memslot base and end.
for (const [memory, granule, table] of [
  ['1G', GiB, [0]],
  // Two slots: [0, 2 GiB) and [4 GiB, 8 GiB); 2 GiB granules, the second one a hole.
  ['6G', 2 * GiB, [0, -1, 524288, 1048576]],
  ['8G', 2 * GiB, [0, -1, 524288, 1048576, 1572864]],
] as const) {
  test(`a ${memory} guest: granule ${granule / GiB} GiB, the table's pages, and every lookup as gpaToPage`, (t) => {
    const {layout} = machine({memory})
    t.is(layout.granule, granule)
    t.deepEqual(Array.from(layout.granulePage), [...table])
    for (const g of probes(layout, 20000)) t.is(tablePage(layout, g), layout.gpaToPage(g), `gpa ${g}`)
  })
}

test('a 1 TiB guest: 513 granules of 2 GiB (the high slot ends at 4 GiB + 1022 GiB)', (t) => {
  const {layout} = machine({memory: '1T'})
  t.is(layout.granule, 2 * GiB)
  t.is(layout.granulePage.length, 513)
  t.is(layout.granulePage[512], 524288 + 510 * 524288)
  for (const g of probes(layout, 20000)) t.is(tablePage(layout, g), layout.gpaToPage(g), `gpa ${g}`)
})

test('memslots on 1 MiB bounds, 64 KiB pages: 1 MiB granules, holes between and after', (t) => {
  const {layout} = machine(HOLES_1MIB_64K)
  t.is(layout.granule, MiB)
  t.is(layout.granulePage.length, 75)
  // 16 pages of 64 KiB a granule: slot 1 starts at page 48, slot 2 at page 80.
  t.deepEqual(Array.from(layout.granulePage.subarray(0, 8)), [0, 16, 32, -1, -1, 48, 64, -1])
  t.is(layout.granulePage[16], 80)
  for (const g of probes(layout, 20000)) t.is(tablePage(layout, g), layout.gpaToPage(g), `gpa ${g}`)
})

test(`memslot bounds on a page alignment: more than ${GRANULE_TABLE_MAX} granules of 4 KiB, so 32 KiB granules, those holding a slot edge mixed`, (t) => {
  const {layout} = machine({
    ramBlocks: [{name: 'pc.ram', size: 64 * MiB}],
    memslots: [
      {id: 0, base: 0, size: 20 * MiB + 4096, ramBlock: 'pc.ram', offset: 0},
      {id: 1, base: 32 * MiB, size: 44 * MiB - 4096, ramBlock: 'pc.ram', offset: 20 * MiB + 4096},
    ],
  })
  // End 76 MiB - 4 KiB: 19 455 granules of 4 KiB, 2432 of 32 KiB.
  t.is(layout.granule, 32 * 1024)
  t.is(layout.granulePage.length, 2432)
  const mixed: number[] = []
  layout.granulePage.forEach((v, j) => {
    if (v === GRANULE_MIXED) mixed.push(j)
  })
  // Slot 0's end (20 MiB + 4 KiB) and slot 1's (76 MiB - 4 KiB).
  t.deepEqual(mixed, [640, 2431])
  t.is(layout.granulePage[639], 639 * 8)
  t.is(layout.granulePage[1024], (20 * MiB + 4096) / 4096)
  t.is(layout.granulePage[641], -1)
  for (const g of probes(layout, 20000)) t.is(tablePage(layout, g), layout.gpaToPage(g), `gpa ${g}`)
})
