// Cold start (issue 15: `migtrace --help` within 1.6x a bare `node -e ''`): each invocation run in
// turn with a bare node, so a busy machine slows them alike; the median of each and its ratio to the
// bare node's. --help and `replay --help` print the pages the build saved (src/cli/fast-help);
// the same --help with MIGTRACE_NO_FAST_HELP=1 is oclif's own path (the figure before the fast path);
// `settings` is a command's start through oclif (it prints a table and does nothing else).
// BENCH_STARTUP_RUNS sets the runs of each (default 21).
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

export async function run(ctx) {
  const runs = Number(process.env.BENCH_STARTUP_RUNS ?? 21)
  const bin = join(ctx.root, 'bin/run.js')
  const env = {...process.env, NODE_ENV: 'production'}
  for (const k of Object.keys(env)) if (k.startsWith('MIGTRACE_') || k.startsWith('OCLIF_') || k === 'DEBUG') delete env[k]
  const cases = [
    {name: 'node -e ""', args: ['-e', ''], env},
    {name: 'migtrace --help', args: [bin, '--help'], env},
    {name: 'migtrace replay --help', args: [bin, 'replay', '--help'], env},
    {name: 'migtrace --help through oclif (MIGTRACE_NO_FAST_HELP=1)', args: [bin, '--help'], env: {...env, MIGTRACE_NO_FAST_HELP: '1'}},
    {name: 'migtrace settings (a command, through oclif)', args: [bin, 'settings'], env},
  ]
  const ms = cases.map(() => [])
  for (let i = 0; i < runs; i++) {
    for (const [j, c] of cases.entries()) {
      const t0 = process.hrtime.bigint()
      const r = spawnSync(process.execPath, c.args, {env: c.env, encoding: 'utf8'})
      if (r.status !== 0) throw new Error(`${c.name} failed: ${r.stderr}`)
      ms[j].push(Number(process.hrtime.bigint() - t0) / 1e6)
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1]
  const bare = median(ms[0])
  ctx.record(`${cases[0].name} (median of ${runs}, in turn with each below)`, bare, 'ms')
  for (const [j, c] of cases.entries()) {
    if (j === 0) continue
    ctx.record(`${c.name} (median of ${runs})`, median(ms[j]), 'ms')
    ctx.record(`${c.name} / bare node`, median(ms[j]) / bare, 'x')
  }
}
