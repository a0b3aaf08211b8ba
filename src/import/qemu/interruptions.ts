/**
 * Two things that interrupt a migration from outside, as a QEMU 7.2+ source log shows them:
 * a postcopy network failure with its recovery, and a system reset reaching a virtio-mem device.
 *
 * Postcopy failure (migration/migration.c, QEMU 3.0+): when the stream breaks during postcopy the
 * source's migration thread goes to POSTCOPY_PAUSED in postcopy_pause() (migration_detect_error ->
 * `migrate_set_state new state postcopy-paused`); its return-path thread may see the broken socket
 * first (source_return_path_thread -> postcopy_pause_return_path_thread: `postcopy_pause_return_path`).
 * The user's `migrate resume=true` connects a new channel and migrate_fd_connect() moves the state to
 * POSTCOPY_RECOVER (`postcopy-recover`); postcopy_do_resume() then does the handshake and the state
 * is `postcopy-active` again. A handshake that fails pauses again (recover -> paused) and the user
 * retries: the whole episode, from the first sign of the failure to the next `postcopy-active`, is
 * one failure, recovered by the last `postcopy-recover` in it (the one that worked).
 *
 * System reset (hw/virtio/virtio-mem.c, 7.2): virtio_mem_system_reset() calls virtio_mem_unplug_all(),
 * which traces `virtio_mem_unplugged_all` unless it answers -EBUSY (memory plugged while a migration
 * runs: nothing happens then, and nothing is traced). The guest's own UNPLUG_ALL request goes through
 * the same function, but virtio_mem_unplug_all_request() traces `virtio_mem_unplug_all_request`
 * just before it, synchronously. So an `unplugged_all` line not right after that request is a reset.
 * One reset runs every device's handler in one go (qemu_devices_reset): lone lines with nothing but
 * `virtio_mem_resized_usable_region` between them, within RESET_BURST_US, are one reset.
 */

/** One postcopy failure as the source log shows it (µs, the log's clock; -1 = not seen). */
export interface PostcopyPause {
  /** The line (1-based) that showed the failure first: the mig_net_fail event sits there. */
  line: number
  failUs: number
  /** The last `postcopy-recover` of the episode: the user's resume that worked. */
  recoverUs: number
  /** `postcopy-active` again: the handshake is over and the source sends. */
  resumeUs: number
}

/** Follows the source's migration states and return-path pauses; collects the failure episodes. */
export class PostcopyPauseTracker {
  readonly pauses: PostcopyPause[] = []
  private postcopy = false
  private open: PostcopyPause | undefined

  /** `migrate_set_state new state <state>` at `tUs`, line `line`. */
  state(state: string, tUs: number, line: number): void {
    if (state === 'postcopy-active') {
      if (this.open !== undefined) this.open.resumeUs = tUs
      this.open = undefined
      this.postcopy = true
    } else if (state === 'postcopy-paused') {
      this.pause(tUs, line)
    } else if (state === 'postcopy-recover') {
      if (this.open !== undefined) this.open.recoverUs = tUs
    } else if (state === 'completed' || state === 'failed' || state === 'cancelled') {
      this.open = undefined
      this.postcopy = false
    }
  }

  /** postcopy_pause_return_path: the return-path thread found the channel broken. */
  returnPathPause(tUs: number, line: number): void {
    this.pause(tUs, line)
  }

  private pause(tUs: number, line: number): void {
    if (!this.postcopy || this.open !== undefined) return
    this.open = {line, failUs: tUs, recoverUs: -1, resumeUs: -1}
    this.pauses.push(this.open)
  }
}

/** Reset handlers of one qemu_devices_reset() run back to back: lone lines this close are one reset. */
export const RESET_BURST_US = 50_000

/**
 * What a virtio-mem line means for resets: not one (a request, a response, the unplug-all a
 * request asked for); a system reset starting here (every virtio-mem device gets it); another
 * device's handler of the reset just seen.
 */
export const ResetVerdict = {None: 0, Reset: 1, SameReset: 2} as const
export type ResetVerdict = (typeof ResetVerdict)[keyof typeof ResetVerdict]

/** Tells the `virtio_mem_unplugged_all` lines of system resets from those of UNPLUG_ALL requests. */
export class VmemResetTracker {
  private afterRequest = false
  private lastResetUs = -Infinity
  private inBurst = false

  /** Feed every virtio-mem line in order (`name` = the QEMU event). */
  observe(name: string, tUs: number): ResetVerdict {
    if (name === 'virtio_mem_unplug_all_request') {
      this.afterRequest = true
      this.inBurst = false
      return ResetVerdict.None
    }
    if (name === 'virtio_mem_resized_usable_region') return ResetVerdict.None
    if (name !== 'virtio_mem_unplugged_all') {
      this.afterRequest = false
      this.inBurst = false
      return ResetVerdict.None
    }
    if (this.afterRequest) {
      this.afterRequest = false
      return ResetVerdict.None
    }
    const same = this.inBurst && (tUs < 0 || tUs - this.lastResetUs <= RESET_BURST_US)
    this.inBurst = true
    this.lastResetUs = tUs
    return same ? ResetVerdict.SameReset : ResetVerdict.Reset
  }
}
