/**
 * Fault latency and per-vCPU blocktime, as the destination's query-migrate reports them for
 * postcopy (fill_destination_postcopy_migration_info: postcopy-vcpu-blocktime, and QEMU 10.1's
 * postcopy-latency / postcopy-latency-dist), reused by the background snapshot for its
 * write-fault stalls. Samples go into a growable Float64Array (no object per fault).
 */
import type {LatencyStats} from './result.js'

/** BLOCKTIME_LATENCY_BUCKET_N in QEMU 10.1: bucket N counts faults resolved in [2^N, 2^(N+1)) µs. */
export const LATENCY_BUCKETS = 33

export class FaultLatency {
  private samples = new Float64Array(1024)
  count = 0
  readonly blocktimeNs: Float64Array
  readonly histogram = new Array<number>(LATENCY_BUCKETS).fill(0)

  constructor(vcpus: number) {
    this.blocktimeNs = new Float64Array(Math.max(1, vcpus))
  }

  /** One fault of vCPU `vcpu` (-1: not a vCPU) resolved after `ns`. */
  add(vcpu: number, ns: number): void {
    if (this.count === this.samples.length) {
      const bigger = new Float64Array(this.samples.length * 2)
      bigger.set(this.samples)
      this.samples = bigger
    }
    this.samples[this.count++] = ns
    if (vcpu >= 0 && vcpu < this.blocktimeNs.length) this.blocktimeNs[vcpu]! += ns
    this.histogram[bucket(ns)]!++
  }

  /** Fault number `i` (of vCPU `vcpu`) is resolved `ns` later than first thought (its page was lost in a postcopy network failure). */
  extend(i: number, vcpu: number, ns: number): void {
    const old = this.samples[i]!
    this.histogram[bucket(old)]!--
    this.samples[i] = old + ns
    this.histogram[bucket(old + ns)]!++
    if (vcpu >= 0 && vcpu < this.blocktimeNs.length) this.blocktimeNs[vcpu]! += ns
  }

  stats(): LatencyStats {
    const n = this.count
    if (n === 0) return {count: 0, meanNs: 0, p50: 0, p90: 0, p99: 0, max: 0}
    const s = this.samples.slice(0, n).sort()
    let sum = 0
    for (let i = 0; i < n; i++) sum += s[i]!
    // nearest-rank percentiles
    const pct = (q: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!
    return {count: n, meanNs: sum / n, p50: pct(0.5), p90: pct(0.9), p99: pct(0.99), max: s[n - 1]!}
  }

  blocktimeMs(): number[] {
    return Array.from(this.blocktimeNs, (ns) => ns / 1e6)
  }
}

/** Mirrors the 10.1 latency-dist bucketing: floor(log2(µs)), sub-µs faults in bucket 0. */
function bucket(ns: number): number {
  const us = ns / 1000
  return us < 1 ? 0 : Math.min(LATENCY_BUCKETS - 1, Math.floor(Math.log2(us)))
}
