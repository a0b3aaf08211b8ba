/**
 * What `lab matrix` keeps of a run so that `lab table --reanalyze` and `migtrace calibrate` can
 * import it again without the work directory: a few MB a run, whatever its length.
 *
 *  - trace-src.thin.log.gz: the source trace without the per-page `ram_save_page` lines the
 *    comparison does not read. The importer reads them for two things only: the pages QEMU found
 *    non-zero on its first round over RAM (up to the cursor's wrap, src/import/qemu/first-round.ts:
 *    the `populated` map) and the rate
 *    pages left at once the guest stopped (the switchover's link-bandwidth). Those lines are kept,
 *    the iteration passes' are dropped (a replay with --driver qemu models its own sends), as is
 *    nothing else. Written only when the whole log is over KEEP_TRACE_BYTES.
 *  - trace-dst.zero.log.gz (a precopy multifd run): the destination trace without the
 *    `ram_load_loop` lines after the first round's wrap: the round's zero pages, from which the
 *    importer builds the populated map the source's `multifd_send` counts cannot give.
 *  - recording.csv.gz: the recording of the guest's stores from shortly before `migrate` on
 *    (the warm-up is not needed: every page is dirty when the migration starts), recompressed. When
 *    that is over KEEP_RECORDING_BYTES, in steps until it fits:
 *    1. first write per page per KEEP_COALESCE_NS (10 ms) instead of the plugin's 1 ms: on the
 *       host clock the kernel's few hundred hot pages are each recorded every 1 ms epoch (~25 000
 *       records/s here); a sync is at least tens of ms from the next, so a page written again
 *       within 10 ms of a sync is the only one whose dirtying can move, by under 10 ms;
 *    2. then also without the writes to the dirtier's working-set frames (every frame its page map
 *       ever gave, epochs included; a fast writer makes 50 000 a second): the header says so
 *       (`source.recording.dirtierWritesRemoved`) and the importer re-creates the dirtier's writes
 *       from its seed, adding the kernel's from the recording.
 */
