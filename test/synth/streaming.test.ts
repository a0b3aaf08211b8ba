/** Generation streams: one batch object is reused, so memory stays bounded for any length. */
import test from 'ava'
import {synth} from './helpers.js'

test('batches are reused and the heap stays flat over 6 million events', (t) => {
  const s = synth({seed: 1, duration: '3s', memory: '16G', vcpus: 2, workloads: [{workload: 'uniform', params: {rate: 2e6}}, {workload: 'vhost-net', params: {rate: 1000}}]})
  const seen = new Set<object>()
  let events = 0
  let heapAfterFirst = 0
  let heapMax = 0
  for (const b of s.batches()) {
    seen.add(b)
    events += b.length
    const h = process.memoryUsage().heapUsed
    if (heapAfterFirst === 0) heapAfterFirst = h
    heapMax = Math.max(heapMax, h)
  }
  t.is(events, 6_003_000)
  t.is(seen.size, 1)
  // A leak of even 8 bytes per event would show as ~48 MiB; garbage from the run stays well below.
  t.true(heapMax - heapAfterFirst < 40 * 2 ** 20, `heap grew ${(heapMax - heapAfterFirst) / 2 ** 20} MiB`)
})
