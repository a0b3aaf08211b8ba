/**
 * A multifd run's populated map from the destination's trace (src/import/qemu/dst-zero-pages.ts):
 * QEMU 7.2 sends the first round's zero pages on the main channel, each traced by the destination's
 * ram_load_loop with its block and offset, so the round's pages less those are the pages that held
 * data. The excerpt is lab run multifd-2's destination trace (2026-12-02 12:43 capture): its first
 * 10 zero records, the last 6 of pc.ram's round, the 80 of the ROM blocks, and the record that goes
 * back to pc.ram (the scan's wrap).
 */
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'
import test from 'ava'
import {populatedLessZeros, readFirstRoundZeros} from '../../src/import/qemu/dst-zero-pages.js'
import {importQemuTrace} from '../../src/import/qemu/importer.js'
import {thinDestinationZeroTrace} from '../../src/lab/keep.js'
import {UserError} from '../../src/util/errors.js'

const P = 4096
const EXCERPT = 'fixtures/qemu/multifd-dst-zero/trace-dst.excerpt.log'
const tmp = mkdtempSync(join(tmpdir(), 'migtrace-mfdst-'))

test('readFirstRoundZeros: the zero records up to the wrap, per block, from a real 7.2 destination trace', async (t) => {
  const z = await readFirstRoundZeros(EXCERPT)
  t.is(z.total, 97) // every ram_load_loop line of the excerpt is a ZERO record (flags 0x2 / 0x22)
  t.is(z.firstRound, 96) // the last one (pc.ram 0x3ffa7000 after pc.rom) is the wrap
  t.true(z.wrapped)
  t.is(z.otherRecords, 0)
  t.deepEqual([...z.zeros.keys()], ['pc.ram', '/rom@etc/acpi/tables', 'pc.bios', 'pc.rom'])
  const ram = z.zeros.get('pc.ram')!
  t.is(ram.length, 16)
  // 0x6000 is missing: the guest's page 6 held data (it went to a multifd channel)
  t.deepEqual(ram.slice(0, 10), [0x1000, 0x2000, 0x3000, 0x4000, 0x5000, 0x7000, 0x8000, 0x9000, 0xa000, 0xb000])
  t.false(ram.includes(0x3ffa7000))
  t.is(z.zeros.get('/rom@etc/acpi/tables')!.length + z.zeros.get('pc.bios')!.length + z.zeros.get('pc.rom')!.length, 80)

  // The excerpt's three multifd_recv_sync_main lines (host µs), in order.
  t.deepEqual(z.syncMainUs, [1796215425224514, 1796215425261126, 1796215425278870])
})

test('populatedLessZeros: the visited ranges less the zero pages, by hand', (t) => {
  const zeros = new Map([
    ['pc.ram', [0, 1 * P, 5 * P, 6 * P, 15 * P, 40 * P]],
    ['pc.rom', [0]],
  ])
  // pc.ram at GPA 0x100000, 32 pages mapped; pc.rom has no guest-physical address
  const gpaOf = (rb: string, off: number): number => (rb === 'pc.ram' && off < 32 * P ? 0x100000 + off : -1)
  const visited = [
    {gpa: 0x100000 + 20 * P, len: 12 * P},
    {gpa: 0x100000, len: 16 * P},
  ]
  t.deepEqual(populatedLessZeros(visited, zeros, gpaOf), [
    {gpa: 0x100000 + 2 * P, len: 3 * P}, // pages 2-4
    {gpa: 0x100000 + 7 * P, len: 8 * P}, // pages 7-14 (15 is zero; 16-19 not visited)
    {gpa: 0x100000 + 20 * P, len: 12 * P}, // 20-31: no zero among them (40 is outside every slot)
  ])
  t.deepEqual(populatedLessZeros([{gpa: 0, len: 2 * P}], new Map([['pc.ram', [0, P]]]), (_rb, off) => off), [])
})

