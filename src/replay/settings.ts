/**
 * Every replay setting, defined once: its type, unit, default, whether it can change once the
 * model exists, whether QEMU has a parameter or capability of that name, and its doc. The
 * `ReplaySettings` type, `--set` / config-file / trace-param parsing (config.ts), the README table
 * (scripts/gen-docs.ts) and `migtrace settings` all come from this table.
 * Names and units follow QEMU's migrate-set-parameters where QEMU has the parameter (max-bandwidth
 * in bytes/s, downtime-limit in ms, x-clear-bitmap-shift...); the rest are migtrace's model switches.
 */
import type {TraceHeader} from '../trace/header.js'
import {CLEAR_POLICIES, DIRTY_LOG_MODE_NAMES, modeOfHeader} from '../model/kvm/modes.js'
import {VFIO_TRACKING} from '../model/vfio/modes.js'
import {UNPLUGGED_WRITE} from '../model/virtio-mem/device.js'
import {DEFAULT_QEMU_VERSION, QEMU_VERSIONS} from './qemu-version.js'
import {WORKLOAD_PACING} from './throttle-clock.js'

export const STOP_POLICIES = ['qemu', 'rounds', 'xen'] as const
export type StopPolicyName = (typeof STOP_POLICIES)[number]
export const ZERO_PAGE_DETECTION = ['none', 'legacy', 'multifd'] as const
/** qpl and uadk (9.1) and qatzip (9.2) are QEMU's hardware-accelerated methods: named so a replay can refuse them clearly. */
export const MULTIFD_COMPRESSION = ['none', 'zlib', 'zstd', 'qpl', 'uadk', 'qatzip'] as const
/** The compression methods the model has measured ratios and CPU costs for (docs/stream.md). */
export const MODELLED_COMPRESSION = ['none', 'zlib', 'zstd'] as const
export const TRACE_END = ['idle', 'switchover'] as const
export const MIGRATION_MODES = ['precopy', 'background-snapshot'] as const
export const TRANSPORTS = ['network', 'local-remap', 'shared'] as const
export type TransportName = (typeof TRANSPORTS)[number]

export type SettingKind = 'rate' | 'size' | 'ms' | 'int' | 'number' | 'bool' | 'enum'

/** The largest byte count or rate a setting takes: beyond it doubles lose whole bytes. */
const MAX_BYTES = Number.MAX_SAFE_INTEGER

export interface SettingDef<T> {
  kind: SettingKind
  /** The value when nothing sets it; a function for defaults read off the trace header. */
  default: T | ((header: TraceHeader) => T)
  /** The default as the docs write it. */
  defaultText: string
  unit: string
  /** QEMU has a parameter or capability of this name (migrate-set-parameters / -capabilities). */
  qemu: boolean
  /**
   * Fixed once the model exists: it shapes the model (a dirty-log mode, a capability QEMU refuses to
   * change while migrating), so a trace's mig_set cannot change it mid-run.
   */
  fixed: boolean
  choices?: readonly string[]
  min?: number
  max?: number
  /** Whole numbers must be powers of two (ring sizes). */
  pow2?: boolean
  /** No value unless set (the feature is off). */
  optional?: boolean
  doc: string
}

type Base = {defaultText?: string; qemu?: boolean; fixed?: boolean; unit?: string; min?: number; max?: number; doc: string}

