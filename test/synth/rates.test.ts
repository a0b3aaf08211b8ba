/** Each workload's measured event rate matches its parameter within 1 %. */
import test from 'ava'
import {countKinds, synth} from './helpers.js'

const DURATION_S = 2

interface Case {
  workload: string
  params: Record<string, unknown>
  /** Event kinds that make up the workload's rate. */
  kinds: string[]
  rate: number
}

const CASES: Case[] = [
  {workload: 'idle', params: {rate: 500}, kinds: ['write'], rate: 500},
  {workload: 'uniform', params: {rate: 12345}, kinds: ['write'], rate: 12345},
  {workload: 'sequential', params: {rate: 20000, stride: 3}, kinds: ['write'], rate: 20000},
  {workload: 'once', params: {rate: 50000, order: 'random'}, kinds: ['write'], rate: 50000},
  {workload: 'hotset', params: {rate: 30000, readRatio: 0.2}, kinds: ['write', 'read'], rate: 30000},
  {workload: 'zipf', params: {rate: 25000, exponent: 0.8}, kinds: ['write'], rate: 25000},
  {workload: 'phases', params: {rate: 15000, period: '300ms', mode: 'drift'}, kinds: ['write'], rate: 15000},
  {workload: 'phases', params: {rate: 15000, period: '300ms', mode: 'switch'}, kinds: ['write'], rate: 15000},
  {workload: 'database', params: {rate: 18000, readRatio: 0.5}, kinds: ['write', 'read'], rate: 18000},
  {workload: 'reads', params: {rate: 16000}, kinds: ['write', 'read'], rate: 16000},
  {workload: 'dma-device', params: {rate: 3000}, kinds: ['vfio_dma_write'], rate: 3000},
  {workload: 'vhost-net', params: {rate: 7000}, kinds: ['vhost_write'], rate: 7000},
  {workload: 'virtio-mem', params: {writeRate: 2500}, kinds: ['write'], rate: 2500},
  {workload: 'malicious', params: {rate: 4000}, kinds: ['write'], rate: 4000},
]

for (const c of CASES) {
  test(`${c.workload} ${JSON.stringify(c.params)}: measured rate within 1 % of ${c.rate}/s`, (t) => {
    const counts = countKinds(synth({seed: 11, duration: `${DURATION_S}s`, memory: '1G', workloads: [{workload: c.workload, params: c.params}]}))
    const n = c.kinds.reduce((s, k) => s + (counts[k] ?? 0), 0)
    const measured = n / DURATION_S
    t.true(Math.abs(measured - c.rate) <= 0.01 * c.rate, `measured ${measured}/s`)
    // Deterministic spacing makes it exact to one event.
    t.is(n, Math.ceil(DURATION_S * c.rate))
  })
}

test('a per-vCPU workload splits its rate between the vCPUs and keeps the total', (t) => {
  const s = synth({seed: 2, duration: '1s', memory: '1G', vcpus: 3, workloads: [{workload: 'uniform', params: {rate: 9000}}]})
  const per = [0, 0, 0]
  let last = -1
  let ordered = true
  for (const b of s.batches())
    for (let i = 0; i < b.length; i++) {
      per[b.vcpu[i]!]!++
      if (b.t[i]! < last) ordered = false
      last = b.t[i]!
    }
  t.deepEqual(per, [3000, 3000, 3000])
  t.true(ordered, 'merged stream is in time order')
})

test('hotset sends hotShare of its accesses to the hot set', (t) => {
  const s = synth({seed: 5, duration: '2s', memory: '1G', workloads: [{workload: 'hotset', params: {rate: 50000, hotSize: '64M', hotOffset: '128M', hotShare: 0.7}}]})
  let hot = 0
  let all = 0
  const lo = 128 * 2 ** 20
  const hi = lo + 64 * 2 ** 20
  for (const b of s.batches())
    for (let i = 0; i < b.length; i++) {
      all++
      if (b.gpa[i]! >= lo && b.gpa[i]! < hi) hot++
    }
  const p = 0.7
  const sd = Math.sqrt(all * p * (1 - p))
  t.true(Math.abs(hot - all * p) < 5 * sd, `${hot} of ${all}`)
})