import {createReadStream, createWriteStream, existsSync, readFileSync, renameSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {createInterface} from 'node:readline'
import {createGunzip, createGzip} from 'node:zlib'
import {K, createBatch, resetBatch} from '../trace/events.js'
import type {TraceHeader} from '../trace/header.js'
import {openTrace} from '../trace/read/open.js'
import {TraceWriter} from '../trace/write/writer.js'
import {pageMapEpochs, paramsFromConfig, parseConsole} from '../import/qemu/dirtier.js'
import type {LabConfig} from '../import/qemu/layout.js'
import {parseTimeOrigin} from '../import/qemu/recorded-writes.js'
import {FirstRound} from '../import/qemu/first-round.js'
import {DstLine, readRamLoadLoop, type RamLoadRecord} from '../import/qemu/dst-zero-pages.js'

/** The source trace log is kept whole when its gzip is at most this big, else thinned. */
export const KEEP_TRACE_BYTES = 1_500_000
/** A kept recording over this keeps only the writes outside the dirtier's working set. */
export const KEEP_RECORDING_BYTES = 4_000_000
/** The coarser coalescing epoch of a kept recording over KEEP_RECORDING_BYTES. */
export const KEEP_COALESCE_NS = 10_000_000
/** Recorded writes kept from this long before `migrate`. */
const RECORDING_LEAD_S = 0.5

const LINE = /^\d+@[\d.]+:(\w+)/
/** ram_save_page's block and offset (trace-events: "%s: offset: 0x%" PRIx64 " host: %p"). */
const RAM_SAVE_PAGE = /:ram_save_page (.+): offset: 0x([0-9a-fA-F]+)/

/**
 * Copy a gzip text file to `out` (gzip, level 9, through `out`.tmp and a rename) with only the
 * lines `keep` says yes to, in order. Returns the lines kept and dropped and the file's size.
 */
export async function filterGzipLines(src: string, out: string, keep: (line: string, lineNo: number) => boolean): Promise<{kept: number; dropped: number; bytes: number}> {
  const gz = createGzip({level: 9})
  const file = createWriteStream(`${out}.tmp`)
  gz.pipe(file)
  const rl = createInterface({input: createReadStream(src).pipe(createGunzip()), crlfDelay: Infinity})
  let kept = 0
  let dropped = 0
  for await (const line of rl) {
    if (!keep(line, kept + dropped + 1)) {
      dropped++
      continue
    }
    kept++
    if (!gz.write(`${line}\n`)) await new Promise<void>((r) => gz.once('drain', () => r()))
  }
  gz.end()
  await new Promise<void>((r) => file.on('close', () => r()))
  renameSync(`${out}.tmp`, out)
  return {kept, dropped, bytes: statSync(out).size}
}

/**
 * Thin a source trace log (gzip in, gzip out): every line but the `ram_save_page` lines between
 * the second `migration_bitmap_sync_end` and the stop (`migration_completion_vm_stop`,
 * `postcopy_start`). Returns the lines kept and dropped.
 */
export async function thinSourceTrace(src: string, out: string): Promise<{kept: number; dropped: number; bytes: number}> {
  const round = new FirstRound()
  let stopped = false
  return filterGzipLines(src, out, (line) => {
    const ev = LINE.exec(line)?.[1]
    if (ev === 'migration_bitmap_sync_start') round.syncStart()
    else if (ev === 'migration_bitmap_sync_end') round.syncEnd()
    else if (ev === 'migration_completion_vm_stop' || ev === 'postcopy_start') {
      stopped = true
      round.stop(ev === 'postcopy_start')
    }
    // The first round's pages (the populated map) and everything after the stop are kept; so is a
    // ram_save_page line of a shape this does not read (a new trace format must not silently
    // empty the populated map: the importer then says what it cannot read).
    if (ev === 'ram_save_page' && !stopped) {
      const m = RAM_SAVE_PAGE.exec(line)
      if (m !== null && !round.page(m[1]!, Number.parseInt(m[2]!, 16))) return false
    }
    return true
  })
}

/**
 * Thin a multifd run's destination trace log (gzip in, gzip out) to what the importer reads of it
 * (src/import/qemu/dst-zero-pages.ts, whose readRamLoadLoop reads the lines here too): every line
 * but the `ram_load_loop` lines after the first round over RAM (the main channel's records up to
 * the scan's wrap: with QEMU 7.2's multifd, the round's zero pages, which give the populated map).
 * The wrapping record is kept, so the importer still sees the round end. A `ram_load_loop` line of
 * a shape the reader does not know is kept (the importer then says what it cannot read). Returns
 * the lines kept and dropped.
 */
export async function thinDestinationZeroTrace(src: string, out: string): Promise<{kept: number; dropped: number; bytes: number}> {
  const round = new FirstRound()
  const rec: RamLoadRecord = {block: '', offset: 0, flags: 0}
  let over = false
  return filterGzipLines(src, out, (line, lineNo) => {
    let kind: DstLine
    try {
      kind = readRamLoadLoop(line, rec, src, lineNo)
    } catch {
      return true
    }
    if (kind !== DstLine.RamLoad) return true
    if (over) return false
    if (!round.page(rec.block, rec.offset)) over = true
    return true
  })
}

/** Guest-physical page numbers the dirtier's working set ever had (every epoch of its page map). */
export function workingSetFrames(configFile: string, consoleFile: string): Set<number> {
  const cfg = JSON.parse(readFileSync(configFile, 'utf8')) as LabConfig
  const params = paramsFromConfig(cfg, configFile)
  const rep = parseConsole(readFileSync(consoleFile, 'utf8'))
  const npages = (params.wsMib * 1024 * 1024) / 4096
  const frames = new Set<number>()
  if (npages === 0 || rep.pfnEpochs.length === 0) return frames
  const map = pageMapEpochs(rep, npages, consoleFile)
  for (const g of map.gpaOf) if (g >= 0) frames.add(g / 4096)
  for (const e of map.later) for (const r of e.runs) for (let k = 0; k < r.npages; k++) frames.add(r.pfn + k)
  return frames
}

export interface KeptRecording {
  bytes: number
  writes: number
  coalesceNs?: number
  dirtierWritesRemoved?: number
}

/**
 * Copy the writes of `src` (a lab run's recording) from `fromHostUs` on into `out` (gzip level 9),
 * keeping the first per page per `coalesceNs` when given, leaving out those on `dropFrames` when
 * given. The header stays the recording's (its time origin included), with what was left out in
 * source.recording.kept.
 */
export async function copyRecording(src: string, out: string, fromHostUs: number, opts: {dropFrames?: Set<number>; coalesceNs?: number} = {}): Promise<KeptRecording> {
  const {dropFrames, coalesceNs} = opts
  // Per page, the coarse epoch of its last kept write (+1: 0 = none yet).
  const lastEpoch = new Map<number, number>()
  let coalesced = 0
  const tr = await openTrace(src)
  const rec = ((tr.header.source ?? {}) as Record<string, unknown>).recording as Record<string, unknown> | undefined
  const originUs = parseTimeOrigin(rec?.timeOrigin) ?? 0
  const fromNs = Math.max(0, (fromHostUs - originUs) * 1000)
  let writes = 0
  let removed = 0
  let before = 0
  const batch = createBatch()
  const tmp = `${out}.tmp.csv.gz`
  const header0 = tr.header
  const w = await TraceWriter.open(tmp, header0, tr.deviceIds, undefined, {headerAtClose: true, gzipLevel: 9})
  try {
    for await (const b of tr.events()) {
      for (let i = 0; i < b.length; i++) {
        if (b.kind[i] !== K.write) continue
        if (b.t[i]! < fromNs) {
          before++
          continue
        }
        const page = Math.floor(b.gpa[i]! / 4096)
        if (dropFrames !== undefined && dropFrames.has(page)) {
          removed++
          continue
        }
        if (coalesceNs !== undefined) {
          const ep = Math.floor(b.t[i]! / coalesceNs) + 1
          if (lastEpoch.get(page) === ep) {
            coalesced++
            continue
          }
          lastEpoch.set(page, ep)
        }
        const j = batch.length++
        batch.t[j] = b.t[i]!
        batch.kind[j] = K.write
        batch.vcpu[j] = b.vcpu[i]!
        batch.gpa[j] = b.gpa[i]!
        batch.len[j] = b.len[i]!
        writes++
        if (batch.length === batch.t.length) {
          await w.writeBatch(batch)
          resetBatch(batch)
        }
      }
    }
    if (batch.length > 0) await w.writeBatch(batch)
    const header: TraceHeader = {
      ...header0,
      source: {
        ...(header0.source ?? {}),
        recording: {
          ...(rec ?? {}),
          kept: {
            fromNs,
            writesBefore: before,
            writes,
            ...(coalesceNs !== undefined ? {coalesceNs, writesCoalesced: coalesced} : {}),
            note: `writes from ${RECORDING_LEAD_S} s before migrate on (lab matrix keeps only what the comparison reads)${coalesceNs !== undefined ? `; the first write per page per ${coalesceNs / 1e6} ms, not per epochNs` : ''}`,
          },
          ...(dropFrames !== undefined ? {dirtierWritesRemoved: {frames: dropFrames.size, writes: removed, note: "writes to the dirtier's working-set frames taken out to keep the file small: import qemu re-creates them from the dirtier's seed"}} : {}),
        },
      },
    }
    await w.close(header)
  } catch (e) {
    await w.abort()
    throw e
  }
  renameSync(tmp, out)
  return {bytes: statSync(out).size, writes, ...(coalesceNs !== undefined ? {coalesceNs} : {}), ...(dropFrames !== undefined ? {dirtierWritesRemoved: removed} : {})}
}

/**
 * Keep a run's recording in `dest`: from RECORDING_LEAD_S before `migrate`, whole when that is at
 * most KEEP_RECORDING_BYTES, else coalesced per 10 ms, else also without the dirtier's working-set
 * writes. undefined when the run has no recording.
 */
export async function keepRecording(runDir: string, dest: string): Promise<KeptRecording | undefined> {
  const src = join(runDir, 'recording.csv.gz')
  if (!existsSync(src)) return undefined
  const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8')) as Record<string, unknown>
  const migrateAt = typeof summary.migrate_start_host_time === 'number' ? summary.migrate_start_host_time : 0
  const fromUs = Math.round((migrateAt - RECORDING_LEAD_S) * 1e6)
  const out = join(dest, 'recording.csv.gz')
  const whole = await copyRecording(src, out, fromUs)
  if (whole.bytes <= KEEP_RECORDING_BYTES) return whole
  const coarse = await copyRecording(src, out, fromUs, {coalesceNs: KEEP_COALESCE_NS})
  if (coarse.bytes <= KEEP_RECORDING_BYTES) return coarse
  const consoleFile = join(runDir, 'src-console.log')
  return copyRecording(src, out, fromUs, {coalesceNs: KEEP_COALESCE_NS, dropFrames: workingSetFrames(join(runDir, 'config.json'), consoleFile)})
}