const rate = (d: number, o: Base): SettingDef<number> => ({kind: 'rate', default: d, defaultText: String(d), unit: 'bytes/s', qemu: false, fixed: false, max: MAX_BYTES, ...o})
const size = (d: number, o: Base): SettingDef<number> => ({kind: 'size', default: d, defaultText: String(d), unit: 'bytes', qemu: false, fixed: false, max: MAX_BYTES, ...o})
/** A duration in ms; a bare number means ms, as QEMU's downtime-limit. */
const ms = (d: number, o: Base): SettingDef<number> => ({kind: 'ms', default: d, defaultText: String(d), unit: 'ms', qemu: false, fixed: false, min: 0, max: 1e12, ...o})
const int = (d: number, o: Base & {pow2?: boolean}): SettingDef<number> => ({kind: 'int', default: d, defaultText: String(d), unit: '-', qemu: false, fixed: false, ...o})
const num = (d: number, o: Base): SettingDef<number> => ({kind: 'number', default: d, defaultText: String(d), unit: '-', qemu: false, fixed: false, ...o})
const bool = (d: boolean, o: Base): SettingDef<boolean> => ({kind: 'bool', default: d, defaultText: String(d), unit: '-', qemu: false, fixed: false, ...o})
const choice = <const C extends readonly string[]>(choices: C, d: C[number] | ((h: TraceHeader) => C[number]), o: Base): SettingDef<C[number]> => ({
  kind: 'enum',
  default: d,
  defaultText: typeof d === 'string' ? d : '',
  unit: '-',
  qemu: false,
  fixed: false,
  choices,
  ...o,
})
/** A setting that is off (undefined) unless given. */
const optional = <T>(def: SettingDef<T>): SettingDef<T | undefined> => ({...def, default: undefined, optional: true})

const MiB = 2 ** 20

