/**
 * The examples of README.md and docs/*.md, as a reader pastes them: fenced blocks tagged `sh`
 * (commands, run in order with `set -e`) and `console` (`$ command` lines; an `echo $?` after a
 * command states its exit code, otherwise it must be 0). Untagged and `text` blocks are synopses
 * and sample output, not examples. An HTML comment on the line before a block marks it:
 *   <!-- example: slow -->            run only with DOC_EXAMPLES=all (long runs, QEMU)
 *   <!-- example: skip: why -->       never run here (e.g. needs a Slurm cluster); the reason is required
 * `npm ...` lines are left out: npm start and npm test are what CI itself runs.
 */
import {readFileSync} from 'node:fs'

export interface Command {
  line: number
  text: string
  /** Expected exit code (console blocks with `echo $?`), else 0. */
  exit: number
}

export interface Example {
  file: string
  /** Line of the opening fence. */
  line: number
  lang: 'sh' | 'console'
  mark: 'run' | 'slow' | 'skip'
  reason?: string
  commands: Command[]
}

const FENCE = /^```(\w*)\s*$/
const MARK = /^<!--\s*example:\s*(slow|skip)(?::\s*(.+?))?\s*-->\s*$/

export function examplesOf(file: string, text = readFileSync(file, 'utf8')): Example[] {
  const lines = text.split('\n')
  const out: Example[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!)
    if (!open) continue
    let end = i + 1
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++
    const lang = open[1]!
    if (lang === 'sh' || lang === 'console') {
      const m = i > 0 ? MARK.exec(lines[i - 1]!) : null
      if (m?.[1] === 'skip' && !m[2]) throw new Error(`${file}:${i}: '<!-- example: skip -->' needs a reason ('skip: why')`)
      const body = lines.slice(i + 1, end).map((text, k) => ({text, line: i + 2 + k}))
      out.push({file, line: i + 1, lang, mark: (m?.[1] as 'slow' | 'skip' | undefined) ?? 'run', reason: m?.[2], commands: lang === 'sh' ? shCommands(body) : consoleCommands(body)})
    }
    i = end
  }
  return out
}

/** Lines of a shell block joined at trailing backslashes; comments and npm lines left out. */
function shCommands(body: {text: string; line: number}[]): Command[] {
  const out: Command[] = []
  let cur: Command | undefined
  for (const {text, line} of body) {
    if (cur) {
      cur.text += `\n${text}`
      if (!text.endsWith('\\')) cur = undefined
      continue
    }
    const t = text.trim()
    if (t === '' || t.startsWith('#') || t.startsWith('npm ')) continue
    const c = {line, text, exit: 0}
    out.push(c)
    if (text.endsWith('\\')) cur = c
  }
  return out
}

/** `$ cmd` lines (with continuations); `$ echo $?` followed by N sets the previous command's exit. */
function consoleCommands(body: {text: string; line: number}[]): Command[] {
  const out: Command[] = []
  for (let k = 0; k < body.length; k++) {
    const {text, line} = body[k]!
    if (!text.startsWith('$ ')) continue
    let cmd = text.slice(2)
    while (cmd.endsWith('\\') && k + 1 < body.length) cmd += `\n${body[++k]!.text}`
    if (cmd.trim() === 'echo $?') {
      const prev = out.at(-1)
      const code = Number(body[k + 1]?.text.trim())
      if (prev && Number.isInteger(code)) prev.exit = code
      continue
    }
    if (cmd.trim().startsWith('npm ')) continue
    out.push({line, text: cmd, exit: 0})
  }
  return out
}
