/**
 * Node's file-system errors in a user's words. A raw `EACCES: permission denied, open
 * '/x/.out.tmp-123'` names an internal temp file and an errno; the user needs to hear what is wrong
 * with the path they gave. One table for every reader and writer in migtrace.
 */

/** The errno code of a Node file-system error, if it is one. */
export function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' ? code : undefined
}

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for the file system',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EIO: 'input/output error',
  EEXIST: 'already exists',
  EXDEV: 'the temporary file and the target are on different file systems',
  EBUSY: 'the file is busy',
  ETXTBSY: 'the file is busy',
  EINVAL: 'invalid file name',
  ERR_STRING_TOO_LONG: 'too large to read into memory',
  ERR_FS_FILE_TOO_LARGE: 'too large to read into memory',
}

/** A short reason for a file-system error: 'permission denied', 'no space left on the device'. */
export function fileErrorReason(e: unknown): string {
  const code = errnoCode(e)
  if (code !== undefined && REASONS[code] !== undefined) return REASONS[code]
  if (code !== undefined) return `${code.toLowerCase()}`
  return e instanceof Error ? e.message.split('\n')[0]! : String(e)
}

/** Errors that mean the machine, not the data: the disk is full, a quota or a size limit is hit. */
export function isOutOfSpace(e: unknown): boolean {
  const code = errnoCode(e)
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG'
}

/** Whether an error is a Node file-system error (has an errno code and a syscall). */
export function isFsError(e: unknown): boolean {
  return errnoCode(e) !== undefined && typeof (e as NodeJS.ErrnoException).syscall === 'string'
}
