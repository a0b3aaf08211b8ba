/**
 * Postcopy recovery (QEMU's postcopy-recover, 3.0+): a network failure during postcopy, the
 * paused state, the resume handshake and what the guest pays. PostcopyPhase (./postcopy.ts) calls
 * it at the failure and on the destination's faults; this module holds the timing rules, the
 * per-vCPU waits that a failure stretches, and the figures.
 *
 * What QEMU does (migration/migration.c, ram.c, savevm.c, postcopy-ram.c):
 * - the failure: the source's migration thread sees the stream error (migration_detect_error) and
 *   goes to POSTCOPY_PAUSED in postcopy_pause, releasing the channels; the destination's load
 *   thread does the same in postcopy_pause_incoming. Whatever was in the socket buffers or on the
 *   wire never reaches the destination: its receivedmap lacks those pages;
 * - while paused the destination's fault thread blocks (postcopy_pause_fault_thread): a vCPU that
 *   faults on a missing page stays blocked until after the resume; its request is sent then;
 * - the user runs migrate-recover on the destination and migrate resume=true (`migrate -r`) on the
 *   source (`recoverAfterNs` after the failure); the source connects (one RTT), then
 *   postcopy_do_resume: qemu_savevm_state_resume_prepare -> ram_resume_prepare ->
 *   ram_dirty_bitmap_sync_all sends MIG_CMD_RECV_BITMAP per RAMBlock and waits for every
 *   destination receivedmap (ramblock_recv_bitmap_send; one RTT plus the bitmaps' bytes);
 *   ram_dirty_bitmap_reload makes bmap = ~receivedmap, so pages lost in flight are dirty again,
 *   then clears discarded ranges (ramblock_dirty_bitmap_clear_discarded_pages);
 *   ram_state_resume_prepare recounts migration_dirty_pages and resets the scan (ram_state_reset);
 *   with postcopy-preempt the preempt channel is connected again (postcopy_preempt_establish_channel,
 *   one RTT); postcopy_resume_handshake sends MIG_CMD_POSTCOPY_RESUME and waits for
 *   MIG_RP_MSG_RESUME_ACK (one RTT);
 * - the destination, on MIG_CMD_POSTCOPY_RESUME (loadvm_postcopy_handle_resume), acks, re-sends a
 *   request for every page still in page_requested (migrate_send_rp_req_pages_pending) and only
 *   then releases the fault thread: those requests reach the source with the ack and are served
 *   first, on a fresh socket; then the background stream goes on from the start of RAM.
 */
import type {TraceLayout} from '../../trace/layout.js'
import type {CauseSpec} from '../../model/causes.js'
import type {Bitmap} from '../../model/bitmap.js'
import type {HostModel} from '../host.js'

export const RECOVERY_CAUSE: CauseSpec = {
  id: 'postcopy-recovery',
  label: 'sent during postcopy but lost in flight at a network failure: the receivedmap sent back at the resume lacks it, so it is sent again (ram_dirty_bitmap_reload)',
}

/** QEMU_VM_COMMAND byte + be16 command + be16 length (qemu_savevm_command_send). */
const CMD_HEADER_BYTES = 1 + 2 + 2
/** be16 type + be16 length of a return-path message (migrate_send_rp_message). */
const RP_HEADER_BYTES = 2 + 2
/** MIG_RP_MSG_RESUME_ACK carries a be32 value. */
const RESUME_ACK_BYTES = RP_HEADER_BYTES + 4

/** The resume handshake's parts (ns) and the bytes it moves. */
export interface ResumeHandshake {
  /** The new connection of `migrate -r` (the TCP handshake). */
  connectNs: number
  /** MIG_CMD_RECV_BITMAP out, every block's receivedmap back. */
  bitmapNs: number
  /** postcopy_preempt_establish_channel (0 without postcopy-preempt). */
  preemptNs: number
  /** MIG_CMD_POSTCOPY_RESUME out, MIG_RP_MSG_RESUME_ACK back. */
  resumeNs: number
  totalNs: number
  /** The destination's receivedmaps with their headers (ramblock_recv_bitmap_send). */
  bitmapBytes: number
}

/**
 * The handshake's time from the user's `migrate -r` to the source sending again, on a link of
 * `rate` bytes/s each way with round trip `rttNs`.
 */
