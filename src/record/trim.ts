/**
 * Cut a window out of a trace: the events with from <= t_ns < to, shifted to start at 0, with the
 * header describing memory as the window finds it. A recording starts at the guest's first
 * instruction; the part worth replaying (a benchmark's steady state) comes minutes later, and the
 * whole file is too big to ship. What happened before the window is not lost from the header:
 *  - every page written before `from` (write, dma_write, vhost_write) holds data: it joins
 *    `populated` (zero pages cost a migration almost nothing, written ones a full page);
 *  - virtio-mem plug and unplug requests before `from` are folded into each device's plugged
 *    ranges (as the QEMU importer folds requests before a migration's setup);
 *  - any other event before the window is dropped and counted by kind in header.source.trim.
 * Two passes over the input: the first computes the header, the second writes the window.
 */
import {K, createBatch, kindName, resetBatch} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import {openTrace} from '../trace/read/index.js'
import {TraceWriter} from '../trace/write/writer.js'
import {UserError} from '../util/errors.js'

export interface TrimOptions {
  input: string
  out: string
  fromNs: number
  toNs: number
}

export interface TrimSummary {
  events: number
  populatedPages: number
  droppedBefore: Record<string, number>
  header: TraceHeader
}

export async function trimTrace(opts: TrimOptions): Promise<TrimSummary> {
  if (!(opts.toNs > opts.fromNs)) throw new UserError('the window is empty', {field: 'to', expected: `a time after --from (${opts.fromNs} ns)`, found: `${opts.toNs} ns`})
  const tr = await openTrace(opts.input)
  const {header, layout} = tr
  // Pages with data when the window opens: the header's, plus those written before it.
  const total = layout.totalPages
  const bits = new Uint32Array(Math.ceil(total / 32))
  const set = (page: number): void => {
    if (page >= 0 && page < total) bits[page >>> 5]! |= 1 << (page & 31)
  }
  const markRange = (gpa: number, len: number): void => {
    for (let g = gpa - (gpa % layout.pageSize); g < gpa + len; g += layout.pageSize) set(layout.gpaToPage(g))
  }
  if (header.populated === 'all') bits.fill(0xffffffff)
  else if (header.populated !== 'none') for (const r of header.populated) markRange(r.gpa, r.len)
  const plugged = header.virtioMem.map((d) => {
    const b = new Uint8Array(d.regionSize / d.blockSize)
    for (const r of d.plugged) b.fill(1, (r.gpa - d.base) / d.blockSize, (r.gpa - d.base) / d.blockSize + r.blocks)
    return b
  })
  const dropped = new Map<string, number>()
  let last = 0
  pass: for await (const b of tr.events()) {
    for (let i = 0; i < b.length; i++) {
      const t = b.t[i]!
      last = t
      if (t >= opts.fromNs) break pass
      const k = b.kind[i]!
      if (k === K.write || k === K.dma_write || k === K.vhost_write) markRange(b.gpa[i]!, b.len[i]!)
      else if (k === K.vmem_plug || k === K.vmem_unplug || k === K.vmem_unplug_all) {
        const di = layout.devices[b.dev[i]!]!.index
        const d = header.virtioMem[di]!
        if (k === K.vmem_unplug_all) plugged[di]!.fill(0)
        else {
          const b0 = (b.gpa[i]! - d.base) / d.blockSize
          plugged[di]!.fill(k === K.vmem_plug ? 1 : 0, b0, b0 + b.count[i]!)
        }
      } else dropped.set(kindName(k), (dropped.get(kindName(k)) ?? 0) + 1)
    }
  }
  if (last < opts.fromNs) throw new UserError('the trace ends before the window', {file: opts.input, field: 'from', expected: `a time before the trace's end (${last} ns)`, found: `${opts.fromNs} ns`})

  // Populated ranges by guest-physical address, slot by slot.
  const populated: {gpa: number; len: number}[] = []
  let pages = 0
  for (const s of layout.slots) {
    let run = -1
    for (let p = 0; p <= s.pages; p++) {
      const on = p < s.pages && (bits[(s.firstPage + p) >>> 5]! & (1 << ((s.firstPage + p) & 31))) !== 0
      if (on) pages++
      if (on && run < 0) run = p
      if (!on && run >= 0) {
        populated.push({gpa: s.gpaStart + run * layout.pageSize, len: (p - run) * layout.pageSize})
        run = -1
      }
    }
  }
  populated.sort((a, b) => a.gpa - b.gpa)
  const virtioMem = header.virtioMem.map((d, di) => {
    const ranges: {gpa: number; blocks: number}[] = []
    const b = plugged[di]!
    for (let x = 0; x < b.length; ) {
      if (!b[x]) {
        x++
        continue
      }
      let e = x
      while (e < b.length && b[e]) e++
      ranges.push({gpa: d.base + x * d.blockSize, blocks: e - x})
      x = e
    }
    return {...d, plugged: ranges}
  })
  const out: TraceHeader = {
    ...header,
    populated,
    virtioMem,
    source: {
      ...(header.source ?? {}),
      trim: {
        from: opts.input,
        fromNs: opts.fromNs,
        toNs: opts.toNs,
        note: 'the events of [fromNs, toNs) of the original, shifted to start at 0; populated = memory with data when the window opens (pages written before it); virtio-mem requests before it folded into plugged',
        ...(dropped.size > 0 ? {droppedBefore: Object.fromEntries(dropped)} : {}),
      },
    },
  }
  const w = await TraceWriter.open(opts.out, out, tr.deviceIds)
  const batch = createBatch()
  let events = 0
  try {
    outer: for await (const b of tr.events()) {
      for (let i = 0; i < b.length; i++) {
        const t = b.t[i]!
        if (t < opts.fromNs) continue
        if (t >= opts.toNs) break outer
        const j = batch.length++
        batch.t[j] = t - opts.fromNs
        batch.kind[j] = b.kind[i]!
        batch.vcpu[j] = b.vcpu[i]!
        batch.dev[j] = b.dev[i]!
        batch.slot[j] = b.slot[i]!
        batch.gpa[j] = b.gpa[i]!
        batch.iova[j] = b.iova[i]!
        batch.len[j] = b.len[i]!
        batch.page[j] = b.page[i]!
        batch.count[j] = b.count[i]!
        batch.value[j] = b.value[i]!
        batch.op[j] = b.op[i]!
        const p = b.params.get(i)
        if (p !== undefined) batch.params.set(j, p)
        if (batch.length === batch.t.length) {
          await w.writeBatch(batch)
          events += batch.length
          resetBatch(batch)
        }
      }
    }
    await w.writeBatch(batch)
    events += batch.length
    await w.close()
  } catch (e) {
    await w.abort()
    throw e
  }
  return {events, populatedPages: pages, droppedBefore: Object.fromEntries(dropped), header: out}
}
