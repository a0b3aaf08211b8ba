/**
 * The QEMU trace events the importer understands, as their printf formats, and a compiler from a
 * printf format to a line parser. The log trace backend prints exactly `name + " " + format`
 * (scripts/tracetool/backend/log.py: `qemu_log("%d@%zu.%06zu:" name " " fmt "\n", ...)`), so the
 * format is the whole grammar of an event's arguments. Formats are written as the compiled
 * binary prints them: `PRIx64` already expanded to `lx`, as in trace-event-formats-7.2.txt.
 *
 * An event may have several signatures (QEMU 7.2 and current QEMU differ, §7 of
 * qemu-semantics.md); a line is parsed by the first variant whose pattern matches it.
 */

/** How one printf conversion is read back. */
export type ArgKind = 'str' | 'int' | 'hex' | 'ptr'

export interface CompiledFormat {
  /** QEMU versions printing this format, for messages and docs. */
  versions: string
  format: string
  pattern: RegExp
  /** One entry per conversion, in order. */
  args: ArgKind[]
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * Compile a printf format into an anchored pattern. `%s` is matched lazily (greedily when it is the
 * last thing on the line); `0x%lx`-style hex is read without its prefix; `%p` accepts glibc's
 * `0x...` and `(nil)`. Width flags (`%016lx`) are accepted.
 */
export function compileFormat(format: string, versions: string): CompiledFormat {
  const args: ArgKind[] = []
  let re = '^'
  const conv = /%[-0 #+]*\d*(?:hh|h|ll|l|z|j|t)?([sdiuxXp%c])/g
  let last = 0
  let m: RegExpExecArray | null
  while ((m = conv.exec(format)) !== null) {
    let lit = format.slice(last, m.index)
    last = conv.lastIndex
    const c = m[1]!
    if (c === '%') {
      re += escapeRe(lit + '%')
      continue
    }
    const atEnd = last === format.length
    if (c === 'x' || c === 'X') {
      // "0x%lx": the 0x belongs to the literal; keep it there and read bare hex digits.
      re += escapeRe(lit) + '([0-9a-fA-F]+)'
      args.push('hex')
    } else if (c === 'p') {
      re += escapeRe(lit) + '(0x[0-9a-fA-F]+|\\(nil\\))'
      args.push('ptr')
    } else if (c === 's') {
      re += escapeRe(lit) + (atEnd ? '(.*)' : '(.*?)')
      args.push('str')
    } else if (c === 'c') {
      re += escapeRe(lit) + '(.)'
      args.push('str')
    } else {
      lit = escapeRe(lit)
      re += lit + (c === 'u' ? '(\\d+)' : '(-?\\d+)')
      args.push('int')
    }
  }
  // Trailing spaces of the log line are not significant (an empty format leaves "name ").
  re += escapeRe(format.slice(last).trimEnd()) + '\\s*$'
  return {versions, format, pattern: new RegExp(re), args}
}

/** What the importer does with an event; `count` events are only tallied in header.source. */
export type EventRole =
  | 'ram_save_page'
  | 'sync_start'
  | 'sync_end'
  | 'clear_dirty'
  | 'iterate'
  | 'set_state'
  | 'vm_stop'
  | 'vm_state'
  | 'postcopy_start'
  | 'postcopy_fault'
  | 'postcopy_req'
  | 'postcopy_place'
  | 'postcopy_pause'
  | 'postcopy_pause_other'
  | 'kvm_set_user_memory'
  | 'kvm_clear_dirty_log'
  | 'kvm_ring_page'
  | 'kvm_ring_reap'
  | 'kvm_ring_other'
  | 'vmem_plug'
  | 'vmem_unplug'
  | 'vmem_unplug_all'
  | 'vmem_state'
  | 'vmem_resized'
  | 'vmem_unplugged_all'
  | 'vmem_other'
  | 'vfio_dirty_bitmap'
  | 'vfio_migration_state'
  | 'ram_load'
  | 'discard_range'
  | 'multifd_send'
  | 'xbzrle'
  | 'rate_window'

export interface EventSpec {
  name: string
  role: EventRole
  /** Argument names, in the order of the conversions of every variant (the record the parser fills). */
  fields: readonly string[]
  /** For each variant, the index in `fields` of each conversion, in order. */
  variants: readonly {versions: string; format: string; order?: readonly number[]}[]
}

/**
 * The used events. Formats: 7.2 from trace-event-formats-7.2.txt (the lab's binary); current
 * from qemu.git trace-events (accel/kvm, migration, hw/virtio, hw/vfio), cited per line.
 */
export const EVENT_SPECS: readonly EventSpec[] = [
  // migration/ram.c: ram_save_page() / save_normal_page path (not zero pages, not multifd).
  {name: 'ram_save_page', role: 'ram_save_page', fields: ['rb', 'offset', 'host'], variants: [{versions: '7.2+', format: '%s: offset: 0x%lx host: %p'}]},
  // migration/multifd.c multifd_send_thread(): one packet on a channel (pages only as a count).
  {
    name: 'multifd_send',
    role: 'multifd_send',
    fields: ['channel', 'packet_num', 'normal', 'zero', 'flags', 'next_size'],
    variants: [
      {versions: '7.2-8.2', format: 'channel %u packet_num %lu normal pages %u flags 0x%x next packet size %u', order: [0, 1, 2, 4, 5]},
      {versions: '9.0+', format: 'channel %u packet_num %lu normal pages %u zero pages %u flags 0x%x next packet size %u'},
    ],
  },
  // migration/ram.c save_xbzrle_page(): a page unchanged since its cached copy (skipped), a delta too big.
  {name: 'save_xbzrle_page_skipping', role: 'xbzrle', fields: [], variants: [{versions: '7.2+', format: ''}]},
  {name: 'save_xbzrle_page_overflow', role: 'xbzrle', fields: [], variants: [{versions: '7.2+', format: ''}]},
  // migration/migration.c migration_update_counters(): a 100 ms rate window's bytes and its length
  // (ms), at its end (7.2: bandwidth and max_size are uint64/int64 too).
  {
    name: 'migrate_transferred',
    role: 'rate_window',
    fields: ['transferred', 'time_spent', 'bandwidth', 'max_size'],
    variants: [{versions: '7.2', format: 'transferred %lu time_spent %lu bandwidth %lu max_size %ld'}],
  },
  // migration/ram.c migration_bitmap_sync().
  {name: 'migration_bitmap_sync_start', role: 'sync_start', fields: [], variants: [{versions: '7.2+', format: ''}]},
  {name: 'migration_bitmap_sync_end', role: 'sync_end', fields: ['dirty_pages'], variants: [{versions: '7.2+', format: 'dirty_pages %lu'}]},
  // migration/ram.c migration_clear_memory_region_dirty_bitmap(): one lazy-clear chunk.
  {name: 'migration_bitmap_clear_dirty', role: 'clear_dirty', fields: ['rb', 'start', 'size', 'page'], variants: [{versions: '7.2+', format: 'rb %s start 0x%lx size 0x%lx page 0x%lx'}]},
  {name: 'ram_save_iterate_big_wait', role: 'iterate', fields: ['ms', 'iterations'], variants: [{versions: '7.2+', format: 'big wait: %lu milliseconds, %d iterations'}]},
  // migration/migration.c migrate_set_state().
  {name: 'migrate_set_state', role: 'set_state', fields: ['state'], variants: [{versions: '7.2+', format: 'new state %s'}]},
  // migration/migration.c migration_completion(): vm_stop_force_state(RUN_STATE_FINISH_MIGRATE).
  {name: 'migration_completion_vm_stop', role: 'vm_stop', fields: ['ret'], variants: [{versions: '7.2+', format: 'ret %d'}]},
  // system/runstate.c vm_state_notify().
  {name: 'vm_state_notify', role: 'vm_state', fields: ['running', 'reason', 'reason_str'], variants: [{versions: '7.2+', format: 'running %d reason %d (%s)'}]},
  // migration/migration.c postcopy_start(): the source stops the guest for the switch.
  {name: 'postcopy_start', role: 'postcopy_start', fields: [], variants: [{versions: '7.2+', format: ''}]},
  // migration/postcopy-ram.c postcopy_ram_fault_thread() on the destination.
  {name: 'postcopy_ram_fault_thread_request', role: 'postcopy_fault', fields: ['hva', 'rb', 'offset', 'pid'], variants: [{versions: '7.2+', format: 'Request for HVA=0x%lx rb=%s offset=0x%zx pid=%u'}]},
  // migration/migration.c migrate_send_rp_req_pages() (a page enters the destination's page_requested
  // tree) and qemu_ufd_copy_ioctl() (placed: it leaves the tree, the faulting threads wake).
  {name: 'postcopy_page_req_add', role: 'postcopy_req', fields: ['addr', 'total'], variants: [{versions: '7.2+', format: 'new page req %p total %d'}]},
  {name: 'postcopy_page_req_del', role: 'postcopy_req', fields: ['addr', 'total'], variants: [{versions: '7.2+', format: 'resolved page req %p total %d'}]},
  // migration/migration.c: a postcopy network failure on the source (./interruptions.ts).
  // source_return_path_thread() -> postcopy_pause_return_path_thread(): the return path broke.
  {name: 'postcopy_pause_return_path', role: 'postcopy_pause', fields: [], variants: [{versions: '7.2+', format: ''}]},
  // postcopy_pause() / postcopy_pause_return_path_thread() woken by the resume.
  {name: 'postcopy_pause_continued', role: 'postcopy_pause_other', fields: [], variants: [{versions: '7.2+', format: ''}]},
  {name: 'postcopy_pause_return_path_continued', role: 'postcopy_pause_other', fields: [], variants: [{versions: '7.2+', format: ''}]},
  // migration/savevm.c postcopy_pause_incoming() on the destination (its own log): counted.
  {name: 'postcopy_pause_incoming', role: 'postcopy_pause_other', fields: [], variants: [{versions: '7.2+', format: ''}]},
  {name: 'postcopy_pause_incoming_continued', role: 'postcopy_pause_other', fields: [], variants: [{versions: '7.2+', format: ''}]},
  // migration/postcopy-ram.c postcopy_place_page() / postcopy_place_page_zero(): a host page placed (UFFDIO_COPY / ZEROPAGE).
  {name: 'postcopy_place_page', role: 'postcopy_place', fields: ['host'], variants: [{versions: '7.2+', format: 'host=%p'}]},
  {name: 'postcopy_place_page_zero', role: 'postcopy_place', fields: ['host'], variants: [{versions: '7.2+', format: 'host=%p'}]},
  // accel/kvm/kvm-all.c kvm_set_user_memory_region(); slot = as_id << 16 | slot in 7.2.
  {
    name: 'kvm_set_user_memory',
    role: 'kvm_set_user_memory',
    fields: ['as', 'slot', 'flags', 'gpa', 'size', 'ua', 'guest_memfd', 'guest_memfd_offset', 'ret'],
    variants: [
      {versions: '7.2-9.0', format: 'Slot#%d flags=0x%x gpa=0x%lx size=0x%lx ua=0x%lx ret=%d', order: [1, 2, 3, 4, 5, 8]},
      {versions: '9.1+', format: 'AddrSpace#%d Slot#%d flags=0x%x gpa=0x%lx size=0x%lx ua=0x%lx guest_memfd=%d guest_memfd_offset=0x%lx ret=%d'},
    ],
  },
  // accel/kvm/kvm-all.c kvm_log_clear_one_slot(): slot = as_id << 16 | slot, start/size in pages.
  {name: 'kvm_clear_dirty_log', role: 'kvm_clear_dirty_log', fields: ['slot', 'start', 'size'], variants: [{versions: '7.2+', format: 'slot#%d start 0x%lx size 0x%x'}]},
  // accel/kvm/kvm-all.c kvm_dirty_ring_reap_one(): (cpu_index, fetch, cur->offset); no slot id.
  {name: 'kvm_dirty_ring_page', role: 'kvm_ring_page', fields: ['vcpu', 'fetch', 'offset'], variants: [{versions: '7.2+', format: 'vcpu %d fetch %u offset 0x%lx'}]},
  // accel/kvm/kvm-all.c kvm_dirty_ring_reap_locked(): all rings reaped, then KVM_RESET_DIRTY_RINGS.
  {name: 'kvm_dirty_ring_reap', role: 'kvm_ring_reap', fields: ['count', 'us'], variants: [{versions: '7.2+', format: 'reaped %lu pages (took %li us)'}]},
  {name: 'kvm_dirty_ring_reap_vcpu', role: 'kvm_ring_other', fields: ['vcpu'], variants: [{versions: '7.2+', format: 'vcpu %d'}]},
  {name: 'kvm_dirty_ring_full', role: 'kvm_ring_other', fields: ['vcpu'], variants: [{versions: '7.2+', format: 'vcpu %d'}]},
  {name: 'kvm_dirty_ring_flush', role: 'kvm_ring_other', fields: ['finished'], variants: [{versions: '7.2+', format: '%d'}]},
  {name: 'kvm_dirty_ring_reaper', role: 'kvm_ring_other', fields: ['state'], variants: [{versions: '7.2+', format: '%s'}]},
  {name: 'kvm_dirty_ring_reaper_kick', role: 'kvm_ring_other', fields: ['reason'], variants: [{versions: '7.2+', format: '%s'}]},
  // hw/virtio/virtio-mem.c (identical formats in 7.2 and master).
  {name: 'virtio_mem_plug_request', role: 'vmem_plug', fields: ['addr', 'nb_blocks'], variants: [{versions: '7.2+', format: 'addr=0x%lx nb_blocks=%u'}]},
  {name: 'virtio_mem_unplug_request', role: 'vmem_unplug', fields: ['addr', 'nb_blocks'], variants: [{versions: '7.2+', format: 'addr=0x%lx nb_blocks=%u'}]},
  {name: 'virtio_mem_unplug_all_request', role: 'vmem_unplug_all', fields: [], variants: [{versions: '7.2+', format: ''}]},
  {name: 'virtio_mem_state_request', role: 'vmem_state', fields: ['addr', 'nb_blocks'], variants: [{versions: '7.2+', format: 'addr=0x%lx nb_blocks=%u'}]},
  {name: 'virtio_mem_resized_usable_region', role: 'vmem_resized', fields: ['old_size', 'new_size'], variants: [{versions: '7.2+', format: 'old_size=0x%lxnew_size=0x%lx'}]},
  // virtio_mem_unplug_all() done: after an UNPLUG_ALL request, or a system reset (./interruptions.ts).
  {name: 'virtio_mem_unplugged_all', role: 'vmem_unplugged_all', fields: [], variants: [{versions: '7.2+', format: ''}]},
  {name: 'virtio_mem_send_response', role: 'vmem_other', fields: ['type'], variants: [{versions: '7.2+', format: 'type=%u'}]},
  {name: 'virtio_mem_state_response', role: 'vmem_other', fields: ['state'], variants: [{versions: '7.2+', format: 'state=%u'}]},
  // hw/vfio/common.c vfio_get_dirty_bitmap() (7.2: container fd; 8.2 adds dirty_pages; 9.2 drops fd).
  {
    name: 'vfio_get_dirty_bitmap',
    role: 'vfio_dirty_bitmap',
    fields: ['fd', 'iova', 'size', 'bitmap_size', 'start', 'dirty_pages'],
    variants: [
      {versions: '7.2-8.1', format: 'container fd=%d, iova=0x%lx size= 0x%lx bitmap_size=0x%lx start=0x%lx', order: [0, 1, 2, 3, 4]},
      {versions: '8.2-9.1', format: 'container fd=%d, iova=0x%lx size= 0x%lx bitmap_size=0x%lx start=0x%lx dirty_pages=%lu'},
      {versions: '9.2+', format: 'iova=0x%lx size= 0x%lx bitmap_size=0x%lx start=0x%lx dirty_pages=%lu', order: [1, 2, 3, 4, 5]},
    ],
  },
  // hw/vfio/migration.c: v1 (7.2) device_state bits; v2 (8.0+) named states.
  {
    name: 'vfio_migration_set_state',
    role: 'vfio_migration_state',
    fields: ['name', 'state', 'recover_state'],
    variants: [
      {versions: '7.2', format: ' (%s) state %d', order: [0, 1]},
      {versions: '8.1+', format: ' (%s) new state %s, recover state %s'},
    ],
  },
  {name: 'vfio_migration_set_device_state', role: 'vfio_migration_state', fields: ['name', 'state'], variants: [{versions: '9.1+', format: ' (%s) state %s'}]},
  {
    name: 'vfio_migration_state_notifier',
    role: 'vfio_migration_state',
    fields: ['name', 'state'],
    variants: [
      {versions: '7.2-8.0', format: ' (%s) state %s'},
      {versions: '8.1+', format: ' (%s) state %d'},
    ],
  },
  // migration/ram.c ram_discard_range() on the destination: one range of a CMD_POSTCOPY_RAM_DISCARD
  // (loadvm_postcopy_ram_handle_discard), length in bytes; read by destination.ts.
  {name: 'ram_discard_range', role: 'discard_range', fields: ['rb', 'start', 'len'], variants: [{versions: '7.2+', format: '%s: start: %lx %zx'}]},
  // migration/ram.c ram_load_precopy() on the destination: flags 0x2 = ZERO page record.
  {name: 'ram_load_loop', role: 'ram_load', fields: ['rb', 'addr', 'flags', 'host'], variants: [{versions: '7.2+', format: '%s: addr: 0x%lx flags: 0x%x host: %p'}]},
]

export interface CompiledEvent {
  spec: EventSpec
  index: number
  variants: {compiled: CompiledFormat; order: readonly number[]}[]
}

function compileSpec(spec: EventSpec, index: number): CompiledEvent {
  return {
    spec,
    index,
    variants: spec.variants.map((v) => {
      const compiled = compileFormat(v.format, v.versions)
      const order = v.order ?? spec.fields.map((_, i) => i)
      if (order.length !== compiled.args.length) throw new Error(`bug: ${spec.name} ${v.versions}: ${compiled.args.length} conversions, ${order.length} fields`)
      return {compiled, order}
    }),
  }
}

export const COMPILED_EVENTS: ReadonlyMap<string, CompiledEvent> = new Map(EVENT_SPECS.map((s, i) => [s.name, compileSpec(s, i)]))
