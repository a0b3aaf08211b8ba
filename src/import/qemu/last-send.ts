/**
 * Send history of a recorded (imported) migration: which pages QEMU sent in which pass, and when
 * each page was sent for the last time. A pass is the stretch between two dirty-bitmap syncs
 * (mig_sync); the pass that starts with the first sync at or after vm_stop is the stop-copy pass
 * (mirrors migration_completion() -> ram_save_complete(): one last migration_bitmap_sync, then
 * every dirty page goes out while the guest is stopped).
 *
 * A page the guest writes after its last send is lost unless a later sync finds it dirty. The
 * trace cannot show guest writes under TCG (no per-write event), so this module gives the evidence
 * the trace does hold: per pass send counts beside the dirty counts QEMU reported, and the full
 * send history of chosen pages (for example a page a destination oops points at).
 */
import {K} from '../../trace/events.js'
import {openTrace} from '../../trace/read/index.js'

export interface PassSummary {
  /** 1-based: pass k starts at the k-th sync. Pass 0 = before the first sync. */
  index: number
  startNs: number
  /** QEMU's reported dirty-page count at the sync starting the pass (rs->num_dirty_pages_period). */
  reportedDirty: number
  pagesSent: number
  /** Pages sent in this pass that were also sent in an earlier pass (re-sends). */
  resent: number
}

export interface PageHistory {
  gpa: number
  /** (pass index, t_ns) of every send, in order. */
  sends: {pass: number; t: number}[]
}

export interface LastSendReport {
  passes: PassSummary[]
  vmStopNs: number
  /** Index of the stop-copy pass (-1 when the trace has no vm_stop). */
  stopCopyPass: number
  distinctPagesSent: number
  /** Pages whose last send happened before vm_stop (their final copy was taken while the guest still ran). */
  lastSentWhileRunning: number
  lastSentInStopCopy: number
  watched: PageHistory[]
}

/**
 * Walk a trace's page_sent / mig_sync / vm_stop events. `watch` lists guest-physical addresses
 * whose whole send history is returned.
 */
export async function lastSendReport(path: string, watch: readonly number[] = []): Promise<LastSendReport> {
  const t = await openTrace(path)
  const layout = t.layout
  const lastPass = new Int32Array(layout.totalPages).fill(-1)
  const lastT = new Float64Array(layout.totalPages).fill(-1)
  const watchPages = new Map<number, PageHistory>()
  for (const g of watch) {
    const p = layout.gpaToPage(g - (g % layout.pageSize))
    if (p >= 0) watchPages.set(p, {gpa: g - (g % layout.pageSize), sends: []})
  }
  const passes: PassSummary[] = [{index: 0, startNs: 0, reportedDirty: 0, pagesSent: 0, resent: 0}]
  let vmStopNs = -1
  let stopCopyPass = -1
  for await (const b of t.events()) {
    for (let i = 0; i < b.length; i++) {
      const k = b.kind[i]!
      if (k === K.page_sent) {
        const page = layout.gpaToPage(b.gpa[i]!)
        if (page < 0) continue
        const cur = passes[passes.length - 1]!
        const n = b.count[i]! > 0 ? b.count[i]! : 1
        for (let j = 0; j < n; j++) {
          const pg = page + j
          if (lastPass[pg]! >= 0) cur.resent++
          lastPass[pg] = cur.index
          lastT[pg] = b.t[i]!
          cur.pagesSent++
          const w = watchPages.get(pg)
          if (w) w.sends.push({pass: cur.index, t: b.t[i]!})
        }
      } else if (k === K.mig_sync) {
        passes.push({index: passes.length, startNs: b.t[i]!, reportedDirty: Math.max(0, b.value[i]!), pagesSent: 0, resent: 0})
        if (vmStopNs >= 0 && stopCopyPass < 0) stopCopyPass = passes.length - 1
      } else if (k === K.vm_stop && vmStopNs < 0) {
        vmStopNs = b.t[i]!
      }
    }
  }
  let distinct = 0
  let whileRunning = 0
  let inStopCopy = 0
  for (let p = 0; p < lastPass.length; p++) {
    if (lastPass[p]! < 0) continue
    distinct++
    if (vmStopNs >= 0 && lastT[p]! < vmStopNs) whileRunning++
    else if (vmStopNs >= 0) inStopCopy++
  }
  return {passes, vmStopNs, stopCopyPass, distinctPagesSent: distinct, lastSentWhileRunning: whileRunning, lastSentInStopCopy: inStopCopy, watched: [...watchPages.values()]}
}
