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

export interface ModelComponent {
  readonly id: string
  /** Event kind codes this component consumes in the engine's event loop. */
  readonly kinds: readonly number[]
  reset(): void
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
  data(): Record<string, unknown>
}
