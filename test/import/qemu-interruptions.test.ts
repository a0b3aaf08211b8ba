/**
 * A postcopy network failure with its recovery, and system resets reaching a virtio-mem device, as
 * QEMU 7.2 traces them (hand-made excerpts in the formats of trace-event-formats-7.2.txt), become
 * exactly these mig_net_fail / vmem_reset events (src/import/qemu/interruptions.ts).
 */
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {importQemuTrace} from '../../src/import/qemu/importer.js'
import {ResetVerdict, VmemResetTracker} from '../../src/import/qemu/interruptions.js'
import {openTrace} from '../../src/trace/read/index.js'
import {toRecord} from '../../src/trace/write/encode.js'
import type {EventRecord} from '../../src/trace/events.js'
import {ROOT} from '../helpers/cli.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-interrupt-'))
let n = 0

function logFile(lines: string[]): string {
  const p = join(tmp, `log${n++}.log`)
  writeFileSync(p, lines.join('\n') + '\n')
  return p
}

async function records(path: string): Promise<EventRecord[]> {
  const t = await openTrace(path)
  const r: EventRecord[] = []
  for await (const b of t.events()) for (let i = 0; i < b.length; i++) r.push(toRecord(b, i, t.deviceIds))
  return r
}

const layoutFile = join(tmp, 'layout.json')
writeFileSync(layoutFile, JSON.stringify({format: 'migtrace', version: 1, ramBlocks: [{name: 'pc.ram', size: '1G'}], memslots: [{id: 0, base: 0, size: 0x40000000, ramBlock: 'pc.ram', offset: 0}]}))

test('a postcopy failure: mig_net_fail where the log shows it first, value = until the resume that worked', async (t) => {
  const log = logFile([
    '100@1000.000000:migrate_set_state new state setup',
    '100@1000.000100:migrate_set_state new state active',
    '100@1001.000000:postcopy_start ',
    '100@1001.000500:migrate_set_state new state postcopy-active',
    // The return-path thread sees the broken socket 0.2 ms before the migration thread pauses.
    '101@1002.000000:postcopy_pause_return_path ',
    '100@1002.000200:migrate_set_state new state postcopy-paused',
    '100@1004.500000:migrate_fd_error error=Connection refused',
    // First `migrate resume=true` connects, its handshake fails: paused again; the second works.
    '100@1005.000000:migrate_set_state new state postcopy-recover',
    '100@1005.000300:migrate_set_state new state postcopy-paused',
    '100@1007.250000:migrate_set_state new state postcopy-recover',
    '100@1007.251000:migrate_set_state new state postcopy-active',
    '101@1007.251100:postcopy_pause_return_path_continued ',
    '100@1007.251200:postcopy_pause_continued ',
    // A second failure the user never recovers from (the log ends paused).
    '100@1008.000000:migrate_set_state new state postcopy-paused',
  ])
  const o = join(tmp, 'pc.csv')
  const r = await importQemuTrace({trace: log, out: o, layout: layoutFile})
  t.deepEqual(await records(o), [
    {t_ns: 0, kind: 'mig_start'},
    {t_ns: 1_000_000_000, kind: 'vm_stop'},
    {t_ns: 1_000_500_000, kind: 'mig_postcopy'},
    // 1007.250000 - 1002.000000 = 5250 ms; the second postcopy-active is the resume, not an event.
    {t_ns: 2_000_000_000, kind: 'mig_net_fail', value: 5250},
    // No recovery in the log: the replay's postcopy-recover-after decides.
    {t_ns: 8_000_000_000, kind: 'mig_net_fail'},
  ])
  t.deepEqual(r.header.source?.postcopyPauses, [
    {failNs: 2_000_000_000, recoverNs: 7_250_000_000, resumeNs: 7_251_000_000},
    {failNs: 8_000_000_000, recoverNs: null, resumeNs: null},
  ])
})

test('a paused state outside postcopy, and a pause after completion, give no mig_net_fail', async (t) => {
  const log = logFile([
    '100@1000.000000:migrate_set_state new state setup',
    '101@1000.500000:postcopy_pause_return_path ',
    '100@1001.000000:migrate_set_state new state completed',
    '100@1002.000000:migrate_set_state new state postcopy-paused',
  ])
  const o = join(tmp, 'pre.csv')
  await importQemuTrace({trace: log, out: o, layout: layoutFile})
  t.deepEqual(await records(o), [
    {t_ns: 0, kind: 'mig_start'},
    {t_ns: 1_000_000_000, kind: 'mig_complete'},
  ])
})

