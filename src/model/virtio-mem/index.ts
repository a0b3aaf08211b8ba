export {VirtioMemDevice, VMEM_REQ, VMEM_RESP, VMEM_STATE, VMEM_REQ_NAMES, VMEM_RESP_NAMES, VMEM_STATE_NAMES, VIRTIO_MEM_USABLE_EXTENT, type BlockListener} from './device.js'
export {VirtioMemModel, UNPLUGGED_CAUSE, UNPLUGGED_WRITE, type UnpluggedWrite, type VirtioMemDeps, type PageRangeListener, type VmemRequestRecord, type VmemAnomaly} from './component.js'
