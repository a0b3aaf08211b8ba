/**
 * The small surface every dirty source plugs into the replay engine with (the "handler" habit:
 * reset / handleEvent / finalize / data, plus the memory-listener hooks QEMU's dirty sources have:
 * log_start, log_sync, log_clear). A source never reaches into another's state; it contributes
 * dirty bits to the migration bitmap through a DirtySink, naming the cause the ledger should blame
 * if the page turns out to be re-sent unchanged.
 */
import type {EventBatch} from '../trace/events.js'

export interface DirtySink {
  /** OR `bits` into migration-bitmap word w (pages w*32..w*32+31); newly set bits get `cause`. */
  mergeWord(w: number, bits: number, cause: number): void
}

/**
 * Where the model reports which cause set a page's bit (the replay wires the send ledger here):
 * the model's output port, so the model never imports the ledger.
 */
export interface PageCauseSink {
  setCause(p: number, code: number): void
  /** setCause of every page of bitmap word w (pages w*32..w*32+31) whose bit is set in `bits`. */
  setCauseWord(w: number, bits: number, code: number): void
}

export interface ModelComponent<D = unknown> {
  readonly id: string
  /** Event kind codes this component consumes in the engine's event loop. */
  readonly kinds: readonly number[]
  /** Back to the start state; `fresh`: the part was just built (its typed arrays are still zero). */
  reset(fresh?: boolean): void
  handleEvent?(b: EventBatch, i: number, now: number): void
  /** memory_global_dirty_log_start(GLOBAL_DIRTY_MIGRATION). */
  logStart?(now: number): void
  logStop?(now: number): void
  /** memory_global_dirty_log_sync: OR this source's dirty bits into the sink. */
  logSync?(sink: DirtySink, lastStage: boolean, now: number): void
  /** memory_region_clear_dirty_bitmap over global pages [a, b). */
  logClear?(a: number, b: number): void
  /**
   * After a whole sync (every logSync, the bits in bmap, the lazy-clear marks): for work QEMU does
   * right after migration_bitmap_sync, e.g. migration_bitmap_clear_discarded_pages after sync #1.
   */
  afterSync?(lastStage: boolean, now: number): void
  /** Time (ns) of this component's next timer, or Infinity. */
  nextTimer?(): number
  onTimer?(now: number): void
  finalize?(now: number): void
  /** What the component saw, for reports (typed per component). */
  data(): D
}

/**
 * A device with migration data of its own, as QEMU's SaveVMHandlers of an iterable device (VFIO):
 * the engine asks every such device the same three questions.
 */
export interface MigratableState {
  /** state_pending_estimate (exact: _exact): the device's part of the pending size. */
  pendingBytes(exact: boolean): number
  /** The part of pendingBytes that is guest RAM (postcopy can send it later: can_postcopy). */
  postcopiableBytes(): number
  /** save_live_iterate: bytes handed to the stream in one turn of the migration loop. */
  iterate(): number
  /** save_live_complete_precopy: bytes sent during the downtime. */
  stopCopy(): number
}

/**
 * Memory a RamDiscardManager (virtio-mem) has discarded: guest writes there are misbehaviour the
 * engine must hand over first, and the migration bitmap may have to drop such ranges again.
 */
export interface DiscardManager {
  /** Words of a page bitmap: 1 = the page is discarded (an unplugged block). */
  readonly discardedWords: Uint32Array
  /** A guest write to a discarded page: counted; false = refused, do not apply it. */
  guestWrite(p: number): boolean
  /** Pages set in `modified` that lie in discarded memory (the destination discards them too). */
  discardedStalePages(modified: {readonly words: Uint32Array; readonly size: number}): number
  /** ramblock_dirty_bitmap_clear_discarded_pages: discarded ranges leave the migration bitmap again. */
  clearDiscardedAgain(): number
}
