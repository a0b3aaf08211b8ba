/** VFIO setting values and constants, free of side effects (the replay config imports them). */
export const VFIO_TRACKING = ['auto', 'none', 'cumulative', 'reset-readd-pinned', 'deferred-pinned', 'device'] as const
export type VfioTrackingSetting = (typeof VFIO_TRACKING)[number]
export type VfioTracking = Exclude<VfioTrackingSetting, 'auto'>

/** VFIO_MIG_STOP_COPY_SIZE: what QEMU assumes when VFIO_DEVICE_FEATURE_MIG_DATA_SIZE fails. */
export const VFIO_MIG_STOP_COPY_SIZE = 100 * 2 ** 30
/** The 1 MiB data buffer vfio_save_iterate reads one chunk into per call. */
export const VFIO_SAVE_CHUNK = 2 ** 20
