/**
 * The report sections for postcopy, background snapshot, throttling and the transport
 * (docs/postcopy-snapshot.md): JSON fields, headline lines for the text report and rows for the
 * Markdown one. replay-report.ts places them.
 */
import type {LatencyStats, ReplayResult} from '../replay/result.js'
import {formatBytes, formatDurationNs} from '../util/units.js'

const r3 = (v: number): number => Math.round(v * 1000) / 1000
const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const msText = (ms: number): string => formatDurationNs(ms * 1e6)
const latText = (l: LatencyStats): string =>
  l.count === 0 ? 'no faults' : `p50 ${formatDurationNs(l.p50)}, p90 ${formatDurationNs(l.p90)}, p99 ${formatDurationNs(l.p99)}, max ${formatDurationNs(l.max)} (${int(l.count)} faults)`

/** JSON fields (null when the run had no such part), times in ms rounded to the µs. */
export function modeJson(r: ReplayResult): Record<string, unknown> {
  const pc = r.postcopy
  const sn = r.snapshot
  const th = r.throttle
  const tr = r.transport
  return {
    postcopy: pc
      ? {
          ...pc,
          switchoverMs: r3(pc.switchoverMs),
          guestResumeMs: r3(pc.guestResumeMs),
          postcopyMs: r3(pc.postcopyMs),
          blocktimeMs: r3(pc.blocktimeMs),
          blocktimeMsPerVcpu: pc.blocktimeMsPerVcpu.map(r3),
          guestDelayMsPerVcpu: pc.guestDelayMsPerVcpu.map(r3),
          latencyNs: roundLatency(pc.latencyNs),
          recovery: pc.recovery
            ? {
                ...pc.recovery,
                pausedMs: r3(pc.recovery.pausedMs),
                guestBlockedMs: r3(pc.recovery.guestBlockedMs),
                pauses: pc.recovery.pauses.map((p) => ({
                  ...p,
                  failMs: r3(p.failMs),
                  recoverMs: r3(p.recoverMs),
                  resumeMs: r3(p.resumeMs),
                  pausedMs: r3(p.pausedMs),
                  handshakeMs: r3(p.handshakeMs),
                  guestBlockedMs: r3(p.guestBlockedMs),
                })),
              }
            : null,
        }
      : null,
    snapshot: sn
      ? {...sn, durationMs: r3(sn.durationMs), downtimeMs: r3(sn.downtimeMs), stallMs: r3(sn.stallMs), stallMsPerVcpu: sn.stallMsPerVcpu.map(r3), latencyNs: roundLatency(sn.latencyNs)}
      : null,
    throttle: th
      ? {...th, guestSlowdownMs: r3(th.guestSlowdownMs), slowdownMsPerVcpu: th.slowdownMsPerVcpu.map(r3), steps: th.steps.map((s) => ({...s, atMs: r3(s.atMs)}))}
      : null,
    transport: tr
      ? {
          ...tr,
          guest: {downtimeMs: r3(tr.guest.downtimeMs), faultLatencyP50Ms: r3(tr.guest.faultLatencyP50Ms), faultLatencyP99Ms: r3(tr.guest.faultLatencyP99Ms), blocktimeMs: r3(tr.guest.blocktimeMs)},
          host: {...tr.host, pageTableMs: r3(tr.host.pageTableMs)},
        }
      : null,
  }
}

function roundLatency(l: LatencyStats): LatencyStats {
  return {count: l.count, meanNs: Math.round(l.meanNs), p50: Math.round(l.p50), p90: Math.round(l.p90), p99: Math.round(l.p99), max: Math.round(l.max)}
}

