/**
 * The binary record stream of the recording plugin (native/record-plugin/migtrace-record.c, FORMAT_VERSION 1):
 * fixed 24-byte little-endian records
 *
 *   u8 type | u8 flags | u16 vcpu | u32 aux | u64 t | u64 addr
 *
 * HELLO (first): t = host start (CLOCK_REALTIME ns), addr = max vCPUs, aux = format version
 * WRITE: t = vCPU time ns, addr = address from qemu_plugin_hwaddr_phys_addr(), aux = bytes
 * CLOCK: t = vCPU time ns, addr = host CLOCK_REALTIME ns, aux = reason (tick, idle, resume, init)
 * STATS / STATS2 (at exit, per vCPU): stores seen and I/O stores skipped / records and instructions
 * END (last): t = host end ns, addr = records written before it
 *
 * The decoder takes the stream in arbitrary chunks (a record may straddle two) and calls a sink.
 * 64-bit fields are read as two 32-bit halves: exact below 2^53, which covers every guest address
 * and 104 days of nanoseconds.
 */
export const RECORD_BYTES = 24
export const FORMAT_VERSION = 1

export const Rec = {hello: 1, write: 2, clock: 3, stats: 4, stats2: 5, end: 6} as const
export const ClockReason = {tick: 0, idle: 1, resume: 2, init: 3} as const

export interface RecordSink {
  hello(startRealNs: number, maxVcpus: number, version: number): void
  /** Hot: one call per recorded store. */
  write(vcpu: number, t: number, addr: number, len: number): void
  clock(vcpu: number, reason: number, t: number, hostRealNs: number): void
  stats(vcpu: number, stores: number, ioStores: number): void
  stats2(vcpu: number, records: number, instructions: number): void
  end(hostRealNs: number, records: number): void
}

export class RecordFormatError extends Error {}

const U32 = 4294967296

export class RecordDecoder {
  private carry = Buffer.alloc(RECORD_BYTES)
  private carried = 0
  records = 0
  private sawHello = false
  sawEnd = false

  constructor(private readonly sink: RecordSink) {}

  /** Decode every whole record in `chunk` (plus what an earlier chunk left over). */
  push(chunk: Buffer): void {
    let off = 0
    if (this.carried > 0) {
      const need = RECORD_BYTES - this.carried
      const n = Math.min(need, chunk.length)
      chunk.copy(this.carry, this.carried, 0, n)
      this.carried += n
      off = n
      if (this.carried < RECORD_BYTES) return
      this.one(this.carry, 0)
      this.carried = 0
    }
    const end = off + Math.floor((chunk.length - off) / RECORD_BYTES) * RECORD_BYTES
    const sink = this.sink
    for (let o = off; o < end; o += RECORD_BYTES) {
      // The common case inline: a WRITE record after HELLO.
      if (chunk[o] === Rec.write && this.sawHello && !this.sawEnd) {
        this.records++
        sink.write(chunk.readUInt16LE(o + 2), chunk.readUInt32LE(o + 8) + chunk.readUInt32LE(o + 12) * U32, chunk.readUInt32LE(o + 16) + chunk.readUInt32LE(o + 20) * U32, chunk.readUInt32LE(o + 4))
      } else {
        this.one(chunk, o)
      }
    }
    if (end < chunk.length) {
      chunk.copy(this.carry, 0, end)
      this.carried = chunk.length - end
    }
  }

  /** The stream ended: a partial record or a missing END means the plugin did not finish. */
  finish(): {complete: boolean; partialBytes: number} {
    return {complete: this.sawEnd && this.carried === 0, partialBytes: this.carried}
  }

  private one(b: Buffer, o: number): void {
    const type = b[o]!
    const vcpu = b.readUInt16LE(o + 2)
    const aux = b.readUInt32LE(o + 4)
    const t = b.readUInt32LE(o + 8) + b.readUInt32LE(o + 12) * U32
    const addr = b.readUInt32LE(o + 16) + b.readUInt32LE(o + 20) * U32
    if (!this.sawHello && type !== Rec.hello) throw new RecordFormatError(`the plugin stream does not start with HELLO (type ${type})`)
    if (this.sawEnd) throw new RecordFormatError(`record of type ${type} after END`)
    this.records++
    switch (type) {
      case Rec.hello:
        if (this.sawHello) throw new RecordFormatError('a second HELLO record')
        if (aux !== FORMAT_VERSION) throw new RecordFormatError(`plugin record format ${aux}, this migtrace reads ${FORMAT_VERSION} (a stale plugin build?)`)
        this.sawHello = true
        this.sink.hello(t, addr, aux)
        break
      case Rec.write:
        this.sink.write(vcpu, t, addr, aux)
        break
      case Rec.clock:
        this.sink.clock(vcpu, aux, t, addr)
        break
      case Rec.stats:
        this.sink.stats(vcpu, t, addr)
        break
      case Rec.stats2:
        this.sink.stats2(vcpu, t, addr)
        break
      case Rec.end:
        this.sawEnd = true
        this.sink.end(t, addr)
        break
      default:
        throw new RecordFormatError(`unknown record type ${type} at record ${this.records}`)
    }
  }
}
