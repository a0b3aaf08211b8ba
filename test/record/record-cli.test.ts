/**
 * `migtrace record` end to end: the built CLI records a tiny multiboot guest (test/record/tiny-guest)
 * under QEMU, and the trace must hold exactly the stores the guest program makes. Skipped, with the
 * reason, where QEMU (qemu-system-x86_64) or a C compiler that targets i386 is missing.
 */
import {spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test, {type ExecutionContext} from 'ava'
import {openTrace} from '../../src/trace/read/index.js'
import {K} from '../../src/trace/events.js'
import {findExecutable} from '../../src/qemu/index.js'
import {ROOT, runCli} from '../helpers/cli.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-record-cli-'))
const cache = join(tmp, 'cache')
const env = {MIGTRACE_CACHE_DIR: cache}
const QEMU = 'qemu-system-x86_64'
const guestDir = join(ROOT, 'test/record/tiny-guest')

/** Build the tiny guest; the reason it cannot be built, or its path. */
function buildGuest(): {elf?: string; why?: string} {
  if (findExecutable(QEMU) === undefined) return {why: `${QEMU} is not installed (Debian: apt-get install qemu-system-x86)`}
  const elf = join(tmp, 'tiny-guest.elf')
  const r = spawnSync(
    'cc',
    ['-m32', '-O2', '-ffreestanding', '-fno-pic', '-fno-stack-protector', '-nostdlib', '-static', `-Wl,-T,${join(guestDir, 'tiny-guest.ld')}`, '-Wl,--build-id=none', '-o', elf, join(guestDir, 'tiny-guest.c')],
    {encoding: 'utf8'},
  )
  if (r.error !== undefined || r.status !== 0) return {why: `no C compiler that builds i386 code (cc -m32): ${(r.error?.message ?? r.stderr).split('\n')[0]}`}
  return {elf}
}

const guest = buildGuest()
const qemuArgs = (exit = true): string[] => [QEMU, '-accel', 'tcg', '-machine', 'pc', '-m', '64M', '-nodefaults', '-display', 'none', ...(exit ? ['-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04'] : []), '-kernel', guest.elf!]
const rtest = guest.elf !== undefined ? test.serial : test.serial.skip
if (guest.why !== undefined) console.log(`migtrace record end-to-end tests skipped: ${guest.why}`)

interface W {
  t: number
  gpa: number
  len: number
}

async function writesIn(path: string, lo: number, hi: number): Promise<{writes: W[]; header: Awaited<ReturnType<typeof openTrace>>['header']}> {
  const tr = await openTrace(path)
  const writes: W[] = []
  let last = -1
  for await (const b of tr.events())
    for (let i = 0; i < b.length; i++) {
      if (b.t[i]! < last) throw new Error('time went back')
      last = b.t[i]!
      if (b.kind[i] === K.write && b.gpa[i]! >= lo && b.gpa[i]! < hi) writes.push({t: b.t[i]!, gpa: b.gpa[i]!, len: b.len[i]!})
    }
  return {writes, header: tr.header}
}

/** The tiny guest's stores, in program order (tiny-guest.c): two 4-byte halves per uint64_t. */
function expectedStores(): {gpa: number; len: number}[] {
  const out: {gpa: number; len: number}[] = []
  for (let r = 0; r < 3; r++)
    for (let p = 0; p < 256; p++) {
      const a = 0x400000 + p * 4096 + ((p + r) & 511) * 8
      out.push({gpa: a, len: 4}, {gpa: a + 4, len: 4})
    }
  return out
}

/**
 * What a coalescing epoch keeps of the tiny guest's 1536 stores: every page, first at the program's
 * first store to it (round 0, low half), then at most once per epoch. Epochs are aligned to
 * multiples of the epoch on the vCPU's clock (new_epoch in migtrace-record.c), and the program starts
 * at a guest time that includes host idle time, so an epoch boundary can fall inside the few
 * microseconds it runs: then the pages stored on both sides of it have two records. The program
 * spans at most two epochs.
 */
function firstStorePerEpoch(t: ExecutionContext, writes: W[], epochNs: number): void {
  const byPage = new Map<number, W[]>()
  for (const w of writes) byPage.set(Math.floor(w.gpa / 4096), [...(byPage.get(Math.floor(w.gpa / 4096)) ?? []), w])
  t.is(byPage.size, 256)
  for (const [page, ws] of byPage) {
    t.deepEqual({gpa: ws[0]!.gpa, len: ws[0]!.len}, {gpa: page * 4096 + (page & 511) * 8, len: 4})
    const epochs = ws.map((w) => Math.floor(w.t / epochNs))
    t.is(new Set(epochs).size, epochs.length, `page ${page}: two records in one epoch`)
  }
  const epochs = new Set(writes.map((w) => Math.floor(w.t / epochNs)))
  t.true(epochs.size <= 2, `the program spans ${epochs.size} epochs`)
}

