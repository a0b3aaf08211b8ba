/**
 * The HTML report in a real browser: Debian's chromium, installed by scripts/ensure-chromium.sh
 * when missing (apt-get; CI runs as root). The page must load with no console error, exception or
 * failed load, and its screenshot must not be blank. Control pages prove that both checks can fail.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import test from 'ava'
import {ROOT, runCli} from '../helpers/cli.js'
import {loadPage} from './chromium-cdp.js'
import {pngStats} from './png.js'

let unavailable: string | undefined

function skipped(t: {log: (...v: unknown[]) => void; pass: (m?: string) => void}): true {
  const msg = `SKIPPED: chromium is missing and cannot be installed here (${unavailable})`
  t.log(msg)
  process.stderr.write(`chromium.test.ts: ${msg}\n`)
  t.pass(msg)
  return true
}

test.before(() => {
  const r = spawnSync('sh', [join(ROOT, 'scripts/ensure-chromium.sh')], {encoding: 'utf8', timeout: 15 * 60_000})
  if (r.status === 3) unavailable = r.stderr.trim().split('\n').at(-1)
  else if (r.status !== 0) throw new Error(`scripts/ensure-chromium.sh failed (${r.status}):\n${r.stderr.slice(-3000)}`)
})

const dir = mkdtempSync(join(tmpdir(), 'migtrace-chromium-test-'))
test.after.always(() => rmSync(dir, {recursive: true, force: true}))

test.serial('the report renders in headless Chromium with no console error and a non-blank screenshot', async (t) => {
  if (unavailable && skipped(t)) return
  const out = join(dir, 'report.html')
  const res = await runCli(['report', 'fixtures/replay/small.csv', '--out', out, '--quiet'])
  t.is(res.code, 0, res.stderr)
  const page = await loadPage(pathToFileURL(out).href, 1200, 2000)
  t.deepEqual(page.errors, [])
  t.deepEqual(page.console, [])
  const s = pngStats(page.png)
  t.is(s.width, 1200)
  t.is(s.height, 2000)
  // text, tables and charts: far more than a blank page's few stray pixels
  t.true(s.nonWhite / s.pixels > 0.03, `non-white share ${(s.nonWhite / s.pixels).toFixed(4)}`)
})

test.serial('control pages: a console error, a failed load and a blank page are all detected', async (t) => {
  if (unavailable && skipped(t)) return
  const bad = join(dir, 'bad.html')
  writeFileSync(bad, '<!DOCTYPE html><html><body><p>x</p><img src="missing.png"><script>console.error("boom")</script></body></html>')
  const p1 = await loadPage(pathToFileURL(bad).href, 400, 300)
  t.true(p1.errors.some((e) => e.includes('boom')), p1.errors.join('\n'))
  t.true(p1.errors.some((e) => e.includes('ERR_FILE_NOT_FOUND')), p1.errors.join('\n'))
  const blank = join(dir, 'blank.html')
  writeFileSync(blank, '<!DOCTYPE html><html><body></body></html>')
  const p2 = await loadPage(pathToFileURL(blank).href, 400, 300)
  t.deepEqual(p2.errors, [])
  t.is(pngStats(p2.png).nonWhite, 0)
})

// Every kind of page and chart: postcopy (downtime on its own scale, fault latency), a passthrough
// device (pages VFIO reports dirty at each sync), compare --html (variants overlaid), grid heat maps.
const pages: [string, string[]][] = [
  ['postcopy report', ['report', 'traces/hotset-nonconverging.csv.gz', '--set', 'postcopy-after=2', '--quiet', '--out']],
  ['passthrough report', ['report', 'traces/vfio-passthrough.csv.gz', '--quiet', '--out']],
  ['compare --html', ['compare', 'fixtures/replay/small.csv', '--variant', 'a', '--variant', 'b:downtime-limit=20ms', '--quiet', '--jobs', '1', '--html']],
  ['grid --html', ['grid', 'fixtures/replay/small.csv', '--bandwidth', '64MiB/s,1Gbit/s', '--downtime', '20ms,300ms', '--quiet', '--jobs', '1', '--html']],
]
for (const [name, args] of pages) {
  test.serial(`${name} renders in headless Chromium with no console error, every chart drawn`, async (t) => {
    if (unavailable && skipped(t)) return
    const out = join(dir, `${name.replace(/\W+/g, '-')}.html`)
    const res = await runCli([...args, out])
    t.is(res.code, 0, res.stderr)
    const page = await loadPage(pathToFileURL(out).href, 1200, 3000)
    t.deepEqual(page.errors, [])
    t.deepEqual(page.console, [])
    t.true(pngStats(page.png).nonWhite / (1200 * 3000) > 0.02)
  })
}
