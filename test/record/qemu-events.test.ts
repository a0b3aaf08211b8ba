import {appendFileSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {QemuLogFolder} from '../../src/record/qemu-events.js'
import {K, Op} from '../../src/trace/events.js'

const dir = mkdtempSync(join(tmpdir(), 'migtrace-qlog-'))
const GiB = 2 ** 30

test('the trace log is read as QEMU writes it: whole lines only, mapped to migtrace kinds', (t) => {
  const file = join(dir, 'a.log')
  const f = new QemuLogFolder(file, {virtioMem: [{id: 'vm0', base: 4 * GiB, regionSize: GiB}], vfioContainer: 'vfio0'})
  t.deepEqual(f.poll(), [], 'no file yet')
  // Lines as captured by qemu-lab (fixtures/qemu/samples/virtio-mem-src-*.txt).
  writeFileSync(file, '31232@1795303493.512497:virtio_mem_plug_request addr=0x100000000 nb_blocks=64\n31232@1795303493.5423')
  const a = f.poll()
  t.is(a.length, 1)
  t.like(a[0], {kind: K.vmem_plug, dev: 'vm0', gpa: 4 * GiB, count: 64, hostNs: 1795303493512497000, line: 1})
  appendFileSync(file, '30:virtio_mem_unplug_request addr=0x108000000 nb_blocks=64\n31232@1795303493.6:virtio_mem_send_response type=0\n')
  const b = f.poll()
  t.is(b.length, 1)
  t.like(b[0], {kind: K.vmem_unplug, gpa: 4 * GiB + 0x8000000, count: 64, hostNs: 1795303493542330000})
  appendFileSync(file, [
    '1@1795303494.000001:virtio_mem_plug_request addr=0x10000 nb_blocks=1',
    '1@1795303494.000002:vfio_get_dirty_bitmap container fd=5, iova=0x0 size= 0x200000 bitmap_size=0x40 start=0x0',
    '1@1795303494.000003:virtio_mem_plug_request what is this',
    '1@1795303494.000004:virtio_mem_unplug_all_request ',
    'qemu-system-x86_64: a message of QEMU itself',
    '1@1795303494.000005:vfio_region_write  (0000:01:00.0:region0+0x0, 0x0, 4)',
  ].join('\n'))
  const c = f.finish()
  t.deepEqual(c.map((e) => e.kind), [K.vfio_dirty_pages, K.vmem_unplug_all])
  t.like(c[0], {dev: 'vfio0', op: Op.get, iova: 0, len: 0x200000})
  t.deepEqual(Object.fromEntries(f.skipped), {'virtio_mem_plug_request (address in no virtio-mem device)': 1, 'virtio_mem_plug_request (format not understood)': 1})
  t.deepEqual(Object.fromEntries(f.unknown), {vfio_region_write: 1})
  t.is(f.otherLines, 1)
  t.is(f.used.get('virtio_mem_send_response'), 1)
})