rtest('--epoch 0: every store of the guest program, in order, at its guest-physical address', async (t) => {
  const out = join(tmp, 'every.csv')
  const r = await runCli(['record', '--out', out, '--epoch', '0', '--', ...qemuArgs()], {env})
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /every\.csv: \d+ events, \d+ writes/)
  const {writes, header} = await writesIn(out, 0x400000, 0x500000)
  t.deepEqual(
    writes.map((w) => ({gpa: w.gpa, len: w.len})),
    expectedStores(),
  )
  const rec = header.source!.recording as Record<string, unknown>
  t.is(rec.complete, true)
  t.is(rec.qemuExit, 'exit code 99')
  t.is(header.vcpus, 1)
  t.deepEqual(
    header.memslots.filter((s) => s.ramBlock === 'pc.ram').map((s) => [s.base, s.size]),
    [[0, 64 * 2 ** 20]],
  )
  // The plugin saw every store: what it wrote is what the trace holds plus ROM stores dropped.
  t.is((rec.writeRecords as number) - (rec.romStoresDropped as number) - (rec.unmappedStoresDropped as number), rec.writesWritten as number)
  // The build is cached by source hash: one .so.
  t.is(readdirSync(cache).filter((f) => f.endsWith('.so')).length, 1)
})

rtest('--epoch 1ms: the first store to each page per epoch', async (t) => {
  const out = join(tmp, 'epoch.csv.gz')
  const r = await runCli(['record', '--out', out, '--epoch', '1ms', '--ips', '1G', '--', ...qemuArgs()], {env})
  t.is(r.code, 0, r.stderr)
  const {writes, header} = await writesIn(out, 0x400000, 0x500000)
  t.is(header.source!.epochNs, 1e6)
  t.is(header.source!.instructionsPerSecond, 1e9)
  firstStorePerEpoch(t, writes, 1e6)
})

rtest('--duration stops an idle guest; the trace ends there', async (t) => {
  const out = join(tmp, 'halt.csv')
  const r = await runCli(['record', '--out', out, '--duration', '2s', '--', ...qemuArgs(false)], {env})
  t.is(r.code, 0, r.stderr)
  const {writes, header} = await writesIn(out, 0x400000, 0x500000)
  firstStorePerEpoch(t, writes, 1e6)
  const rec = header.source!.recording as Record<string, unknown>
  t.is(rec.durationNs, 2e9)
  t.true(writes.every((w) => w.t <= 2e9))
  t.is(rec.stoppedBy, '--duration 2000000000 ns')
})

rtest('Ctrl-C: QEMU is stopped, exit 130, no trace and no temporary file', async (t) => {
  const out = join(tmp, 'ctrlc', 'never.csv.gz')
  const work = join(tmp, 'ctrlc-tmp')
  spawnSync('mkdir', ['-p', join(tmp, 'ctrlc'), work])
  // TMPDIR: where the recorder keeps its QMP socket, trace-event list and QEMU log.
  const child = spawn(process.execPath, [join(ROOT, 'bin/run.js'), 'record', '--out', out, '--', ...qemuArgs(false)], {env: {...process.env, ...env, TMPDIR: work, NODE_ENV: 'production'}, stdio: ['ignore', 'pipe', 'pipe']})
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  // Wait until the recording runs (its first message), then interrupt.
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => {
      if (stderr.includes('recording:')) {
        clearInterval(poll)
        resolve()
      }
    }, 50)
  })
  await new Promise((r) => setTimeout(r, 300))
  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  t.is(code, 130)
  t.deepEqual(readdirSync(join(tmp, 'ctrlc')), [])
  t.deepEqual(readdirSync(work), [])
  t.false(existsSync(out))
})

rtest("bad commands: one line, exit 2, no output", async (t) => {
  const out = join(tmp, 'bad.csv')
  const kvm = await runCli(['record', '--out', out, '--', QEMU, '-enable-kvm', '-m', '64M'], {env})
  t.is(kvm.code, 2)
  t.regex(kvm.stderr, /^migtrace: .*needs TCG.*-enable-kvm/)
  const accel = await runCli(['record', '--out', out, '--', QEMU, '-accel', 'kvm'], {env})
  t.is(accel.code, 2)
  t.regex(accel.stderr, /accelerator kvm/)
  const noCmd = await runCli(['record', '--out', out], {env})
  t.is(noCmd.code, 2)
  t.regex(noCmd.stderr, /no QEMU command to record/)
  const name = await runCli(['record', '--out', join(tmp, 'bad.txt'), '--', QEMU], {env})
  t.is(name.code, 2)
  t.regex(name.stderr, /cannot tell the trace format/)
  const bin = await runCli(['record', '--out', out, '--', 'qemu-system-nonexistent'], {env})
  t.is(bin.code, 2)
  t.regex(bin.stderr, /qemu-system-nonexistent: not found.*apt-get install qemu-system-x86/)
  const opt = await runCli(['record', '--out', out, '--', QEMU, '-no-such-option'], {env})
  t.is(opt.code, 2)
  t.regex(opt.stderr, /^migtrace: QEMU exited before the recording started \(exit code 1\): .*-no-such-option/)
  const ips = await runCli(['record', '--out', out, '--ips', 'fast', '--', QEMU], {env})
  t.is(ips.code, 2)
  t.regex(ips.stderr, /field 'ips'/)
  const re = await runCli(['record', '--out', out, '--stop-on', '(', '--', QEMU], {env})
  t.is(re.code, 2)
  t.regex(re.stderr, /field 'stop-on': not a valid regular expression/)
  for (const r of [kvm, accel, noCmd, name, bin, opt, ips, re]) t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
  t.false(existsSync(out))
  t.deepEqual(readdirSync(tmp).filter((f) => f.includes('.tmp-')), [])
})

