/**
 * The sender's CPU: how much of a core each sender thread gets, and so how fast the threads can
 * produce pages. QEMU's migration thread (or each multifd channel thread, multifd_send_thread)
 * is an ordinary host thread: on a host whose cores are shared with the guest's vCPU threads it
 * gets its fair share of them, not a core of its own.
 * Model (docs/stream.md): `host-cpus` = H cores shared by T sender threads and V vCPUs that are
 * busy (a traced guest is writing); each runnable thread gets min(1, H / (T + V)) of a core, so
 * the threads together do the work of T x min(1, H / (T + V)) cores. H = 0: unlimited, T cores.
 */
import type {ReplaySettings} from '../settings.js'

/** Cores' worth of work `threads` sender threads do beside `vcpus` busy vCPUs (host-cpus). */
export function coreShare(s: ReplaySettings, threads: number, vcpus: number): number {
  const h = s['host-cpus']
  if (h === 0) return threads
  return threads * Math.min(1, h / (threads + vcpus))
}
