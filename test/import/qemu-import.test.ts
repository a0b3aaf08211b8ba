import {existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'
import test from 'ava'
import {importQemuTrace} from '../../src/import/qemu/importer.js'
import {compileFormat} from '../../src/import/qemu/formats.js'
import {openTrace} from '../../src/trace/read/index.js'
import type {KindName} from '../../src/trace/events.js'
import {toRecord} from '../../src/trace/write/encode.js'
import type {EventRecord} from '../../src/trace/events.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT} from '../helpers/cli.js'

const FIX = join(ROOT, 'fixtures/qemu')
const tmp = mkdtempSync(join(tmpdir(), 'migtrace-import-'))
let n = 0
const out = (ext = 'csv'): string => join(tmp, `t${n++}.${ext}`)

async function records(path: string): Promise<EventRecord[]> {
  const t = await openTrace(path)
  const r: EventRecord[] = []
  for await (const b of t.events()) for (let i = 0; i < b.length; i++) r.push(toRecord(b, i, t.deviceIds))
  return r
}

function kindCounts(rs: EventRecord[]): Partial<Record<KindName, number>> {
  const c: Partial<Record<KindName, number>> = {}
  for (const r of rs) c[r.kind] = (c[r.kind] ?? 0) + 1
  return c
}

function logFile(lines: string[]): string {
  const p = join(tmp, `log${n++}.log`)
  writeFileSync(p, lines.join('\n') + '\n')
  return p
}

const HEADER = {
  format: 'migtrace',
  version: 1,
  ramBlocks: [{name: 'pc.ram', size: '1G'}],
  memslots: [
    {id: 0, base: 0, size: 0xa0000, ramBlock: 'pc.ram', offset: 0},
    {id: 3, base: 0x100000, size: 0x3ff00000, ramBlock: 'pc.ram', offset: 0x100000},
  ],
}
const layoutFile = join(tmp, 'layout.json')
writeFileSync(layoutFile, JSON.stringify(HEADER))

test('printf formats compile to anchored patterns', (t) => {
  const f = compileFormat('%s: offset: 0x%lx host: %p', 'x')
  t.deepEqual(f.args, ['str', 'hex', 'ptr'])
  t.deepEqual([...f.pattern.exec('pc.ram: offset: 0x6000 host: 0x7fbb9fe06000')!].slice(1), ['pc.ram', '6000', '0x7fbb9fe06000'])
  t.is(f.pattern.exec('pc.ram: offset: 0x6000 host: 0x7f extra'), null)
  // virtio_mem_resized_usable_region has no space between its two fields (sic, QEMU 7.2).
  const g = compileFormat('old_size=0x%lxnew_size=0x%lx', 'x')
  t.deepEqual([...g.pattern.exec('old_size=0x30000000new_size=0x20000000')!].slice(1), ['30000000', '20000000'])
  t.truthy(compileFormat('', 'x').pattern.exec(''))
})

// Each lab sample: every line is counted under its event, and used events give the expected kinds.
const SAMPLE_KINDS: Record<string, KindName | null | 'state'> = {
  ram_save_page: 'page_sent',
  migration_bitmap_sync_end: 'mig_sync',
  migrate_set_state: 'state',
  migration_completion_vm_stop: 'vm_stop',
  postcopy_start: 'vm_stop',
  virtio_mem_plug_request: 'vmem_plug',
  virtio_mem_unplug_request: 'vmem_unplug',
  // QEMU's reset at start-up, with no migration in the excerpt: a system reset (interruptions.ts).
  virtio_mem_unplugged_all: 'vmem_reset',
}
for (const file of readdirSync(join(FIX, 'samples'))) {
  test(`sample ${file}`, async (t) => {
    const path = join(FIX, 'samples', file)
    const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0)
    const event = lines[0]!.split(':')[1]!.split(' ')[0]!
    const o = out()
    const vmem = file.startsWith('virtio-mem')
    const r = await importQemuTrace({trace: path, out: o, workload: vmem ? join(FIX, '06-virtio-mem/config.json') : undefined})
    t.is(r.lines, lines.length)
    const counted = (r.used[event] ?? 0) + (r.unknown[event] ?? 0)
    t.is(counted, lines.length)
    const kinds = kindCounts(await records(o))
    const want = SAMPLE_KINDS[event]
    if (want === 'state') {
      const mapped = lines.filter((l) => /new state (setup|completed|postcopy-active|cancelled|failed)$/.test(l)).length
      t.is((kinds.mig_start ?? 0) + (kinds.mig_complete ?? 0) + (kinds.mig_postcopy ?? 0), mapped)
    } else if (want === 'page_sent') {
      // Pages of blocks with no guest-physical address (fw_cfg blobs) are tallied, not emitted.
      const unmapped = Object.values((r.header.source?.unmappedPagesSent ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0)
      t.is((kinds.page_sent ?? 0) + unmapped, lines.length)
    } else if (want === 'vm_stop') {
      t.is(kinds.vm_stop, 1)
    } else if (want !== undefined && want !== null) {
      t.is(kinds[want], lines.length)
    } else {
      t.is(Object.keys(kinds).length, 0, `no events expected from ${event}`)
    }
  })
}

test('KVM events of QEMU 7.2, written from trace-event-formats-7.2.txt', async (t) => {
  const log = logFile([
    '100@1000.000000:kvm_set_user_memory Slot#3 flags=0x1 gpa=0x100000 size=0x3ff00000 ua=0x7f0000100000 ret=0',
    '100@1000.000010:kvm_set_user_memory Slot#65539 flags=0x1 gpa=0x100000 size=0x3ff00000 ua=0x7f0000100000 ret=0',
    '100@1000.000020:kvm_clear_dirty_log slot#3 start 0x40 size 0x40',
    '100@1000.000030:kvm_dirty_ring_page vcpu 1 fetch 17 offset 0x3fe00',
    '100@1000.000031:kvm_dirty_ring_page vcpu 0 fetch 18 offset 0x10',
    '100@1000.000040:kvm_dirty_ring_reap reaped 2 pages (took 15 us)',
    '100@1000.000041:kvm_dirty_ring_reap_vcpu vcpu 1',
    '100@1000.000042:kvm_dirty_ring_reaper Reaping',
    '100@1000.000050:migration_bitmap_sync_end dirty_pages 7',
  ])
  const o = out()
  const r = await importQemuTrace({trace: log, out: o, layout: layoutFile})
  t.deepEqual(await records(o), [
    {t_ns: 0, kind: 'kvm_set_user_memory_region', slot: 3, value: 1},
    {t_ns: 20000, kind: 'kvm_clear_dirty_log', slot: 3, page: 0x40, count: 0x40},
    {t_ns: 30000, kind: 'kvm_dirty_ring_page', vcpu: 1, slot: 3, page: 0x3fe00},
    {t_ns: 40000, kind: 'kvm_reset_dirty_rings', count: 2},
    {t_ns: 50000, kind: 'mig_sync', value: 7},
  ])
  // Address space 1 (SMM) is not the guest's RAM view; a low ring offset fits both slots.
  t.deepEqual(r.header.source?.skippedEvents, {
    'kvm_set_user_memory (slot not in the layout)': 1,
    'kvm_dirty_ring_page (slot ambiguous: the event has no slot id)': 1,
  })
})

test('KVM, VFIO and migration events of current QEMU (9.1+ signatures), no timestamps', async (t) => {
  const log = logFile([
    'kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x0 gpa=0x0 size=0xa0000 ua=0x7f0000000000 guest_memfd=-1 guest_memfd_offset=0x0 ret=0',
    'kvm_clear_dirty_log slot#0 start 0x0 size 0x40',
    'vfio_get_dirty_bitmap iova=0x100000 size= 0x200000 bitmap_size=0x40 start=0x100000 dirty_pages=3',
    'vfio_migration_set_state  (0000:01:00.0) new state STOP_COPY, recover state ERROR',
    'migrate_set_state new state postcopy-active',
  ])
  const o = out()
  const r = await importQemuTrace({trace: log, out: o, layout: layoutFile})
  t.deepEqual(await records(o), [
    {t_ns: 0, kind: 'kvm_set_user_memory_region', slot: 0, value: 0},
    {t_ns: 0, kind: 'kvm_clear_dirty_log', slot: 0, page: 0, count: 0x40},
    {t_ns: 0, kind: 'mig_postcopy'},
  ])
  t.deepEqual(r.header.source?.vfioMigrationStates, [{t_ns: 0, device: '0000:01:00.0', state: 'STOP_COPY'}])
  t.deepEqual(r.header.source?.skippedEvents, {'vfio_get_dirty_bitmap (no VFIO container in the layout)': 1})
  t.is(r.header.source?.timeOrigin, null)
})

test('layout inferred from kvm_set_user_memory and ram_save_page host addresses', async (t) => {
  const log = logFile([
    '7@5.000000:kvm_set_user_memory Slot#0 flags=0x0 gpa=0x0 size=0xa0000 ua=0x7f0000000000 ret=0',
    '7@5.000001:kvm_set_user_memory Slot#1 flags=0x0 gpa=0x100000 size=0x7f00000 ua=0x7f0000100000 ret=0',
    '7@5.000002:migrate_set_state new state setup',
    '7@5.000003:kvm_set_user_memory Slot#1 flags=0x1 gpa=0x100000 size=0x7f00000 ua=0x7f0000100000 ret=0',
    '7@5.000004:ram_save_page pc.ram: offset: 0x200000 host: 0x7f0000200000',
  ])
  const o = out()
  const r = await importQemuTrace({trace: log, out: o})
  t.is(r.header.source?.layoutFrom, 'kvm_set_user_memory')
  t.deepEqual(r.header.memslots, [
    {id: 0, base: 0, size: 0xa0000, ramBlock: 'pc.ram', offset: 0},
    {id: 1, base: 0x100000, size: 0x7f00000, ramBlock: 'pc.ram', offset: 0x100000},
  ])
  t.deepEqual((await records(o)).map((e) => e.kind), ['kvm_set_user_memory_region', 'kvm_set_user_memory_region', 'mig_start', 'kvm_set_user_memory_region', 'page_sent'])
})

test('unknown events and non-event lines are counted and skipped', async (t) => {
  const log = logFile([
    '1@1.000000:savevm_state_iterate ',
    '1@1.000001:savevm_state_iterate ',
    'qemu-system-x86_64: terminating on signal 15',
    '1@1.000002:migrate_set_state new state completed',
  ])
  const o = out()
  const r = await importQemuTrace({trace: log, out: o})
  t.deepEqual(r.unknown, {savevm_state_iterate: 2})
  t.is(r.otherLines, 1)
  t.deepEqual(await records(o), [{t_ns: 2000, kind: 'mig_complete'}])
})

test('a malformed line of a used event is an error with its line number, and no output is left', async (t) => {
  const log = logFile(['1@1.000000:migration_bitmap_sync_start ', '1@1.000001:ram_save_page pc.ram: offset: 0xZZ host: 0x1'])
  const o = out()
  const e = await t.throwsAsync(importQemuTrace({trace: log, out: o}), {instanceOf: UserError})
  t.is(
    e!.message,
    `${log}:2: malformed ram_save_page line (expected 'ram_save_page %s: offset: 0x%lx host: %p' (QEMU 7.2+), found 'ram_save_page pc.ram: offset: 0xZZ host: 0x1')`,
  )
  t.false(existsSync(o))
  const log2 = logFile(['1@1.000000:kvm_set_user_memory Slot#1 flags=0x1 gpa=0x0'])
  const e2 = await t.throwsAsync(importQemuTrace({trace: log2, out: out()}), {instanceOf: UserError})
  t.is(e2!.line, 1)
  t.regex(e2!.message, /malformed kvm_set_user_memory line \(expected 'kvm_set_user_memory Slot#%d flags=0x%x .* \(QEMU 7\.2-9\.0\) or 'kvm_set_user_memory AddrSpace#%d /)
})

test('gzip input is read transparently; zstd is refused with a way out', async (t) => {
  const gz = join(tmp, 'x.log.gz')
  writeFileSync(gz, gzipSync('3@2.000000:migration_bitmap_sync_end dirty_pages 5\n'))
  const o = out()
  await importQemuTrace({trace: gz, out: o})
  t.deepEqual(await records(o), [{t_ns: 0, kind: 'mig_sync', value: 5}])
  const zst = join(tmp, 'x.log.zst')
  writeFileSync(zst, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]))
  const e = await t.throwsAsync(importQemuTrace({trace: zst, out: out()}), {instanceOf: UserError})
  t.is(e!.message, `${zst}: zstd-compressed input is not supported on Node 20 (expected a plain or gzip file (zstd -dc FILE | gzip > FILE.gz))`)
})

test('the lab capture 02 round-trips through openTrace with its observed query-migrate', async (t) => {
  const dir = join(FIX, '02-moderate-random')
  const o = out('csv.gz')
  const r = await importQemuTrace({trace: join(dir, 'trace-src.log.gz'), out: o, stats: join(dir, 'final-src.json'), workload: join(dir, 'config.json'), console: join(dir, 'src-serial.log')})
  const tr = await openTrace(o)
  t.deepEqual(tr.header.observed, JSON.parse(readFileSync(join(dir, 'final-src.json'), 'utf8')))
  t.is(tr.header.source?.layoutFrom, 'lab-config')
  t.is(tr.header.source?.timeOrigin, '1795303199.512022')
  // 100 378 ram_save_page lines = ram.normal; 4 of them are fw_cfg blobs with no GPA.
  t.deepEqual(tr.header.source?.unmappedPagesSent, {'/rom@etc/acpi/tables': 2, '/rom@etc/table-loader': 1, '/rom@etc/acpi/rsdp': 1})
  const c = kindCounts(await records(o))
  t.deepEqual(c, {mig_start: 1, mig_sync: 5, page_sent: 100374, vm_stop: 1, mig_complete: 1})
  t.is(r.events, 100382)
  // Guest RAM + ROM blocks add up to QEMU's ram.total.
  t.is(tr.header.ramBlocks.reduce((s, b) => s + b.size, 0), 1074274304)
})

test("a lab postcopy run switched once dirty-sync-count reached --postcopy-after: the replay gets the rule (postcopy-after-syncs), a precopy run does not", async (t) => {
  const {labSettings, labPostcopyAfterSyncs} = await import('../../src/import/qemu/importer.js')
  type Lab = Parameters<typeof labSettings>[0]
  const pc = {args: {mode: 'postcopy', postcopy_after: 3}, qemu_version: 'QEMU emulator version 7.2.22'} as Lab
  t.true(labSettings(pc).includes('postcopy-after-syncs=3'), labSettings(pc).join(' '))
  t.is(labPostcopyAfterSyncs(pc), 3)
  const pre = {args: {mode: 'precopy', postcopy_after: 3}, qemu_version: 'QEMU emulator version 7.2.22'} as Lab
  t.false(labSettings(pre).some((x) => x.startsWith('postcopy-after')))
  t.is(labPostcopyAfterSyncs(pre), undefined)
})

test("a lab run's XBZRLE cache size: config.json keeps MiB, the replay setting gets them as such", async (t) => {
  const {labSettings} = await import('../../src/import/qemu/importer.js')
  const {parseSetFlags} = await import('../../src/replay/config.js')
  const s = labSettings({args: {xbzrle: true, xbzrle_cache_size: 64}, qemu_version: 'QEMU emulator version 7.2.22'} as Parameters<typeof labSettings>[0])
  t.true(s.includes('xbzrle-cache-size=64MiB'), s.join(' '))
  t.is(parseSetFlags(s.filter((x) => x.startsWith('xbzrle')))['xbzrle-cache-size'], 64 * 2 ** 20)
})

test('the bulk stage outlasts the second sync: the rest of the first round (ascending, until the scan wraps) is populated too', async (t) => {
  // QEMU 7.2 syncs once the dirty pages left fall under what downtime-limit allows, before the scan
  // has reached the end of RAM; the scan then goes on (0x3000, 0x5000, even after the stop) and
  // wraps (0x1000 again): only the first round's pages held data at the start.
  const log = logFile([
    '7@4.000000:kvm_set_user_memory Slot#0 flags=0x0 gpa=0x0 size=0xa0000 ua=0x7f0000000000 ret=0',
    '7@5.000000:migrate_set_state new state setup',
    '7@5.000001:migration_bitmap_sync_end dirty_pages 262144',
    '7@5.000002:migrate_set_state new state active',
    '7@5.000003:ram_save_page pc.ram: offset: 0x1000 host: 0x7f0000001000',
    '7@5.000004:ram_save_page pc.ram: offset: 0x2000 host: 0x7f0000002000',
    '7@5.000005:migration_bitmap_sync_end dirty_pages 3',
    '7@5.000006:ram_save_page pc.ram: offset: 0x3000 host: 0x7f0000003000',
    '7@5.000007:migration_completion_vm_stop ret 0',
    '7@5.000008:migration_bitmap_sync_end dirty_pages 1',
    '7@5.000009:ram_save_page pc.ram: offset: 0x5000 host: 0x7f0000005000',
    '7@5.000010:ram_save_page pc.ram: offset: 0x1000 host: 0x7f0000001000',
    '7@5.000011:ram_save_page pc.ram: offset: 0x6000 host: 0x7f0000006000',
    '7@5.000012:migrate_set_state new state completed',
  ])
  const r = await importQemuTrace({trace: log, out: out()})
  t.deepEqual(r.header.populated, [
    {gpa: 0x1000, len: 0x3000},
    {gpa: 0x5000, len: 0x1000},
  ])
  // Before the second sync only, as the importer had it: 0x3000 and 0x5000 would be zero at the start.
  const early = await importQemuTrace({trace: logFile(['7@4.000000:kvm_set_user_memory Slot#0 flags=0x0 gpa=0x0 size=0xa0000 ua=0x7f0000000000 ret=0', '7@5.000000:migrate_set_state new state setup', '7@5.000001:migration_bitmap_sync_end dirty_pages 9', '7@5.000003:ram_save_page pc.ram: offset: 0x1000 host: 0x7f0000001000', '7@5.000005:migration_bitmap_sync_end dirty_pages 3', '7@5.000006:ram_save_page pc.ram: offset: 0x1000 host: 0x7f0000001000', '7@5.000007:ram_save_page pc.ram: offset: 0x8000 host: 0x7f0000008000']), out: out()})
  // A send at or below the round's highest offset ends the round: 0x8000 after the wrap is a re-send.
  t.deepEqual(early.header.populated, [{gpa: 0x1000, len: 0x1000}])
})

test("a lab run's --prealloc: guest-ram-prealloc for the replay (first-touch-cost does not apply); a run without it (older lab runs, migrate.py's) keeps QEMU's default", async (t) => {
  const {labSettings} = await import('../../src/import/qemu/importer.js')
  type Lab = Parameters<typeof labSettings>[0]
  const v = 'QEMU emulator version 7.2.22'
  t.true(labSettings({args: {prealloc: true}, qemu_version: v} as Lab).includes('guest-ram-prealloc=on'))
  t.false(labSettings({args: {prealloc: false}, qemu_version: v} as Lab).some((x) => x.startsWith('guest-ram-prealloc')))
  t.false(labSettings({args: {}, qemu_version: v} as Lab).some((x) => x.startsWith('guest-ram-prealloc')))
})

test("trace-page-interval: the mean gap between the first round's back-to-back page lines under 20 us, a mig_start param", async (t) => {
  // Pages 1..1201 (offset k x 4 KiB) from 5 s on, the gap before page k 3 us for k even and 5 us
  // for k odd, except page 601's 60 us (a writev: left out, >= 20 us) and page 801, which follows a
  // ram_save_iterate_big_wait line (another event between: left out). Counted: the 600 even gaps
  // (3 us) and 598 odd ones (5 us): 4790 us over 1198 gaps, 3.998 us (rounded to ns), 0.003998 ms.
  // After the second sync five more pages 1 us apart: not the first round, not counted.
  const lines = ['7@4.000000:kvm_set_user_memory Slot#0 flags=0x0 gpa=0x0 size=0xa0000 ua=0x7f0000000000 ret=0', '7@4.500000:migrate_set_state new state setup', '7@4.600000:migration_bitmap_sync_end dirty_pages 262144', '7@4.600001:migrate_set_state new state active']
  const stamp = (us: number): string => `7@${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`
  let us = 5_000_000
  for (let k = 1; k <= 1201; k++) {
    if (k > 1) us += k === 601 ? 60 : k % 2 === 0 ? 3 : 5
    if (k === 801) lines.push(`${stamp(us - 1)}:ram_save_iterate_big_wait big wait: 1 milliseconds, 2 iterations`)
    lines.push(`${stamp(us)}:ram_save_page pc.ram: offset: 0x${(k * 0x1000).toString(16)} host: 0x${(0x7f0000000000 + k * 0x1000).toString(16)}`)
  }
  lines.push(`${stamp(us + 100)}:migration_bitmap_sync_end dirty_pages 5`)
  for (let k = 0; k < 5; k++) lines.push(`${stamp(us + 200 + k)}:ram_save_page pc.ram: offset: 0x${(0x10000 + k * 0x1000).toString(16)} host: 0x${(0x7f0000010000 + k * 0x1000).toString(16)}`)
  const r = await importQemuTrace({trace: logFile(lines), out: out()})
  t.is(r.header.source!.migrationParams, 'trace-page-interval=0.003998')
  t.deepEqual((r.header.source!.pageIntervalMeasured as {gaps: number; meanUs: number}).gaps, 1198)
  t.is((r.header.source!.pageIntervalMeasured as {gaps: number; meanUs: number}).meanUs, 3.998)
  // Fewer than 1 000 such gaps: no figure.
  const few = await importQemuTrace({trace: logFile(lines.slice(0, 504)), out: out()})
  t.is(few.header.source!.migrationParams, undefined)
  t.is(few.header.source!.pageIntervalMeasured, undefined)
})
