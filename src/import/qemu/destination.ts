/**
 * The destination QEMU's trace of a postcopy run (the lab's trace-dst.log.gz, or
 * trace-dst.postcopy.log.gz without its precopy page loads): what the destination saw after the
 * switchover, kept as observation beside the source's trace. Read here:
 *  - `migrate_set_state new state postcopy-active`: the destination takes the package's LISTEN
 *    (loadvm_postcopy_handle_listen) and, once the device state in the package is loaded, RUN starts
 *    the guest: the earliest host time the destination guest can run again;
 *  - `postcopy_ram_fault_thread_request`: one line per userfault the fault thread turned into a
 *    page request (postcopy_ram_fault_thread -> postcopy_request_page -> migrate_send_rp_req_pages);
 *  - `ram_discard_range`: the switchover's discard ranges, applied one madvise each on the incoming
 *    thread (loadvm_postcopy_ram_handle_discard) before it reads the package: the last unbroken run
 *    of such lines before postcopy-active (the advise-time ones come before the precopy loads); the
 *    host's figure for the replay's postcopy-discard-page-cost.
 * The faults are QEMU's outcome, not guest input: they go into the header's observed figures and
 * are never replayed (the model predicts its own from the guest's accesses).
 */
import {COMPILED_EVENTS} from './formats.js'
import {createArgs, parseArgs, parsePrefix, type LinePrefix} from './line.js'
import {readLines} from './read-lines.js'
import {UserError} from '../../util/errors.js'
import {readJsonFile} from '../../util/json-file.js'

export interface DestinationFault {
  /** Host time (µs since the epoch). */
  tUs: number
  rb: string
  offset: number
}

export interface DestinationTrace {
  file: string
  /** Host time (µs) of the destination's switch to postcopy-active, or -1 (not in the log). */
  postcopyActiveUs: number
  faults: number
  /** The first 1000 faults. */
  first: DestinationFault[]
  /**
   * Page requests from entering the page_requested tree to the placing of the page
   * (postcopy_page_req_add -> _del, by host address): the fault latency QEMU 10.1 reports as
   * postcopy-latency, in ms; empty when the trace has no such lines.
   */
  latencyMs: number[]
  /** Host pages placed after the switch (postcopy_place_page / _zero), and the first and last time (µs). */
  placed: number
  placedFirstUs: number
  placedLastUs: number
  /**
   * The switchover's discards as the destination applied them: ranges, pages (4 KiB), and the time
   * from the first to the last range (µs); undefined without ram_discard_range lines.
   */
  discards?: {ranges: number; pages: number; firstUs: number; lastUs: number}
  lines: number
}

/** Lines that may sit between two ranges of one discard phase without ending it. */
const DISCARD_PHASE = new Set(['ram_discard_range', 'ram_block_discard_range', 'loadvm_postcopy_ram_handle_discard', 'loadvm_postcopy_ram_handle_discard_header', 'loadvm_postcopy_ram_handle_discard_end'])

