/** KVM dirty logging: one factory for the four modes. */
import type {TraceLayout} from '../../trace/layout.js'
import {KvmBitmapLog} from './bitmap-log.js'
import {KvmDirtyRing} from './dirty-ring.js'
import type {DirtyLogMode, KvmDirtyLog} from './types.js'

export * from './types.js'
export {KvmBitmapLog, emptyKvmStats} from './bitmap-log.js'
export {KvmDirtyRing, PML_ENTRIES, RING_RESERVED_ENTRIES} from './dirty-ring.js'

export function createKvmDirtyLog(layout: TraceLayout, mode: DirtyLogMode, opts: {vcpus: number; ringSize: number; pml: boolean}): KvmDirtyLog {
  if (mode === 'ring') return new KvmDirtyRing(layout, opts.vcpus, opts.ringSize, opts.pml)
  return new KvmBitmapLog(layout, mode)
}
