import test from 'ava'
import {createBatch, K, Op} from '../../src/trace/events.js'
import {CsvBatchEncoder, csvLine} from '../../src/trace/write/encode.js'

// The byte encoder must write exactly what the string encoder writes, for every field shape:
// small and large integers, addresses above 4 GiB, empty fields, device names and params.
test('CsvBatchEncoder writes the same bytes as csvLine', (t) => {
  const b = createBatch(4096)
  let x = 12345
  for (let i = 0; i < 4000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    b.t[i] = i * 1_000_000_007 + (x & 0xffff)
    b.kind[i] = [K.write, K.vfio_dma_write, K.kvm_clear_dirty_log, K.page_sent, K.mig_start][i % 5]!
    if (i % 5 === 0) b.vcpu[i] = x % 300
    if (i % 5 === 1) b.dev[i] = i % 2
    if (i % 5 === 2) {
      b.slot[i] = i % 7
      b.page[i] = (x % 1000) * 64
      b.count[i] = 64
    }
    b.gpa[i] = i % 5 === 0 ? (x & 0x3ffff) * 4096 + (i % 7 === 0 ? 2 ** 40 : 0) : -1
    if (i % 5 === 1) b.iova[i] = x * 4096
    if (i % 5 === 0) b.len[i] = 4096
    if (i % 5 === 3) {
      b.gpa[i] = 0
      b.op[i] = Op.zero
      b.value[i] = 2 ** 53 - 1 - i
    }
    if (i % 5 === 4) b.params.set(i, `max-bandwidth=${x};downtime-limit=300`)
  }
  b.length = 4000
  const names = ['vfio0', 'a-much-longer-device-name']
  let expected = ''
  for (let i = 0; i < b.length; i++) expected += csvLine(b, i, names)
  const enc = new CsvBatchEncoder(names)
  // A small buffer forces many partial encodes, as the writer's chunking does.
  const parts: string[] = []
  let i = 0
  while (i < b.length) {
    const buf = Buffer.alloc(4096)
    const [next, n] = enc.encode(b, i, buf, 0)
    t.true(next > i)
    parts.push(buf.subarray(0, n).toString('latin1'))
    i = next
  }
  t.is(parts.join(''), expected)
})

// Access rows take the fast path, which copies memoised digits: the part of a time above 10^4
// (rows share it while time advances by less) and the last length. Times that cross 10^4
// boundaries, stay put, jump, are fractional or tiny, and lengths that change now and then, must
// still give csvLine's bytes, across encode calls that resume mid-batch.
test('CsvBatchEncoder access rows: memoised time and length digits match csvLine', (t) => {
  const b = createBatch(8192)
  let x = 7
  let time = 0
  for (let i = 0; i < 8000; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    const r = x % 100
    time += r < 40 ? 0 : r < 80 ? x % 3000 : r < 95 ? 10_000 - (time % 10_000) : x * 1000
    b.t[i] = r === 99 ? time + 0.5 : time
    b.kind[i] = i % 3 === 0 ? K.read : K.write
    b.vcpu[i] = i % 13 === 0 ? 9 + (x % 200) : x % 10
    b.gpa[i] = (x & 0xfffff) * 4096 + (i % 4 === 0 ? 2 ** 33 : 0) + (i % 7 === 0 ? x & 0xfff : 0)
    b.len[i] = i % 50 === 0 ? 1 + (x % 8192) : 4096
  }
  b.length = 8000
  let expected = ''
  for (let i = 0; i < b.length; i++) expected += csvLine(b, i, [])
  const enc = new CsvBatchEncoder([])
  let out = ''
  let i = 0
  while (i < b.length) {
    const buf = Buffer.alloc(2048)
    const [next, n] = enc.encode(b, i, buf, 0)
    t.true(next > i)
    out += buf.subarray(0, n).toString('latin1')
    i = next
  }
  t.is(out, expected)
})
