/**
 * The QEMU command lines of a lab run, and the trace events it captures. Source and destination get
 * the same machine (migration needs identical devices); the destination adds `-incoming defer` so
 * the driver can set its capabilities before the stream arrives. The guest console goes to QEMU's
 * stdout (`-serial stdio`), where the launcher stamps each line with the host time.
 */
import {guestRamMib, type LabRunOptions} from './options.js'

/**
 * Trace-event presets. Names checked against `qemu-system-x86_64 -trace help` of Debian's QEMU 7.2
 * (shared/qemu-lab/trace-events-7.2.txt). basic: per pass, per request, per state change (a few
 * to ~20 lines/s); pages adds the per-page and per-packet events (~33 000 lines/s at 128 MiB/s).
 */
export const TRACE_BASIC = [
  'migrate_set_state', 'migrate_pending', 'migrate_transferred',
  'migration_thread_low_pending', 'migration_thread_setup_complete',
  'migration_thread_after_loop', 'migration_completion_vm_stop',
  'migration_completion_postcopy_end', 'migration_completion_postcopy_end_after_complete',
  'migration_bitmap_sync_start', 'migration_bitmap_sync_end',
  'migration_bitmap_clear_dirty', 'migration_throttle',
  'savevm_state_setup', 'savevm_state_iterate', 'savevm_state_complete_precopy',
  'savevm_state_cleanup', 'savevm_section_start', 'savevm_section_end',
  'savevm_send_postcopy_listen', 'savevm_send_postcopy_run',
  'qemu_savevm_send_postcopy_advise', 'qemu_savevm_send_postcopy_ram_discard',
  'ram_postcopy_send_discard_bitmap', 'postcopy_discard_send_range',
  'postcopy_discard_send_finish', 'postcopy_start', 'postcopy_start_set_run',
  // postcopy on the destination: each fault the guest takes and what answers it
  'postcopy_ram_fault_thread_request', 'postcopy_page_req_add', 'postcopy_page_req_del',
  'postcopy_request_shared_page', 'postcopy_request_shared_page_present', 'postcopy_wake_shared',
  'migrate_handle_rp_req_pages', 'ram_save_queue_pages', 'migrate_send_rp_message',
  'postcopy_ram_listen_thread_start', 'postcopy_ram_listen_thread_exit',
  'postcopy_ram_enable_notify', 'postcopy_ram_incoming_cleanup_blocktime',
  'ram_load_complete', 'ram_discard_range', 'ram_block_discard_range',
  'save_xbzrle_page_skipping', 'save_xbzrle_page_overflow', 'migration_pagecache_init',
  'multifd_send_sync_main', 'multifd_recv_sync_main', 'multifd_send_thread_start', 'multifd_recv_thread_start',
  'multifd_send_thread_end', 'multifd_recv_thread_end',
  'kvm_dirty_ring_reap', 'kvm_dirty_ring_reaper', 'kvm_dirty_ring_reaper_kick',
  'kvm_dirty_ring_full', 'kvm_dirty_ring_flush', 'kvm_clear_dirty_log',
  'kvm_set_user_memory', 'kvm_slots_grow',
  'virtio_mem_*', 'dirtyrate_*', 'dirtylimit_*',
  'vfio_get_dirty_bitmap', 'vfio_iommu_map_dirty_notify', 'vfio_migration_*',
  'vfio_save_*', 'vfio_load_*',
]

/** Per-page (and per multifd packet) events: high volume. */
export const TRACE_PAGES = [
  'ram_save_page', 'kvm_dirty_ring_page', 'kvm_dirty_ring_reap_vcpu',
  'postcopy_place_page', 'postcopy_place_page_zero', 'ram_load_postcopy_loop',
  'ram_load_loop', 'multifd_send', 'multifd_recv',
]

export function traceEvents(o: Pick<LabRunOptions, 'trace' | 'traceExtra'>): string[] {
  if (o.trace === 'none') return [...o.traceExtra]
  return [...TRACE_BASIC, ...(o.trace === 'pages' ? TRACE_PAGES : []), ...o.traceExtra]
}

/** The kernel command line: the dirtier's parameters as lab.* (read by lab/guest/init). */
export function kernelAppend(o: LabRunOptions): string {
  const parts = [
    'console=ttyS0',
    'loglevel=4',
    // panic=-1: reboot at once on a panic, so a crashed destination shows as a reboot, not a hang
    'panic=-1',
    `lab.ws=${o.wsMib}`,
    `lab.rate=${o.rate}`,
    `lab.pattern=${o.pattern}`,
    `lab.hot=${o.hotPct}`,
    `lab.hotp=${o.hotProb}`,
    `lab.interval=${o.reportMs}`,
    `lab.fill=${o.fill}`,
    `lab.seed=${o.seed}`,
    `lab.pfnmap=${o.pfnmap ? 1 : 0}`,
    `lab.check=${o.pfnCheckMs}`,
    `lab.pace=${o.pace}`,
  ]
  if (o.vmemSizeMib > 0) parts.push('lab.vmem=1', 'memhp_default_state=online_movable')
  if (o.extraAppend !== '') parts.push(o.extraAppend)
  return parts.join(' ')
}

