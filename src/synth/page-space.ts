/**
 * The guest's ordinary RAM as one run of page numbers 0..pages-1, in guest-physical order of its
 * memslots (virtio-mem regions are left out: their pages exist only while plugged). Workloads pick
 * page numbers here and turn them into addresses that always fall inside a memslot.
 */
import type {TraceLayout} from '../trace/layout.js'

export interface GpaRun {
  gpa: number
  pages: number
}

export class PageSpace {
  readonly pages: number
  readonly pageSize: number
  /** Page number where each slot's pages begin (ascending), and that slot's first GPA. */
  private readonly starts: Float64Array
  private readonly gpas: Float64Array
  private readonly lens: Float64Array

  constructor(layout: TraceLayout, skipBlocks: ReadonlySet<string>) {
    this.pageSize = layout.pageSize
    const slots = layout.slots.filter((s) => !skipBlocks.has(layout.blocks[s.block]!.name))
    this.starts = new Float64Array(slots.length)
    this.gpas = new Float64Array(slots.length)
    this.lens = new Float64Array(slots.length)
    let next = 0
    slots.forEach((s, i) => {
      this.starts[i] = next
      this.gpas[i] = s.gpaStart
      this.lens[i] = s.pages
      next += s.pages
    })
    this.pages = next
  }

  /** Guest-physical address of page p (0 <= p < pages). */
  gpaOf(p: number): number {
    const starts = this.starts
    let i = 0
    // Guests have one or two RAM slots; the scan ends at once.
    while (i + 1 < starts.length && p >= starts[i + 1]!) i++
    return this.gpas[i]! + (p - starts[i]!) * this.pageSize
  }

  /** The GPA-contiguous runs covering pages [first, first+count), slot by slot. */
  runs(first: number, count: number): GpaRun[] {
    const out: GpaRun[] = []
    const end = first + count
    for (let i = 0; i < this.starts.length; i++) {
      const s = this.starts[i]!
      const e = s + this.lens[i]!
      const a = Math.max(first, s)
      const b = Math.min(end, e)
      if (a < b) out.push({gpa: this.gpas[i]! + (a - s) * this.pageSize, pages: b - a})
    }
    return out
  }
}
