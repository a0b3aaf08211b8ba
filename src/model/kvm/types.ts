/**
 * What every KVM dirty-logging mode offers the rest of the model. The kernel keeps one dirty bitmap
 * per memslot (or one ring per vCPU); the model indexes both by global page number, and takes slot
 * indices into `TraceLayout.slots` where an ioctl names a memslot.
 */
import type {Bitmap} from '../bitmap.js'
import type {DirtyLogMode} from './modes.js'

export interface KvmStats {
  /** Guest writes that KVM logged (first write to a protected page). */
  loggedWrites: number
  gets: number
  clears: number
  /** Pages whose bit a CLEAR actually cleared (and re-protected). */
  clearedPages: number
  ringPushes: number
  ringFullExits: number
  reaps: number
  harvested: number
}

export interface KvmDirtyLog {
  readonly mode: DirtyLogMode
  /** mode.family, as a discriminant for the two interfaces below. */
  readonly family: 'bitmap' | 'ring'
  readonly stats: KvmStats
  /** `fresh`: just built, the bitmaps are still zero (ModelComponent.reset). */
  reset(fresh?: boolean): void
  /** KVM_SET_USER_MEMORY_REGION with KVM_MEM_LOG_DIRTY_PAGES set on slot index s. */
  startLogging(s: number): void
  /** The flag cleared: the slot's bitmap (or ring protection) goes away. */
  stopLogging(s: number): void
  isLogging(s: number): boolean
  /** A guest write by a vCPU to global page p (hot path). */
  write(p: number, vcpu: number): void
  /** A KVM_DIRTY_LOG_INITIALLY_SET bit never cleared since logging started (cause attribution). */
  isInitialBit(p: number): boolean
}

/** The bitmap modes: GET and CLEAR on a memslot. */
export interface KvmBitmapDirtyLog extends KvmDirtyLog {
  readonly family: 'bitmap'
  /** KVM_GET_DIRTY_LOG on slot index s: overwrite `into` over the slot's pages; returns set bits. */
  getDirtyLog(s: number, into: Bitmap): number
  /**
   * KVM_CLEAR_DIRTY_LOG on slot index s, pages [first, first+num) relative to the slot; the user
   * mask holds the bits of `mask` (all ones when null) restricted to global pages [maskFrom, maskTo).
   * Returns the number of bits cleared. Throws KvmIoctlError as the kernel returns -EINVAL.
   */
  clearDirtyLog(s: number, first: number, num: number, mask: Bitmap | null, maskFrom: number, maskTo: number): number
  /** The words a write sets its bit in when that is all it does (every slot logging), else undefined. */
  readonly allLoggingWords: Uint32Array | undefined
}

/** The ring mode: harvest (reap + reset) instead of GET/CLEAR. */
export interface KvmRingDirtyLog extends KvmDirtyLog {
  readonly family: 'ring'
  readonly softLimit: number
  /** Harvest every vCPU's ring into `into` and reset (re-protect) the pages; returns entries. */
  reap(into: Bitmap): number
  /** Harvest vCPU v's ring only; returns entries. */
  reapVcpu(v: number, into: Bitmap): number
  /** A push reached the soft limit: vCPU fullVcpu exits with KVM_EXIT_DIRTY_RING_FULL. */
  readonly fullPending: boolean
  readonly fullVcpu: number
  /** Entries waiting in vCPU v's ring. */
  used(v: number): number
}

export class KvmIoctlError extends Error {
  constructor(
    readonly ioctl: string,
    readonly errno: 'EINVAL' | 'ENOENT',
    detail: string,
  ) {
    super(`${ioctl}: -${errno}: ${detail}`)
    this.name = 'KvmIoctlError'
  }
}
