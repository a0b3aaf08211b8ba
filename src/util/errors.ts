/**
 * One error type for a user's mistake (bad trace, bad config, bad flag). It carries where the
 * mistake is (file, line, field) and what was expected and found, so the command layer can print
 * one line and exit with code 2. Any other exception is a bug in migtrace (exit 1, stack trace).
 */
export interface UserErrorDetails {
  file?: string
  line?: number
  field?: string
  expected?: string
  found?: string
}

export class UserError extends Error {
  readonly file?: string
  readonly line?: number
  readonly field?: string
  readonly expected?: string
  readonly found?: string
  /** The message without the location prefix. */
  readonly reason: string

  constructor(reason: string, details: UserErrorDetails = {}) {
    super(formatUserError(reason, details))
    this.name = 'UserError'
    this.reason = reason
    this.file = details.file
    this.line = details.line
    this.field = details.field
    this.expected = details.expected
    this.found = details.found
  }

  /** A copy of this error with a file (and optionally line) filled in where it had none. */
  withLocation(file: string, line?: number): UserError {
    return new UserError(this.reason, {
      file: this.file ?? file,
      line: this.line ?? line,
      field: this.field,
      expected: this.expected,
      found: this.found,
    })
  }

  toJSON(): Record<string, unknown> {
    return {
      message: this.message,
      file: this.file,
      line: this.line,
      field: this.field,
      expected: this.expected,
      found: this.found,
    }
  }
}

/** `file:line: field 'f': reason (expected X, found Y)` with the parts that are known. */
export function formatUserError(reason: string, d: UserErrorDetails): string {
  let where = ''
  if (d.file !== undefined) where = d.line !== undefined ? `${d.file}:${d.line}: ` : `${d.file}: `
  else if (d.line !== undefined) where = `line ${d.line}: `
  const field = d.field !== undefined ? `field '${d.field}': ` : ''
  const parts: string[] = []
  if (d.expected !== undefined) parts.push(`expected ${d.expected}`)
  if (d.found !== undefined) parts.push(`found ${d.found}`)
  const tail = parts.length > 0 ? ` (${parts.join(', ')})` : ''
  return `${where}${field}${reason}${tail}`
}

/** Show a user's value in an error message: quoted, shortened, control characters escaped. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing'
  if (v === '') return 'an empty value'
  const s = typeof v === 'string' ? v : JSON.stringify(v)
  const short = s.length > 40 ? `${s.slice(0, 37)}...` : s
  return `'${short.replace(/[\u0000-\u001f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}'`
}