test('thinDestinationZeroTrace keeps the round and its wrapping record, and drops the later loads', async (t) => {
  const lines = readFileSync(EXCERPT, 'utf8').trimEnd().split('\n')
  const later = ['10840@1796215428.371000:ram_load_loop pc.ram: addr: 0x3ffa8000 flags: 0x22 host: 0x7efeb7da8000', '10840@1796215428.380000:migrate_set_state new state completed']
  const src = join(tmp, 'dst.log.gz')
  writeFileSync(src, gzipSync(`${[...lines, ...later].join('\n')}\n`))
  const out = join(tmp, 'dst.zero.log.gz')
  const r = await thinDestinationZeroTrace(src, out)
  t.is(r.dropped, 1)
  t.is(r.kept, lines.length + 1)
  const z = await readFirstRoundZeros(out)
  t.is(z.firstRound, 96)
  t.is(z.total, 97)
  t.true(z.wrapped)
})

test('readFirstRoundZeros refuses a destination trace without zero records (9.0+ finds them on the channels)', async (t) => {
  const f = join(tmp, 'nozero.log')
  writeFileSync(f, '8@1000.000000:migrate_set_state new state active\n8@1000.1:ram_load_loop pc.ram: addr: 0x1000 flags: 0x28 host: 0x7f0000001000\n')
  const e = await t.throwsAsync(readFirstRoundZeros(f), {instanceOf: UserError})
  t.regex(e!.message, /no zero-page record/)
})

/**
 * A 256 MiB guest (65 536 pages of pc.ram at GPA 0, the lab's layout) migrated with multifd: the
 * source trace has multifd_send counts only; the destination's zero records cover every page but
 * 0x10-0x1f and 0x8000-0x80ff (272 pages with data).
 */
function multifdRun(name: string, version = 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)'): {dir: string; cfg: string; src: string; dst: string} {
  const dir = join(tmp, name)
  mkdirSync(dir, {recursive: true})
  const cfg = join(dir, 'config.json')
  writeFileSync(cfg, JSON.stringify({name, qemu_version: version, args: {accel: 'tcg', mem: 256, ws: 0, rate: 0, bandwidth: 128, downtime: 300, multifd_channels: 2, multifd_compression: 'none'}}))
  const src = join(dir, 'trace-src.log')
  writeFileSync(
    src,
    [
      '7@1000.000000:migrate_set_state new state setup',
      '7@1000.000100:migration_bitmap_sync_start ',
      '7@1000.010000:migration_bitmap_sync_end dirty_pages 65536',
      '7@1000.020000:migrate_set_state new state active',
      '9@1000.100000:multifd_send channel 0 packet_num 1 normal pages 128 flags 0x0 next packet size 524288',
      '9@1000.200000:multifd_send channel 1 packet_num 2 normal pages 128 flags 0x0 next packet size 524288',
      '7@1000.300000:migration_bitmap_sync_start ',
      '7@1000.301000:migration_bitmap_sync_end dirty_pages 0',
      '9@1000.310000:multifd_send channel 0 packet_num 3 normal pages 16 flags 0x0 next packet size 65536',
      '7@1000.400000:migration_completion_vm_stop ret 0',
      '7@1000.500000:migrate_set_state new state completed',
      '',
    ].join('\n'),
  )
  const dst = join(dir, 'trace-dst.log')
  const out: string[] = ['8@1000.020000:migrate_set_state new state active']
  for (let p = 0; p < 65536; p++) {
    if ((p >= 0x10 && p < 0x20) || (p >= 0x8000 && p < 0x8100)) continue
    out.push(`8@1000.${String(30000 + (p >> 4)).padStart(6, '0')}:ram_load_loop pc.ram: addr: 0x${(p * P).toString(16)} flags: 0x${p === 0 ? '2' : '22'} host: 0x${(0x7f0000000000 + p * P).toString(16)}`)
  }
  out.push('8@1000.399000:ram_load_loop pc.ram: addr: 0x4000 flags: 0x2 host: 0x7f0000004000') // the wrap
  writeFileSync(dst, `${out.join('\n')}\n`)
  return {dir, cfg, src, dst}
}

