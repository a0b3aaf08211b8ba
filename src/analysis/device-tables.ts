/**
 * VFIO and virtio-mem figures of a replay as plain data: typed views of
 * result.components['vfio'] / ['virtio-mem'] (shapes in docs/vfio-virtio-mem.md) and the extra
 * per-iteration columns (VFIO pinned and reported-dirty pages at each iteration's sync).
 */
import type {ReplayResult} from '../replay/result.js'
import type {VfioContainerData, VfioData} from '../model/vfio/component.js'
import type {VirtioMemData, VirtioMemDeviceData} from '../model/virtio-mem/component.js'

export type {VfioContainerData, VfioData}
export type VmemData = VirtioMemData
export type VmemDeviceData = VirtioMemDeviceData

export const VFIO_CAUSES = ['vfio-pinned', 'vfio-cumulative', 'vfio-no-tracking', 'vfio-dma-logged'] as const

export function vfioData(r: ReplayResult): VfioData | undefined {
  return r.components.vfio
}
export function vmemData(r: ReplayResult): VmemData | undefined {
  return r.components['virtio-mem']
}

/** Per-sync VFIO figures summed over containers, one entry per iteration row (matched by time). */
export function vfioPerIteration(r: ReplayResult): {pinned: number[]; reported: number[]} | undefined {
  const v = vfioData(r)
  if (!v) return undefined
  const bySync = new Map<number, {tNs: number; pinned: number; reported: number}>()
  for (const c of v.containers)
    for (const s of c.perSync) {
      const o = bySync.get(s.sync) ?? {tNs: s.tNs, pinned: 0, reported: 0}
      o.pinned += s.pinnedPages
      o.reported += s.reportedDirtyPages
      bySync.set(s.sync, o)
    }
  const syncs = [...bySync.values()].sort((a, b) => a.tNs - b.tNs)
  const pinned: number[] = []
  const reported: number[] = []
  r.rows.forEach((row, i) => {
    const next = r.rows[i + 1]?.startNs ?? Infinity
    let p = 0
    let n = 0
    for (const s of syncs) {
      if (s.tNs < row.startNs || s.tNs >= next) continue
      p = s.pinned
      n += s.reported
    }
    pinned.push(p)
    reported.push(n)
  })
  return {pinned, reported}
}

/** Extra iteration columns (only when the trace has VFIO). */
export function deviceIterationColumns(r: ReplayResult): Record<string, number[]> {
  const v = vfioPerIteration(r)
  return v ? {vfio_pinned_pages: v.pinned, vfio_reported_dirty_pages: v.reported} : {}
}

