/**
 * The host's load, recorded with every run: under TCG each QEMU's vCPU and migration threads need a
 * host core, and on a 2-core machine other work on the host stretches the migration's times (the
 * sender misses its 100 ms windows, the guest's pacing drifts). A capture made under heavy load
 * says so in its config.json, and can wait for a quieter moment (--max-load).
 */
import {readFileSync, readdirSync} from 'node:fs'
import {cpus} from 'node:os'
import {setTimeout as sleep} from 'node:timers/promises'

export interface LoadSample {
  /** 1-, 5- and 15-minute load averages (/proc/loadavg). */
  avg: [number, number, number]
  /** Runnable / total scheduling entities at that moment. */
  running: string
  /** When (ISO time). */
  at: string
}

export function loadSample(): LoadSample {
  const f = readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/)
  return {avg: [Number(f[0]), Number(f[1]), Number(f[2])], running: f[3] ?? '', at: new Date().toISOString()}
}

export const hostCpus = (): number => cpus().length

/**
 * Wait until the 1-minute load average is at most `max` (checked every 5 s), up to `timeoutS`.
 * Returns the last sample and whether it got there.
 */
export async function waitForLoad(max: number, timeoutS: number, onWait?: (s: LoadSample) => void): Promise<{sample: LoadSample; ok: boolean; waitedS: number}> {
  const t0 = Date.now()
  for (;;) {
    const s = loadSample()
    const waitedS = (Date.now() - t0) / 1000
    if (s.avg[0] <= max) return {sample: s, ok: true, waitedS}
    if (waitedS >= timeoutS) return {sample: s, ok: false, waitedS}
    onWait?.(s)
    await sleep(5000)
  }
}

/**
 * CPU time by kind, for the share of the host a run really had: the load average counts niced
 * work too (other helpers here run at nice 19 and barely slow a normal-priority QEMU), so the
 * run also records what /proc/stat says was spent, and what the QEMUs themselves used.
 */
export interface CpuSnapshot {
  /** Clock ticks (USER_HZ) since boot: user (not niced), nice, system, irq + softirq (loopback TCP of the migration stream lands here), idle (incl. iowait). */
  user: number
  nice: number
  system: number
  irq: number
  idle: number
  /** utime + stime of each watched process. */
  procs: Record<number, number>
  atMs: number
}

const TICKS_PER_S = 100 // USER_HZ on Linux x86

function procTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return Number(f[11]) + Number(f[12]) // utime, stime (fields 14, 15)
  } catch {
    return 0
  }
}

export function cpuSnapshot(pids: readonly number[]): CpuSnapshot {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0] = f
  return {user, nice, system, irq: irq + softirq, idle: idle + iowait, procs: Object.fromEntries(pids.map((p) => [p, procTicks(p)])), atMs: Date.now()}
}

/** Seconds of each kind between two snapshots; `others` = non-niced busy time not used by the watched processes. */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): {wall_s: number; cores: number; qemu_s: number; others_s: number; niced_s: number; irq_s: number; idle_s: number} {
  const s = (x: number): number => Math.round((x / TICKS_PER_S) * 100) / 100
  let qemu = 0
  for (const pid of Object.keys(b.procs)) qemu += (b.procs[Number(pid)] ?? 0) - (a.procs[Number(pid)] ?? 0)
  const busy = b.user - a.user + (b.system - a.system)
  return {wall_s: Math.round(b.atMs - a.atMs) / 1000, cores: hostCpus(), qemu_s: s(qemu), others_s: s(Math.max(0, busy - qemu)), niced_s: s(b.nice - a.nice), irq_s: s(b.irq - a.irq), idle_s: s(b.idle - a.idle)}
}

/** CPU ticks of each thread of a process, summed by thread name (/proc/PID/task/TID/stat's comm). */
export function threadTicks(pid: number): Record<string, number> {
  const out: Record<string, number> = {}
  let tids: string[]
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      out[name] = (out[name] ?? 0) + Number(f[11]) + Number(f[12])
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out
}

/**
 * CPU seconds per thread name between two threadTicks() of one process (the source QEMU: its vCPU
 * thread `CPU 0/TCG`, the migration thread `live_migration`), largest first; threads that ended
 * in between are missing from `b` and left out.
 */
export function threadCpuBetween(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const d = Object.entries(b).map(([k, v]): [string, number] => [k, Math.round(((v - (a[k] ?? 0)) / TICKS_PER_S) * 100) / 100])
  return Object.fromEntries(d.filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]))
}

/**
 * A process's per-thread ticks (threadTicks), sampled every `everyMs` until stop(), keeping each
 * thread name's highest count: a thread that ended (QEMU's migration thread when the migration
 * completes) keeps the ticks it had at the last sample before.
 */
export class ThreadSampler {
  private readonly seen: Record<string, number>
  private timer: NodeJS.Timeout | undefined

  constructor(
    private readonly pid: number,
    everyMs = 200,
    private readonly read: (pid: number) => Record<string, number> = threadTicks,
  ) {
    this.seen = {}
    this.sample()
    this.timer = setInterval(() => this.sample(), everyMs)
    this.timer.unref()
  }

  sample(): void {
    for (const [k, v] of Object.entries(this.read(this.pid))) if (v > (this.seen[k] ?? -1)) this.seen[k] = v
  }

  /** Take a last sample, stop, and return the ticks by thread name (later calls return the same). */
  stop(): Record<string, number> {
    if (this.timer !== undefined) {
      clearInterval(this.timer)
      this.timer = undefined
      this.sample()
    }
    return {...this.seen}
  }
}