/** Key/value lines for the text headline. */
export function modeTextLines(r: ReplayResult): [string, string][] {
  const out: [string, string][] = []
  const pc = r.postcopy
  if (pc) {
    out.push(['postcopy', `switched at ${msText(pc.switchoverMs)} (${pc.trigger}, after ${pc.precopyIterations} precopy iterations); guest resumed at ${msText(pc.guestResumeMs)}; RAM done ${msText(pc.postcopyMs)} later`])
    out.push(['  sent', `${formatBytes(pc.bytesBeforeSwitchover)} before, ${formatBytes(pc.bytesAfterSwitchover)} after the switchover (${int(pc.pagesAfterSwitchover)} pages, ${int(pc.urgentPages)} requested)`])
    out.push(['  faults', `${int(pc.faults)} (requests ${int(pc.requests)}, duplicates ${int(pc.duplicateRequests)}, skipped ${int(pc.requestsSkipped)})`])
    out.push(['  fault latency', latText(pc.latencyNs)])
    out.push(['  blocktime', `${msText(pc.blocktimeMs)} in all; per vCPU ${pc.blocktimeMsPerVcpu.map((m) => msText(m)).join(', ')}`])
    out.push(['  invariants', `${int(pc.pagesSentTwiceAfterSwitchover)} pages sent twice after the switchover, ${int(pc.destinationMissingPages)} pages missing on the destination`])
    const rec = pc.recovery
    if (rec) {
      const pauses = rec.pauses.map((p) => `failed at ${msText(p.failMs)}, sending again at ${msText(p.resumeMs)} (handshake ${msText(p.handshakeMs)})`).join('; ')
      out.push(['  recovery', `${rec.failures} network failure${rec.failures === 1 ? '' : 's'}${rec.failuresIgnored > 0 ? ` (${rec.failuresIgnored} ignored)` : ''}, paused ${msText(rec.pausedMs)} in all${pauses ? `: ${pauses}` : ''}`])
      out.push(['  lost in flight', `${int(rec.pagesLost)} pages, ${int(rec.pagesResent)} sent again; ${int(rec.requestsResent)} requests sent again at the resume`])
      out.push(['  guest paid', `${int(rec.faultsDuringPause)} faults during the pause; vCPUs blocked ${msText(rec.guestBlockedMs)} by the failure`])
    }
  }
  const sn = r.snapshot
  if (sn) {
    out.push(['snapshot', `${msText(sn.durationMs)}, ${int(sn.pagesSaved)} pages saved (${int(sn.pagesByStream)} by the stream, ${int(sn.pagesByFault)} by faults), ${formatBytes(sn.bytes)}`])
    out.push(['  faults', `${int(sn.faults)}: ${latText(sn.latencyNs)}`])
    out.push(['  guest stall', `${msText(sn.stallMs)} in all; per vCPU ${sn.stallMsPerVcpu.map((m) => msText(m)).join(', ')}`])
    out.push(['  invariants', `${int(sn.pagesSavedTwice)} pages saved twice, ${int(sn.pagesNotSaved)} never saved`])
  }
  const th = r.throttle
  if (th) {
    const steps = th.steps.length === 0 ? 'never triggered' : th.steps.map((s) => `${th.mode === 'dirty-limit' ? `${s.pct} MiB/s` : `${s.pct} %`} at ${msText(s.atMs)} (iter ${s.iteration})`).join(', ')
    out.push([th.mode, `${steps}; ${th.triggerPeriods} of ${th.periods} periods qualified`])
    out.push(['  guest slowdown', `${msText(th.guestSlowdownMs)}`])
  }
  const tr = r.transport
  if (tr && (tr.kind !== 'network' || pc || sn)) {
    out.push(['transport', `${tr.kind}, RTT ${msText(tr.rttMs)}`])
    out.push(['  guest pays', `downtime ${msText(tr.guest.downtimeMs)}, fault latency p50 ${msText(tr.guest.faultLatencyP50Ms)} / p99 ${msText(tr.guest.faultLatencyP99Ms)}, blocked ${msText(tr.guest.blocktimeMs)}`])
    out.push(['  host pays', `${formatBytes(tr.host.bytes)} on the stream (${formatBytes(tr.host.ramBytes)} of page contents copied), ${int(tr.host.pageTableOps)} page-table ops (${msText(tr.host.pageTableMs)})${tr.host.pagesNotSent > 0 ? `, ${int(tr.host.pagesNotSent)} pages not sent` : ''}`])
  }
  return out
}

/** Rows for the Markdown headline table. */
export function modeMarkdownRows(r: ReplayResult): string[] {
  let section = ''
  return modeTextLines(r).map(([k, v]) => {
    // Indented keys belong to the section above: name it, the table has no indentation.
    if (!k.startsWith(' ')) section = k
    return `| ${k.startsWith(' ') ? `${section} ${k.trim()}` : k} | ${v} |`
  })
}
