/**
 * Transports: network (bytes at the link rate), local-remap (page-table work instead of
 * bandwidth, huge pages move whole), shared (x-ignore-shared: RAM is not sent).
 */
import test from 'ava'
import {replay} from '../../src/replay/index.js'
import {K} from '../../src/trace/events.js'
import {createBatch} from '../../src/trace/events.js'
import {machine, pageGpa, sequentialWriter, MiB} from './helpers.js'

const rate = 64 * MiB

function workload() {
  const {header, layout} = machine({memory: 64 * MiB, populated: [{gpa: 0, len: 48 * MiB}]})
  const events = sequentialWriter(layout, {rate: 2000, endNs: 3e9, pages: 1024})
  return {header, layout, events}
}

test('network: the ledger bytes are header + page (zero page: header + 1); no page-table work', async (t) => {
  const w = workload()
  const r = await replay(w, {overrides: {'max-bandwidth': rate, 'start-at': 0}})
  const tr = r.transport!
  t.is(tr.kind, 'network')
  const normal = r.totals.pagesSent - r.totals.zeroPages
  t.is(r.totals.bytesSent, normal * 4104 + r.totals.zeroPages * 9)
  t.is(tr.host.ramBytes, normal * 4096)
  t.is(tr.host.pageTableOps, 0)
  t.is(r.lostWrites, 0)
})

test('local-remap: RAM moves by remapping: 8-byte headers on the stream, one page-table op per page, time from remap-cost', async (t) => {
  const w = workload()
  const net = await replay(w, {overrides: {'max-bandwidth': rate, 'start-at': 0}})
  const r = await replay(w, {overrides: {'max-bandwidth': rate, 'start-at': 0, transport: 'local-remap', 'remap-cost': '2us'}})
  const tr = r.transport!
  const normal = r.totals.pagesSent - r.totals.zeroPages
  t.is(r.totals.bytesSent, normal * 8 + r.totals.zeroPages * 9)
  t.is(tr.host.ramBytes, 0)
  t.is(tr.host.pageTableOps, normal)
  t.true(Math.abs(tr.host.pageTableMs - normal * 0.002) < 1e-6)
  t.is(r.lostWrites, 0)
  // 12,288 populated pages at 2 us each take 25 ms, against 0.75 s through a 64 MiB/s link.
  t.true(r.totalTimeMs < net.totalTimeMs / 5, `${r.totalTimeMs} vs ${net.totalTimeMs}`)

  // A THP block: 512 target pages per host page, one remap per whole 2 MiB page.
  const thp = machine({ramBlocks: [{name: 'pc.ram', size: 64 * MiB, backing: 'thp'}]} as never)
  const rt = await replay({header: thp.header, layout: thp.layout, events: []}, {overrides: {'max-bandwidth': rate, 'start-at': 0, transport: 'local-remap'}})
  t.is(rt.transport!.host.pageTableOps, (64 * MiB) / (2 * MiB))
})

test('local-remap postcopy: a fault costs the RTT and one remap, not a transfer', async (t) => {
  const {header, layout} = machine({memory: 64 * MiB})
  const b = createBatch(1)
  b.length = 1
  b.t[0] = 1e6
  b.kind[0] = K.read
  b.vcpu[0] = 0
  b.gpa[0] = pageGpa(layout, (64 * MiB) / 4096 - 1)
  b.len[0] = 4096
  const r = await replay({header, layout, events: [b]}, {overrides: {'max-bandwidth': rate, 'start-at': 0, transport: 'local-remap', rtt: '0.02ms', 'remap-cost': '2us', 'postcopy-after': 0}})
  const lat = r.postcopy!.latencyNs.max
  // One RTT, the page in progress on the stream (at most one remap), then its own remap.
  const page = 2e3 + (8 / rate) * 1e9
  t.true(lat >= 20e3 + page - 1 && lat <= 20e3 + 2 * page + 1, `latency ${lat}`)
  t.is(r.transport!.guest.faultLatencyP50Ms, lat / 1e6)
})

test('shared (x-ignore-shared): RAM is not sent; downtime is the device state; nothing is lost', async (t) => {
  const w = workload()
  const device = 2 * MiB
  const r = await replay(w, {overrides: {'max-bandwidth': rate, 'start-at': 0, transport: 'shared', 'device-state-bytes': device}})
  t.is(r.verdict, 'converged', 'nothing to send: it completes at the first turn')
  t.true(r.totalTimeMs < 200)
  t.is(r.totals.pagesSent, 0)
  t.is(r.totals.bytesSent, 0)
  t.is(r.lostWrites, 0)
  t.true(Math.abs(r.downtimeMs - (device * 1000) / rate) < 1e-9)
  t.is(r.transport!.host.pageTableOps, 0)
  t.true(r.transport!.host.pagesNotSent >= r.guest.pages)
})
