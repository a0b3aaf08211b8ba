/**
 * `migtrace repaly` -> "did you mean replay?". On a terminal this hands over to
 * @oclif/plugin-not-found, which asks "Did you mean replay?" and runs it on yes. Elsewhere (scripts,
 * pipes, CI) the plugin would print only "is not a migtrace command", so the suggestion is printed
 * here as one line. Exit code 127 as the plugin (and a shell) uses for an unknown command.
 *
 * The plugin is not listed in package.json's oclif.plugins: oclif runs every plugin's
 * command_not_found hook at once, and two hooks would both print.
 */
import type {Hook} from '@oclif/core'
import {toConfiguredId} from '@oclif/core/util/ids'
import {editDistance, nearest} from '../../util/nearest.js'

const hook: Hook.CommandNotFound = async function (opts) {
  const visible = opts.config.commands.filter((c) => !c.hidden)
  const ids = [...visible.map((c) => c.id), ...visible.flatMap((c) => c.aliases)]
  // oclif joins the arguments into the id ('repaly x' -> 'repaly:x'): try the longest run of
  // leading words that is near a command ('import qemuu x' -> 'import qemu').
  const words = opts.id.split(':')
  let suggestion: string | undefined
  let typedWords = 1
  let bestDistance = Infinity
  for (let k = words.length; k >= 1; k--) {
    const typed = words.slice(0, k).join(':')
    const near = nearest(typed, ids)
    const d = near === undefined ? Infinity : editDistance(typed, near)
    if (d < bestDistance) [suggestion, typedWords, bestDistance] = [near, k, d]
  }
  if (suggestion !== undefined && process.stdin.isTTY && process.stderr.isTTY) {
    const {default: pluginHook} = await import('@oclif/plugin-not-found')
    return pluginHook.call(this, opts)
  }
  const typed = toConfiguredId(words.slice(0, typedWords).join(':'), opts.config)
  const hint = suggestion !== undefined ? `; did you mean '${toConfiguredId(suggestion, opts.config)}'?` : '.'
  process.stderr.write(`${opts.config.bin}: '${typed}' is not a ${opts.config.bin} command${hint} Run '${opts.config.bin} help' for the list.\n`)
  return this.exit(127)
}

export default hook