export function resumeHandshake(layout: TraceLayout, rttNs: number, rate: number, preempt: boolean): ResumeHandshake {
  const perByte = 1e9 / rate
  let cmdBytes = 0
  let bitmapBytes = 0
  for (const b of layout.blocks) {
    const id = 1 + b.name.length
    // MIG_CMD_RECV_BITMAP: the idstr with its length byte.
    cmdBytes += CMD_HEADER_BYTES + id
    // MIG_RP_MSG_RECV_BITMAP header, then be64 size, the little-endian bitmap rounded up to 8
    // bytes, and the be64 RAMBLOCK_RECV_BITMAP_ENDING mark.
    bitmapBytes += RP_HEADER_BYTES + id + 8 + Math.ceil(Math.ceil(b.pages / 8) / 8) * 8 + 8
  }
  const connectNs = rttNs
  const bitmapNs = cmdBytes * perByte + rttNs + bitmapBytes * perByte
  const preemptNs = preempt ? rttNs : 0
  const resumeNs = CMD_HEADER_BYTES * perByte + rttNs + RESUME_ACK_BYTES * perByte
  return {connectNs, bitmapNs, preemptNs, resumeNs, totalNs: connectNs + bitmapNs + preemptNs + resumeNs, bitmapBytes}
}

/** One failure and its recovery, times in ms from the migration start. */
export interface PostcopyPause {
  failMs: number
  /** The user's migrate-recover / migrate -r. */
  recoverMs: number
  /** The source sends again (the resume ack arrived). */
  resumeMs: number
  /** From the failure to the resume: both sides in postcopy-paused / postcopy-recover. */
  pausedMs: number
  /** From the user's recover to the resume: the handshake. */
  handshakeMs: number
  bitmapBytes: number
  /** Pages sent but not received at the failure (socket buffer and wire). */
  pagesLost: number
  /** Requests the destination sent again at the resume (migrate_send_rp_req_pages_pending). */
  requestsResent: number
  /** vCPUs blocked at the failure on a page that was lost. */
  vcpusWaiting: number
  /** vCPU faults on a missing page between the failure and the resume. */
  faultsDuringPause: number
  /** vCPU time blocked because of the failure: the extra wait of the vCPUs whose page was lost, and the whole wait of faults during the pause. */
  guestBlockedMs: number
}

/** `result.postcopy.recovery` (docs/postcopy-snapshot.md). */
export interface PostcopyRecoveryResult {
  failures: number
  /** Failures ignored: during a pause, or once postcopy was over. */
  failuresIgnored: number
  pausedMs: number
  pagesLost: number
  /** Lost pages sent again after a resume (= pagesLost once the run is over). */
  pagesResent: number
  requestsResent: number
  faultsDuringPause: number
  guestBlockedMs: number
  pauses: PostcopyPause[]
}

/** A pause under way or done, in ns (wall time of the run). */
interface PauseNs {
  failNs: number
  recoverNs: number
  resumeNs: number
  bitmapBytes: number
  pagesLost: number
  requestsResent: number
  vcpusWaiting: number
  faultsDuringPause: number
  blockedNs: number
}

export class PostcopyRecovery {
  /** Host page (first page) each vCPU is blocked on, -1 when it runs. */
  private readonly blockPage: Float64Array
  /** Index of the vCPU's blocking fault among the latency samples. */
  private readonly blockSample: Int32Array
  private readonly pauses: PauseNs[] = []
  failuresIgnored = 0
  pagesResent = 0

  constructor(vcpus: number) {
    this.blockPage = new Float64Array(Math.max(1, vcpus)).fill(-1)
    this.blockSample = new Int32Array(Math.max(1, vcpus)).fill(-1)
  }

  get failures(): number {
    return this.pauses.length
  }

  /** The last pause's resume (the source sends again from then), -Infinity before any failure. */
  get resumeNs(): number {
    return this.pauses.at(-1)?.resumeNs ?? -Infinity
  }

  /** A failure at `failNs` is taken unless the link is already down (paused or recovering). */
  accepts(failNs: number): boolean {
    return failNs >= this.resumeNs
  }

  /** Open a pause; the caller fills in what the failure lost. */
  begin(failNs: number, recoverNs: number, resumeNs: number, bitmapBytes: number): void {
    this.pauses.push({failNs, recoverNs, resumeNs, bitmapBytes, pagesLost: 0, requestsResent: 0, vcpusWaiting: 0, faultsDuringPause: 0, blockedNs: 0})
  }

  private get current(): PauseNs {
    return this.pauses.at(-1)!
  }

