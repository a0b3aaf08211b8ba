/**
 * Host pages on their way to the postcopy destination: page ranges and arrival times in arrival
 * order, in growable typed arrays (a ring buffer; no object per page).
 */
export class InFlight {
  start = new Float64Array(256)
  end = new Float64Array(256)
  arrival = new Float64Array(256)
  head = 0
  size = 0

  push(a: number, b: number, at: number): void {
    if (this.size === this.start.length) this.grow()
    // Keep arrival order: preempted pages may overtake queued ones (insert from the tail).
    const n = this.start.length
    let j = this.size
    while (j > 0 && this.arrival[(this.head + j - 1) % n]! > at) {
      const from = (this.head + j - 1) % n
      const to = (this.head + j) % n
      this.start[to] = this.start[from]!
      this.end[to] = this.end[from]!
      this.arrival[to] = this.arrival[from]!
      j--
    }
    const k = (this.head + j) % n
    this.start[k] = a
    this.end[k] = b
    this.arrival[k] = at
    this.size++
  }

  private grow(): void {
    const n = this.start.length
    const s = new Float64Array(n * 2)
    const e = new Float64Array(n * 2)
    const r = new Float64Array(n * 2)
    for (let j = 0; j < this.size; j++) {
      const k = (this.head + j) % n
      s[j] = this.start[k]!
      e[j] = this.end[k]!
      r[j] = this.arrival[k]!
    }
    this.start = s
    this.end = e
    this.arrival = r
    this.head = 0
  }

  /** Everything in flight is gone (a network failure). */
  clear(): void {
    this.head = 0
    this.size = 0
  }

  /** Arrival time of the in-flight range holding page p, or -1. */
  arrivalOf(p: number): number {
    const n = this.start.length
    for (let j = 0; j < this.size; j++) {
      const k = (this.head + j) % n
      if (p >= this.start[k]! && p < this.end[k]!) return this.arrival[k]!
    }
    return -1
  }
}
