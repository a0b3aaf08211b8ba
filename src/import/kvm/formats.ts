/**
 * The three line formats a KVM host can log dirty pages in without changing QEMU, one parser each.
 * Every parser fills a `DirtyLine` and says whether the line was one of its records.
 *
 * 1. qemu-log: QEMU's log trace backend with -trace kvm_dirty_ring_page (QEMU with
 *    -accel kvm,dirty-ring-size=N). `TID@SECONDS.MICROS:kvm_dirty_ring_page vcpu %d fetch %u
 *    offset 0x%lx` (accel/kvm/kvm-all.c kvm_dirty_ring_reap_one(): traced at harvest, with the
 *    entry's page offset in its memslot but not the slot). Parsed by the QEMU importer's parsers;
 *    the slots come from the kvm_set_user_memory lines of the same log.
 * 2. perf: `perf script` output of the kernel tracepoint kvm:kvm_dirty_ring_push
 *    (include/trace/events/kvm.h: `ring %d: dirty 0x%x reset 0x%x slot %u offset 0x%llx (used %u)`,
 *    pushed by kvm_dirty_ring_push() when the page is first written; ring = the vCPU's index, slot =
 *    as_id << 16 | id). perf prints `COMM TID [CPU] SECONDS.MICROS: kvm:kvm_dirty_ring_push: ...`.
 *    kvm:kvm_dirty_ring_reset lines are harvests.
 * 3. bpftrace: the documented one-liner on mark_page_dirty_in_slot() (virt/kvm/kvm_main.c, where
 *    every dirty page of a dirty-logged slot goes through, bitmap or ring):
 *      bpftrace -e 'kprobe:mark_page_dirty_in_slot /arg1/ { printf("%llu %llu %s\n", nsecs, arg2, comm); }'
 *    one line `NSECS GFN COMM` per call; the vCPU is read from QEMU's thread name `CPU n/KVM`.
 */
import {COMPILED_EVENTS} from '../qemu/formats.js'
import {createArgs, parseArgs, parsePrefix, type LinePrefix, type ParsedArgs} from '../qemu/line.js'

export type KvmFormat = 'qemu-log' | 'perf' | 'bpftrace'
export const KVM_FORMATS: readonly KvmFormat[] = ['qemu-log', 'perf', 'bpftrace']

export const DirtyKind = {
  /** A page dirtied: (slot, offset) or gfn, vcpu, time. */
  page: 1,
  /** A harvest (KVM_RESET_DIRTY_RINGS, kvm_dirty_ring_reset). */
  harvest: 2,
  /** A memslot change (qemu-log kvm_set_user_memory): in `args`. */
  slot: 3,
} as const

export interface DirtyLine {
  kind: number
  /** Time in ns on the source's clock, relative to a base of the parser's (NaN: the line has none). */
  tNs: number
  /** vCPU index, or -1 when the line's thread is not a vCPU. */
  vcpu: number
  /** KVM slot (as_id << 16 | id), or -1 when the format does not say. */
  slot: number
  /** Page offset in the slot, or -1. */
  offset: number
  /** Guest frame number, or -1. */
  gfn: number
  /** Thread name (bpftrace), for counting non-vCPU writers. */
  comm: string
}

export function emptyLine(): DirtyLine {
  return {kind: 0, tNs: Number.NaN, vcpu: -1, slot: -1, offset: -1, gfn: -1, comm: ''}
}

// ---- qemu-log ---------------------------------------------------------------------------------

export class QemuLogParser {
  private readonly pre: LinePrefix = {tUs: -1, nameStart: 0, nameEnd: 0}
  readonly args: ParsedArgs = createArgs()
  private readonly page = COMPILED_EVENTS.get('kvm_dirty_ring_page')!
  private readonly reap = COMPILED_EVENTS.get('kvm_dirty_ring_reap')!
  private readonly slot = COMPILED_EVENTS.get('kvm_set_user_memory')!

  /** µs since the epoch of the first timestamped line: times are ns from it (exact in a double). */
  baseUs = -1

  constructor(private readonly file: string) {}

