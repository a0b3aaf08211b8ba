/**
 * Which `ram_save_page` lines of a QEMU source trace belong to the first round over guest RAM: the
 * pages the migration found non-zero as it first visited them, i.e. the memory's content when the
 * migration started (the importer's `populated` map), and what `lab matrix` keeps of a thinned
 * trace for it (src/lab/keep.ts).
 *
 * QEMU (migration/ram.c, 7.2 to master): setup sets every page of `bmap` (ram_list_init_bitmaps),
 * and ram_find_and_save_block scans from the cursor (`last_seen_block`/`last_page`) in RAMBlock
 * list order and page order; **a sync does not reset the cursor** (only ram_state_reset does). So
 * the first round over RAM ends when the cursor wraps (find_dirty_block sets `complete_round`),
 * not at the second sync: ram_save_pending syncs as soon as the pending bytes fall under the
 * threshold (bandwidth x downtime-limit, tens of MB), usually before the round ends, and the
 * pages after that sync up to the wrap are still first visits, as are the stop-copy's when the
 * switchover came before the wrap (ram_save_complete continues from the cursor). An idle guest
 * switching over mid-round sent 5 001 normal pages in its stop-copy, 4 938 of them first visits.
 *
 * The wrap shows as a `ram_save_page` that goes back: a block earlier in list order (the order the
 * round first met the blocks) or an offset at or below the last one in the same block. One case
 * it cannot see: after the wrap, a page of the round's last block above every non-zero page the
 * round sent there; the RAMBlocks after `pc.ram` on a PC (the BIOS and option ROMs) hold data, so
 * the round ends in one of them. A thinned trace lacks the iteration passes' lines (keep.ts keeps
 * this round's); so that its stop-copy lines are not taken for the round, a live sync that starts
 * after the second with no `ram_save_page` since the sync before it ends the round too (QEMU
 * sends pages between two live syncs unless every page it sent was zero: then the round is only
 * cut short, as before this rule).
 */
export class FirstRound {
  private syncEnds = 0
  private stopped = false
  private pagesSinceSync = 0
  private over = false
  private readonly order = new Map<string, number>()
  private block = -1
  private lastOffset = -1

  /** migration_bitmap_sync_start. */
  syncStart(): void {
    if (this.syncEnds >= 2 && !this.stopped && this.pagesSinceSync === 0) this.over = true
  }

  /** migration_bitmap_sync_end. */
  syncEnd(): void {
    this.syncEnds++
    this.pagesSinceSync = 0
  }

  /**
   * The source stopped the guest for good: migration_completion's vm stop (the stop-copy goes on
   * from the cursor), or postcopy_start, whose ram_postcopy_send_discard_bitmap resets the cursor
   * (ram_state_reset): what follows is the postcopy stream and its requests, not first visits.
   */
  stop(postcopy = false): void {
    this.stopped = true
    if (postcopy) this.over = true
  }

  /** A ram_save_page of `block` at byte `offset`: true when it is a first visit of the first round. */
  page(block: string, offset: number): boolean {
    this.pagesSinceSync++
    if (this.over) return false
    let idx = this.order.get(block)
    if (idx === undefined) this.order.set(block, (idx = this.order.size))
    if (idx < this.block || (idx === this.block && offset <= this.lastOffset)) {
      this.over = true
      return false
    }
    this.block = idx
    this.lastOffset = offset
    return true
  }

  /** Before the second sync's end: the bulk stage (what multifd's page counts still use). */
  get beforeSecondSync(): boolean {
    return this.syncEnds < 2
  }
}
