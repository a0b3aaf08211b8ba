/**
 * Runs the built CLI (bin/run.js → dist/) as a child process, as a user would. NODE_ENV is set to
 * production on purpose: ava sets NODE_ENV=test, under which oclif would run src/ through tsx
 * instead of the built artifact.
 */
import {spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export function runCli(args: string[], opts: {cwd?: string; input?: string; env?: Record<string, string>} = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}/bin/run.js`, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: {...process.env, NODE_ENV: 'production', ...opts.env},
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
    child.stdin.end(opts.input ?? '')
  })
}
