/**
 * Why a page was sent again with the same content (a double-copy). A dirty source names a cause
 * when it sets a page's migration-bitmap bit; the ledger reads it when the page turns out to be
 * unchanged since its last send.
 * Causes are declared by the model parts that give them (specs: id and label) and numbered per
 * run by a CauseTable, so a run lists only the causes of the parts it has and a new part brings
 * its own causes without a global registry.
 */
export interface CauseSpec {
  readonly id: string
  /** One line for reports. */
  readonly label: string
}

/** The causes of the core dirty sources (KVM, QEMU-side DMA and vhost). */
export const MODEL_CAUSES = {
  unattributed: {id: 'unattributed', label: 'no dirty source claimed the bit'},
  lazyClearWindow: {
    id: 'lazy-clear-window',
    label: "written after the sync and before its own send: KVM re-logged it after the chunk's lazy CLEAR (or the CLEAR did not cover it), so the next sync brings it back",
  },
  syncWindow: {id: 'sync-window', label: 'written after the sync re-protected it (legacy GET / ring reset) and before its own send, so the next sync brings it back'},
  dmaVhost: {id: 'dma-vhost', label: 'bit from a QEMU-side source (emulated-device DMA via address_space_map, vhost log) that KVM never clears'},
  initiallySet: {id: 'initially-set', label: 'KVM_DIRTY_LOG_INITIALLY_SET bit never cleared before the sync read it'},
} as const satisfies Record<string, CauseSpec>

/** Hands out a run's cause codes; code 0 is always `unattributed` (a bit no source claimed). */
export interface CauseCodes {
  code(spec: CauseSpec): number
}

export class CauseTable implements CauseCodes {
  /** The run's causes, by code. */
  readonly list: CauseSpec[] = [MODEL_CAUSES.unattributed]

  /** @param max codes the consumer can store (the ledger keeps 4 bits per page). */
  constructor(readonly max: number) {}

  code(spec: CauseSpec): number {
    const i = this.list.findIndex((c) => c.id === spec.id)
    if (i >= 0) return i
    if (this.list.length >= this.max) throw new Error(`bug: more than ${this.max} send causes in one run`)
    this.list.push(spec)
    return this.list.length - 1
  }
}
