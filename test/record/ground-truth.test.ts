/**
 * The ground-truth checker (src/record/ground-truth.ts) on a hand-made recording: a console of the
 * dirtier and a trace built as the plugin would record those writes (first store per page per
 * epoch), with the kernel's writes around them. Then with one record taken out: the checker must
 * find the write it missed. The real run (QEMU, the lab's guest) is scripts/record-ground-truth.ts.
 */
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import test from 'ava'
import {checkGroundTruth, recreateWrites} from '../../src/record/ground-truth.js'
import {DirtierPages, type DirtierParams} from '../../src/import/qemu/dirtier.js'
import {TraceWriter} from '../../src/trace/write/writer.js'
import {createBatch, K} from '../../src/trace/events.js'
import {parseHeader} from '../../src/trace/header.js'

const tmp = mkdtempSync(join(tmpdir(), 'migtrace-gt-'))
const params: DirtierParams = {wsMib: 1, rate: 1000, pattern: 'random', hotPct: 10, hotProb: 90, fill: 'random', seed: 3}
const PFN = 0x1000
const EPOCH = 5e6

function consoleText(): string {
  // Interval lines as the dirtier prints them, distinct counts from the seed.
  const pages = new DirtierPages(params)
  const lines = ['DIRTIER CONFIG ws_mib=1 pages=256 rate=1000 pattern=random', 'DIRTIER PFNMAP epoch=0 total=0 runs=1', `DIRTIER PFNRUN vpage=0 pfn=0x${PFN.toString(16)} npages=256`, 'DIRTIER PFNMAP epoch=0 end', 'DIRTIER READY']
  for (let i = 1; i <= 3; i++) {
    const seen = new Set<number>()
    for (let k = 0; k < 1000; k++) seen.add(pages.next())
    lines.push(`DIRTIER t=${i}.000 writes=1000 distinct=${seen.size} total=${i * 1000} rate=1000`)
  }
  return lines.join('\n') + '\n'
}

/** The plugin's view: write k at 1 s + k ms; kernel writes every 0.5 ms elsewhere; drop record `drop`. */
async function trace(path: string, console: string, drop?: number): Promise<{kept: number[]}> {
  const W = recreateWrites(params, console, 'console', 3000)
  const header = parseHeader({format: 'migtrace', version: 1, memory: '64M', source: {epochNs: EPOCH}})
  const w = await TraceWriter.open(path, header, [])
  const b = createBatch(1 << 16)
  const push = (t: number, gpa: number, len: number): void => {
    const i = b.length++
    b.t[i] = t
    b.kind[i] = K.write
    b.vcpu[i] = 0
    b.gpa[i] = gpa
    b.len[i] = len
  }
  // The fill: the first store to each working-set page, before READY.
  for (let p = 0; p < 256; p++) push(1000 * p, (PFN + p) * 4096, 8)
  const seen = new Map<number, number>()
  const kept: number[] = []
  let kt = 1e9
  for (let k = 0; k < 3000; k++) {
    const t = 1e9 + k * 1e6
    while (kt < t) {
      push(kt, 0x200000 + ((kt / 5e5) % 64) * 4096, 4)
      kt += 5e5
    }
    const page = Math.floor(W[k]! / 4096)
    const epoch = Math.floor(t / EPOCH)
    if (seen.get(page) === epoch) continue
    seen.set(page, epoch)
    if (k === drop) continue
    kept.push(k)
    push(t, W[k]!, 8)
  }
  await w.writeBatch(b)
  await w.close()
  return {kept}
}

test('every re-created write is recorded or covered by a record in its epoch; kernel writes counted', async (t) => {
  const c = consoleText()
  const cf = join(tmp, 'console.log')
  writeFileSync(cf, c)
  const tr = join(tmp, 'ok.csv')
  const {kept} = await trace(tr, c)
  const g = await checkGroundTruth({trace: tr, console: cf, params})
  t.is(g.writesRecreated, 3000)
  t.is(g.missed, 0)
  t.is(g.foreignWsRecords, 0)
  t.deepEqual(
    g.intervals.map((x) => x.recorded + x.sameEpoch),
    [1000, 1000, 1000],
  )
  t.is(g.intervals.reduce((s, x) => s + x.recorded, 0), kept.length)
  // 2 kernel writes per ms, 64 pages.
  t.true(g.intervals.every((x) => x.otherRecords >= 1990 && x.otherRecords <= 2010 && x.otherPages === 64), JSON.stringify(g.intervals))
  t.is(g.recordsBeforeFirstWrite, 256)
})

test('a record taken out is a missed write, in its interval', async (t) => {
  const c = consoleText()
  const cf = join(tmp, 'console2.log')
  writeFileSync(cf, c)
  // A write in the second interval whose page was never written before: nothing covers it.
  const W = recreateWrites(params, c, 'console', 3000)
  const firstOf = new Map<number, number>()
  W.forEach((a, k) => {
    if (!firstOf.has(Math.floor(a / 4096))) firstOf.set(Math.floor(a / 4096), k)
  })
  const drop = [...firstOf.values()].find((k) => k > 1000 && k < 2000)!
  const tr = join(tmp, 'drop.csv')
  await trace(tr, c, drop)
  const g = await checkGroundTruth({trace: tr, console: cf, params})
  t.is(g.missed, 1)
  t.deepEqual(
    g.intervals.map((x) => x.missed),
    [0, 1, 0],
  )
})
