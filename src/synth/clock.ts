/**
 * Event times at an exact rate: event i of a stream at R events/s falls at
 * start + floor(i * 1e9 / R) ns. Computed incrementally with integers (a quotient and a remainder
 * carried like a line-drawing DDA), so it stays exact for any number of events and never needs a
 * product that could exceed 2^53. R is kept to a thousandth of an event per second.
 */
export class RateClock {
  /** Time of the next event, ns. Infinity when the rate is 0. */
  t: number
  private readonly q: number
  private readonly rem: number
  private readonly scaled: number
  private acc = 0

  constructor(start: number, rate: number) {
    this.scaled = Math.round(rate * 1000)
    if (this.scaled <= 0) {
      this.t = Infinity
      this.q = 0
      this.rem = 0
      return
    }
    this.t = start
    this.q = Math.floor(1e12 / this.scaled)
    this.rem = 1e12 % this.scaled
  }

  /** Move to the next event. */
  advance(): void {
    this.t += this.q
    this.acc += this.rem
    if (this.acc >= this.scaled) {
      this.acc -= this.scaled
      this.t += 1
    }
  }
}
