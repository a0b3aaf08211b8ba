/**
 * The user's QEMU arguments as `migtrace record` needs to see them: options it must refuse (an
 * accelerator other than TCG: plugins instrument TCG-translated code only) and options it reads
 * (-D, -S, -incoming). QEMU accepts `-opt` and `--opt` alike (qemu-options.hx / vl.c).
 */
import {UserError} from '../util/errors.js'

const norm = (a: string): string => (a.startsWith('--') ? a.slice(1) : a)

/** The value of the last `-opt VALUE` (QEMU: the last one wins), or undefined. */
export function optionValue(args: readonly string[], opt: string): string | undefined {
  let v: string | undefined
  for (let i = 0; i < args.length - 1; i++) if (norm(args[i]!) === opt) v = args[i + 1]
  return v
}

export function hasFlag(args: readonly string[], flag: string): boolean {
  return args.some((a) => norm(a) === flag)
}

/** Values of every `-opt VALUE`. */
function optionValues(args: readonly string[], opt: string): string[] {
  const out: string[] = []
  for (let i = 0; i < args.length - 1; i++) if (norm(args[i]!) === opt) out.push(args[i + 1]!)
  return out
}

/** Refuse what cannot be recorded, with the fix in the message. */
export function checkQemuArgs(args: readonly string[]): void {
  const accel = [...optionValues(args, '-accel').map((v) => v.split(',')[0]!.replace(/^accel=/, '')), ...optionValues(args, '-machine').flatMap((v) => /(?:^|,)accel=([^,]+)/.exec(v)?.[1]?.split(':') ?? [])]
  if (hasFlag(args, '-enable-kvm') || accel.some((a) => a !== 'tcg'))
    throw new UserError('migtrace record needs TCG: QEMU plugins see only TCG-translated code, not a KVM (or other accelerator) guest', {
      field: 'QEMU command',
      expected: 'no -enable-kvm and -accel tcg (or no -accel); on a KVM host use the dirty-ring or tracepoint route (migtrace import kvm)',
      found: hasFlag(args, '-enable-kvm') ? '-enable-kvm' : `accelerator ${accel.find((a) => a !== 'tcg')}`,
    })
  if (hasFlag(args, '-daemonize')) throw new UserError('migtrace record runs QEMU in the foreground: remove -daemonize', {field: 'QEMU command'})
}
