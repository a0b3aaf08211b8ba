/** virtio-mem requests and responses exactly as virtio_mem_handle_request answers them (§6). */
import test from 'ava'
import {HostModel} from '../../src/replay/host.js'
import {resolveSettings} from '../../src/replay/config.js'
import {VirtioMemDevice, VMEM_RESP, VMEM_STATE, VIRTIO_MEM_USABLE_EXTENT} from '../../src/model/virtio-mem/device.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, GiB, MiB} from '../replay/helpers.js'

const BS = 2 * MiB
const BASE = 4 * GiB

function device(plugged: number, requested: number, region = GiB): VirtioMemDevice {
  const {header} = machine({memory: 256 * MiB, virtioMem: [{id: 'vm0', base: BASE, regionSize: region, blockSize: BS, plugged, requestedSize: requested}]})
  const d = new VirtioMemDevice(header.virtioMem[0]!, 0, 4096)
  d.reset()
  return d
}

test('usable region: requested + 256 MiB, block-aligned, capped at the region; grows with requested-size, shrinks only in UNPLUG_ALL', (t) => {
  const d = device(64 * MiB, 64 * MiB)
  t.is(d.usableRegionSize, 64 * MiB + VIRTIO_MEM_USABLE_EXTENT)
  t.true(d.setRequestedSize(GiB))
  t.is(d.usableRegionSize, GiB, 'capped at the region size')
  t.true(d.setRequestedSize(32 * MiB))
  t.is(d.usableRegionSize, GiB, 'a smaller requested size does not shrink it')
  t.false(d.setRequestedSize(3 * MiB), 'not a multiple of the block size')
  t.is(d.unplugAll(false), VMEM_RESP.ack)
  t.is(d.usableRegionSize, 32 * MiB + VIRTIO_MEM_USABLE_EXTENT)
  t.true(d.setRequestedSize(0))
  t.is(d.unplugAll(false), VMEM_RESP.ack, 'ACK even with nothing plugged')
  t.is(d.usableRegionSize, 0)
})

test('PLUG: ERROR for bad ranges, NACK beyond the requested size, ERROR unless all unplugged, BUSY while migrating, else ACK', (t) => {
  const d = device(4 * BS, 8 * BS)
  t.is(d.stateChange(BASE + 4 * BS + 4096, 1, true, false), VMEM_RESP.error, 'not block-aligned')
  t.is(d.stateChange(BASE + 4 * BS, 0, true, false), VMEM_RESP.error, 'empty')
  t.is(d.stateChange(BASE - BS, 1, true, false), VMEM_RESP.error, 'below the region')
  t.is(d.stateChange(BASE + d.usableRegionSize, 1, true, false), VMEM_RESP.error, 'beyond the usable region')
  t.is(d.stateChange(BASE + 4 * BS, 5, true, false), VMEM_RESP.nack, '4 + 5 blocks > 8 requested')
  t.is(d.stateChange(BASE + 3 * BS, 2, true, false), VMEM_RESP.error, 'block 3 is already plugged')
  t.is(d.stateChange(BASE + 4 * BS, 2, true, true), VMEM_RESP.busy)
  t.is(d.size, 4 * BS, 'BUSY changes nothing')
  t.is(d.stateChange(BASE + 4 * BS, 2, true, false), VMEM_RESP.ack)
  t.is(d.size, 6 * BS)
})

