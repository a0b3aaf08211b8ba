/** The postcopy part of the replay's result, from the phase's counters (./postcopy.ts). */
import type {PostcopyResult} from '../result.js'
import type {PostcopyPhase} from './postcopy.js'

export function postcopyResult(phase: PostcopyPhase, startNs: number, offsetsNs: Float64Array): PostcopyResult {
  const ms = (ns: number): number => ns / 1e6
  const lat = phase.latency.stats()
  const blocktime = phase.latency.blocktimeMs()
  return {
    trigger: phase.opts.trigger,
    switchoverMs: ms(phase.switchNs - startNs),
    guestResumeMs: ms(phase.resumeNs - startNs),
    discardApplyMs: ms(phase.discardApplyNs),
    precopyIterations: phase.opts.precopyIterations,
    requests: phase.requests,
    duplicateRequests: phase.duplicateRequests,
    requestsSkipped: phase.requestsSkipped,
    faults: phase.faults,
    urgentPages: phase.urgentPages,
    hugePagesRedirtied: phase.hugePagesRedirtied,
    discardRanges: phase.discardRanges,
    discardBytes: phase.discardBytes,
    blocktimeMsPerVcpu: blocktime,
    blocktimeMs: blocktime.reduce((a, b) => a + b, 0),
    latencyNs: lat,
    latencyHistogram: phase.latency.histogram.slice(),
    bytesBeforeSwitchover: phase.bytesBefore,
    bytesAfterSwitchover: phase.bytesAfter,
    bytes: phase.bytesAfter,
    pagesAfterSwitchover: phase.pagesAfter,
    pagesSentTwiceAfterSwitchover: phase.sentTwice,
    destinationMissingPages: phase.missingPages(),
    postcopyMs: ms(phase.endNs - phase.switchNs),
    guestDelayMsPerVcpu: Array.from(offsetsNs, (o) => ms(o)),
    recovery: phase.recovery.failures + phase.recovery.failuresIgnored > 0 ? phase.recovery.result(startNs) : null,
  }
}
