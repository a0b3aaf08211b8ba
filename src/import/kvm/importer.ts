/**
 * `migtrace import kvm`: dirty-page logs of a KVM host (QEMU's dirty-ring trace events, perf's
 * kvm:kvm_dirty_ring_push, the bpftrace one-liner on mark_page_dirty_in_slot) -> a trace of `write`
 * events, one per page KVM reported, meaning "first write since the last harvest" (writes.ts).
 *
 * Addresses: perf names the slot and the page offset in it, bpftrace the guest frame itself, and
 * QEMU's log the offset only (kvm_dirty_ring_reap_one() does not trace the slot): the offset is
 * placed in the one live, writable, dirty-logged slot large enough to hold it; when several are,
 * the page is skipped and counted, never guessed.
 *
 * Layout: --layout (a migtrace header; its memslot ids are KVM's), else QEMU's kvm_set_user_memory
 * lines (the log itself for qemu-log, --qemu-log for perf and bpftrace), else (bpftrace only,
 * which gives frames) one block `pc.ram` over the frames seen, split at 4 GiB as QEMU's x86
 * machines do.
 */
import {readFileSync} from 'node:fs'
import type {HeaderInput, TraceHeader} from '../../trace/header.js'
import {parseHeader} from '../../trace/header.js'
import {UserError} from '../../util/errors.js'
import {readLines} from '../qemu/read-lines.js'
import {BpftraceParser, DirtyKind, QemuLogParser, detectFormat, emptyLine, parsePerfLine, type KvmFormat} from './formats.js'
import {SlotTable, addSlotLine, layoutFromRegions, slotsFromQemuLog} from './slots.js'
import {PAGE, WriteEmitter} from './writes.js'

export interface KvmImportOptions {
  input: string
  out: string
  format?: KvmFormat
  /** A migtrace header JSON whose memslots (ids = KVM slot ids) give the layout. */
  layout?: string
  /** A QEMU log with kvm_set_user_memory lines (perf, bpftrace). */
  qemuLog?: string
  /** Reorder window (ns): lines up to this much out of time order are put back in order. */
  windowNs?: number
}

export interface KvmImportSummary {
  format: KvmFormat
  lines: number
  writes: number
  harvests: number
  skipped: Record<string, number>
  reordered: number
  layoutFrom: string
  header: TraceHeader
}

const usString = (us: number): string => `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`
const MiB = 2 ** 20
const GiB = 2 ** 30
const roundUp = (v: number, a: number): number => Math.ceil(v / a) * a

async function firstLines(file: string, n: number): Promise<string[]> {
  const out: string[] = []
  for await (const l of readLines(file)) {
    if (l.trim() !== '') out.push(l)
    if (out.length >= n) break
  }
  return out
}

function readLayoutHeader(path: string): TraceHeader {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    throw new UserError('cannot read the layout header', {file: path, found: (e as NodeJS.ErrnoException).code ?? String(e)})
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw new UserError('the layout header is not valid JSON', {file: path, found: e instanceof Error ? e.message : String(e)})
  }
  return parseHeader(raw, path)
}