  parse(line: string, lineNo: number, out: DirtyLine): boolean {
    if (!parsePrefix(line, this.pre)) return false
    const name = line.slice(this.pre.nameStart, this.pre.nameEnd)
    const ev = name === 'kvm_dirty_ring_page' ? this.page : name === 'kvm_dirty_ring_reap' ? this.reap : name === 'kvm_set_user_memory' ? this.slot : undefined
    if (ev === undefined) return false
    parseArgs(ev, line.slice(this.pre.nameEnd + 1), this.args, this.file, lineNo)
    if (this.pre.tUs >= 0 && this.baseUs < 0) this.baseUs = this.pre.tUs
    out.tNs = this.pre.tUs >= 0 ? (this.pre.tUs - this.baseUs) * 1000 : Number.NaN
    out.slot = -1
    out.gfn = -1
    if (ev === this.page) {
      out.kind = DirtyKind.page
      out.vcpu = this.args.num[0]!
      out.offset = this.args.num[2]!
    } else {
      out.kind = ev === this.reap ? DirtyKind.harvest : DirtyKind.slot
      out.vcpu = -1
      out.offset = -1
    }
    return true
  }
}

// ---- perf script ------------------------------------------------------------------------------

const PERF_TIME = /(\d+)\.(\d{1,9}):\s+(?:\S+\s+)?$/
const PUSH = /^ring (\d+): dirty 0x[0-9a-fA-F]+ reset 0x[0-9a-fA-F]+ slot (\d+) offset 0x([0-9a-fA-F]+)/
const RESET = /^ring (\d+): dirty 0x[0-9a-fA-F]+ reset 0x[0-9a-fA-F]+/

/** Seconds.fraction -> ns without floating-point rounding. */
function secondsToNs(sec: string, frac: string): number {
  return Number(sec) * 1e9 + Number(frac.padEnd(9, '0'))
}

export function parsePerfLine(line: string, out: DirtyLine): boolean {
  let at = line.indexOf('kvm_dirty_ring_push:')
  let push = true
  if (at < 0) {
    at = line.indexOf('kvm_dirty_ring_reset:')
    push = false
    if (at < 0) return false
  }
  // `kvm:` before the name is perf's subsystem prefix.
  const nameStart = line.lastIndexOf('kvm:', at) === at - 4 ? at - 4 : at
  const head = line.slice(0, nameStart)
  const tm = PERF_TIME.exec(head)
  if (tm === null) return false
  const body = line.slice(at + (push ? 'kvm_dirty_ring_push:' : 'kvm_dirty_ring_reset:').length).trim()
  out.tNs = secondsToNs(tm[1]!, tm[2]!)
  out.gfn = -1
  out.comm = ''
  if (push) {
    const m = PUSH.exec(body)
    if (m === null) return false
    out.kind = DirtyKind.page
    out.vcpu = Number(m[1])
    out.slot = Number(m[2])
    out.offset = Number.parseInt(m[3]!, 16)
  } else {
    if (RESET.exec(body) === null) return false
    out.kind = DirtyKind.harvest
    out.vcpu = -1
    out.slot = -1
    out.offset = -1
  }
  return true
}

// ---- bpftrace ---------------------------------------------------------------------------------

const BPF = /^(\d+) (\d+) (.*)$/
const VCPU_THREAD = /^CPU (\d+)\/KVM$/

export class BpftraceParser {
  /** nsecs (since boot) pass 2^53 after 104 days: they are taken relative to the first, in BigInt. */
  private base: bigint | undefined

  parse(line: string, out: DirtyLine): boolean {
    const m = BPF.exec(line)
    if (m === null) return false
    out.kind = DirtyKind.page
    const ns = BigInt(m[1]!)
    this.base ??= ns
    out.tNs = Number(ns - this.base)
    out.gfn = Number(m[2])
    out.comm = m[3]!
    const v = VCPU_THREAD.exec(out.comm)
    out.vcpu = v === null ? -1 : Number(v[1])
    out.slot = -1
    out.offset = -1
    return true
  }
}

/** The format of a file from its first lines that any parser recognises. */
export function detectFormat(lines: readonly string[]): KvmFormat | undefined {
  const probe = emptyLine()
  const qemu = new QemuLogParser('')
  for (const [i, l] of lines.entries()) {
    if (l.includes('kvm_dirty_ring_push:') || l.includes('kvm_dirty_ring_reset:')) if (parsePerfLine(l, probe)) return 'perf'
    try {
      if (qemu.parse(l, i + 1, probe)) return 'qemu-log'
    } catch {
      return 'qemu-log' // one of its events with a bad line: the importer will say where
    }
    if (new BpftraceParser().parse(l, probe)) return 'bpftrace'
  }
  return undefined
}
