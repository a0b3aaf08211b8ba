/**
 * Bytes read so far from trace files, for progress bars. Readers report after each chunk (the
 * compressed bytes for a .gz, so the total is the file's size); the CLI listens. Nothing listens
 * unless a bar is shown, and a report is one Set lookup per megabyte chunk.
 */
export type BytesReadListener = (path: string, bytesRead: number) => void

const listeners = new Set<BytesReadListener>()

/** Listen until the returned function is called. */
export function onTraceBytesRead(listener: BytesReadListener): () => void {
  listeners.add(listener)
  return () => {
    listeners.delete(listener)
  }
}

export function noteTraceBytesRead(path: string, bytesRead: number): void {
  if (listeners.size === 0) return
  for (const l of listeners) l(path, bytesRead)
}
