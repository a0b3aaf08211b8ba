/**
 * Progress bars on stderr, only when stderr is a terminal (never in pipes, CI logs or tests) and
 * not --quiet. cli-progress is loaded only when a bar is shown. Every bar has a total and an ETA:
 * a trace is measured in bytes read of its file (compressed bytes for .gz), a sweep in runs, each
 * running one counted by the share of its trace read so far.
 */
import {statSync} from 'node:fs'
import {onTraceBytesRead} from '../trace/read/progress.js'
import {formatBytes} from '../util/units.js'

export interface Progress {
  update(value: number, total?: number): void
  stop(): void
}

const NONE: Progress = {update: () => {}, stop: () => {}}

export function progressWanted(quiet: boolean): boolean {
  return !quiet && process.stderr.isTTY === true
}

type Bar = import('cli-progress').SingleBar

async function newBar(format: string): Promise<Bar> {
  const {default: cliProgress} = await import('cli-progress')
  return new cliProgress.SingleBar(
    {stream: process.stderr, format, hideCursor: true, clearOnComplete: true, fps: 5, etaBuffer: 20, etaAsynchronousUpdate: true, noTTYOutput: false},
    cliProgress.Presets.shades_classic,
  )
}

/**
 * A bar of `total` runs (a sweep). update(done) takes a fractional count: 1.5 = one run finished
 * and the next half read, so the bar and its ETA move while a run is under way.
 */
export async function startProgress(quiet: boolean, label: string, total: number): Promise<Progress> {
  if (!progressWanted(quiet)) return NONE
  const bar = await newBar(`${label} [{bar}] {runs}/{runsTotal} runs {percentage}% | ETA {eta_formatted}`)
  const scale = 1000
  bar.start(total * scale, 0, {runs: 0, runsTotal: total})
  return {
    update(value) {
      bar.update(Math.round(value * scale), {runs: Math.floor(value), runsTotal: total})
    },
    stop() {
      bar.stop()
    },
  }
}

/**
 * A bar over one trace file: bytes read of `path` out of its size. A second pass over the file
 * (replay's look for mig_start, then the replay) starts the bar again.
 */
export async function startFileProgress(quiet: boolean, label: string, path: string): Promise<Progress> {
  if (!progressWanted(quiet)) return NONE
  let size: number
  try {
    size = statSync(path).size
  } catch {
    return NONE // the command will report the missing file itself
  }
  if (size === 0) return NONE
  const bar = await newBar(`${label} [{bar}] {percentage}% | {read} of {size} | ETA {eta_formatted}`)
  bar.start(size, 0, {read: formatBytes(0), size: formatBytes(size)})
  let last = 0
  const off = onTraceBytesRead((p, bytes) => {
    if (p !== path) return
    if (bytes < last) bar.start(size, 0, {read: formatBytes(0), size: formatBytes(size)})
    last = bytes
    bar.update(Math.min(bytes, size), {read: formatBytes(bytes), size: formatBytes(size)})
  })
  return {
    update() {},
    stop() {
      off()
      bar.stop()
    },
  }
}

/** The share of `path` read so far, reported to `onFraction` (0..1) while `run` runs. */
export async function withReadFraction<T>(path: string, onFraction: ((f: number) => void) | undefined, run: () => Promise<T>): Promise<T> {
  if (!onFraction) return run()
  let size = 0
  try {
    size = statSync(path).size
  } catch {
    return run()
  }
  const off = onTraceBytesRead((p, bytes) => {
    if (p === path && size > 0) onFraction(Math.min(1, bytes / size))
  })
  try {
    return await run()
  } finally {
    off()
  }
}