export const SETTING_DEFS = {
  'qemu-version': choice(QEMU_VERSIONS, DEFAULT_QEMU_VERSION, {
    fixed: true,
    doc: 'the QEMU release whose migration rules the replay follows: the defaults and refusals of docs/qemu-versions.md (an explicit setting overrides its version default)',
  }),
  'max-bandwidth': rate(128 * MiB, {defaultText: '128MiB/s', qemu: true, doc: 'precopy rate limit: the bytes allowed per 100 ms window; the stream sends at link speed until they are spent, then waits for the next window (0 = unlimited)'}),
  'link-bandwidth': rate(0, {doc: 'what the network carries: pages go at this rate, the rate limit only decides how many per window; 0 = same as max-bandwidth'}),
  'avail-switchover-bandwidth': rate(0, {qemu: true, doc: 'bandwidth assumed for the switchover threshold instead of the measured one (0 = measured)'}),
  'downtime-limit': ms(300, {qemu: true, max: 2_000_000, doc: 'allowed downtime: threshold = bandwidth x downtime-limit'}),
  'x-clear-bitmap-shift': int(18, {qemu: true, fixed: true, unit: 'log2 pages', min: 6, max: 31, doc: 'lazy-clear chunk size: 2^shift pages (18 = 1 GiB of 4 KiB pages)'}),
  'lazy-clear': bool(true, {fixed: true, doc: 'clear KVM dirty bits chunk by chunk at the first send after a sync (QEMU); false = clear whole blocks at the sync'}),
  'stop-policy': choice(STOP_POLICIES, 'qemu', {fixed: true, doc: "when to sync and switch over: qemu (QEMU's rule), rounds (textbook passes), xen (29 iterations / < 50 pages / > 3x RAM)"}),
  'clear-policy': choice(CLEAR_POLICIES, 'known-dirty', {fixed: true, doc: 'KVM_CLEAR_DIRTY_LOG mask: known-dirty (QEMU >= 4.0: bits of the last GET) or all-ones (the naive 2019 design; loses writes)'}),
  'dirty-log': choice(DIRTY_LOG_MODE_NAMES, (h) => modeOfHeader(h.dirtyTracking).name, {
    fixed: true,
    defaultText: 'from the trace header',
    doc: 'KVM dirty logging: bitmap (legacy GET), manual (CLEAR), manual-initially-set, ring',
  }),
  'ring-size': {...int(4096, {fixed: true, unit: 'entries', min: 1024, max: 65536, pow2: true, doc: 'dirty ring entries per vCPU (a power of two; -accel kvm,dirty-ring-size)'}), default: (h: TraceHeader) => h.dirtyTracking.ringSize, defaultText: 'from the trace header (4096)'},
  pml: bool(true, {fixed: true, doc: 'Intel PML: the dirty ring keeps 512 more entries in reserve (soft limit = size - 64 - 512)'}),
  'max-iterations': int(0, {defaultText: '0 (policy default: qemu none, rounds 30, xen 29)', unit: 'iterations', min: 0, max: 1e9, doc: 'force the switchover after this many live iterations'}),
  'time-cap': ms(0, {fixed: true, doc: 'force the switchover this long after the migration starts (0 = no cap)'}),
  'device-state-bytes': size(0, {doc: 'non-iterable device state sent during the downtime'}),
  'vm-stop-cost': ms(0, {
    doc: 'source host time to stop the VM at a precopy switchover, inside the downtime before the last-stage sync (migration_completion: vm_stop_force_state). Measured, not fitted: qemu-lab 7.2 0.06-1.79 ms, median 0.35 over 13 precopy runs (scripts/measure-switchover-host.ts)',
  }),
  'device-state-cost': ms(0, {
    doc: 'source host time after the RAM pass of a precopy switchover, inside the downtime: the non-iterable devices\' sections (qemu_savevm_state_complete_precopy_non_iterable: vmstate_save of each device) and the stream\'s tail (QEMU_VM_EOF, the vmdesc JSON, qemu_fflush); on top of device-state-bytes at the link rate. Measured, not fitted: qemu-lab 7.2 1.37-7.79 ms, median 3.88 over 13 precopy runs (scripts/measure-switchover-host.ts)',
  }),
  'postcopy-stop-cost': ms(0, {
    doc: 'source host time to stop the VM at the postcopy switchover, inside the downtime before the switchover sync (postcopy_start: vm_stop_force_state, then the non-postcopiable iterables). Measured, not fitted: qemu-lab 7.2 2.4 ms on lab run postcopy (scripts/measure-postcopy-switchover.ts)',
  }),
  'postcopy-package-cost': ms(0, {
    doc: "source host time to build and send the postcopy package after the discards, inside the downtime (qemu_savevm_send_packaged: LISTEN, the devices' state, RUN); on top of device-state-bytes at the link rate. Measured, not fitted: qemu-lab 7.2 5.7 ms on lab run postcopy (scripts/measure-postcopy-switchover.ts)",
  }),
  'setup-time': ms(0, {fixed: true, doc: 'time from migration start to the first page sent (sync #1 happens at the start)'}),
  'zero-page-detection': choice(ZERO_PAGE_DETECTION, 'multifd', {
    qemu: true,
    fixed: true,
    defaultText: 'from qemu-version: multifd (9.0+), legacy before',
    doc: 'none sends zero pages in full; legacy (the migration thread) and multifd (the channel threads, with multifd) send a 9-byte record',
  }),
  'start-at': optional(ms(0, {fixed: true, defaultText: "the trace's mig_start, else 0", unit: 'ms of trace time', doc: 'start the migration at this trace time (mig_start events are then ignored)'})),
  'trace-end': choice(TRACE_END, 'idle', {doc: 'when the trace ends first: idle (the guest writes nothing more; the verdict says inconclusive) or switchover (force it at the last event)'}),
  'xen-min-pages': int(50, {unit: 'pages', min: 0, max: 2 ** 40, doc: 'xen policy: stop when fewer pages than this are dirty'}),
  'xen-max-factor': num(3, {unit: 'x RAM', min: 0, max: 1e6, doc: 'xen policy: stop when more than this many times guest RAM was sent'}),
  // VFIO and virtio-mem (docs/vfio-virtio-mem.md)
  'vfio-tracking': choice(VFIO_TRACKING, 'auto', {
    fixed: true,
    defaultText: 'auto (from the header: type1 -> reset-readd-pinned, device -> device, none -> none)',
    doc: 'VFIO dirty tracking: none (every mapped page dirty at every sync), cumulative (type1 v15: pinned bits never cleared), reset-readd-pinned (type1 as merged), deferred-pinned (pinned pages sent only at stop-copy), device (DMA logging: only reported pages)',
  }),
  'switchover-ack': bool(false, {
    qemu: true,
    fixed: true,
    doc: 'switchover-ack capability (8.1+): with a VFIO device that has precopy initial data, no switchover (nor postcopy) until the destination acks that data, one rtt after its last byte left',
  }),
  'vfio-stop-copy-query-fails': bool(false, {fixed: true, doc: 'VFIO_DEVICE_FEATURE_MIG_DATA_SIZE fails: the exact pending size counts 100 GiB per device (VFIO_MIG_STOP_COPY_SIZE), so precopy cannot converge'}),
  'virtio-mem-discard-aware': bool(true, {fixed: true, doc: 'unplugged virtio-mem blocks leave the migration bitmap at setup (QEMU >= 5.2); false = the older behaviour that migrates them'}),
  'virtio-mem-postcopy-hole': bool(true, {
    fixed: true,
    doc: "the postcopy switchover sync re-marks pages the guest wrote while unplugged and nothing clears discarded ranges again, so they are migrated (QEMU's behaviour); false = clear them before the discard bitmap is sent",
  }),
  'virtio-mem-unplugged-write': choice(UNPLUGGED_WRITE, 'populate', {fixed: true, doc: 'a guest write into an unplugged block: populate (the page gets the data, KVM logs it) or refuse (it has no effect); counted either way'}),
  // postcopy, snapshot, transport, throttling (docs/postcopy-snapshot.md)
  mode: choice(MIGRATION_MODES, 'precopy', {fixed: true, doc: 'precopy (live migration, optionally switching to postcopy) or background-snapshot (userfaultfd write-protect snapshot)'}),
  'postcopy-after': optional(int(0, {defaultText: 'off', unit: 'iterations', min: 0, max: 1e9, doc: 'switch to postcopy after this many precopy iterations (0 = pure postcopy, at once)'})),
  'postcopy-after-syncs': optional(int(0, {defaultText: 'off', unit: 'syncs', min: 1, max: 1e9, doc: "switch to postcopy at the migration thread's first turn once dirty-sync-count has reached this (as a tool that polls query-migrate and then sends migrate-start-postcopy does: the lab's --postcopy-after)"})),
  'postcopy-at': optional(ms(0, {defaultText: 'off', doc: 'switch to postcopy this long after the migration starts'})),
  'postcopy-on-stall': bool(false, {doc: 'switch to postcopy when precopy stalls or a cap would force the switchover'}),
  'postcopy-preempt': bool(false, {qemu: true, fixed: true, doc: 'postcopy-preempt capability: requested pages go on their own channel, ahead of the background stream'}),
  'max-postcopy-bandwidth': rate(0, {qemu: true, doc: 'background rate in postcopy (0 = unlimited: the link rate)'}),
  'postcopy-fail-at': optional(ms(0, {defaultText: 'off', fixed: true, doc: 'the network fails this long after the postcopy switchover: both sides pause (postcopy-paused), pages in flight are lost, then the migration recovers (as a mig_net_fail event)'})),
  'postcopy-recover-after': ms(0, {
    fixed: true,
    doc: "time from a postcopy network failure to the user's migrate-recover and migrate resume=true (the resume handshake comes on top); 0 = at once. A mig_net_fail event's value overrides it",
  }),
  transport: choice(TRANSPORTS, 'network', {fixed: true, doc: 'network (bytes at the link rate), local-remap (localhost, RAM handed over by remapping), shared (x-ignore-shared: RAM is not sent)'}),
  rtt: ms(0.2, {fixed: true, doc: 'round-trip time between source and destination (a postcopy page request waits one RTT)'}),
  'socket-buffer': size(4 * MiB, {fixed: true, defaultText: '4MiB', doc: 'background bytes queued in the socket ahead of a requested page (postcopy without preempt)'}),
  'precopy-socket-buffer': size(4 * MiB, {
    defaultText: '4MiB',
    doc: "bytes the precopy stream's source can write ahead of the destination's load loop before its writes block (the socket's send and receive buffers, with the QEMUFile's): how much of a backlog at the destination (dest-record-cost) the source hides. 4 MiB is Linux's tcp_wmem maximum; qemu-lab's localhost: 3.5-8.7 MB, median about 4.6 MB (1 120 pages the source wrote after a long run of zero records before it stalled; docs/lab.md). Postcopy's steady lag grows the receive buffer further (socket-buffer)",
  }),
  'multifd-socket-buffer': size(35_500_000, {
    defaultText: '35.5MB',
    doc: "bytes each multifd channel can hold unread at the destination (its socket's receive and send buffers) while the destination's channel thread waits at a section's SYNC packet for the destination's main thread (QEMU 7.2 multifd_recv_thread: qemu_sem_wait(&p->sem_sync) until multifd_recv_sync_main at the section's EOS, after ram_load_precopy loaded the section's main-stream records at destRecordMs each): the source's channels block once all of them hold this much, and go on when the main thread releases them. Only where multifd syncs after every RAM section (7.2, multifd-flush-after-each-section) and the destination's load loop is modelled (dest-record-cost, or dest-record-intervals x trace-page-interval). Linux bounds it by tcp_rmem's and tcp_wmem's maxima (qemu-lab's host: 32 MiB + 4 MiB = 37.7 MB); the lab's multifd-2 channels held 35.0 and 35.5 MB with the source not held back (docs/lab.md, multifd)",
  }),
  'sync-cost': ms(0, {
    unit: 'ms per GiB of guest RAM',
    doc: 'time of one migration_bitmap_sync (KVM_GET_DIRTY_LOG per slot, the bitmap walk) per GiB of guest RAM; the thread sends again only after it, so guest writes land between the GET and the lazy CLEAR (0 = instantaneous)',
  }),
  'sync-page-cost': ms(0, {
    unit: 'ms per page',
    doc: "time of each sync per dirty page it finds on cpu_physical_memory_sync_dirty_bitmap's per-page path (a RAM block whose length is not a multiple of 64 pages: test_and_clear_dirty and, under TCG, a TLB reset each), sync #1 included, which finds every page dirty; the migration thread sends again only after it (0 = free). QEMU 7.2 TCG here: docs/lab.md",
  }),
  'sync-first-page-cost': optional(
    ms(0, {
      unit: 'ms per page',
      defaultText: 'sync-page-cost',
      doc: "sync-page-cost for sync #1 alone (ram_init_bitmaps -> migration_bitmap_sync_precopy, every page dirty); unset = sync-page-cost. QEMU 7.2 TCG here: sync #1 took a median 1.57 us a page over 13 lab runs (1.40-2.58), the later syncs 3.28 (2.01-7.86) (scripts/measure-sync-cost.ts, docs/lab.md)",
    }),
  ),
  'guest-ram-prealloc': bool(false, {
    fixed: true,
    doc: "the guest's RAM was populated before the migration (QEMU -mem-prealloc, a virtio-mem device's prealloc=on; `lab run --prealloc`), so the migration's first touch of a page allocates nothing and first-touch-cost does not apply; false is QEMU's default. `import qemu` of a lab run sets it from the run's config.json",
  }),
  'first-touch-cost': ms(0, {
    unit: 'ms per page',
    doc: "host time of the precopy stream's first send of each page when the guest's RAM was not preallocated (guest-ram-prealloc=false), on the single stream's record path (a zero page in series, a normal page with sender-page-cost; with multifd on the migration thread or the channels): on a host whose kernel maps no zero page on read faults (the lab's: pvm_no_zero_page=1, freed memory reported back to the hypervisor) save_zero_page's read of a page the guest never touched allocates and clears it, and the destination allocates the page it loads. 0 = a standard host (the read maps the zero page). Lab host, cold memory: 0.0163 fitted on lab/runs-cold, 0.007-0.012 measured per zero page (docs/lab.md, \"Cold host memory\")",
  }),
  'sync-pauses-guest': bool(false, {
    fixed: true,
    doc: "the guest stands still during each live sync's time (sync-cost, sync-page-cost): QEMU holds the BQL across migration_bitmap_sync (ram_save_pending, ram_init_bitmaps) and a TCG vCPU waits for it at its next exit, so its later events move by the sync's time. true describes TCG (the qemu-lab's QEMU 7.2 runs: the recorded guest wrote nothing during sync 3, and the switchover's sync found 0 new pages) for a trace whose writes do not already hold the pause: a recording of a TCG guest does (its writes stop while QEMU syncs), so with workload-pacing=cpu leave it false there, or the pause counts twice; with workload-pacing=wall (the lab's dirtier: a writer paced by wall-clock time) the writes due during a sync happen at its end and later events keep their times, so nothing is counted twice, and after the deciding sync they land after the stop, on the destination; false for KVM, whose vCPUs run on (docs/lab.md)",
  }),
  'zero-page-cost': ms(0, {
    doc: "sender time per zero page beyond its 9 bytes on the wire (save_zero_page's buffer_is_zero, the destination's load loop keeping up); 0 = the link alone. QEMU 7.2 under TCG in qemu-lab, guest RAM preallocated: 0.37-0.86 us measured, 0.00088 in lab/calibration.json (docs/lab.md)",
  }),
  'postcopy-discard-page-cost': ms(0, {
    unit: 'ms per page',
    doc: "destination time per page of the switchover's discard ranges: loadvm_postcopy_ram_handle_discard -> ram_discard_range madvises each range away on the incoming thread, in stream order, before that thread reads the package (LISTEN, device state, RUN); the guest resumes, and the destination reads the postcopy stream, only after (0 = free). A host cost: qemu-lab 7.2, 2 cores under load: 1.6 and 5.9 us on two captures (docs/lab.md)",
  }),
  'postcopy-discard-range-cost': ms(0, {
    unit: 'ms per range',
    doc: "source time per discard range at the postcopy switchover, inside the downtime: postcopy_each_send_discard walks the bitmap, postcopy_discard_send_range queues each run and qemu_savevm_send_postcopy_ram_discard sends and flushes every 12 (0 = the messages' bytes at the link rate alone). A host cost: qemu-lab 7.2, 3.9 and 8.0 us a range (trace line included) on two captures; lab/calibration.json has 0.008 (docs/lab.md)",
  }),
  'dest-record-cost': ms(0, {
    unit: 'ms per record',
    doc: "time of the destination's load loop per RAM record of the main stream (ram_load_precopy, one record after the other on the incoming thread: the record's header and block lookup, then a zero record's ram_handle_compressed (buffer_is_zero of the destination page) or a normal page's qemu_get_buffer into it). The source can run at most precopy-socket-buffer bytes ahead of it, so a long run of zero records, which the source scans far faster than the destination loads them, stalls the source once the pages after it fill the socket (0 = the destination keeps up). QEMU 7.2 in qemu-lab with --trace pages (every record also writes a flushed ram_load_loop line): 3.1-5.0 us a record, median 4.05 (docs/lab.md, \"The destination's load loop\")",
  }),
  'trace-page-interval': ms(0, {
    unit: 'ms per page',
    doc: "the capture host's time per traced page: the mean interval between two back-to-back normal-page ram_save_page lines of the source's first round (gaps under 20 us, so without the socket's writev or a preemption): QEMU's flushed trace line (the log backend's fflush, a write() a line) and the page's own bookkeeping. `import qemu` measures it from the source trace (a mig_start param, as link-bandwidth); 0 = not measured. The destination's load loop writes such a line for every record it loads (ram_load_loop) when it is traced, so its time a record follows the host's figure at that capture (dest-record-intervals). qemu-lab, 7.2 under TCG: 3.3-3.7 us or 4.4-4.9 us from one capture to the next (docs/lab.md, \"The destination's load loop\")",
  }),
  'dest-record-intervals': num(0, {
    unit: 'x trace-page-interval',
    min: 0,
    max: 1e6,
    doc: "the destination's load-loop time a record (dest-record-cost) as a multiple of the capture's trace-page-interval: where the trace measured that interval and this is above 0, a record costs dest-record-intervals x trace-page-interval on the destination instead of dest-record-cost. For traced destinations (every record writes a flushed ram_load_loop line), whose time a record moves with the host's cost of a trace line from one capture to the next as the source's page interval does (docs/lab.md, \"The destination's load loop\"); 0 = dest-record-cost",
  }),
  'dest-first-touch-cost': ms(0, {
    unit: 'ms per page',
    doc: "destination time of loading a page into memory it has not populated, on the destination's load loop (dest-record-cost's records): with guest-ram-prealloc, QEMU before 8.0 still leaves a virtio-mem device's memory unpopulated on the destination while RAM arrives (prealloc=on preallocates a block when it is plugged, and the destination learns the plugged blocks with the device state, after RAM; 8.0 migrates them first: rule virtio-mem-early-prealloc), so each of the device's pages pays it on its first load; and with postcopy asked for (postcopy-after, postcopy-after-syncs, postcopy-at, postcopy-on-stall), any version, the destination discards all of RAM when the migration starts (POSTCOPY_ADVISE: postcopy_ram_incoming_init's ram_discard_range of every block), so every page pays it on its first precopy load; on a host that maps no zero page on read faults (the lab's) the zero check's read allocates the page too. Without guest-ram-prealloc first-touch-cost covers both sides. qemu-lab, run virtio-mem: about 10 us a page (docs/lab.md, \"The destination's load loop\")",
  }),
  'sender-page-cost': ms(0, {
    unit: 'ms per page',
    doc: "time of the migration thread per normal page sent without multifd (ram_save_page -> save_normal_page: one record down the main stream, loaded one by one by the destination's ram_load_precopy); the stream then moves pages at the slower of the link and what the thread produces (0 = the link alone; docs/stream.md)",
  }),
  'multifd-page-cost': ms(0, {
    unit: 'ms per page',
    doc: "multifd: time of a channel thread per normal page (multifd_send_thread: the page's share of its packet's writev, read into place by multifd_recv_thread); the channels work in parallel, beside the migration thread's zero-page detection (0 = the link alone; docs/stream.md)",
  }),
  'host-cpus': num(0, {
    unit: 'cores',
    min: 0,
    max: 65536,
    doc: "host cores the sender threads share with the guest's busy vCPUs: each runnable thread gets host-cpus / (threads + vCPUs) of a core, at most one; the vCPUs do not compete once the VM is stopped (the downtime's last pass). Fractional: the cores' worth other work leaves (migtrace calibrate fits it). 0 = unlimited: every sender thread has a core",
  }),
  multifd: bool(false, {qemu: true, fixed: true, doc: 'multifd capability: precopy pages go in packets over multifd-channels channel threads (not in postcopy; docs/stream.md)'}),
  'multifd-channels': int(2, {qemu: true, fixed: true, unit: 'channels', min: 1, max: 255, doc: 'multifd: channels, each with its own sender thread'}),
  'multifd-compression': choice(MULTIFD_COMPRESSION, 'none', {qemu: true, fixed: true, doc: "multifd: compress each packet's pages (zlib, zstd: ratio and CPU from the header's content profile; qpl, uadk, qatzip are hardware-accelerated, not modelled: refused)"}),
  'multifd-zlib-level': int(1, {qemu: true, fixed: true, unit: 'level', min: 0, max: 9, doc: 'multifd-compression=zlib: deflate level (0 = store)'}),
  'multifd-zstd-level': int(1, {qemu: true, fixed: true, unit: 'level', min: 0, max: 20, doc: 'multifd-compression=zstd: zstd level'}),
  'multifd-flush-after-each-section': bool(false, {
    fixed: true,
    defaultText: 'from qemu-version: false (8.1+), true before',
    doc: "multifd: QEMU's migration property: true = multifd_send_sync_main after every RAM section (7.2, and machine types <= 7.2); false = once per full round of the dirty bitmap (8.1+)",
  }),
  xbzrle: bool(false, {qemu: true, fixed: true, doc: 'xbzrle capability: a re-sent page whose old copy is in the cache goes as the delta of the bytes the guest changed (not with multifd, not in postcopy)'}),
  'xbzrle-cache-size': size(64 * MiB, {qemu: true, fixed: true, defaultText: '64MiB', doc: 'xbzrle: page cache size, a power-of-two number of pages (cache_init refuses others)'}),
  // Measured in-process (scripts/measure-compression.ts, native/stream-bench; docs/stream.md
  // "XBZRLE measured"): save_xbzrle_page's cache lookup, copy, xbzrle_encode_buffer-format
  // encoding and copy back, 0.5 us of CPU for a page with 2 changed 8-byte words (the lab's
  // xbzrle-hot records average 25 bytes), 2026-12-02, this host.
  'xbzrle-page-cost': ms(0.0005, {unit: 'ms per page', doc: "xbzrle: sender CPU time to look up and encode one re-sent page found in the cache (save_xbzrle_page: xbzrle_encode_buffer and the cache copies), on top of sender-page-cost; default measured in-process (docs/stream.md)"}),
  'remap-cost': ms(0.002, {fixed: true, doc: 'local-remap: page-table time to hand one host page over (a 2 MiB THP moves whole for one cost)'}),
  'wp-cost': ms(0.00005, {fixed: true, doc: 'background-snapshot: time to write-protect one host page at the start'}),
  'auto-converge': bool(false, {qemu: true, fixed: true, doc: 'auto-converge capability: throttle the vCPUs when the dirty rate outruns the transfer (mig_throttle_guest_down)'}),
  'workload-pacing': choice(WORKLOAD_PACING, (h) => h.workloadPacing ?? 'cpu', {
    fixed: true,
    defaultText: "the trace header's workloadPacing, else cpu",
    doc: "how the guest's writers answer auto-converge's sleeps: cpu (CPU-bound: every later event moves by the time slept) or wall (paced by wall-clock time, like the lab's dirtier: an event due during a sleep happens at the wake-up, so the rate barely drops)",
  }),
  'cpu-throttle-initial': int(20, {qemu: true, unit: '%', min: 1, max: 99, doc: 'auto-converge: first throttle level'}),
  'cpu-throttle-increment': int(10, {qemu: true, unit: '%', min: 1, max: 99, doc: 'auto-converge: step at each later trigger'}),
  'cpu-throttle-tailslow': bool(false, {qemu: true, doc: 'auto-converge: smaller steps near the needed level'}),
  'max-cpu-throttle': int(99, {qemu: true, unit: '%', min: 1, max: 99, doc: 'auto-converge: highest throttle level'}),
  'throttle-trigger-threshold': int(50, {qemu: true, unit: '%', min: 1, max: 100, doc: 'throttle when the bytes dirtied in a >= 1 s period exceed this share of the bytes sent (twice)'}),
  'dirty-limit': bool(false, {qemu: true, fixed: true, doc: 'dirty-limit capability: cap every vCPU at vcpu-dirty-limit once the trigger fires (needs dirty-log=ring)'}),
  'vcpu-dirty-limit': int(1, {qemu: true, unit: 'MB/s', min: 1, max: 2 ** 40, doc: 'dirty-limit: per-vCPU dirty rate cap (MiB/s)'}),
} as const satisfies Record<string, SettingDef<unknown>>

