/**
 * A progress bar on stderr, only when stderr is a terminal (never in pipes, CI logs or tests) and
 * not --quiet. cli-progress is loaded only when a bar is shown.
 */
export interface Progress {
  update(value: number, total?: number): void
  stop(): void
}

const NONE: Progress = {update: () => {}, stop: () => {}}

export function progressWanted(quiet: boolean): boolean {
  return !quiet && process.stderr.isTTY === true
}

/** A bar of `total` steps (items) or, when total is undefined, a running counter (events). */
export async function startProgress(quiet: boolean, label: string, total?: number): Promise<Progress> {
  if (!progressWanted(quiet)) return NONE
  const {default: cliProgress} = await import('cli-progress')
  const format = total === undefined ? `${label} {value} events` : `${label} [{bar}] {value}/{total} {percentage}% | ETA {eta_formatted}`
  const bar = new cliProgress.SingleBar({stream: process.stderr, format, hideCursor: true, clearOnComplete: true, fps: 5, etaBuffer: 4}, cliProgress.Presets.shades_classic)
  bar.start(total ?? 0, 0)
  let last = 0
  return {
    update(value, t) {
      // counters of events arrive per batch: redraw at most ~every 1% of a bar or 64k events
      if (total === undefined && value - last < 65536) return
      last = value
      if (t !== undefined) bar.setTotal(t)
      bar.update(value)
    },
    stop() {
      bar.stop()
    },
  }
}
