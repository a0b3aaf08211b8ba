/**
 * xbzrle_encode_buffer's length and page_cache.c's replacement rule (src/replay/sender/xbzrle.ts),
 * on hand-made patterns.
 */
import test from 'ava'
import {encodedLength, XbzrleCache, XbzrleOutcome} from '../../src/replay/sender/xbzrle.js'
import {machine, MiB} from './helpers.js'

function bits(runs: [number, number][]): Uint32Array {
  const b = new Uint32Array(128)
  for (const [a, n] of runs) for (let i = a; i < a + n; i++) b[i >>> 5]! |= 1 << (i & 31)
  return b
}

test('encoded length: run lengths as ULEB128, changed bytes copied, the last unchanged run left out', (t) => {
  t.is(encodedLength(bits([]), 4096), 0, 'nothing changed')
  t.is(encodedLength(bits([[0, 1]]), 4096), 1 + 1 + 1, 'zrun 0, nzrun 1, the byte')
  t.is(encodedLength(bits([[4095, 1]]), 4096), 2 + 1 + 1, 'zrun 4095 takes 2 bytes')
  // zrun 127 (1 byte), nzrun 1 (1) + the byte, zrun 128 (2 bytes), nzrun 128 (2) + 128 bytes.
  t.is(encodedLength(bits([[127, 1], [256, 128]]), 4096), 1 + 1 + 1 + 2 + 2 + 128)
  t.is(encodedLength(bits([[0, 4096]]), 4096), -1, 'a whole page does not fit')
  // Every other byte changed: 2048 pairs of (zrun 1, nzrun 1, byte) = 6144 bytes > 4096.
  const alt: [number, number][] = []
  for (let i = 1; i < 4096; i += 2) alt.push([i, 1])
  t.is(encodedLength(bits(alt), 4096), -1)
  // 1364 pairs x 3 bytes = 4092 fit; the check before the next run needs 2 more bytes: 1365 pairs overflow.
  const fit: [number, number][] = []
  for (let k = 0; k < 1364; k++) fit.push([1 + 3 * k, 1])
  t.is(encodedLength(bits(fit), 4096), 1364 * 3)
})

test('page cache: direct-mapped by page number; a fresh page (age + 2 > sync count) is not evicted', (t) => {
  const {layout} = machine({memory: MiB})
  const c = new XbzrleCache(layout, 4 * 4096)
  t.is(c.slots, 4)
  c.enabled = true
  t.is(c.send(1, 1, false), XbzrleOutcome.Miss)
  // Page 5 maps to slot 1 too: page 1 entered at sync 1, so at sync 2 it is fresh (1 + 2 > 2).
  t.is(c.send(5, 2, false), XbzrleOutcome.Miss)
  t.is(c.send(1, 2, false), XbzrleOutcome.Skipped, 'page 1 still cached, unchanged')
  // The hit refreshed page 1's age to 2: at sync 3 still fresh, at sync 4 evicted.
  t.is(c.send(5, 3, false), XbzrleOutcome.Miss)
  t.is(c.send(1, 3, false), XbzrleOutcome.Skipped)
  t.is(c.send(5, 5, false), XbzrleOutcome.Miss)
  t.is(c.send(1, 5, false), XbzrleOutcome.Miss, 'evicted by page 5')
  t.is(c.cacheMiss, 5)
  t.is(c.cacheHits, 2)
  // A write to the cached page 5: only its 4 bytes count.
  c.write(5 * 4096 + 10, 4, 5, 6)
  t.is(c.send(5, 5, false), XbzrleOutcome.Sent, 'page 5 holds slot 1 now: a hit')
  t.is(c.encodedLen, 1 + 1 + 4, 'zrun 10, nzrun 4, the 4 bytes')
})
