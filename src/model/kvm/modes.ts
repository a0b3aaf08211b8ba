/**
 * KVM dirty-logging modes as objects: code asks a mode for its traits (`family`, `manualProtect`,
 * `initiallySet`, `lazyClear`) instead of comparing names, so a new mode is one entry here plus its
 * KvmDirtyLog class. The trace header's `dirtyTracking` and the `dirty-log` setting name a mode.
 */
import type {DirtyTrackingSpec} from '../../trace/header.js'

export type DirtyLogModeName = 'bitmap' | 'manual' | 'manual-initially-set' | 'ring'

export interface DirtyLogMode {
  readonly name: DirtyLogModeName
  /** `bitmap`: per-memslot bitmaps read with KVM_GET_DIRTY_LOG; `ring`: per-vCPU dirty rings. */
  readonly family: 'bitmap' | 'ring'
  /** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: GET only copies, KVM_CLEAR_DIRTY_LOG re-protects. */
  readonly manualProtect: boolean
  /** KVM_DIRTY_LOG_INITIALLY_SET: logging starts with every bit set and nothing protected. */
  readonly initiallySet: boolean
  /**
   * QEMU's listener has log_clear, so the migration bitmap's lazy clear (clear_bmap) re-protects
   * chunk by chunk at the first send after a sync (kvm_log_clear is a no-op without manual
   * protect; the ring has no log_clear at all: kvm_memory_listener_register).
   */
  readonly lazyClear: boolean
  readonly doc: string
}

const mode = (m: DirtyLogMode): DirtyLogMode => m

export const DIRTY_LOG_MODES: readonly DirtyLogMode[] = [
  mode({name: 'bitmap', family: 'bitmap', manualProtect: false, initiallySet: false, lazyClear: false, doc: 'legacy KVM_GET_DIRTY_LOG: get-and-clear, re-protect at the GET'}),
  mode({name: 'manual', family: 'bitmap', manualProtect: true, initiallySet: false, lazyClear: true, doc: 'KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: GET copies, KVM_CLEAR_DIRTY_LOG clears in 64-page chunks'}),
  mode({name: 'manual-initially-set', family: 'bitmap', manualProtect: true, initiallySet: true, lazyClear: true, doc: "manual plus KVM_DIRTY_LOG_INITIALLY_SET (QEMU's default since 4.0)"}),
  mode({name: 'ring', family: 'ring', manualProtect: false, initiallySet: false, lazyClear: false, doc: 'KVM_CAP_DIRTY_LOG_RING: per-vCPU rings harvested by QEMU'}),
]

export const DIRTY_LOG_MODE_NAMES: readonly DirtyLogModeName[] = DIRTY_LOG_MODES.map((m) => m.name)

export function dirtyLogMode(name: DirtyLogModeName): DirtyLogMode {
  const m = DIRTY_LOG_MODES.find((x) => x.name === name)
  if (!m) throw new Error(`bug: unknown dirty-log mode ${name}`)
  return m
}

/** The mode a trace header's `dirtyTracking` describes. */
export function modeOfHeader(dt: DirtyTrackingSpec): DirtyLogMode {
  if (dt.mode === 'ring') return dirtyLogMode('ring')
  const m = DIRTY_LOG_MODES.find((x) => x.family === 'bitmap' && x.manualProtect === dt.manualProtect && x.initiallySet === (dt.manualProtect && dt.initiallySet))
  return m ?? dirtyLogMode('bitmap')
}

/**
 * The mask QEMU hands KVM_CLEAR_DIRTY_LOG (kvm_log_clear_one_slot): `known-dirty` is the part of the
 * last GET snapshot inside the range (QEMU >= 4.0, closing the 2019 race); `all-ones` clears the
 * whole range, wiping bits logged after the GET (the naive design; loses writes).
 */
export const CLEAR_POLICIES = ['known-dirty', 'all-ones'] as const
export type ClearPolicy = (typeof CLEAR_POLICIES)[number]
