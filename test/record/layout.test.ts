import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import test from 'ava'
import {buildLayout, headerLayout, parseInfoMtree, parseInfoRamblock, virtioMemDevices} from '../../src/record/qemu-layout.js'
import {AddrClass, AddressMap, addressRanges, pluginGivesGpa} from '../../src/record/address-map.js'
import {parseHeader} from '../../src/trace/header.js'
import {UserError} from '../../src/util/errors.js'
import {ROOT} from '../helpers/cli.js'

// Captured from QEMU 7.2 (Debian) at -S over QMP: fixtures/record/<machine>-*.
const FIX = join(ROOT, 'fixtures/record')
const read = (n: string): string => readFileSync(join(FIX, n), 'utf8')
const layoutOf = (name: string) =>
  buildLayout(parseInfoRamblock(read(`${name}-info-ramblock.txt`)), parseInfoMtree(read(`${name}-info-mtree.txt`)), virtioMemDevices(JSON.parse(read(`${name}-memory-devices.json`))))
const GiB = 2 ** 30

test('info ramblock: idstr, page size, ram_addr offset, used size', (t) => {
  const r = parseInfoRamblock(read('pc-vmem-info-ramblock.txt'))
  t.deepEqual(r.map((b) => b.idstr), ['0000:00:02.0/vmem0', 'pc.ram', '/rom@etc/acpi/tables', 'pc.bios', 'pc.rom', '/rom@etc/table-loader', '/rom@etc/acpi/rsdp'])
  // QEMU 7.2 allocates the virtio-mem device's block first: pc.ram's ram_addr is 1 GiB.
  t.deepEqual(r[1], {idstr: 'pc.ram', pageSize: 4096, ramOffset: GiB, used: GiB})
  t.deepEqual(r[3], {idstr: 'pc.bios', pageSize: 4096, ramOffset: 0x80000000, used: 0x40000})
  t.throws(() => parseInfoRamblock('  Block Name PSize\n  pc.ram what\n'), {instanceOf: UserError, message: /info ramblock/})
})

test('info mtree: RAM mappings of address space "memory" and region addresses', (t) => {
  const m = parseInfoMtree(read('pc-4g-info-mtree.txt'))
  const ram = m.mappings.filter((x) => !x.rom)
  t.deepEqual(
    ram.map((x) => [x.region, x.gpa, x.size, x.regionOffset]),
    [
      ['pc.ram', 0, 3 * GiB, 0],
      ['pc.ram', 4 * GiB, GiB, 3 * GiB],
    ],
  )
  t.is(m.regionAddr.get('pc.ram'), 0)
  t.is(m.regionAddr.get('pc.bios'), 0xfffc0000)
  t.is(m.regionAddr.get('pc.rom'), 0xc0000)
  t.true(m.romRegions.has('pc.bios'))
  const v = parseInfoMtree(read('pc-vmem-info-mtree.txt'))
  // vmem0 sits in the device-memory container at 4 GiB: its own address there is 0.
  t.is(v.regionAddr.get('vmem0'), 0)
  t.truthy(v.mappings.find((x) => x.region === 'vmem0' && x.gpa === 4 * GiB && x.size === GiB))
})

test('layout: memslots skip overlapping ROM, virtio-mem gets the header device, unmapped blocks a made-up range', (t) => {
  const l = layoutOf('pc-vmem')
  const h = parseHeader({format: 'migtrace', version: 1, ...headerLayout(l)})
  t.deepEqual(
    h.memslots.map((s) => [s.ramBlock, s.base, s.size, s.offset]),
    [
      ['pc.ram', 0, GiB, 0],
      ['pc.bios', 0xfffc0000, 0x40000, 0],
      ['rom_etc_acpi_tables', 5 * GiB, 0x20000, 0],
      ['rom_etc_table-loader', 6 * GiB, 0x1000, 0],
      ['rom_etc_acpi_rsdp', 7 * GiB, 0x1000, 0],
      ['mem-vm0', 4 * GiB, GiB, 0],
    ],
  )
  t.deepEqual(h.virtioMem.map((d) => [d.id, d.base, d.regionSize, d.blockSize, d.requestedSize, d.plugged.length]), [['vm0', 4 * GiB, GiB, 2 * 2 ** 20, 512 * 2 ** 20, 0]])
  t.true(l.notes.some((n) => n.includes('/rom@etc/acpi/tables') && n.includes('made-up')))
})

test('address map, QEMU 7.2: ram_addr + offset + MemoryRegion.addr -> GPA', (t) => {
  const l = layoutOf('pc-vmem')
  t.false(pluginGivesGpa({major: 7, minor: 2}))
  const {ranges, conflicts} = addressRanges(l, false)
  t.deepEqual(conflicts, [])
  const m = new AddressMap(ranges)
  // pc.ram's ram_addr is 1 GiB: plugin address 1 GiB + 0x5008 is GPA 0x5008.
  t.is(m.gpa(GiB + 0x5008), 0x5008)
  // The virtio-mem block is first (ram_addr 0) and mapped at 4 GiB.
  t.is(m.gpa(0x1234), 4 * GiB + 0x1234)
  // pc.bios: ram_addr 0x80000000 + its region address 0xfffc0000: a ROM, stores dropped.
  t.is(m.gpa(0x80000000 + 0xfffc0000 + 0x10), -1)
  t.is(m.lastClass, AddrClass.rom)
  t.is(m.gpa(0x7fffffffff), -1)
  t.is(m.lastClass, AddrClass.unmapped)
})

test('address map: pc with 4 GiB (RAM above 4 GiB) and QEMU 8.2+ (GPA as is)', (t) => {
  const l = layoutOf('pc-4g')
  const m = new AddressMap(addressRanges(l, false).ranges)
  t.is(m.gpa(0x1000), 0x1000)
  t.is(m.gpa(3 * GiB + 0x2000), 4 * GiB + 0x2000)
  t.true(pluginGivesGpa({major: 8, minor: 2}))
  const g = new AddressMap(addressRanges(l, true).ranges)
  t.is(g.gpa(4 * GiB + 0x2000), 4 * GiB + 0x2000)
  t.is(g.gpa(3 * GiB + 0x2000), -1)
  t.is(g.lastClass, AddrClass.unmapped)
})

test('layout: q35 with a VGA whose BAR is not assigned yet', (t) => {
  const l = layoutOf('q35-vga')
  const h = parseHeader({format: 'migtrace', version: 1, ...headerLayout(l)})
  const vram = h.memslots.find((s) => s.ramBlock === '0000:00:01.0_vga.vram')
  t.truthy(vram)
  t.is(vram!.size, 16 * 2 ** 20)
  t.true(vram!.base >= 4 * GiB)
})
