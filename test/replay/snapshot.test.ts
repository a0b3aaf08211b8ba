/**
 * Background snapshot (mode=background-snapshot): every page saved exactly once; a write to a
 * page not yet saved faults, the page is saved first, and the vCPU runs late by the stall.
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {createBatch, K} from '../../src/trace/events.js'
import {machine, pageGpa, sequentialWriter, MiB} from './helpers.js'

const rate = 100 * 2 ** 20
const base = {mode: 'background-snapshot', 'max-bandwidth': rate, 'start-at': 0, 'device-state-bytes': MiB}

test('an idle guest: each page saved once by the stream, no faults; duration = RAM + device state at the rate', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 0, len: 32 * MiB}]})
  const pages = (64 * MiB) / 4096
  const r = await replay({header, layout, events: []}, {overrides: base, noStartEvent: true})
  const s = r.snapshot!
  t.is(s.faults, 0)
  t.is(s.pagesSaved, pages)
  t.is(s.pagesByStream, pages)
  t.is(s.pagesByFault, 0)
  t.is(s.pagesSavedTwice, 0)
  t.is(s.pagesNotSaved, 0)
  t.is(r.sendHistogram[1], pages)
  t.is(r.lostWrites, 0)
  // Half the RAM is zero pages (9-byte records).
  const bytes = (pages / 2) * 4104 + (pages / 2) * 9
  t.is(s.bytes, bytes)
  const wpMs = pages * 0.00005
  t.true(Math.abs(s.durationMs - (wpMs + ((bytes + MiB) * 1000) / rate)) < 1e-6, `duration ${s.durationMs}`)
  t.true(Math.abs(s.downtimeMs - wpMs) < 1e-9)
  t.is(r.transport!.host.pageTableOps, pages, 'one write-protect per host page')
})

test('a busy guest: faults = the distinct pages written before the stream reached them', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB, vcpus: 2})
  const pages = (64 * MiB) / 4096
  // vCPU 0 writes 1,000 pages from the top of RAM downwards, each three times, well before the
  // stream (which starts at page 0 and needs 0.64 s) gets there.
  const b = createBatch(3000)
  for (let j = 0; j < 3000; j++) {
    const i = b.length++
    b.t[i] = 1e6 + j * 20e3
    b.kind[i] = K.write
    b.vcpu[i] = 0
    b.gpa[i] = pageGpa(layout, pages - 1 - (j % 1000))
    b.len[i] = 4096
  }
  // vCPU 1 writes pages the stream has already saved (behind it): no faults.
  const behind = sequentialWriter(layout, {rate: 2000, startNs: 300e6, endNs: 400e6, pages: 100, vcpu: 1})
  const r = await replay({header, layout, events: [b, ...behind]}, {overrides: base, noStartEvent: true})
  const s = r.snapshot!
  t.is(s.faults, 1000)
  t.is(s.pagesByFault, 1000)
  t.is(s.pagesByStream, pages - 1000)
  t.is(s.pagesSavedTwice, 0)
  t.is(s.pagesNotSaved, 0)
  t.is(r.lostWrites, 0)
  // A fault waits for the page being saved and its own save: at most two pages at the rate.
  t.true(s.latencyNs.max <= ((2 * 4104) / rate) * 1e9 + 1, `max latency ${s.latencyNs.max}`)
  t.true(s.stallMsPerVcpu[0]! > 0)
  t.is(s.stallMsPerVcpu[1], 0)
  t.is(s.latencyHistogram.reduce((a, c) => a + c, 0), 1000)
})
