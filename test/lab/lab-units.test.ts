/**
 * The lab's pure parts: option checks, QEMU command lines and migration set-up, the passes table,
 * the guest state read from a console, and the initramfs archive format.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {DEFAULTS, checkOptions, labArgs, type LabRunOptions} from '../../src/lab/options.js'
import {kernelAppend, migrationSetup, qemuArgs, shellQuote, traceEvents} from '../../src/lab/qemu-args.js'
import {passesCsv} from '../../src/lab/passes.js'
import {guestState} from '../../src/lab/console-state.js'
import {cpioNewc} from '../../src/lab/cpio.js'
import {isStaticElf} from '../../src/lab/image.js'
import {dirtierRates} from '../../src/lab/driver.js'
import {labWorkDir} from '../../src/lab/paths.js'
import {LAB_REPLAY_SETTINGS, PROJECT_CALIBRATION, labComparisonSettings} from '../../src/lab/analyze.js'
import {parseSetFlags} from '../../src/replay/config.js'
import {coldMemoryCapture, parseHostMemory} from '../../src/lab/host-memory.js'
import {coldMemoryOf} from '../../src/calibrate/runs.js'
import {UserError} from '../../src/util/errors.js'

const opts = (o: Partial<LabRunOptions> = {}): LabRunOptions => ({...DEFAULTS, name: 'r1', work: '/w', ...o})
const image = {kernel: '/img/vmlinuz', initrd: '/img/initramfs.cpio.gz'}
const paths = {qmp: '/run/src-qmp.sock', trace: '/run/trace-src.log'}

test('option checks name the flag and what it needs', (t) => {
  t.notThrows(() => checkOptions(opts()))
  const cases: [Partial<LabRunOptions>, RegExp][] = [
    [{name: '../x'}, /field '--name'/],
    [{wsMib: 1000}, /field '--ws': bad lab option \(expected 0 to 976 MiB/],
    [{multifdCompression: 'zstd'}, /field '--multifd-compression'.*--multifd-channels N as well/],
    [{xbzrleCacheMib: 64}, /--xbzrle as well/],
    [{vmemRequestedMib: 256}, /field '--vmem-size'/],
    [{vmemSizeMib: 1024, vmemRequestedMib: 3}, /field '--vmem-requested'.*multiple of 2 MiB/],
    [{dirtyRing: 4096}, /field '--dirty-ring'.*--accel kvm/],
    [{throttleInitial: 30}, /--auto-converge as well/],
    [{ramPadKib: 4}, /field '--ram-pad'.*multiple of 8 KiB/],
  ]
  for (const [o, re] of cases) t.throws(() => checkOptions(opts(o)), {instanceOf: UserError, message: re})
})

test('command lines: same machine on both sides, -incoming defer on the destination, virtio-mem, trace, extra args', (t) => {
  const o = opts({memMib: 512, vmemSizeMib: 1024, vmemRequestedMib: 512, wsMib: 128, rate: 5000, extraQemu: ['-cpu', 'max']})
  const src = qemuArgs(o, 'src', image, paths, '/run/trace-events.list')
  const dst = qemuArgs(o, 'dst', image, {qmp: '/run/dst-qmp.sock', trace: '/run/trace-dst.log'}, '/run/trace-events.list')
  t.deepEqual(src.slice(0, 6), ['-name', 'lab-src,debug-threads=on', '-accel', 'tcg,thread=single', '-m', '524296K,maxmem=1664M'])
  // 8 KiB more than asked (the default pad): pc.ram avoids QEMU 7.2's lossy aligned sync fast path
  t.is(qemuArgs({...o, ramPadKib: 0}, 'src', image, paths, undefined)[5], '512M,maxmem=1664M')
  t.is(qemuArgs(opts({accel: 'kvm'}), 'src', image, paths, undefined)[5], '1024M')
  t.true(src.includes('virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=512M,prealloc=on'))
  t.deepEqual(src.slice(src.indexOf('-trace'), src.indexOf('-trace') + 6), ['-trace', 'events=/run/trace-events.list', '-D', '/run/trace-src.log', '-msg', 'timestamp=on'])
  t.false(src.includes('-incoming'))
  t.deepEqual(dst.slice(-4), ['-incoming', 'defer', '-cpu', 'max'])
  t.is(kernelAppend(o), 'console=ttyS0 loglevel=4 panic=-1 lab.ws=128 lab.rate=5000 lab.pattern=random lab.hot=10 lab.hotp=90 lab.interval=1000 lab.fill=random lab.seed=1 lab.pfnmap=1 lab.check=100 lab.pace=sleep lab.vmem=1 memhp_default_state=online_movable')
  t.is(shellQuote(['qemu', '-append', "a b'c", '-m', '1G']), `qemu -append 'a b'\\''c' -m 1G`)
  t.true(traceEvents(opts({trace: 'basic'})).includes('postcopy_ram_fault_thread_request'))
  t.false(traceEvents(opts({trace: 'basic'})).includes('ram_save_page'))
  t.true(traceEvents(opts()).includes('ram_save_page'))
  t.deepEqual(traceEvents(opts({trace: 'none', traceExtra: ['x_*']})), ['x_*'])
  const k = qemuArgs(opts({accel: 'kvm', dirtyRing: 4096}), 'src', image, paths, undefined)
  t.is(k[3], 'kvm,dirty-ring-size=4096')
  t.false(k.includes('-trace'))
})

test('--prealloc (the default): both QEMUs populate pc.ram (-mem-prealloc) and virtio-mem plugs populated blocks; --no-prealloc: neither', (t) => {
  const vmem = {memMib: 512, vmemSizeMib: 1024, vmemRequestedMib: 512, wsMib: 128}
  for (const role of ['src', 'dst'] as const) {
    const on = qemuArgs(opts(vmem), role, image, paths, undefined)
    t.is(on.filter((a) => a === '-mem-prealloc').length, 1, role)
    t.true(on.some((a) => a.startsWith('virtio-mem-pci,') && a.endsWith(',prealloc=on')), role)
    const off = qemuArgs(opts({...vmem, prealloc: false}), role, image, paths, undefined)
    t.false(off.includes('-mem-prealloc'), role)
    t.true(off.includes('virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=512M'), role)
  }
  t.true(qemuArgs(opts(), 'src', image, paths, undefined).includes('-mem-prealloc'))
  t.is(labArgs(opts(), image).prealloc, true)
  t.is(labArgs(opts({prealloc: false}), image).prealloc, false)
})

test('host memory: a kernel that maps no zero page on read faults (pvm_no_zero_page) and reports freed memory; a capture without prealloc there is cold', (t) => {
  const pvm = parseHostMemory('console=ttyS0 page_reporting.page_reporting_order=11 pvm_no_zero_page=1 tsc=unstable\n', 'always [madvise] never\n', '1\n')
  t.deepEqual(pvm, {zero_page_on_read: false, page_reporting_order: 11, thp: 'madvise', thp_use_zero_page: true, cmdline: ['page_reporting.page_reporting_order=11', 'pvm_no_zero_page=1']})
  const std = parseHostMemory('BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet', '[always] madvise never', '0')
  t.deepEqual(std, {zero_page_on_read: true, page_reporting_order: null, thp: 'always', thp_use_zero_page: false, cmdline: []})
  // the last occurrence wins, as in the kernel's parser; =0 turns it off
  t.true(parseHostMemory('pvm_no_zero_page=1 pvm_no_zero_page=0', undefined, undefined).zero_page_on_read)
  t.false(parseHostMemory('pvm_no_zero_page', undefined, undefined).zero_page_on_read)
  t.is(parseHostMemory('', undefined, undefined).thp, null)
  t.true(coldMemoryCapture({args: {prealloc: false}, host_memory: pvm}))
  t.true(coldMemoryCapture({args: {}, host_memory: pvm}))
  t.false(coldMemoryCapture({args: {prealloc: true}, host_memory: pvm}))
  t.false(coldMemoryCapture({args: {prealloc: false}, host_memory: std}))
  t.is(coldMemoryCapture({args: {prealloc: false}}), undefined)
  // calibrate reads it from a run's config.json
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-hm-'))
  t.is(coldMemoryOf(dir), undefined)
  writeFileSync(join(dir, 'config.json'), JSON.stringify({args: {prealloc: false}, host_memory: pvm}))
  t.true(coldMemoryOf(dir))
  writeFileSync(join(dir, 'config.json'), JSON.stringify({args: {prealloc: true}, host_memory: pvm}))
  t.false(coldMemoryOf(dir))
})

test('migration set-up: multifd on both sides, xbzrle and throttle on the source, postcopy with blocktime on the destination', (t) => {
  const mf = migrationSetup(opts({multifdChannels: 4, multifdCompression: 'zstd', bandwidthMibs: 256, downtimeMs: 100}))
  t.deepEqual(mf.src, {caps: {events: true, multifd: true}, params: {'max-bandwidth': 268435456, 'downtime-limit': 100, 'multifd-channels': 4, 'multifd-compression': 'zstd'}})
  t.deepEqual(mf.dst, {caps: {events: true, multifd: true}, params: {'multifd-channels': 4, 'multifd-compression': 'zstd'}})
  const xb = migrationSetup(opts({xbzrle: true, xbzrleCacheMib: 32, autoConverge: true, throttleInitial: 30, throttleIncrement: 5}))
  t.deepEqual(xb.src.caps, {events: true, 'auto-converge': true, xbzrle: true})
  t.is(xb.src.params['xbzrle-cache-size'], 32 << 20)
  t.is(xb.src.params['cpu-throttle-initial'], 30)
  t.deepEqual(xb.dst.params, {})
  const pc = migrationSetup(opts({mode: 'postcopy'}))
  t.deepEqual(pc.dst.caps, {events: true, 'postcopy-ram': true, 'postcopy-blocktime': true})
  t.true(migrationSetup(opts({onTimeout: 'postcopy'})).src.caps['postcopy-ram'])
  const a = labArgs(opts({bandwidthMibs: 64}), image)
  // the importer reads migrate.py's names
  t.like(a, {ws: 256, rate: 10000, bandwidth: 64, downtime: 300, mem: 1024 + 8 / 1024, mem_requested: 1024, ram_pad_kib: 8, accel: 'tcg', warmup: 3, seed: 1, kernel: '/img/vmlinuz'})
})

test('passes.csv: the first sample of each (sync count, status), with throttle and xbzrle columns', (t) => {
  const s = (t: number, status: string, dsc: number, extra: Record<string, unknown> = {}) => ({t, host_time: 1000 + t, r: {status, 'cpu-throttle-percentage': extra.thr, ram: {'dirty-sync-count': dsc, transferred: dsc * 100, remaining: 5, duplicate: 1, normal: 2, 'dirty-pages-rate': 3, mbps: 4, 'postcopy-requests': 0}, ...(extra.xb ? {'xbzrle-cache': extra.xb} : {})}})
  const csv = passesCsv([{t: 0, host_time: 1, r: {status: 'setup'}}, s(0.1, 'active', 1), s(0.2, 'active', 1), s(1.5, 'active', 2, {thr: 20, xb: {'cache-miss': 7, pages: 9}}), s(2, 'completed', 3)])
  t.is(csv, ['t_s,status,dirty_sync_count,transferred,remaining,duplicate,normal,dirty_pages_rate,expected_downtime_ms,postcopy_requests,mbps,cpu_throttle_percentage,xbzrle_cache_miss,xbzrle_pages', '0.1,active,1,100,5,1,2,3,,0,4,,,', '1.5,active,2,200,5,1,2,3,,0,4,20,7,9', '2,completed,3,300,5,1,2,3,,0,4,,,', ''].join('\n'))
})

test('guest state from a console: alive, crashed (first oops line), rebooted, silent', (t) => {
  const alive = ['DIRTIER t=5.000 writes=1 distinct=1 total=5 rate=1', 'DIRTIER t=6.000 writes=1 distinct=1 total=6 rate=1']
  t.deepEqual(guestState(alive, alive.slice(1)), {state: 'alive', dirtierLines: 2, dirtierLinesInWindow: 1})
  const oops = ['[    7.259161] BUG: kernel NULL pointer dereference, address: 0000000000000008', '[    7.3] Kernel panic - not syncing: Fatal exception in interrupt']
  t.like(guestState([...alive, ...oops], []), {state: 'crashed', detail: '[    7.259161] BUG: kernel NULL pointer dereference, address: 0000000000000008'})
  t.like(guestState(['LAB BOOTED uptime=1.9 kernel=6.1'], []), {state: 'rebooted'})
  t.like(guestState([], []), {state: 'silent'})
  t.deepEqual(dirtierRates(['DIRTIER READY', 'DIRTIER t=1.000 writes=10 distinct=9 total=10 rate=10', 'DIRTIER t=2.000 writes=20 distinct=18 total=30 rate=20', 'DIRTIER t=3.000 writes=30 distinct=26 total=60 rate=30']), {intervals: 3, rate_avg: 25, distinct_avg: 22})
})

test('cpio newc: exact header layout, 4-byte padding, trailer; cpio(1) lists it where installed', (t) => {
  const a = cpioNewc([{type: 'dir', path: 'bin'}, {type: 'file', path: '/bin/x', data: Buffer.from('hello'), mode: 0o755}, {type: 'symlink', path: 'sh', target: 'bin/x'}, {type: 'chardev', path: 'console', major: 5, minor: 1}])
  const h = a.subarray(0, 110).toString('ascii')
  t.is(h, '070701' + '00000001' + '000041ed' + '00000000'.repeat(2) + '00000002' + '00000000' + '00000000' + '00000000'.repeat(4) + '00000004' + '00000000')
  t.is(a.subarray(110, 114).toString('latin1'), 'bin\0')
  t.is(a.length % 4, 0)
  const s = a.toString('latin1')
  t.true(s.includes('bin/x\0'))
  t.true(s.includes('hello\0\0\0'))
  t.true(s.includes('000021800000000000000000000000010000000000000000000000000000000000000005000000010000000800000000console\0'))
  t.true(s.endsWith('TRAILER!!!\0'.padEnd(11 + ((4 - ((110 + 11) % 4)) % 4), '\0')))
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-cpio-'))
  writeFileSync(join(dir, 'a.cpio'), a)
  const r = spawnSync('cpio', ['-it', '-F', join(dir, 'a.cpio')], {encoding: 'utf8'})
  if (r.error) {
    t.log('cpio(1) not installed: listing not checked')
    return
  }
  t.deepEqual(r.stdout.trim().split('\n'), ['bin', 'bin/x', 'sh', 'console'])
})

test('static ELF check and the work directory rule', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'migtrace-elf-'))
  writeFileSync(join(dir, 'notelf'), 'hello')
  t.false(isStaticElf(join(dir, 'notelf')))
  t.false(isStaticElf(process.execPath)) // node is dynamically linked
  t.is(labWorkDir({MIGTRACE_LAB_WORK: '/x'}), '/x')
  t.is(labWorkDir({XDG_CACHE_HOME: '/c'}), '/c/migtrace-lab')
})

test('ThreadSampler keeps the ticks of a thread that ended before the last sample; threadCpuBetween gives seconds, largest first', async (t) => {
  const {ThreadSampler, threadCpuBetween, threadTicks} = await import('../../src/lab/host-load.js')
  const reads: Record<string, number>[] = [
    {'CPU 0/TCG': 100, live_migration: 10},
    {'CPU 0/TCG': 150, live_migration: 260},
    {'CPU 0/TCG': 400},
  ]
  let i = 0
  const s = new ThreadSampler(1, 60_000, () => reads[Math.min(i++, reads.length - 1)]!)
  s.sample()
  const end = s.stop()
  t.deepEqual(end, {'CPU 0/TCG': 400, live_migration: 260})
  t.deepEqual(s.stop(), end)
  t.deepEqual(threadCpuBetween(reads[0]!, end), {'CPU 0/TCG': 3, live_migration: 2.5})
  // this process's own threads: the main thread is there and has run
  const own = threadTicks(process.pid)
  t.true(Object.keys(own).length > 0)
})

test("a lab comparison replays with the project's calibration over the lab's base settings; --config FILE or none instead; a bad file is refused before any capture", (t) => {
  const cal = JSON.parse(readFileSync(PROJECT_CALIBRATION, 'utf8')) as Record<string, unknown>
  const byDefault = labComparisonSettings(undefined)
  t.is(byDefault.config, PROJECT_CALIBRATION)
  const merged = parseSetFlags(byDefault.settings) as Record<string, unknown>
  // Every calibrated value wins over the lab's base value of the same key (zero-page-cost).
  for (const [k, v] of Object.entries(parseSetFlags(Object.entries(cal).map(([k, v]) => `${k}=${String(v)}`)))) t.deepEqual(merged[k], v, k)
  t.deepEqual(labComparisonSettings('none'), {settings: LAB_REPLAY_SETTINGS})
  const dir = mkdtempSync(join(tmpdir(), 'lab-cal-'))
  writeFileSync(join(dir, 'c.json'), JSON.stringify({'sender-page-cost': '3us'}))
  const own = labComparisonSettings(join(dir, 'c.json'))
  t.deepEqual(own.settings, [...LAB_REPLAY_SETTINGS, 'sender-page-cost=3us'])
  writeFileSync(join(dir, 'bad.json'), JSON.stringify({'sender-page-kost': 1}))
  t.throws(() => labComparisonSettings(join(dir, 'bad.json')), {instanceOf: UserError, message: /unknown setting/})
})
