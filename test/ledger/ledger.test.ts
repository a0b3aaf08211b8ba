/**
 * The sparse send ledger against a reference written the obvious way (a count and a cause per
 * page in plain arrays), and its word-at-a-time record against page-by-page records, on seeded
 * random sends, writes and causes.
 */
import test from 'ava'
import {Bitmap} from '../../src/model/bitmap.js'
import {C, PagedNibbles, SendLedger, ZERO_PAGE_BYTES} from '../../src/ledger/ledger.js'
import {prng} from '../replay/helpers.js'

const PAGES = 70_016 // more than one 65536-page cause chunk, whole words
const CAUSES = Array.from({length: 16}, (_, i) => ({id: `c${i}`}))

function memory(pages: number) {
  const nonzero = new Bitmap(pages)
  const modified = new Bitmap(pages)
  return {nonzero, modified, staleCount: () => modified.count()}
}

test('ledger: counts, histogram, causes and classes equal a per-page reference; a word record equals its pages recorded one by one', (t) => {
  const rnd = prng(7)
  const memA = memory(PAGES)
  const memB = memory(PAGES)
  const a = new SendLedger(memA, PAGES, 4096, CAUSES)
  const b = new SendLedger(memB, PAGES, 4096, CAUSES)
  const count = new Uint8Array(PAGES)
  const cause = new Uint8Array(PAGES)
  const refTotal = new Float64Array(C.cause + 16)
  for (let round = 0; round < 40; round++) {
    // Guest writes and causes, the same on both sides.
    for (let i = 0; i < 3000; i++) {
      const p = Math.floor(rnd() * PAGES)
      for (const m of [memA, memB]) {
        m.nonzero.set(p)
        m.modified.set(p)
      }
    }
    for (let i = 0; i < 2000; i++) {
      const p = Math.floor(rnd() * PAGES)
      const c = Math.floor(rnd() * 16)
      a.setCause(p, c)
      b.setCause(p, c)
      cause[p] = c
    }
    // Causes of whole words (a sync's merge): page by page on `a`, by word on `b`.
    for (let i = 0; i < 50; i++) {
      const w = Math.floor(rnd() * (PAGES / 32))
      const bits = Math.floor(rnd() * 2 ** 32) >>> 0
      const c = Math.floor(rnd() * 16)
      b.setCauseWord(w, bits, c)
      for (let k = 0; k < 32; k++) {
        if (((bits >>> k) & 1) === 0) continue
        a.setCause(w * 32 + k, c)
        cause[w * 32 + k] = c
      }
    }
    // Sends: a few words on `a` page by page, on `b` as whole words; the reference by hand.
    for (let i = 0; i < 300; i++) {
      // Half the sends on 8 hot words: their pages go past the 15-send saturation.
      const w = rnd() < 0.5 ? 2040 + Math.floor(rnd() * 8) : Math.floor(rnd() * (PAGES / 32))
      const bits = Math.floor(rnd() * 2 ** 32) >>> 0
      let bytesA = 0
      for (let k = 0; k < 32; k++) {
        if (((bits >>> k) & 1) === 0) continue
        const p = w * 32 + k
        const nz = memA.nonzero.get(p)
        const cls = !nz ? C.zero : count[p] === 0 ? C.first : memA.modified.get(p) ? C.redirtied : C.redundant
        refTotal[cls]!++
        if (cls === C.redundant) refTotal[C.cause + cause[p]!]!++
        if (count[p]! < 15) count[p]!++
        bytesA += a.recordSend(p)
      }
      t.is(b.recordWord(w, bits, 4096 + 8, ZERO_PAGE_BYTES), bytesA)
    }
  }
  t.deepEqual(Array.from(b.total), Array.from(a.total))
  t.deepEqual(Array.from(b.iter), Array.from(a.iter))
  for (const k of [C.first, C.redirtied, C.redundant, C.zero]) t.is(a.total[k], refTotal[k])
  for (let c = 0; c < 16; c++) t.is(a.total[C.cause + c], refTotal[C.cause + c])
  const hist = new Array<number>(16).fill(0)
  for (let p = 0; p < PAGES; p++) {
    hist[count[p]!]!++
    if (a.sendCount(p) !== count[p] || a.causeOf(p) !== cause[p]) t.fail(`page ${p}: count ${a.sendCount(p)} vs ${count[p]}, cause ${a.causeOf(p)} vs ${cause[p]}`)
  }
  t.true(hist[15]! > 0, 'some pages saturate at 15 sends')
  t.deepEqual(a.sendCountHistogram(), hist)
  t.deepEqual(b.sendCountHistogram(), hist)
  t.is(a.unsentPages(0, PAGES), hist[0]!)
  t.deepEqual(memB.modified.words, memA.modified.words)
})

test('PagedNibbles: 4-bit values per page equal to a plain array; chunks only where a value is not 0', (t) => {
  const rnd = prng(3)
  const pages = 5 * 65536 + 100
  const nib = new PagedNibbles(pages)
  const ref = new Uint8Array(pages)
  // Zeros anywhere allocate nothing.
  for (let i = 0; i < 1000; i++) nib.set(Math.floor(rnd() * pages), 0)
  t.is(nib.allocatedChunks, 0)
  for (let i = 0; i < 50_000; i++) {
    // Chunks 1 and 5 (the short last one) only: pages 65536..131071 and 327680..
    const p = rnd() < 0.5 ? 65536 + Math.floor(rnd() * 65536) : 5 * 65536 + Math.floor(rnd() * 100)
    const v = Math.floor(rnd() * 16)
    nib.set(p, v)
    ref[p] = v
  }
  t.is(nib.allocatedChunks, 2)
  // Whole words (setWord): zeros in an unallocated chunk allocate nothing; values land page by page.
  nib.setWord(3 * 2048 + 5, 0xffffffff, 0)
  t.is(nib.allocatedChunks, 2)
  for (let i = 0; i < 2000; i++) {
    const w = 2048 + Math.floor(rnd() * 2048)
    const bits = Math.floor(rnd() * 2 ** 32) >>> 0
    const v = Math.floor(rnd() * 16)
    nib.setWord(w, bits, v)
    for (let k = 0; k < 32; k++) if ((bits >>> k) & 1) ref[w * 32 + k] = v
  }
  t.is(nib.allocatedChunks, 2)
  for (let p = 0; p < pages; p++) if (nib.get(p) !== ref[p]) t.fail(`page ${p}: ${nib.get(p)} vs ${ref[p]}`)
  nib.clear()
  t.is(nib.allocatedChunks, 0)
  t.is(nib.get(65536 + 5), 0)
})