/** Read a destination trace log (plain or gzip). A log without the postcopy switch is refused. */
export async function readDestinationTrace(file: string): Promise<DestinationTrace> {
  const r: DestinationTrace = {file, postcopyActiveUs: -1, faults: 0, first: [], latencyMs: [], placed: 0, placedFirstUs: -1, placedLastUs: -1, lines: 0}
  const pending = new Map<number, number>()
  const pre: LinePrefix = {tUs: -1, nameStart: 0, nameEnd: 0}
  const args = createArgs()
  let traceLines = 0
  let run: DestinationTrace['discards']
  let runEnded = false
  for await (const line of readLines(file)) {
    r.lines++
    if (line.length === 0 || !parsePrefix(line, pre)) continue
    traceLines++
    const name = line.slice(pre.nameStart, pre.nameEnd)
    // Any other line ends a run of discards; the next range starts a new one, so the run kept at
    // postcopy-active is the switchover's (the advise-time whole-block discards come before the loads).
    if (!DISCARD_PHASE.has(name)) runEnded = true
    const ev = COMPILED_EVENTS.get(name)
    if (ev === undefined) continue
    if (ev.spec.role === 'discard_range') {
      if (r.postcopyActiveUs >= 0) continue
      parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, r.lines)
      if (run === undefined || runEnded) run = {ranges: 0, pages: 0, firstUs: pre.tUs, lastUs: pre.tUs}
      runEnded = false
      run.ranges++
      run.pages += Math.ceil(args.num[2]! / 4096)
      run.lastUs = pre.tUs
    } else if (ev.spec.role === 'set_state') {
      parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, r.lines)
      if (args.str[0] === 'postcopy-active' && r.postcopyActiveUs < 0) {
        r.postcopyActiveUs = pre.tUs
        if (run !== undefined) r.discards = run
      }
    } else if (ev.spec.role === 'postcopy_fault') {
      parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, r.lines)
      r.faults++
      if (r.first.length < 1000) r.first.push({tUs: pre.tUs, rb: args.str[1]!, offset: args.num[2]!})
    } else if (ev.spec.role === 'postcopy_place') {
      r.placed++
      if (r.placedFirstUs < 0) r.placedFirstUs = pre.tUs
      r.placedLastUs = pre.tUs
    } else if (ev.spec.role === 'postcopy_req') {
      parseArgs(ev, line.slice(pre.nameEnd + 1), args, file, r.lines)
      const addr = args.num[0]!
      if (name === 'postcopy_page_req_add') pending.set(addr, pre.tUs)
      else {
        const at = pending.get(addr)
        if (at !== undefined) {
          r.latencyMs.push((pre.tUs - at) / 1000)
          pending.delete(addr)
        }
      }
    }
  }
  if (traceLines === 0) throw new UserError('no QEMU trace-event line in the destination trace', {file, expected: "the destination QEMU's -trace ... -D log (the lab's trace-dst.log.gz)"})
  if (r.postcopyActiveUs < 0)
    throw new UserError('the destination trace never enters postcopy', {file, expected: "a line '…:migrate_set_state new state postcopy-active' (a postcopy run's destination, traced with migrate_set_state)"})
  return r
}

/**
 * The destination's final query-migrate: bare, QMP's `{"return": ...}`, or the lab's final-dst.json
 * (`{"query-migrate": ..., "query-status": ...}`). Its postcopy-blocktime is what the guest waited.
 */
export function readDestinationStats(path: string): Record<string, unknown> {
  const raw = readJsonFile(path, {what: "the destination's query-migrate file", expected: "QEMU's query-migrate reply as JSON (the lab's final-dst.json)"})
  let o = raw as Record<string, unknown> | null
  if (typeof o === 'object' && o !== null && !Array.isArray(o)) {
    if (typeof o['query-migrate'] === 'object') o = o['query-migrate'] as Record<string, unknown>
    else if (typeof o.return === 'object') o = o.return as Record<string, unknown>
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o) || typeof o.status !== 'string')
    throw new UserError('not a query-migrate reply', {file: path, field: 'status', expected: 'a migration status string such as "completed"', found: JSON.stringify(o?.status ?? null)})
  if (o['postcopy-blocktime'] !== undefined && typeof o['postcopy-blocktime'] !== 'number')
    throw new UserError('not a query-migrate reply', {file: path, field: 'postcopy-blocktime', expected: 'a number of ms', found: JSON.stringify(o['postcopy-blocktime'])})
  return o
}

/** count, mean, p50, p90 (nearest rank) and max of the observed fault latencies (ms). */
export function latencySummary(ms: readonly number[]): {count: number; meanMs: number; p50Ms: number; p90Ms: number; maxMs: number} | undefined {
  const n = ms.length
  if (n === 0) return undefined
  const s = Float64Array.from(ms).sort()
  const pct = (q: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!
  return {count: n, meanMs: s.reduce((a, b) => a + b, 0) / n, p50Ms: pct(0.5), p90Ms: pct(0.9), maxMs: s[n - 1]!}
}

/**
 * What stood in the stream ahead of a requested page, on average: the mean request-to-placement time
 * times the rate pages were placed at (placed host pages x (4 KiB + 8 header bytes) over the placing
 * time). Without postcopy-preempt a requested page waits behind what the sockets hold; this is the
 * host's figure for the replay's `socket-buffer` (on localhost: the sender's buffer and the
 * destination's receive queue, which TCP autotuning grows while the loading thread lags).
 * Undefined without req_add/_del and place_page lines (the lab's --trace pages has them).
 */
export function requestBacklogBytes(d: DestinationTrace, pageSize = 4096): number | undefined {
  const lat = latencySummary(d.latencyMs)
  const span = (d.placedLastUs - d.placedFirstUs) / 1e6
  if (lat === undefined || d.placed < 2 || span <= 0) return undefined
  return Math.round(((lat.meanMs / 1000) * d.placed * (pageSize + 8)) / span)
}