// The lab's virtio-mem run's config.json: a 1 GiB virtio-mem device vmem0 at 4 GiB.
const VMEM_CONFIG = join(ROOT, 'fixtures/qemu/06-virtio-mem/config.json')

test('virtio-mem: a lone virtio_mem_unplugged_all is a system reset, the one an UNPLUG_ALL request causes is not', async (t) => {
  const log = logFile([
    // QEMU's reset at start-up (qemu_system_reset): before the migration, folded into the header.
    '200@1000.000000:virtio_mem_unplugged_all ',
    '200@1000.000010:virtio_mem_resized_usable_region old_size=0x40000000new_size=0x20000000',
    '200@1000.100000:virtio_mem_plug_request addr=0x100000000 nb_blocks=64',
    '200@1000.100010:virtio_mem_send_response type=0',
    '200@1001.000000:migrate_set_state new state setup',
    // UNPLUG_ALL while migrating with memory plugged: BUSY, virtio_mem_unplug_all() traces nothing.
    '200@1002.000000:virtio_mem_unplug_all_request ',
    '200@1002.000010:virtio_mem_send_response type=1',
    '200@1003.000000:migrate_set_state new state completed',
    // A reboot after the migration: the reset handler unplugs everything.
    '200@1004.000000:virtio_mem_unplugged_all ',
    '200@1004.000010:virtio_mem_resized_usable_region old_size=0x40000000new_size=0x20000000',
    // The guest's own UNPLUG_ALL, now granted: one vmem_unplug_all, no reset.
    '200@1005.000000:virtio_mem_unplug_all_request ',
    '200@1005.000010:virtio_mem_unplugged_all ',
    '200@1005.000020:virtio_mem_resized_usable_region old_size=0x40000000new_size=0x20000000',
    '200@1005.000030:virtio_mem_send_response type=0',
    // Two reboots with nothing between, 2 s apart: two resets.
    '200@1006.000000:virtio_mem_unplugged_all ',
    '200@1008.000000:virtio_mem_unplugged_all ',
  ])
  const o = join(tmp, 'vmem.csv')
  const r = await importQemuTrace({trace: log, out: o, workload: VMEM_CONFIG})
  const got = (await records(o)).filter((e) => e.kind !== 'mig_start')
  t.deepEqual(got, [
    {t_ns: 2_000_000_000, kind: 'vmem_unplug_all', dev: 'vmem0'},
    {t_ns: 3_000_000_000, kind: 'mig_complete'},
    {t_ns: 4_000_000_000, kind: 'vmem_reset', dev: 'vmem0', value: 0},
    {t_ns: 5_000_000_000, kind: 'vmem_unplug_all', dev: 'vmem0'},
    {t_ns: 6_000_000_000, kind: 'vmem_reset', dev: 'vmem0', value: 0},
    {t_ns: 8_000_000_000, kind: 'vmem_reset', dev: 'vmem0', value: 0},
  ])
  t.deepEqual(r.header.source?.skippedEvents, {
    "virtio_mem_plug_request (before the migration: folded into the header's plug state)": 1,
    "system reset (before the migration: folded into the header's plug state)": 1,
  })
  // The start-up reset (nothing plugged) then the plug of 64 blocks: the state at setup.
  t.deepEqual(r.header.virtioMem[0]!.plugged, [{gpa: 0x100000000, blocks: 64}])
})

test('reset bursts: one reset runs every device handler back to back', (t) => {
  const tr = new VmemResetTracker()
  t.is(tr.observe('virtio_mem_unplugged_all', 0), ResetVerdict.Reset)
  t.is(tr.observe('virtio_mem_resized_usable_region', 10), ResetVerdict.None)
  t.is(tr.observe('virtio_mem_unplugged_all', 30), ResetVerdict.SameReset)
  // 50 ms + 1 µs later: a new reset.
  t.is(tr.observe('virtio_mem_unplugged_all', 50_031), ResetVerdict.Reset)
  // A request between two lone lines ends the burst.
  t.is(tr.observe('virtio_mem_plug_request', 50_040), ResetVerdict.None)
  t.is(tr.observe('virtio_mem_unplugged_all', 50_050), ResetVerdict.Reset)
  t.is(tr.observe('virtio_mem_unplug_all_request', 50_060), ResetVerdict.None)
  t.is(tr.observe('virtio_mem_unplugged_all', 50_070), ResetVerdict.None)
})
