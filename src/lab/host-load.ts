/**
 * The host's load, recorded with every run: under TCG each QEMU's vCPU and migration threads need a
 * host core, and on a 2-core machine other work on the host stretches the migration's times (the
 * sender misses its 100 ms windows, the guest's pacing drifts). A capture made under heavy load
 * says so in its config.json, and can wait for a quieter moment (--max-load).
 */
import {readFileSync} from 'node:fs'
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
