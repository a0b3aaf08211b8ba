/** KVM dirty logging: one factory for the modes of ./modes.ts. */
import type {TraceLayout} from '../../trace/layout.js'
import {KvmBitmapLog} from './bitmap-log.js'
import {KvmDirtyRing} from './dirty-ring.js'
import type {KvmDirtyLog} from './types.js'
import type {DirtyLogMode} from './modes.js'

export * from './types.js'
export * from './modes.js'
export {KvmBitmapLog, emptyKvmStats} from './bitmap-log.js'
export {KvmDirtyRing, PML_ENTRIES, RING_RESERVED_ENTRIES} from './dirty-ring.js'

export function createKvmDirtyLog(layout: TraceLayout, mode: DirtyLogMode, opts: {vcpus: number; ringSize: number; pml: boolean}): KvmDirtyLog {
  if (mode.family === 'ring') return new KvmDirtyRing(layout, opts.vcpus, opts.ringSize, opts.pml)
  return new KvmBitmapLog(layout, mode)
}