type ValueOf<D> = D extends SettingDef<infer T> ? T : never

/** Every setting, resolved: the value a replay runs with. */
export type ReplaySettings = {-readonly [K in keyof typeof SETTING_DEFS]: ValueOf<(typeof SETTING_DEFS)[K]>}
export type SettingKey = keyof ReplaySettings
export type ClearPolicy = ReplaySettings['clear-policy']

/** One row of the settings reference (README table, `migtrace settings`). */
export interface SettingSpec extends SettingDef<unknown> {
  key: SettingKey
}

/** The settings in reference order. */
export const SETTINGS: readonly SettingSpec[] = Object.entries(SETTING_DEFS).map(([key, def]) => ({key: key as SettingKey, ...(def as SettingDef<unknown>)}))

export const SETTING_BY_KEY: ReadonlyMap<string, SettingSpec> = new Map(SETTINGS.map((s) => [s.key, s]))

/** Aliases users may type. */
export const SETTING_ALIASES: Readonly<Record<string, SettingKey>> = {'clear-bitmap-shift': 'x-clear-bitmap-shift'}

/** Defaults for a trace: header-derived ones read off its header. */
export function defaultSettings(header: TraceHeader): ReplaySettings {
  const out: Record<string, unknown> = {}
  for (const s of SETTINGS) out[s.key] = typeof s.default === 'function' ? (s.default as (h: TraceHeader) => unknown)(header) : s.default
  return out as ReplaySettings
}
