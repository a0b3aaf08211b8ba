/**
 * End to end: a tiny real migration with `migtrace lab run` (192 MiB guest, 8 MiB working set,
 * ~20 s under TCG), then its files and the prediction table. Skipped, saying why, where QEMU or the
 * lab's guest image is missing (`migtrace lab image` builds it; .ci/run does so when it can).
 * MIGTRACE_LAB_SMOKE=0 skips it too.
 */
import {existsSync, mkdtempSync, readFileSync} from 'node:fs'
import {spawnSync} from 'node:child_process'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {runCli} from '../helpers/cli.js'
import {labWorkDir} from '../../src/lab/paths.js'
import {requireImage} from '../../src/lab/image.js'

function whyNot(): string | undefined {
  if (process.env.MIGTRACE_LAB_SMOKE === '0') return 'MIGTRACE_LAB_SMOKE=0'
  if (spawnSync('qemu-system-x86_64', ['--version'], {stdio: 'ignore'}).status !== 0) return 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)'
  try {
    requireImage(labWorkDir())
  } catch (e) {
    return `${(e as Error).message}`
  }
  return undefined
}

test('lab smoke: a tiny real migration, captured, imported, replayed and compared', async (t) => {
  const skip = whyNot()
  if (skip !== undefined) {
    t.log(`lab smoke test skipped: ${skip}`)
    t.pass()
    return
  }
  const out = join(mkdtempSync(join(tmpdir(), 'migtrace-smoke-')), 'run')
  const r = await runCli(['lab', 'run', '--name', 'smoke', '--out', out, '--mem', '192', '--ws', '8', '--rate', '1000', '--bandwidth', '128', '--downtime', '300', '--warmup', '0.5', '--post-run', '0.5', '--max-time', '40'])
  t.is(r.code, 0, r.stdout + r.stderr)
  t.regex(r.stdout, /\[lab\] migration completed: total-time \d+ ms/)
  t.regex(r.stdout, /prediction vs QEMU \(query-migrate\)/)
  t.regex(r.stdout, /^transferred\s+bytes\s+[\d,]+\s+[\d,]+/m)
  for (const f of ['config.json', 'timeline.jsonl', 'passes.csv', 'final-src.json', 'final-dst.json', 'events.jsonl', 'src-console.log', 'dst-console.log', 'trace-src.log.gz', 'trace-dst.log.gz', 'summary.json', 'trace.csv.gz', 'expect.txt']) t.true(existsSync(join(out, f)), f)
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))
  t.is(cfg.args.ws, 8)
  t.is(cfg.load.start.avg.length, 3)
  t.regex(cfg.cmd_dst, /-incoming defer/)
  const fin = JSON.parse(readFileSync(join(out, 'final-src.json'), 'utf8'))
  t.is(fin.status, 'completed')
  t.true(fin['total-time'] > 0)
  const ev = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  t.true(ev.some((e) => e.event === 'MIGRATION' && e.data.status === 'completed' && e.side === 'src'))
  // the console is stamped and the dirtier's page map is there (epoch 0)
  t.regex(readFileSync(join(out, 'src-console.log'), 'utf8'), /^\[\d+\.\d{6}\] DIRTIER PFNMAP epoch=0 total=0 runs=\d+$/m)
  // recorded by default (the image builder needs gcc, so the plugin builds): the comparison's
  // writes came from the recording, the kernel's with the dirtier's
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
  t.regex(cfg.cmd_src, /-plugin \S+migtrace-record-[0-9a-f]+\.so,fd=3,epoch_ns=1000000,clock=host,arm=/)
  t.true(summary.recording.writes > 0, JSON.stringify(summary.recording))
  const {openTrace} = await import('../../src/trace/read/open.js')
  const rec = (await openTrace(join(out, 'trace.csv.gz'))).header.source!.recordedWrites as {emitted: number; dirtierRecreated: boolean}
  t.true(rec.emitted > 0)
  t.false(rec.dirtierRecreated)
})