export async function importKvm(opts: KvmImportOptions): Promise<KvmImportSummary> {
  const format = opts.format ?? detectFormat(await firstLines(opts.input, 200))
  if (format === undefined)
    throw new UserError('cannot tell what this file is', {
      file: opts.input,
      expected: "QEMU trace lines 'kvm_dirty_ring_page vcpu N fetch N offset 0xN', perf script lines of kvm:kvm_dirty_ring_push, or bpftrace lines 'NSECS GFN COMM' (see docs/import-kvm.md), or --format",
    })
  const layoutHeader = opts.layout !== undefined ? readLayoutHeader(opts.layout) : undefined
  // The slot table: from the layout, a separate QEMU log, or (qemu-log) built while reading.
  let table: SlotTable | undefined
  let layoutFrom: string
  if (layoutHeader !== undefined) {
    table = SlotTable.fromHeader(layoutHeader)
    layoutFrom = 'header'
  } else if (opts.qemuLog !== undefined && format !== 'qemu-log') {
    table = (await slotsFromQemuLog(opts.qemuLog)).lastRegions()
    if (table.regions.length === 0) throw new UserError('the QEMU log has no kvm_set_user_memory lines', {file: opts.qemuLog, expected: 'a log of QEMU run with -trace kvm_set_user_memory'})
    layoutFrom = 'kvm_set_user_memory (--qemu-log)'
  } else if (format === 'qemu-log') {
    table = new SlotTable()
    layoutFrom = 'kvm_set_user_memory'
  } else if (format === 'perf') {
    throw new UserError("perf's kvm_dirty_ring_push names a memslot, not an address: give the slots", {
      field: 'layout',
      expected: '--qemu-log with QEMU run under -trace kvm_set_user_memory, or --layout header.json',
    })
  } else {
    layoutFrom = 'inferred from the frames seen'
  }
  const useSlots = table !== undefined
  const slots = table ?? new SlotTable()

  const provisional = parseHeader({format: 'migtrace', version: 1, memory: '1G'})
  const em = await WriteEmitter.open(opts.out, provisional, {windowNs: opts.windowNs})
  const skipped = new Map<string, number>()
  const skip = (why: string): void => void skipped.set(why, (skipped.get(why) ?? 0) + 1)
  let lines = 0
  let harvests = 0
  let nonVcpu = 0
  const comms = new Map<string, number>()
  const qemu = new QemuLogParser(opts.input)
  try {
    const d = emptyLine()
    const bpf = new BpftraceParser()
    for await (const line of readLines(opts.input)) {
      lines++
      const ok = format === 'qemu-log' ? qemu.parse(line, lines, d) : format === 'perf' ? parsePerfLine(line, d) : bpf.parse(line, d)
      if (!ok) continue
      if (d.kind === DirtyKind.slot) {
        if (layoutHeader === undefined) addSlotLine(slots, qemu.args)
        continue
      }
      if (d.kind === DirtyKind.harvest) {
        harvests++
        continue
      }
      const t = Number.isNaN(d.tNs) ? 0 : d.tNs
      let gpa: number
      if (format === 'bpftrace') {
        gpa = d.gfn * PAGE
        if (useSlots && !slots.inKept(gpa)) {
          skip('frame in no memslot of the layout')
          continue
        }
      } else if (format === 'perf') {
        if (d.slot >>> 16 !== 0) {
          skip('address space 1 (SMM)')
          continue
        }
        gpa = slots.gpaIn(d.slot & 0xffff, d.offset)
        if (gpa < 0) {
          skip('slot unknown or offset past its end')
          continue
        }
      } else {
        const r = slots.gpaOfOffset(d.offset)
        if (r.gpa < 0) {
          skip(r.candidates === 0 ? 'no dirty-logged slot holds the offset' : 'slot ambiguous: the event has no slot id and several slots hold the offset')
          continue
        }
        gpa = r.gpa
      }
      if (useSlots && format !== 'bpftrace' && !slots.inKept(gpa)) {
        skip('page in a slot range re-created over another (see layoutNotes)')
        continue
      }
      let vcpu = d.vcpu
      if (vcpu < 0) {
        // bpftrace: KVM marked the page from a thread that is not a vCPU (QEMU's main loop on an
        // ioctl, a kernel worker): attributed to vCPU 0, counted by thread name.
        nonVcpu++
        comms.set(d.comm, (comms.get(d.comm) ?? 0) + 1)
        vcpu = 0
      }
      em.add(t, vcpu, gpa)
      if (lines % 65536 === 0) await em.flush()
    }
    if (em.maxVcpu < 0 && skipped.size === 0) throw new UserError('no dirty-page records in the file', {file: opts.input, expected: `${format} lines of dirty pages (docs/import-kvm.md)`})

    em.settle()
    let layout: Pick<HeaderInput, 'ramBlocks' | 'memslots'>
    const notes: string[] = [...slots.notes]
    if (layoutHeader !== undefined) layout = {ramBlocks: layoutHeader.ramBlocks, memslots: layoutHeader.memslots}
    else if (useSlots) {
      if (slots.kept.length === 0) throw new UserError('no memslots: the log has no kvm_set_user_memory lines', {file: opts.qemuLog ?? opts.input, expected: 'QEMU run with -trace kvm_set_user_memory (and kvm_dirty_ring_page)'})
      layout = layoutFromRegions(slots.kept)
    } else {
      const low = em.maxLow >= 0 ? roundUp(em.maxLow + PAGE, 2 * MiB) : 2 * MiB
      const high = em.maxHigh >= 0 ? roundUp(em.maxHigh + PAGE - 4 * GiB, 2 * MiB) : 0
      layout = {
        ramBlocks: [{name: 'pc.ram', size: low + high}],
        memslots: [{id: 0, base: 0, size: low, ramBlock: 'pc.ram', offset: 0}, ...(high > 0 ? [{id: 1, base: 4 * GiB, size: high, ramBlock: 'pc.ram', offset: low}] : [])],
      }
      notes.push('no layout given: one block pc.ram over the frames seen (rounded up to 2 MiB), split at 4 GiB')
    }
    const ring = format !== 'bpftrace'
    const header = parseHeader(
      {
        format: 'migtrace',
        version: 1,
        description: `dirty pages reported by KVM (${format}), imported with migtrace import kvm`,
        ...layout,
        vcpus: Math.max(1, em.maxVcpu + 1, layoutHeader?.vcpus ?? 1),
        ...(ring ? {dirtyTracking: {mode: 'ring' as const}} : layoutHeader !== undefined ? {dirtyTracking: layoutHeader.dirtyTracking} : {}),
        ...(layoutHeader?.virtioMem.length ? {virtioMem: layoutHeader.virtioMem.map((v) => ({...v}))} : {}),
        populated: 'all',
        source: {
          importer: `kvm-${format}`,
          file: opts.input,
          ...(opts.qemuLog !== undefined ? {slotsFrom: opts.qemuLog} : {}),
          layoutFrom,
          ...(notes.length > 0 ? {layoutNotes: notes} : {}),
          writeMeaning:
            'a write event is a page KVM reported dirty: written at least once since its dirty state was last harvested (dirty ring: pushed on the first write after a reset; bitmap: set until cleared); later writes before the next harvest are not in the log. len is the whole page: KVM does not say which bytes',
          timeNote:
            format === 'qemu-log'
              ? 'kvm_dirty_ring_page is traced when QEMU harvests the ring (kvm_dirty_ring_reap_one), so t_ns is the harvest, at or after the write'
              : format === 'perf'
                ? 'kvm_dirty_ring_push fires when KVM marks the page dirty (the write fault, or the PML buffer flush shortly after)'
                : 'mark_page_dirty_in_slot runs when KVM marks the page dirty (the write fault, or the PML buffer flush shortly after)',
          timeOrigin: format === 'qemu-log' && qemu.baseUs >= 0 ? usString(qemu.baseUs + Math.round(em.origin / 1000)) : em.origin,
          timeOriginNote:
            format === 'qemu-log'
              ? 'unix seconds.micros (QEMU log timestamps) of trace time 0, the earliest dirty page'
              : format === 'perf'
                ? "ns on perf's clock (perf script's seconds) of trace time 0, the earliest dirty page"
                : 'ns on bpftrace\'s nsecs clock, relative to the first line, of trace time 0 (the earliest dirty page)',
          lines,
          harvests,
          ...(skipped.size > 0 ? {skipped: Object.fromEntries(skipped)} : {}),
          ...(em.reordered > 0 ? {reorderedLines: em.reordered} : {}),
          ...(nonVcpu > 0 ? {nonVcpuWrites: nonVcpu, nonVcpuThreads: Object.fromEntries(comms), nonVcpuNote: 'pages KVM marked from threads that are not vCPUs, attributed to vCPU 0'} : {}),
          ...(slots.smmLines > 0 ? {smmSlotLines: slots.smmLines} : {}),
        },
      },
      opts.out,
    )
    await em.close(header)
    return {format, lines, writes: em.events, harvests, skipped: Object.fromEntries(skipped), reordered: em.reordered, layoutFrom, header}
  } catch (e) {
    await em.abort()
    throw e
  }
}
