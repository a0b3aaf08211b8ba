/**
 * What became of a guest, read from its console: still running the dirtier, crashed (a kernel
 * oops or panic; the lab boots with panic=-1, so a panic reboots at once), rebooted, or silent.
 * The destination's console starts at the switchover (its guest runs from there on), so any
 * crash line on it is a crash after the migration.
 */
export interface GuestState {
  state: 'alive' | 'crashed' | 'rebooted' | 'silent' | 'not-run'
  /** The first crash line, or why silent. */
  detail?: string
  /** DIRTIER progress lines on the whole console, and in the observation window. */
  dirtierLines: number
  dirtierLinesInWindow: number
}

const CRASH = /Kernel panic|BUG: |Oops: |general protection fault|unable to handle page fault|Attempted to kill/

export function guestState(all: readonly string[], window: readonly string[]): GuestState {
  const progress = (ls: readonly string[]): number => ls.filter((l) => l.startsWith('DIRTIER t=')).length
  const dirtierLines = progress(all)
  const dirtierLinesInWindow = progress(window)
  const crash = all.find((l) => CRASH.test(l))
  if (crash !== undefined) return {state: 'crashed', detail: crash.trim(), dirtierLines, dirtierLinesInWindow}
  if (all.some((l) => l.startsWith('LAB BOOTED'))) return {state: 'rebooted', detail: 'the guest booted again', dirtierLines, dirtierLinesInWindow}
  if (dirtierLinesInWindow > 0) return {state: 'alive', dirtierLines, dirtierLinesInWindow}
  return {state: 'silent', detail: 'no dirtier progress lines in the window (an idle dirtier prints none)', dirtierLines, dirtierLinesInWindow}
}
