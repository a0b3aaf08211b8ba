/**
 * Ground truth for `migtrace record`: record the lab's dirtier under QEMU and check that every
 * write re-created from its seed is in the recording, console interval by console interval, and
 * count the rest of the guest's writes (src/record/ground-truth.ts says how).
 *
 *   npx tsx scripts/record-ground-truth.ts [--ws 32] [--rate 5000] [--pattern random] [--seed 7]
 *       [--intervals 8] [--epoch 1ms] [--ips 2G] [--out DIR]
 *
 * Builds the lab's guest image first (src/lab/image.ts: Debian's kernel + busybox + the dirtier,
 * in the lab's cache directory), then runs `migtrace record` in-process with the guest console
 * host-stamped, stops at the given console interval, and prints the result as Markdown
 * (docs/record.md quotes a run). Takes minutes: the guest boots under TCG with the plugin.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parseArgs} from 'node:util'
import {buildImage} from '../src/lab/image.js'
import {record} from '../src/record/recorder.js'
import {checkGroundTruth, groundTruthMarkdown} from '../src/record/ground-truth.js'
import {parseIps} from '../src/record/options.js'
import {parseDurationNs} from '../src/util/units.js'

const {values: a} = parseArgs({
  options: {
    ws: {type: 'string', default: '32'},
    rate: {type: 'string', default: '5000'},
    pattern: {type: 'string', default: 'random'},
    seed: {type: 'string', default: '7'},
    intervals: {type: 'string', default: '8'},
    epoch: {type: 'string', default: '1ms'},
    ips: {type: 'string', default: '2G'},
    mem: {type: 'string', default: '512'},
    out: {type: 'string', default: '/tmp/migtrace-ground-truth'},
  },
})

const img = buildImage({log: (l) => console.error(`[image] ${l}`)})
mkdirSync(a.out!, {recursive: true})
const trace = join(a.out!, 'dirtier.csv.gz')
const consoleFile = join(a.out!, 'console.log')
const append = `console=ttyS0 loglevel=4 panic=-1 lab.ws=${a.ws} lab.rate=${a.rate} lab.pattern=${a.pattern} lab.seed=${a.seed} lab.pfnmap=1`
const command = ['qemu-system-x86_64', '-accel', 'tcg,thread=single', '-m', `${a.mem}M`, '-smp', '1', '-machine', 'pc', '-nodefaults', '-display', 'none', '-vga', 'none', '-serial', 'stdio', '-kernel', img.paths.kernel, '-initrd', img.paths.initrd, '-append', append]
const last = Number(a.intervals)
const t0 = Date.now()
const r = await record({
  out: trace,
  command,
  epochNs: parseDurationNs(a.epoch!, 'epoch'),
  ips: parseIps(a.ips!),
  clock: 'guest',
  console: consoleFile,
  // The console interval lines print t with three decimals: stop after the last wanted one.
  stopOn: new RegExp(`^DIRTIER t=${last}\\.`),
  log: (m) => console.error(`[record] ${m}`),
})
const hostS = (Date.now() - t0) / 1000
const g = await checkGroundTruth({
  trace,
  console: consoleFile,
  params: {wsMib: Number(a.ws), rate: Number(a.rate), pattern: a.pattern as 'random', hotPct: 10, hotProb: 90, fill: 'random', seed: Number(a.seed)},
})
const rec = r.header.source!.recording as Record<string, unknown>
const md = [
  `Command: \`npx tsx scripts/record-ground-truth.ts --ws ${a.ws} --rate ${a.rate} --pattern ${a.pattern} --seed ${a.seed} --intervals ${a.intervals} --epoch ${a.epoch} --ips ${a.ips}\``,
  '',
  `Kernel ${img.manifest.kernelVersion}; guest ${a.mem} MiB, 1 vCPU, TCG; recorded in ${hostS.toFixed(0)} s of host time; ${r.events} events (${String(rec.storesSeen)} stores seen, ${String(rec.ioStoresSkipped)} to I/O, ${String(rec.romStoresDropped)} to ROM dropped).`,
  '',
  `Dirtier writes re-created from the seed: ${g.writesRecreated} (every console interval's distinct count verified). Missed: **${g.missed}**. Records of working-set frames that are no dirtier write: ${g.foreignWsRecords}. Records before the dirtier's first write (boot, the fill): ${g.recordsBeforeFirstWrite} of ${g.recordsTotal}.`,
  '',
  groundTruthMarkdown(g),
].join('\n')
writeFileSync(join(a.out!, 'result.md'), `${md}\n`)
writeFileSync(join(a.out!, 'result.json'), `${JSON.stringify(g, null, 1)}\n`)
console.log(md)
process.exitCode = g.missed === 0 ? 0 : 1
