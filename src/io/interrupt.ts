/**
 * Ctrl-C, `kill` or a closed terminal: every output not yet committed is removed, one line says
 * so, and the process then dies of the same signal, so a calling shell sees the conventional
 * status (130 for SIGINT, 143 for SIGTERM) and a script's loop stops as it would for any tool.
 */
import {abortAllOutputs} from './atomic-output.js'

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
const SIGNAL_NUMBERS: Record<(typeof SIGNALS)[number], number> = {SIGHUP: 1, SIGINT: 2, SIGTERM: 15}
let installed = false
let interrupted = false

function onSignal(sig: (typeof SIGNALS)[number]): void {
  // A second Ctrl-C while another handler winds down: nothing more to say.
  if (interrupted) return
  interrupted = true
  const removed = abortAllOutputs()
  // A progress bar hides the cursor; give it back.
  if (process.stderr.isTTY) process.stderr.write('\u001b[?25h\n')
  process.stderr.write(`migtrace: interrupted by ${sig}${removed > 0 ? '; the unfinished output was removed' : ''}\n`)
  // Someone else handles this signal too (src/qemu/process.ts stops its QEMUs, lets them flush
  // their logs, then exits with 128 + the signal): leave the ending to them.
  if (process.listenerCount(sig) > 1) return
  for (const s of SIGNALS) process.removeAllListeners(s)
  process.kill(process.pid, sig)
  // The default action should end the process at once; should it not, exit with the shell's code.
  setTimeout(() => process.exit(128 + SIGNAL_NUMBERS[sig]), 2000).unref()
}

/** Install the handlers once per process (the CLI's base command does, for every command). */
export function installInterruptHandler(): void {
  if (installed) return
  installed = true
  for (const s of SIGNALS) process.on(s, () => onSignal(s))
}
