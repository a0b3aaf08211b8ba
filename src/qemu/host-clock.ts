/**
 * The host's wall clock in microseconds since the Unix epoch, the clock QEMU stamps its trace log
 * (`-msg timestamp=on`: gettimeofday) and its QMP events (g_get_real_time) with, so lines captured
 * here line up with both. Date.now() has only millisecond resolution; performance.timeOrigin +
 * performance.now() has microseconds and is monotonic within the process.
 */
export function hostNowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

/** `SECONDS.MICROS` (as QEMU's log prints it) of a host time in µs. */
export function formatHostUs(us: number): string {
  return `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`
}