test('import qemu --dst-trace on a multifd run: the populated map is the round less its zero pages, exactly', async (t) => {
  const r = multifdRun('mf')
  const s = await importQemuTrace({trace: r.src, workload: r.cfg, dstTrace: r.dst, out: join(r.dir, 'out.csv.gz')})
  t.deepEqual(s.header.populated, [
    {gpa: 0x10 * P, len: 0x10 * P},
    {gpa: 0x8000 * P, len: 0x100 * P},
    // pc.bios (256 KiB under 4 GiB) is visited too, and no zero record of it: its 64 pages hold data
    {gpa: 2 ** 32 - 256 * 1024, len: 64 * P},
  ])
  const from = s.header.source!.populatedFrom as Record<string, unknown>
  t.is(from.zeroRecords, 65536 - 272)
  t.is(from.zeroRecordsInLog, 65536 - 272 + 1)
  t.is(from.pages, 272 + 64)
  t.true(from.wrapped)
})

test('import qemu on a multifd run without --dst-trace, or of QEMU 9.0+: the count rule, and the note says why', async (t) => {
  const r = multifdRun('mf-count')
  const s = await importQemuTrace({trace: r.src, workload: r.cfg, out: join(r.dir, 'out.csv.gz')})
  // the bulk stage's count (multifd_send before the second sync: 2 x 128 pages) taken as RAM's first pages
  t.deepEqual(s.header.populated, [{gpa: 0, len: 256 * P}])
  t.regex(String(s.header.source!.populatedNote), /give --dst-trace/)
  const v9 = multifdRun('mf-9', 'QEMU emulator version 9.2.0')
  const s9 = await importQemuTrace({trace: v9.src, workload: v9.cfg, dstTrace: v9.dst, out: join(v9.dir, 'out.csv.gz')})
  t.deepEqual(s9.header.populated, [{gpa: 0, len: 256 * P}])
  t.regex(String(s9.header.source!.populatedNote), /9\.0\+ finds zero pages on the channels/)
})

test('import qemu --dst-trace on a multifd postcopy run whose destination trace has no ram_load_loop lines (lab matrix keeps it so): the count rule, and the note says so', async (t) => {
  const r = multifdRun('mf-postcopy')
  writeFileSync(r.src, readFileSync(r.src, 'utf8').replace('migration_completion_vm_stop ret 0', 'postcopy_start '))
  writeFileSync(r.dst, '8@1000.020000:migrate_set_state new state active\n8@1000.450000:migrate_set_state new state postcopy-active\n8@1000.500000:migrate_set_state new state completed\n')
  const s = await importQemuTrace({trace: r.src, workload: r.cfg, dstTrace: r.dst, out: join(r.dir, 'out.csv.gz')})
  t.deepEqual(s.header.populated, [{gpa: 0, len: 256 * P}])
  const note = String(s.header.source!.populatedNote)
  t.regex(note, /the destination trace has no first round to read: no ram_load_loop zero record/)
  t.notRegex(note, /incomplete/)
})

test('import qemu --dst-trace on a run that is neither postcopy nor multifd is refused', async (t) => {
  const r = multifdRun('single')
  const src = join(r.dir, 'single-src.log')
  writeFileSync(src, '7@1000.000000:migrate_set_state new state setup\n7@1000.1:ram_save_page pc.ram: offset: 0x1000 host: 0x7f0000001000\n7@1000.5:migrate_set_state new state completed\n')
  const e = await t.throwsAsync(importQemuTrace({trace: src, workload: r.cfg, dstTrace: r.dst, out: join(r.dir, 'x.csv.gz')}), {instanceOf: UserError})
  t.regex(e!.message, /not a multifd run/)
})
