export {VfioModel, type VfioDeps, type VfioSyncRecord} from './component.js'
export {VfioContainer, type DmaMapping, type VfioDeviceState} from './container.js'
export {VFIO_TRACKING, VFIO_CAUSES, VFIO_MIG_STOP_COPY_SIZE, VFIO_SAVE_CHUNK, resolveTracking, type VfioTracking, type VfioTrackingSetting} from './tracking.js'
