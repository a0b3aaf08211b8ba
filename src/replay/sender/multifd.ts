/**
 * multifd (migration/multifd.c, QEMU 7.2 to 10.x): the pages of the precopy stream go to N
 * channel threads in packets instead of down the migration thread's QEMUFile.
 * - A packet holds up to page_count = MULTIFD_PACKET_SIZE (512 KiB) / page size pages
 *   (multifd_queue_page fills the current packet and hands it to a free channel when full).
 * - On the wire a packet is its header, sizeof(MultiFDPacket_t) = 320 bytes (magic, version,
 *   flags, pages_alloc, normal_pages, next_packet_size, packet_num, 32 reserved bytes, the
 *   ramblock name[256]), plus the page offset array allocated for page_count entries (8 bytes
 *   each: packet_len = 320 + 8 x page_count, 1344 for 4 KiB pages, whatever the packet holds),
 *   then the pages' data: 4096 bytes each, no per-page record header. Checked on the lab's 7.2
 *   runs: multifd-bytes = pages x 4096 + packets x 1344 exactly (lab/runs/multifd-2, -4).
 * - multifd_send_sync_main: the partial packet goes, then every channel sends a header-only
 *   packet with MULTIFD_FLAG_SYNC, and the migration thread waits for all of them. It runs at
 *   setup (ram_save_setup), at the end (ram_save_complete), and in between either after every
 *   RAM section (each ram_save_iterate: 7.2, or the property multifd-flush-after-each-section)
 *   or once per full round of the dirty bitmap (find_dirty_block wrapping around, 8.1+ default),
 *   which also puts RAM_SAVE_FLAG_MULTIFD_FLUSH (8 bytes) on the main channel.
 * - Zero pages: with zero-page-detection=multifd (9.0+) the channel threads find them
 *   (multifd_send_zero_page_detect): such a page takes a slot of the packet (its offset) and no
 *   data. Otherwise (legacy, and every 7.2/8.x run) the migration thread's save_zero_page sends
 *   its 9-byte record on the main channel before the page reaches multifd.
 * - Not in postcopy (pages must be placed atomically) and not in a background snapshot.
 */
import type {ReplaySettings} from '../settings.js'

export const MULTIFD_PACKET_SIZE = 512 * 1024
/** sizeof(MultiFDPacket_t) without the offset array. */
export const MULTIFD_HEADER_BYTES = 320
/** RAM_SAVE_FLAG_MULTIFD_FLUSH: one be64 on the main channel at each per-round flush. */
export const MULTIFD_FLUSH_RECORD_BYTES = 8

/** The multifd figures of a run (the result's stream.multifd). */
export interface MultifdFigures {
  channels: number
  /** Pages per full packet (page_count). */
  pageCount: number
  /** Packets that carried pages. */
  packets: number
  /** Header-only MULTIFD_FLAG_SYNC packets (channels per multifd_send_sync_main). */
  syncPackets: number
  /** multifd_send_sync_main calls. */
  syncs: number
  /** Packet headers and offset arrays on the channels: packets and sync packets x packet_len. */
  headerBytes: number
  /** Page data on the channels (after compression). */
  pageBytes: number
  /** Zero pages sent as an offset in a packet (zero-page-detection=multifd). */
  zeroPages: number
  /** multifd_bytes of query-migrate: headerBytes + pageBytes. */
  bytes: number
}

export class MultifdStream {
  readonly channels: number
  readonly pageCount: number
  /** packet_len: the header and the page_count offsets, on every packet. */
  readonly packetLen: number
  readonly zeroInChannels: boolean
  readonly flushEachSection: boolean
  /** Pages in the packet being filled (0: none open). */
  private filled = 0
  /** Bytes of the open packet (its packet_len and its pages' data), not yet handed to a channel. */
  private openBytes = 0
  packets = 0
  syncPackets = 0
  syncs = 0
  headerBytes = 0
  pageBytes = 0
  zeroPages = 0

  constructor(s: ReplaySettings, pageSize: number) {
    this.channels = s['multifd-channels']
    this.pageCount = Math.max(1, Math.floor(MULTIFD_PACKET_SIZE / pageSize))
    this.packetLen = MULTIFD_HEADER_BYTES + 8 * this.pageCount
    this.zeroInChannels = s['zero-page-detection'] === 'multifd'
    this.flushEachSection = s['multifd-flush-after-each-section']
  }

  /**
   * multifd_queue_page: one page into the current packet. The stream counts a packet's bytes when
   * the packet goes to a channel, whole: QEMU 7.2's multifd_send_pages adds pages x page size +
   * packet_len to the rate limit (qemu_file_acct_rate_limit) and to ram_counters.transferred when
   * it hands a full packet over (8.x+ count it per packet too, in multifd_send_thread). So the
   * 100 ms rate window sees 525 632-byte steps, and a window ends on the packet that crosses the
   * budget: at 128 MiB/s 26 packets, 13 666 432 bytes, against a budget of 13 421 772 (the lab's
   * 7.2 multifd runs: migrate_transferred 13 669 138 bytes a window, the 26 packets and 2 706
   * bytes of zero-page records). Returns the bytes the page handed over: the whole packet when
   * it filled it, else 0.
   */
  queue(dataBytes: number, zero: boolean): number {
    if (zero) this.zeroPages++
    this.pageBytes += dataBytes
    if (this.filled === 0) {
      this.packets++
      this.headerBytes += this.packetLen
      this.openBytes = this.packetLen
    }
    this.openBytes += dataBytes
    if (++this.filled < this.pageCount) return 0
    this.filled = 0
    const b = this.openBytes
    this.openBytes = 0
    return b
  }

  /**
   * multifd_send_sync_main: the open packet is sent as it is, then a SYNC packet per channel.
   * Returns the bytes handed over: the open packet's and the channels' SYNC packets.
   */
  sync(): number {
    const open = this.openBytes
    this.openBytes = 0
    this.filled = 0
    this.syncs++
    this.syncPackets += this.channels
    const b = this.channels * this.packetLen
    this.headerBytes += b
    return open + b
  }

  figures(): MultifdFigures {
    return {
      channels: this.channels,
      pageCount: this.pageCount,
      packets: this.packets,
      syncPackets: this.syncPackets,
      syncs: this.syncs,
      headerBytes: this.headerBytes,
      pageBytes: this.pageBytes,
      zeroPages: this.zeroPages,
      bytes: this.headerBytes + this.pageBytes,
    }
  }
}
