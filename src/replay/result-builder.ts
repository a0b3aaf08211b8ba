/**
 * The one place a ReplayResult is put together: the driver's figures, what the session counted
 * and what the host model and the ledger hold. Built once, at the end of the replay.
 */
import type {TraceLayout} from '../trace/layout.js'
import type {DriverFigures, ReplayDriver} from './driver.js'
import type {HostModel} from './host.js'
import {countsByKindName, type ReplayResult} from './result.js'
import type {ReplaySession} from './session.js'
import type {ReplaySettings} from './settings.js'
import {transportResult} from './transport/result.js'

const ms = (ns: number): number => ns / 1e6

/** Kinds that record what a real migration decided (the recorded driver follows them). */
const RECORDED_KINDS = new Set(['mig_sync', 'page_sent', 'vm_stop', 'vm_start', 'mig_complete', 'kvm_get_dirty_log', 'kvm_clear_dirty_log', 'kvm_reset_dirty_rings', 'kvm_set_user_memory_region', 'kvm_dirty_ring_page'])

export function buildResult(session: ReplaySession, driver: ReplayDriver, settings: ReplaySettings, f: DriverFigures): ReplayResult {
  const host: HostModel = session.host
  const layout: TraceLayout = host.layout
  const ledger = host.ledger
  const ignored = countsByKindName(session.ignored)
  const notes = [...f.notes]
  if (session.ringWrites > 0)
    notes.push(
      `${session.ringWrites.toLocaleString('en-US')} kvm_dirty_ring_page records replayed as guest writes (the trace has no write events): each is a vCPU's first write to its page since the last harvest, at the harvest's time`,
    )
  const names = Object.entries(ignored)
  if (names.length > 0) {
    const list = names.map(([k, n]) => `${k} (${n.toLocaleString('en-US')})`).join(', ')
    const fromRun = driver.name === 'qemu' && names.some(([k]) => RECORDED_KINDS.has(k))
    notes.push(`events this replay ignored: ${list}${fromRun ? '; they record a real run\'s own decisions, which --driver recorded follows' : ''}`)
  }
  const cancelled = f.stopReason === 'cancelled'
  const r: ReplayResult = {
    driver: driver.name,
    settings,
    verdict: f.verdict,
    stopReason: f.stopReason,
    startNs: f.startNs,
    setupEndNs: f.setupEndNs,
    stopNs: f.stopNs,
    endNs: f.endNs,
    traceEndNs: session.lastEventNs,
    traceEndedFirst: f.traceEndedFirst,
    totalTimeMs: ms(f.endNs - f.startNs),
    setupTimeMs: ms(f.setupEndNs - f.startNs),
    downtimeMs: f.downtimeMs,
    downtime: f.downtime,
    iterations: f.rows.filter((row) => row.phase === 'live').length,
    dirtySyncCount: host.syncCount,
    totals: ledger.totals(),
    transferredBytes: f.transferredBytes,
    causes: host.causes.list,
    lostWrites: cancelled ? 0 : (session.lostWritesAtEnd ?? host.lostWrites()),
    sendHistogram: ledger.sendCountHistogram(),
    guest: {pages: layout.guestPages, pageSize: layout.pageSize, bytes: layout.guestPages * layout.pageSize},
    rows: f.rows,
    components: f.showComponents ? {...host.componentData(), ...f.components} : {},
    events: {replayed: session.replayed, writes: session.writes, notReplayed: session.notReplayed, ignored, unmapped: session.unmapped + (f.unmapped ?? 0)},
    lazyClears: host.lazyClears,
    stall: f.stall,
    notes,
  }
  if (f.postcopy) r.postcopy = f.postcopy
  if (f.snapshot) r.snapshot = f.snapshot
  if (f.throttle) r.throttle = f.throttle
  if (f.transferTimeline) r.transferTimeline = f.transferTimeline
  if (f.ramRecordBytes) r.ramRecordBytes = f.ramRecordBytes
  if (f.stream) r.stream = f.stream
  if (f.showTransport) r.transport = transportResult(host, r)
  return r
}
