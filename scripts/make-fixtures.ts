/**
 * Writes the canonical fixtures (fixtures/all-kinds.{csv,jsonl}, fixtures/small.csv): every event
 * kind, through the real TraceWriter, so the files are what migtrace itself writes.
 * Run: npx tsx scripts/make-fixtures.ts
 */
import {createBatch, type EventRecord} from '../src/trace/events.js'
import {parseHeader} from '../src/trace/header.js'
import {TraceLayout} from '../src/trace/layout.js'
import {pushRecord} from '../src/trace/write/encode.js'
import {TraceWriter} from '../src/trace/write/writer.js'

const M = 2 ** 20
const G = 2 ** 30

export const ALL_KINDS_HEADER = {
  format: 'migtrace',
  version: 1,
  description: 'every event kind once or more (fixture)',
  memory: '1G',
  vcpus: 2,
  virtioMem: [{id: 'vmem0', base: '4G', regionSize: '1G', blockSize: '2M', plugged: '256M'}],
  vfio: [{id: 'c0', iommuPageSize: 4096, dirtyTracking: 'type1', devices: [{id: 'nic0', dmaLogging: true, precopyBytes: '1M', stopCopyBytes: '4M'}]}],
  dirtyTracking: {mode: 'ring', ringSize: 4096},
  populated: [{gpa: 0, len: '512M'}],
}

export const ALL_KINDS: EventRecord[] = [
  {t_ns: 0, kind: 'mig_start', params: 'downtime-limit=300;max-bandwidth=134217728'},
  {t_ns: 1000, kind: 'kvm_set_user_memory_region', slot: 0, value: 1},
  {t_ns: 2000, kind: 'write', vcpu: 0, gpa: 0x1000, len: 8},
  {t_ns: 2500, kind: 'read', vcpu: 1, gpa: 0x2000, len: 64},
  {t_ns: 3000, kind: 'dma_write', gpa: 0x10000, len: 4096},
  {t_ns: 3000, kind: 'dma_write', gpa: 0x11000, len: 512, dev: 'nic0'},
  {t_ns: 3500, kind: 'vhost_write', gpa: 0x20000, len: 1500},
  {t_ns: 4000, kind: 'vmem_plug', dev: 'vmem0', gpa: 4 * G + 256 * M, count: 4},
  {t_ns: 4100, kind: 'vmem_state', dev: 'vmem0', gpa: 4 * G, count: 8},
  {t_ns: 4200, kind: 'vmem_unplug', dev: 'vmem0', gpa: 4 * G + 256 * M, count: 2},
  {t_ns: 4300, kind: 'vmem_resize', dev: 'vmem0', value: 512 * M},
  {t_ns: 4400, kind: 'vmem_unplug_all', dev: 'vmem0'},
  {t_ns: 4500, kind: 'vmem_reset', dev: 'vmem0'},
  {t_ns: 4600, kind: 'vmem_reset', dev: 'vmem0', value: 1},
  {t_ns: 5000, kind: 'vfio_map', dev: 'c0', iova: 0x100000, len: 2 * M, gpa: 0x200000},
  {t_ns: 5100, kind: 'vfio_pin', dev: 'c0', iova: 0x100000, count: 16},
  {t_ns: 5200, kind: 'vfio_dma_write', dev: 'nic0', iova: 0x101000, len: 256},
  {t_ns: 5300, kind: 'vfio_unpin', dev: 'c0', iova: 0x100000, count: 16},
  {t_ns: 5400, kind: 'vfio_state', dev: 'nic0', len: M, value: 4 * M},
  {t_ns: 5500, kind: 'vfio_state', dev: 'nic0', value: 3 * M},
  {t_ns: 6000, kind: 'vfio_dirty_pages', dev: 'c0', op: 'start'},
  {t_ns: 6100, kind: 'vfio_dirty_pages', dev: 'c0', op: 'get', iova: 0x100000, len: 2 * M},
  {t_ns: 6200, kind: 'vfio_dirty_pages', dev: 'c0', op: 'stop'},
  {t_ns: 6300, kind: 'vfio_unmap', dev: 'c0', iova: 0x100000, len: 2 * M},
  {t_ns: 7000, kind: 'kvm_get_dirty_log', slot: 0},
  {t_ns: 7100, kind: 'kvm_clear_dirty_log', slot: 0, page: 64, count: 128},
  {t_ns: 7200, kind: 'kvm_dirty_ring_page', vcpu: 1, slot: 0, page: 2},
  {t_ns: 7300, kind: 'kvm_reset_dirty_rings', count: 1},
  {t_ns: 7400, kind: 'kvm_reset_dirty_rings'},
  {t_ns: 8000, kind: 'mig_sync', value: 3},
  {t_ns: 8000, kind: 'mig_sync'},
  {t_ns: 8100, kind: 'page_sent', gpa: 0x1000},
  {t_ns: 8200, kind: 'page_sent', gpa: 0x2000, count: 2, op: 'zero'},
  {t_ns: 8300, kind: 'page_sent', gpa: 0x10000, count: 1, op: 'xbzrle'},
  {t_ns: 8400, kind: 'page_sent', gpa: 4 * G, count: 4, op: 'normal'},
  {t_ns: 9000, kind: 'mig_set', params: 'downtime-limit=500'},
  {t_ns: 9500, kind: 'mig_postcopy'},
  {t_ns: 9600, kind: 'mig_net_fail', value: 250},
  {t_ns: 9700, kind: 'mig_net_fail'},
  {t_ns: 10000, kind: 'vm_stop'},
  {t_ns: 11000, kind: 'vm_start'},
  {t_ns: 12000, kind: 'mig_complete'},
  {t_ns: 13000, kind: 'mig_start'},
  {t_ns: 14000, kind: 'mig_cancel'},
]

async function write(path: string, headerInput: unknown, records: EventRecord[]): Promise<void> {
  const header = parseHeader(headerInput, path)
  const layout = new TraceLayout(header)
  const ids = layout.devices.map((d) => d.id)
  const b = createBatch(records.length)
  for (const r of records) pushRecord(b, r, layout.deviceIndex)
  const w = await TraceWriter.open(path, header, ids)
  await w.writeBatch(b)
  await w.close()
}

if (process.argv[1]?.endsWith('make-fixtures.ts')) {
  await write('fixtures/all-kinds.csv', ALL_KINDS_HEADER, ALL_KINDS)
  await write('fixtures/all-kinds.jsonl', ALL_KINDS_HEADER, ALL_KINDS)
  console.log('wrote fixtures/all-kinds.csv and fixtures/all-kinds.jsonl')
}
