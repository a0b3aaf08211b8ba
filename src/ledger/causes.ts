/**
 * Why a page was sent again with the same content (a double-copy). A cause is attached to a page
 * when its migration-bitmap bit is set by a dirty source at a sync, and read when the page turns out
 * to be unchanged since its last send. The list is open: later model components (VFIO, virtio-mem)
 * register their own causes at load time with `registerCause`.
 * Codes live in 4 bits of the ledger's per-page byte, so there can be at most 16.
 */
export interface CauseSpec {
  id: string
  /** One line for reports. */
  label: string
}

const causes: CauseSpec[] = [
  {id: 'unattributed', label: 'no dirty source claimed the bit'},
  {
    id: 'lazy-clear-window',
    label: "written after the sync and before its own send: KVM re-logged it after the chunk's lazy CLEAR (or the CLEAR did not cover it), so the next sync brings it back",
  },
  {id: 'sync-window', label: 'written after the sync re-protected it (legacy GET / ring reset) and before its own send, so the next sync brings it back'},
  {id: 'dma-vhost', label: 'bit from a QEMU-side source (emulated-device DMA via address_space_map, vhost log) that KVM never clears'},
  {id: 'initially-set', label: 'KVM_DIRTY_LOG_INITIALLY_SET bit never cleared before the sync read it'},
  {id: 'not-dirty-in-model', label: 'recorded driver: the real run sent a page the model did not hold dirty'},
]

export const MAX_CAUSES = 16

/** Add a cause (idempotent by id); returns its code. */
export function registerCause(spec: CauseSpec): number {
  const i = causes.findIndex((c) => c.id === spec.id)
  if (i >= 0) return i
  if (causes.length >= MAX_CAUSES) throw new Error(`bug: more than ${MAX_CAUSES} send causes registered`)
  causes.push(spec)
  return causes.length - 1
}

export function causeCode(id: string): number {
  const i = causes.findIndex((c) => c.id === id)
  if (i < 0) throw new Error(`bug: unknown cause ${id}`)
  return i
}

export function causeList(): readonly CauseSpec[] {
  return causes
}

export const Cause = {
  unattributed: 0,
  lazyClearWindow: 1,
  syncWindow: 2,
  dmaVhost: 3,
  initiallySet: 4,
  notDirtyInModel: 5,
} as const
