/**
 * How a VFIO container's dirty pages reach QEMU (hw/vfio/listener.c vfio_listener_log_sync ->
 * vfio_container_query_dirty_bitmap), one named behaviour per setting value:
 * - none: nothing can track, so every mapped page is dirty at every sync
 *   (physical_memory_set_dirty_range over the section, QEMU 8.0-9.2's fallback);
 * - cumulative: type1 VFIO_IOMMU_DIRTY_PAGES as the v15 patch coded it: pinned pages are re-added
 *   to the bitmap at each read, which is never cleared;
 * - reset-readd-pinned: type1 as merged after the v16 review (vfio_iova_dirty_bitmap:
 *   bitmap_clear + vfio_dma_populate_bitmap): each read resets, then re-adds still-pinned pages;
 * - deferred-pinned: the thread's proposal: pinned pages are counted in the pending size each
 *   round but sent only in stop-and-copy (never twice);
 * - device: device DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT): only what the device
 *   wrote, read-and-clear.
 * With type1 a group that never pinned (an IOMMU-backed passthrough device) reports its whole
 * mapping dirty at every read (update_user_bitmap: num_non_pinned_groups && iommu_mapped).
 */
import type {CauseSpec} from '../causes.js'
import type {VfioTrackingSetting, VfioTracking} from './modes.js'
export {VFIO_TRACKING, VFIO_MIG_STOP_COPY_SIZE, VFIO_SAVE_CHUNK, type VfioTracking, type VfioTrackingSetting} from './modes.js'

/** The causes VFIO gives the bits it reports. */
export const VFIO_CAUSES = {
  pinned: {id: 'vfio-pinned', label: 'VFIO type1: a pinned page (or one unpinned since the last read) is read dirty at every sync, written or not'},
  cumulative: {id: 'vfio-cumulative', label: 'VFIO type1 cumulative bitmap (v15 as coded): a bit once set is never cleared, so an unpinned page stays dirty forever'},
  noTracking: {
    id: 'vfio-no-tracking',
    label: 'VFIO cannot say what the device wrote (no dirty tracking, or a type1 IOMMU-backed group): every mapped page is dirty at every sync',
  },
  dmaLogged: {id: 'vfio-dma-logged', label: 'VFIO device DMA logging reported the page (written after the sync and before its own send)'},
} as const satisfies Record<string, CauseSpec>

/** The behaviour a container gets: the setting, or (auto) what its header says it can do. */
export function resolveTracking(setting: VfioTrackingSetting, capability: 'none' | 'type1' | 'device', allDevicesLog: boolean): VfioTracking {
  if (setting !== 'auto') return setting
  // vfio_listener_log_global_start: device DMA logging when every device supports it.
  if (capability === 'device' || allDevicesLog) return 'device'
  return capability === 'type1' ? 'reset-readd-pinned' : 'none'
}
