// writeAllSync: the Arrow writer's synchronous path must put every byte in order, whatever the
// number of buffers (writev takes at most IOV_MAX of them) and with empty ones among them.
import {closeSync, mkdtempSync, openSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {writeAllSync} from '../../src/trace/write/writer.js'

test('writeAllSync writes more buffers than one writev takes, in order, empty ones included', (t) => {
  const chunks: Uint8Array[] = []
  for (let i = 0; i < 2500; i++) chunks.push(i % 7 === 0 ? new Uint8Array(0) : Uint8Array.from({length: (i % 13) + 1}, (_, j) => (i + j) & 255))
  chunks.push(new Uint8Array(3 << 20).fill(9))
  const path = join(mkdtempSync(join(tmpdir(), 'migtrace-writeall-')), 'out.bin')
  const fd = openSync(path, 'w')
  try {
    writeAllSync(fd, chunks)
    writeAllSync(fd, [Uint8Array.of(1, 2, 3)])
  } finally {
    closeSync(fd)
  }
  t.deepEqual(new Uint8Array(readFileSync(path)), new Uint8Array(Buffer.concat([...chunks, Uint8Array.of(1, 2, 3)])))
})
