/**
 * Positional reads of a plain trace file that block, with a turn of the event loop now and then.
 *
 * Why block: a replay or a pass over a trace is one CPU-bound thread; while it waits for an
 * asynchronous read it has nothing else to do, and each such read is a round trip through libuv's
 * thread pool (~80 µs on this 2-CPU machine for a 4-byte read, ~0.5 ms more than fs.readSync for a
 * 4.7 MB one). A 10^7-event Arrow replay spent a fifth of its wall time waiting on them
 * (npm run bench -- trace-io). A read from the page cache blocks for a copy's time only.
 *
 * Why turn: signal handlers (Ctrl-C leaves no half-written output), timers (progress) and worker
 * messages run only when the event loop does. A pass that only ever read synchronously would
 * never let it: so at most every TURN_MS of reading and decoding, a read awaits one setImmediate.
 */
import {closeSync, fstatSync, openSync, readSync} from 'node:fs'

/** Longest stretch without an event-loop turn: a Ctrl-C waits no longer than this. */
export const TURN_MS = 10

let lastTurn = performance.now()

/** One event-loop turn when the last one is more than TURN_MS ago. */
export async function turnIfDue(): Promise<void> {
  const now = performance.now()
  if (now - lastTurn < TURN_MS) return
  await new Promise<void>((resolve) => setImmediate(resolve))
  lastTurn = performance.now()
}

/** A plain file opened for blocking positional reads. Errors are the fs's (the caller names the file). */
export class BlockingFile {
  private fd: number | undefined

  constructor(path: string) {
    this.fd = openSync(path, 'r')
  }

  get size(): number {
    return fstatSync(this.fd!).size
  }

  /** Fill dst[at, at+n) from file position pos; how many bytes there were (fewer only at the end). */
  async read(dst: Uint8Array, at: number, n: number, pos: number): Promise<number> {
    let got = 0
    while (got < n) {
      const k = readSync(this.fd!, dst, at + got, n - got, pos + got)
      if (k === 0) break
      got += k
    }
    await turnIfDue()
    return got
  }

  close(): void {
    if (this.fd === undefined) return
    closeSync(this.fd)
    this.fd = undefined
  }
}