export interface RolePaths {
  qmp: string
  trace: string
}

/** argv (without the binary) for the source or the destination. */
export function qemuArgs(o: LabRunOptions, role: 'src' | 'dst', image: {kernel: string; initrd: string}, paths: RolePaths, eventsFile: string | undefined): string[] {
  let accel: string = o.accel
  if (o.accel === 'kvm' && o.dirtyRing > 0) accel += `,dirty-ring-size=${o.dirtyRing}`
  if (o.accel === 'tcg') accel += `,thread=${o.tcgThread}`
  // debug-threads: the vCPU (`CPU 0/TCG`) and migration (`live_migration`) threads carry their
  // names, so a run can say what each cost (summary.json src_threads_cpu_s).
  const a = ['-name', `lab-${role},debug-threads=on`, '-accel', accel]
  if (o.cpu !== undefined) a.push('-cpu', o.cpu)
  // maxmem leaves room for the virtio-mem region (device memory) and alignment.
  const ramKib = Math.round(guestRamMib(o) * 1024)
  const size = ramKib % 1024 === 0 ? `${ramKib / 1024}M` : `${ramKib}K`
  const mem = o.vmemSizeMib > 0 ? `${size},maxmem=${o.memMib + o.vmemSizeMib + 128}M` : size
  a.push('-m', mem, '-smp', String(o.smp), '-machine', o.machine, '-nodefaults', '-display', 'none', '-vga', 'none')
  a.push('-serial', 'stdio', '-qmp', `unix:${paths.qmp},server=on,wait=off`)
  a.push('-kernel', image.kernel, '-initrd', image.initrd)
  // --prealloc: pc.ram populated at start (-mem-prealloc); the virtio-mem device populates each
  // block as it is plugged (its own prealloc=on, QEMU 7.1+: -mem-prealloc does not reach a
  // -object memory backend), so no page of either is first touched during the migration.
  if (o.vmemSizeMib > 0) a.push('-object', `memory-backend-ram,id=vmem0,size=${o.vmemSizeMib}M`, '-device', `virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=${o.vmemRequestedMib}M${o.prealloc ? ',prealloc=on' : ''}`)
  if (o.prealloc) a.push('-mem-prealloc')
  a.push('-append', kernelAppend(o))
  if (eventsFile !== undefined) a.push('-trace', `events=${eventsFile}`, '-D', paths.trace, '-msg', 'timestamp=on')
  if (role === 'dst') a.push('-incoming', 'defer')
  a.push(...o.extraQemu)
  return a
}

/** A command line as one shell-quoted string (config.json's cmd_src / cmd_dst). */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((s) => (/^[A-Za-z0-9_./:=,@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`)).join(' ')
}

/**
 * Migration capabilities and parameters (QMP migrate-set-capabilities / migrate-set-parameters)
 * for each side. multifd and its compression must be set on both sides (the destination must
 * expect the channels); xbzrle only matters on the source; postcopy-ram on both, with
 * postcopy-blocktime on the destination (it measures the guest's wait for faulted pages).
 */
export function migrationSetup(o: LabRunOptions): {src: {caps: Record<string, boolean>; params: Record<string, unknown>}; dst: {caps: Record<string, boolean>; params: Record<string, unknown>}} {
  const postcopy = o.mode === 'postcopy' || o.onTimeout === 'postcopy'
  const srcCaps: Record<string, boolean> = {events: true}
  const dstCaps: Record<string, boolean> = {events: true}
  if (o.autoConverge) srcCaps['auto-converge'] = true
  if (postcopy) {
    srcCaps['postcopy-ram'] = true
    dstCaps['postcopy-ram'] = true
    dstCaps['postcopy-blocktime'] = true
  }
  if (o.multifdChannels > 0) {
    srcCaps.multifd = true
    dstCaps.multifd = true
  }
  if (o.xbzrle) srcCaps.xbzrle = true
  const srcParams: Record<string, unknown> = {'max-bandwidth': Math.round(o.bandwidthMibs * 1024 * 1024), 'downtime-limit': o.downtimeMs}
  const dstParams: Record<string, unknown> = {}
  if (o.throttleInitial !== undefined) srcParams['cpu-throttle-initial'] = o.throttleInitial
  if (o.throttleIncrement !== undefined) srcParams['cpu-throttle-increment'] = o.throttleIncrement
  if (o.multifdChannels > 0) {
    for (const p of [srcParams, dstParams]) {
      p['multifd-channels'] = o.multifdChannels
      p['multifd-compression'] = o.multifdCompression
    }
  }
  if (o.xbzrleCacheMib !== undefined) srcParams['xbzrle-cache-size'] = o.xbzrleCacheMib * 1024 * 1024
  return {src: {caps: srcCaps, params: srcParams}, dst: {caps: dstCaps, params: dstParams}}
}