test('UNPLUG has no NACK; UNPLUG_ALL is BUSY only with something plugged; STATE answers even while busy', (t) => {
  const d = device(4 * BS, 4 * BS)
  t.is(d.stateChange(BASE + 2 * BS, 4, false, false), VMEM_RESP.error, 'blocks 4, 5 are not plugged')
  t.is(d.stateChange(BASE + 2 * BS, 2, false, true), VMEM_RESP.busy)
  t.deepEqual(d.stateOf(BASE, 4), {resp: VMEM_RESP.ack, state: VMEM_STATE.plugged})
  t.deepEqual(d.stateOf(BASE + 2 * BS, 4), {resp: VMEM_RESP.ack, state: VMEM_STATE.mixed})
  t.deepEqual(d.stateOf(BASE + 6 * BS, 2), {resp: VMEM_RESP.ack, state: VMEM_STATE.unplugged})
  t.is(d.stateOf(BASE + 1, 1).resp, VMEM_RESP.error)
  t.is(d.unplugAll(true), VMEM_RESP.busy)
  t.is(d.stateChange(BASE + 2 * BS, 2, false, false), VMEM_RESP.ack)
  t.is(d.size, 2 * BS)
  t.is(d.unplugAll(false), VMEM_RESP.ack)
  t.is(d.size, 0)
  t.is(d.unplugAll(true), VMEM_RESP.ack, 'nothing plugged: not busy')
})

test('the component: BUSY while a migration runs, ACK after it; unplug discards (reads zero), plug maps VFIO again', (t) => {
  const {header, layout} = machine({
    memory: 256 * MiB,
    virtioMem: [{id: 'vm0', base: BASE, regionSize: 64 * MiB, blockSize: BS, plugged: 16 * MiB, requestedSize: 32 * MiB}],
    vfio: [{id: 'vfio0', dirtyTracking: 'none', devices: [{id: 'dev0'}]}],
  })
  const model = new HostModel(header, layout, resolveSettings(header))
  const vm = model.virtioMem!
  const vfio = model.vfio!
  const feed = (rs: EventRecord[]): void => {
    for (const b of batchesOf(layout, rs)) for (let i = 0; i < b.length; i++) model.byKind[b.kind[i]!]!.handleEvent!(b, i, b.t[i]!)
  }
  const regionFirst = layout.gpaToPage(BASE)
  feed([{t_ns: 1, kind: 'vfio_map', dev: 'vfio0', iova: BASE, gpa: BASE, len: 64 * MiB}])
  t.is(vfio.containers[0]!.mappedPages(), (16 * MiB) / 4096, 'VFIO maps only plugged blocks')
  t.false(model.memory.nonzero.get(regionFirst + (16 * MiB) / 4096), 'unplugged memory reads zero')
  t.true(model.memory.nonzero.get(regionFirst))
  vm.logStart(2)
  feed([{t_ns: 3, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 16 * MiB, count: 2}, {t_ns: 4, kind: 'vmem_unplug', dev: 'vm0', gpa: BASE, count: 1}, {t_ns: 5, kind: 'vmem_unplug_all', dev: 'vm0'}])
  vm.logStop(6)
  feed([{t_ns: 7, kind: 'vmem_plug', dev: 'vm0', gpa: BASE + 16 * MiB, count: 2}, {t_ns: 8, kind: 'vmem_unplug', dev: 'vm0', gpa: BASE, count: 1}, {t_ns: 9, kind: 'vmem_state', dev: 'vm0', gpa: BASE, count: 2}])
  const data = vm.data() as {requestLog: {request: string; response: string; state: string | null; duringMigration: boolean}[]; devices: {pluggedBytes: number; pluggedOverTime: {tNs: number; pluggedBytes: number}[]}[]}
  t.deepEqual(
    data.requestLog.map((r) => `${r.request}:${r.response}${r.state ? `:${r.state}` : ''}:${r.duringMigration ? 'mig' : 'idle'}`),
    ['plug:BUSY:mig', 'unplug:BUSY:mig', 'unplug_all:BUSY:mig', 'plug:ACK:idle', 'unplug:ACK:idle', 'state:ACK:MIXED:idle'],
  )
  t.is(data.devices[0]!.pluggedBytes, 16 * MiB + 2 * BS - BS)
  t.deepEqual(data.devices[0]!.pluggedOverTime.map((p) => p.pluggedBytes), [16 * MiB, 16 * MiB, 16 * MiB, 16 * MiB + 2 * BS, 16 * MiB + BS])
  t.is(vfio.containers[0]!.mappedPages(), (16 * MiB + BS) / 4096, 'VFIO followed the plug and the unplug')
  t.false(model.memory.nonzero.get(regionFirst), 'the unplugged block reads zero again')
})
