/** The VFIO model on its own: the unpin-between-reads sequence of the v15/v16 review, per tracking. */
import test from 'ava'
import {HostModel} from '../../src/replay/host.js'
import {resolveSettings} from '../../src/replay/config.js'
import {popcount32} from '../../src/model/bitmap.js'
import type {DirtySink} from '../../src/model/component.js'
import type {EventRecord} from '../../src/trace/events.js'
import {batchesOf, machine, MiB} from '../replay/helpers.js'

const PS = 4096

function setup(tracking: string) {
  const {header, layout} = machine({memory: 64 * MiB, vfio: [{id: 'vfio0', dirtyTracking: 'type1', devices: [{id: 'dev0'}]}]})
  const model = new HostModel(header, layout, resolveSettings(header, {'vfio-tracking': tracking}))
  const vfio = model.vfio!
  const feed = (records: EventRecord[]): void => {
    for (const b of batchesOf(layout, records)) for (let i = 0; i < b.length; i++) vfio.handleEvent(b, i, b.t[i]!)
  }
  /** One read (log sync): the pages VFIO hands over. */
  const read = (lastStage = false): number => {
    let n = 0
    const sink: DirtySink = {mergeWord: (_w, bits) => (n += popcount32(bits))}
    vfio.logSync(sink, lastStage, 0)
    return n
  }
  return {vfio, feed, read, layout}
}

const pin = (t: number, page: number, count: number, kind: 'vfio_pin' | 'vfio_unpin' = 'vfio_pin'): EventRecord => ({t_ns: t, kind, dev: 'vfio0', iova: page * PS, count})
const MAP: EventRecord = {t_ns: 0, kind: 'vfio_map', dev: 'vfio0', iova: 0, gpa: 0, len: 64 * MiB}

// x = 100 pages pinned before tracking starts, y = 50 more pinned during, z = 30 unpinned.
test('reset-readd-pinned: reads return x+y, then x+y-z (an unpinned page is reported once more, then not)', (t) => {
  const {vfio, feed, read} = setup('reset-readd-pinned')
  feed([MAP, pin(1, 0, 100)])
  vfio.logStart()
  feed([pin(2, 1000, 50)])
  feed([pin(3, 0, 30, 'vfio_unpin')])
  t.is(vfio.containers[0]!.pinnedPages, 120)
  t.is(read(), 150)
  t.is(read(), 120)
  t.is(read(), 120)
})

test('reset-readd-pinned: a page unpinned between two reads is dirty at the next read only', (t) => {
  const {vfio, feed, read} = setup('reset-readd-pinned')
  feed([MAP, pin(1, 0, 100)])
  vfio.logStart()
  t.is(read(), 100)
  feed([pin(2, 0, 30, 'vfio_unpin')])
  t.is(read(), 100, 're-added at the previous read: reported once more')
  t.is(read(), 70)
})

test('cumulative (v15 as coded): reads return x+y forever', (t) => {
  const {vfio, feed, read} = setup('cumulative')
  feed([MAP, pin(1, 0, 100)])
  vfio.logStart()
  feed([pin(2, 1000, 50), pin(3, 0, 30, 'vfio_unpin')])
  for (let i = 0; i < 5; i++) t.is(read(), 150)
})

test('no tracking: every mapped page at every read; device logging: only what the device wrote, read and cleared', (t) => {
  const none = setup('none')
  none.feed([MAP, pin(1, 0, 100)])
  none.vfio.logStart()
  t.is(none.read(), (64 * MiB) / PS)
  t.is(none.read(), (64 * MiB) / PS)

  const dev = setup('device')
  dev.feed([MAP, pin(1, 0, 100)])
  dev.vfio.logStart()
  dev.feed([0, 1, 2, 1].map((p, i) => ({t_ns: 10 + i, kind: 'vfio_dma_write', dev: 'dev0', iova: p * PS, len: PS}) as EventRecord))
  t.is(dev.read(), 3)
  t.is(dev.read(), 0)
})

test('type1 with a group that never pinned (IOMMU-backed passthrough): the whole mapping reads dirty every time', (t) => {
  const {vfio, feed, read} = setup('reset-readd-pinned')
  feed([MAP])
  vfio.logStart()
  t.is(read(), (64 * MiB) / PS)
  t.is(read(), (64 * MiB) / PS)
  t.false(vfio.containers[0]!.pinnedScope)
})

test('deferred-pinned: pinned pages are held back at live reads and handed over at the last stage', (t) => {
  const {vfio, feed, read} = setup('deferred-pinned')
  feed([MAP, pin(1, 0, 100)])
  vfio.logStart()
  feed([pin(2, 1000, 50)])
  t.is(read(), 0)
  feed([pin(3, 0, 30, 'vfio_unpin')])
  t.is(read(), 30, 'unpinned pages are no longer deferred: their last bits go now')
  t.is(read(true), 120)
})

test('unmap drops pins; unmapped DMA is a fault and changes nothing', (t) => {
  const {vfio, feed} = setup('reset-readd-pinned')
  feed([MAP, pin(1, 0, 100), {t_ns: 2, kind: 'vfio_unmap', dev: 'vfio0', iova: 0, len: 50 * PS}])
  const c = vfio.containers[0]!
  t.is(c.pinnedPages, 50)
  t.is(c.mappedPages(), (64 * MiB) / PS - 50)
  feed([{t_ns: 3, kind: 'vfio_dma_write', dev: 'dev0', iova: 10 * PS, len: PS}])
  t.is(c.devices[0]!.dmaFaults, 1)
  t.is(c.devices[0]!.dmaPages, 0)
})
