import test from 'ava'
import {inspectTrace} from '../../src/analysis/inspect.js'
import {inspectTable} from '../../src/analysis/inspect-tables.js'
import {openTrace} from '../../src/trace/read/open.js'
import {ALL_KINDS} from '../../scripts/make-fixtures.js'

// fixtures/inspect-small.csv, by hand (4 KiB pages, one 1 GiB memslot at gpa 0):
//   write 0x1000+8      -> page 1 (new)                 t=1000      vcpu 0
//   write 0x1ffc+8      -> pages 1,2 (2 new)            t=2000      vcpu 1
//   write 0x1000+4096   -> page 1 (not new)             t=3000      vcpu 0
//   dma_write 0x10000+8192 -> pages 16,17 (new)         t=1.5 ms
//   vhost_write 0x3fffffff+1 -> page 262143 (new)       t=2.5 ms
// distinct pages 1,2,16,17,262143 = 5; bytes 8+8+4096+8192+1 = 12305.
// Span 0..10 ms; at most 50 buckets of {1,2,5}x10^k us -> 500 us buckets, 21 of them.
test('inspect figures match the hand-computed values of fixtures/inspect-small.csv', async (t) => {
  const r = await inspectTrace(await openTrace('fixtures/inspect-small.csv'))
  t.is(r.events, 10)
  t.deepEqual(r.eventsByKind, {write: 3, read: 1, dma_write: 1, vhost_write: 1, mig_start: 1, mig_complete: 1, vm_stop: 1, page_sent: 1})
  t.is(r.durationNs, 10_000_000)
  t.is(r.firstNs, 0)
  t.is(r.lastNs, 10_000_000)
  t.is(r.guestMemoryBytes, 2 ** 30)
  t.is(r.totalPages, 262144)
  t.is(r.vcpus, 2)
  t.is(r.distinctPagesWritten, 5)
  t.is(r.distinctBytesWritten, 5 * 4096)
  t.is(r.writes.events, 5)
  t.is(r.writes.bytes, 12305)
  t.deepEqual(r.writes.byKind, {write: {events: 3, bytes: 4112}, dma_write: {events: 1, bytes: 8192}, vhost_write: {events: 1, bytes: 1}})
  t.deepEqual(r.writes.byVcpu, [2, 1])
  t.deepEqual(r.writes.readsByVcpu, [0, 1])
  t.deepEqual(r.memory.memslots, [{id: 0, gpa: 0, size: 2 ** 30, ramBlock: 'pc.ram', offset: 0, pages: 262144, pagesWritten: 5}])
  t.is(r.writeRate.bucketNs, 500_000)
  t.is(r.writeRate.buckets.length, 21)
  const nonEmpty = r.writeRate.buckets.filter((b) => b.writes > 0)
  t.deepEqual(nonEmpty, [
    {startNs: 0, writes: 3, bytes: 4112, newPages: 2, bytesPerSecond: 8_224_000},
    {startNs: 1_500_000, writes: 1, bytes: 8192, newPages: 2, bytesPerSecond: 16_384_000},
    {startNs: 2_500_000, writes: 1, bytes: 1, newPages: 1, bytesPerSecond: 2000},
  ])
  t.deepEqual(r.migration.pagesSent, {normal: 0, zero: 3, xbzrle: 0})
  t.deepEqual(r.migration.events, [
    {t_ns: 0, kind: 'mig_start', params: 'downtime-limit=300'},
    {t_ns: 9_000_000, kind: 'vm_stop'},
    {t_ns: 10_000_000, kind: 'mig_complete'},
  ])
})

test('a fixed bucket width is honoured', async (t) => {
  const r = await inspectTrace(await openTrace('fixtures/inspect-small.csv'), {bucketNs: 2_000_000})
  t.is(r.writeRate.bucketNs, 2_000_000)
  t.deepEqual(
    r.writeRate.buckets.map((b) => [b.startNs, b.writes, b.newPages]),
    [[0, 4, 4], [2_000_000, 1, 1], [4_000_000, 0, 0], [6_000_000, 0, 0], [8_000_000, 0, 0], [10_000_000, 0, 0]],
  )
})

test('virtio-mem, VFIO and KVM activity of the all-kinds fixture', async (t) => {
  const r = await inspectTrace(await openTrace('fixtures/all-kinds.jsonl'))
  t.is(r.events, ALL_KINDS.length)
  t.deepEqual(r.virtioMem, [
    {
      id: 'vmem0',
      base: 2 ** 32,
      regionSize: 2 ** 30,
      blockSize: 2 ** 21,
      pluggedAtStart: 2 ** 28,
      requestedSizeAtStart: 2 ** 28,
      plugRequests: 1,
      blocksPlugRequested: 4,
      unplugRequests: 1,
      blocksUnplugRequested: 2,
      unplugAllRequests: 1,
      stateRequests: 1,
      resizes: 1,
      resets: 2,
      requestedSizeAtEnd: 2 ** 29,
    },
  ])
  t.deepEqual(r.vfio, [
    {
      id: 'c0',
      iommuPageSize: 4096,
      dirtyTracking: 'type1',
      maps: 1,
      bytesMapped: 2 ** 21,
      unmaps: 1,
      bytesUnmapped: 2 ** 21,
      pins: 1,
      pagesPinned: 16,
      unpins: 1,
      pagesUnpinned: 16,
      dirtyPages: {start: 1, stop: 1, get: 1},
      devices: [{id: 'nic0', dmaLogging: true, dmaWrites: 1, dmaBytes: 256, stateReports: 2, lastPrecopyBytes: null, lastStopCopyBytes: 3 * 2 ** 20}],
    },
  ])
  t.deepEqual(r.kvm, {getDirtyLog: 1, clearDirtyLog: 1, pagesCleared: 128, resetDirtyRings: 2, ringEntriesReset: 1, setUserMemoryRegion: 1, dirtyRingPages: 1})
  t.deepEqual(r.migration.pagesSent, {normal: 5, zero: 2, xbzrle: 1})
  t.is(r.migration.syncs, 2)
})

test('the write-rate table as CSV (arquero)', async (t) => {
  const r = await inspectTrace(await openTrace('fixtures/inspect-small.csv'), {bucketNs: 2_000_000})
  t.is(
    (await inspectTable(r, 'rate')).toCSV(), // 4112 + 8192 bytes in the first 2 ms
    'start_ns,bucket_ns,writes,bytes,new_pages,bytes_per_s\n0,2000000,4,12304,4,6152000\n2000000,2000000,1,1,1,500\n4000000,2000000,0,0,0,0\n6000000,2000000,0,0,0,0\n8000000,2000000,0,0,0,0\n10000000,2000000,0,0,0,0\n',
  )
  t.is((await inspectTable(r, 'slots')).toCSV(), 'slot,gpa,size,ram_block,offset,pages,pages_written\n0,0x0,1073741824,pc.ram,0,262144,5\n')
})