  lost(pages: number): void {
    this.current.pagesLost += pages
  }

  requestResent(): void {
    this.current.requestsResent++
  }

  /** vCPUs blocked at the failure on a page the destination does not have (it was lost). */
  countWaiting(received: (p: number) => boolean): void {
    let n = 0
    for (let v = 0; v < this.blockPage.length; v++) {
      const a = this.blockPage[v]!
      if (a >= 0 && !received(a)) n++
    }
    this.current.vcpusWaiting += n
  }

  /** vCPU v faulted at `now` on host page a (latency sample `sample`); its page comes at `arrival`. */
  onFault(vcpu: number, a: number, sample: number, now: number, arrival: number): void {
    if (vcpu < 0 || vcpu >= this.blockPage.length) return
    this.blockPage[vcpu] = a
    this.blockSample[vcpu] = sample
    const p = this.pauses.at(-1)
    if (p && now >= p.failNs && now < p.resumeNs) {
      p.faultsDuringPause++
      p.blockedNs += arrival - now
    }
  }

  /** vCPU v's access went through: it is not blocked any more. */
  onRun(vcpu: number): void {
    if (vcpu >= 0 && vcpu < this.blockPage.length) this.blockPage[vcpu] = -1
  }

  /**
   * vCPU v retries its access and finds host page a still missing: if it was blocked on a, the
   * page was lost at a failure and the vCPU simply waits on (the kernel keeps it in the fault; no
   * new fault, the request went again at the resume). Returns the latency sample to stretch, or -1.
   */
  stillBlocked(vcpu: number, a: number): number {
    if (this.pauses.length === 0 || vcpu < 0 || vcpu >= this.blockPage.length) return -1
    return this.blockPage[vcpu] === a ? this.blockSample[vcpu]! : -1
  }

  /** A vCPU waits `ns` longer than its fault first said, because its page was lost. */
  stretched(ns: number): void {
    this.current.blockedNs += ns
  }

  result(startNs: number): PostcopyRecoveryResult {
    const ms = (ns: number): number => ns / 1e6
    const pauses = this.pauses.map(
      (p): PostcopyPause => ({
        failMs: ms(p.failNs - startNs),
        recoverMs: ms(p.recoverNs - startNs),
        resumeMs: ms(p.resumeNs - startNs),
        pausedMs: ms(p.resumeNs - p.failNs),
        handshakeMs: ms(p.resumeNs - p.recoverNs),
        bitmapBytes: p.bitmapBytes,
        pagesLost: p.pagesLost,
        requestsResent: p.requestsResent,
        vcpusWaiting: p.vcpusWaiting,
        faultsDuringPause: p.faultsDuringPause,
        guestBlockedMs: ms(p.blockedNs),
      }),
    )
    const sum = (f: (p: PostcopyPause) => number): number => pauses.reduce((s, p) => s + f(p), 0)
    return {
      failures: pauses.length,
      failuresIgnored: this.failuresIgnored,
      pausedMs: sum((p) => p.pausedMs),
      pagesLost: sum((p) => p.pagesLost),
      pagesResent: this.pagesResent,
      requestsResent: sum((p) => p.requestsResent),
      faultsDuringPause: sum((p) => p.faultsDuringPause),
      guestBlockedMs: sum((p) => p.guestBlockedMs),
      pauses,
    }
  }
}

/**
 * ram_dirty_bitmap_reload at a resume: bmap = ~receivedmap. The pages neither received nor dirty
 * (nor, with `discarded`, unplugged) are the ones sent and lost in flight; they become dirty again
 * with their own cause (the ledger calls their second send redundant) and may be sent once more.
 * Returns how many; `onLost` sees each.
 */
export function reloadDirtyBitmap(mb: HostModel['mb'], layout: TraceLayout, received: Bitmap, discarded: Uint32Array | undefined, cause: number, onLost: (page: number) => void): number {
  const rw = received.words
  const bw = mb.bmap.words
  let lost = 0
  for (const b of layout.blocks) {
    for (let p = b.firstPage; p < b.firstPage + b.pages; p++) {
      const w = p >>> 5
      const m = 1 << (p & 31)
      if ((rw[w]! & m) !== 0 || (bw[w]! & m) !== 0 || (discarded !== undefined && (discarded[w]! & m) !== 0)) continue
      mb.markPage(p, cause)
      onLost(p)
      lost++
    }
  }
  mb.takeNewPages()
  return lost
}
