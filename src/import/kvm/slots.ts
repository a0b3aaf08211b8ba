/**
 * KVM memslots for the KVM importers: which guest-physical range each slot id covers.
 *
 * From QEMU's `kvm_set_user_memory` trace lines (accel/kvm/kvm-all.c kvm_set_user_memory_region():
 * one line per KVM_SET_USER_MEMORY_REGION, size 0 = the slot is deleted; QEMU 7.2 prints the slot
 * as `as_id << 16 | id`), parsed with the QEMU importer's formats, or from a migtrace header
 * (--layout), whose memslot ids are then taken as KVM's.
 *
 * Slot flags (include/uapi/linux/kvm.h): bit 0 KVM_MEM_LOG_DIRTY_PAGES, bit 1 KVM_MEM_READONLY.
 * KVM reports dirty pages only for slots with dirty logging on (mark_page_dirty_in_slot() checks
 * kvm_slot_dirty_track_enabled()), and never for a read-only slot.
 */
import type {HeaderInput, TraceHeader} from '../../trace/header.js'
import {COMPILED_EVENTS} from '../qemu/formats.js'
import {createArgs, parseArgs, parsePrefix} from '../qemu/line.js'
import {readLines} from '../qemu/read-lines.js'
import {slotId} from '../qemu/importer.js'
import {PAGE} from './writes.js'

export const KVM_MEM_LOG_DIRTY_PAGES = 1
export const KVM_MEM_READONLY = 2

export interface KvmSlot {
  /** KVM's slot id in address space 0. */
  id: number
  gpa: number
  size: number
  flags: number
}

export class SlotTable {
  readonly live = new Map<number, KvmSlot>()
  /** Every distinct (id, gpa, size) region ever set, in order. */
  readonly regions: KvmSlot[] = []
  /**
   * The regions the header gets: in the order they were set, page-aligned, each one not
   * overlapping one kept before it (a slot QEMU later re-creates over a range, e.g. when the
   * guest reprograms PAM, keeps its first form). Pages outside them are not written.
   */
  readonly kept: KvmSlot[] = []
  readonly notes: string[] = []
  /** Address space 1 (SMM) lines seen: they alias address space 0's RAM and are not tracked. */
  smmLines = 0

  set(as: number, id: number, gpa: number, size: number, flags: number): void {
    if (as !== 0) {
      this.smmLines++
      return
    }
    if (size === 0) {
      this.live.delete(id)
      return
    }
    const s = {id, gpa, size, flags}
    this.live.set(id, s)
    if (this.regions.some((r) => r.id === id && r.gpa === gpa && r.size === size)) return
    this.regions.push(s)
    if (gpa % PAGE !== 0 || size % PAGE !== 0) this.notes.push(`slot ${id} at 0x${gpa.toString(16)} is not page-aligned: left out`)
    else if (this.kept.some((k) => gpa < k.gpa + k.size && k.gpa < gpa + size)) {
      if (!this.kept.some((k) => k.gpa === gpa && k.size === size)) this.notes.push(`slot ${id} at 0x${gpa.toString(16)}+0x${size.toString(16)} overlaps a range set before: pages of it outside that range are not written`)
    } else this.kept.push(s)
  }

  /** Is the page at gpa inside a kept region (so a write there is valid in the header)? */
  inKept(gpa: number): boolean {
    for (const k of this.kept) if (gpa >= k.gpa && gpa < k.gpa + k.size) return true
    return false
  }

  /** The last region each slot id was given (for a log read apart from the events it explains). */
  lastRegions(): SlotTable {
    const t = new SlotTable()
    const last = new Map<number, KvmSlot>()
    for (const r of this.regions) last.set(r.id, r)
    for (const r of last.values()) t.set(0, r.id, r.gpa, r.size, r.flags)
    return t
  }

  /** GPA of page `offset` of slot `id` (a dirty-ring entry names both), or -1. */
  gpaIn(id: number, offset: number): number {
    const s = this.live.get(id)
    if (s === undefined || offset * PAGE >= s.size) return -1
    return s.gpa + offset * PAGE
  }

  /**
   * GPA of a dirty-ring offset whose slot is not known (QEMU's kvm_dirty_ring_page prints no slot):
   * the one live, writable, dirty-logged slot that is large enough. -1 when none or several.
   */
  gpaOfOffset(offset: number): {gpa: number; candidates: number} {
    let gpa = -1
    let n = 0
    for (const s of this.live.values()) {
      if ((s.flags & KVM_MEM_LOG_DIRTY_PAGES) === 0 || (s.flags & KVM_MEM_READONLY) !== 0 || offset * PAGE >= s.size) continue
      n++
      gpa = s.gpa + offset * PAGE
    }
    return {gpa: n === 1 ? gpa : -1, candidates: n}
  }

  static fromHeader(h: TraceHeader): SlotTable {
    const t = new SlotTable()
    for (const s of h.memslots) t.set(0, s.id, s.base, s.size, KVM_MEM_LOG_DIRTY_PAGES)
    return t
  }
}

/** Feed every kvm_set_user_memory line of a QEMU log into `table` (the whole file, in order). */
export async function slotsFromQemuLog(file: string, table = new SlotTable()): Promise<SlotTable> {
  const ev = COMPILED_EVENTS.get('kvm_set_user_memory')!
  const pre = {tUs: -1, nameStart: 0, nameEnd: 0}
  const args = createArgs()
  let lineNo = 0
  for await (const line of readLines(file)) {
    lineNo++
    if (!line.includes('kvm_set_user_memory') || !parsePrefix(line, pre) || line.slice(pre.nameStart, pre.nameEnd) !== 'kvm_set_user_memory') continue
    parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, lineNo)
    addSlotLine(table, args)
  }
  return table
}

/** One parsed kvm_set_user_memory line (fields: as, slot, flags, gpa, size, ua, ..., ret). */
export function addSlotLine(table: SlotTable, a: ReturnType<typeof createArgs>): void {
  const {as, slot} = slotId(a)
  const ret = a.num[8]!
  if (!Number.isNaN(ret) && ret !== 0) return // the ioctl failed: nothing changed
  table.set(as, slot, a.num[3]!, a.num[4]!, a.num[2]!)
}

/** Header layout for the kept regions: one RAM block per region (`kvm-slot<id>`) and a memslot over it. */
export function layoutFromRegions(kept: readonly KvmSlot[]): Pick<HeaderInput, 'ramBlocks' | 'memslots'> {
  const used = new Map<string, number>()
  const ramBlocks: {name: string; size: number}[] = []
  const memslots: {id: number; base: number; size: number; ramBlock: string; offset: number}[] = []
  kept.forEach((r, i) => {
    const base = `kvm-slot${r.id}`
    const n = used.get(base) ?? 0
    used.set(base, n + 1)
    const name = n === 0 ? base : `${base}.${n}`
    ramBlocks.push({name, size: r.size})
    memslots.push({id: i, base: r.gpa, size: r.size, ramBlock: name, offset: 0})
  })
  return {ramBlocks, memslots}
}
