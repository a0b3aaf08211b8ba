/**
 * Runs many CLI invocations in one process (the built CLI in dist/, loaded once), for the fuzz
 * test: spawning bin/run.js costs ~0.4 s a run, this a few milliseconds. Each case runs in its own
 * directory with stdout and stderr captured; the outcome is what bin/run.js would give: the exit
 * code oclif would set, and `crash` with the stack for any error that is not a user's mistake
 * (oclif would print it with the stack and exit 1).
 *
 * Input (stdin): JSON [{cwd, argv}] with argv[0] the command id ('import:qemu'). Output (stdout,
 * one JSON line per case, written as it finishes so a hang still reports the cases before it).
 * NODE_ENV must be production (dist/, not src/ through tsx).
 */
import {Config, Errors} from '@oclif/core'
import {fileURLToPath} from 'node:url'

interface Case {
  cwd: string
  argv: string[]
}

const root = fileURLToPath(new URL('../..', import.meta.url))
const out = process.stdout.write.bind(process.stdout)
const err = process.stderr.write.bind(process.stderr)

let input = ''
for await (const chunk of process.stdin) input += chunk
const cases = JSON.parse(input) as Case[]
const config = await Config.load({root})

for (const c of cases) {
  let stdout = ''
  let stderr = ''
  process.stdout.write = ((s: string | Uint8Array) => ((stdout += String(s)), true)) as typeof process.stdout.write
  process.stderr.write = ((s: string | Uint8Array) => ((stderr += String(s)), true)) as typeof process.stderr.write
  process.chdir(c.cwd)
  let code = 0
  let crash: string | undefined
  const started = Date.now()
  try {
    await config.runCommand(c.argv[0]!, c.argv.slice(1))
  } catch (e) {
    // this.exit(n) and BaseCommand's one-line errors end in an ExitError; anything else would be
    // printed by oclif's handler with its stack.
    if (e instanceof Errors.ExitError) code = e.oclif.exit ?? 1
    else if (e instanceof Errors.CLIError) {
      // this.error(): oclif prints its own ' ›   Error: ...' line.
      code = e.oclif.exit ?? 2
      stderr += ` ›   Error: ${e.message}\n`
    } else {
      code = 1
      crash = e instanceof Error ? (e.stack ?? e.message) : String(e)
    }
  } finally {
    process.stdout.write = out
    process.stderr.write = err
  }
  out(`${JSON.stringify({code, stdout: stdout.slice(0, 4000), stderr: stderr.slice(0, 4000), crash, ms: Date.now() - started})}\n`)
}
process.exit(0)
