// Cold start (issue 15: `migtrace --help` within 1.6x a bare `node -e ''`): each invocation run in
// turn with a bare node, so a busy machine slows them alike; the median of each and its ratio to the
// bare node's. --help and `replay --help` print the pages the build saved (src/cli/fast-help);
// the same --help with MIGTRACE_NO_FAST_HELP=1 is oclif's own path (the figure before the fast path);
// `settings` is a command's start through oclif (it prints a table and does nothing else).
// BENCH_STARTUP_RUNS sets the runs of each (default 21). On Linux each is also timed in CPU (the
// children's user + system time, /proc/self/stat's cutime and cstime): on a shared machine the wall
// time is mostly waiting for a CPU, and the CPU ratio is the steadier figure.
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

/** CPU ms of this process's waited-for children so far, or undefined off Linux. USER_HZ is 100 on Linux. */
function childrenCpuMs() {
  if (!existsSync('/proc/self/stat')) return undefined
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from the third (state) on
  return (Number(fields[13]) + Number(fields[14])) * 10 // cutime, cstime: fields 16 and 17
}

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
  const cpuMs = cases.map(() => 0)
  for (let i = 0; i < runs; i++) {
    for (const [j, c] of cases.entries()) {
      const cpu0 = childrenCpuMs()
      const t0 = process.hrtime.bigint()
      const r = spawnSync(process.execPath, c.args, {env: c.env, encoding: 'utf8'})
      if (r.status !== 0) throw new Error(`${c.name} failed: ${r.stderr}`)
      ms[j].push(Number(process.hrtime.bigint() - t0) / 1e6)
      if (cpu0 !== undefined) cpuMs[j] += childrenCpuMs() - cpu0
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
  if (childrenCpuMs() === undefined) return
  ctx.record(`${cases[0].name}: CPU (mean of ${runs})`, cpuMs[0] / runs, 'ms')
  for (const [j, c] of cases.entries()) {
    if (j === 0) continue
    ctx.record(`${c.name}: CPU (mean of ${runs})`, cpuMs[j] / runs, 'ms')
    ctx.record(`${c.name}: CPU / bare node's`, cpuMs[j] / cpuMs[0], 'x')
  }
}
