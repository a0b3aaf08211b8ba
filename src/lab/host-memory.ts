/**
 * What the host's memory does to a migration's per-page times, recorded with every lab run
 * (config.json `host_memory`). QEMU's save_zero_page reads every page of guest RAM
 * (buffer_is_zero); a page the guest never touched is memory the host has not populated. On a
 * standard Linux kernel that read faults in the shared zero page (the huge zero page under THP:
 * transparent_hugepage/use_zero_page), one cheap fault per 2 MiB, and a zero page costs the
 * migration thread ~0.5 µs. A kernel that maps no zero page on reads (the lab's PVM guest kernel,
 * booted with `pvm_no_zero_page=1`) allocates and clears a page (a THP) instead, and when freed
 * memory is handed back to the outer hypervisor (`page_reporting`), that page is cold again a few
 * seconds after the last QEMU freed it: 7-13 µs a zero page here (docs/lab.md, "Cold host memory").
 * `lab run --prealloc` (the default) takes that cost out; this record says what a capture made
 * without it paid for.
 */
import {readFileSync} from 'node:fs'

export interface HostMemory {
  /** A read fault on untouched anonymous memory maps the shared zero page (false: it allocates a page). */
  zero_page_on_read: boolean
  /** Free page reporting to the hypervisor: the order of the blocks reported (null: not configured). */
  page_reporting_order: number | null
  /** /sys/kernel/mm/transparent_hugepage/enabled, the selected value (QEMU madvises guest RAM, so `madvise` applies). */
  thp: string | null
  /** /sys/kernel/mm/transparent_hugepage/use_zero_page. */
  thp_use_zero_page: boolean | null
  /** The kernel command-line parameters above, as found. */
  cmdline: string[]
}

const selected = (s: string | undefined): string | null => {
  if (s === undefined) return null
  const m = /\[([^\]]+)\]/.exec(s)
  return m ? m[1]! : s.trim() || null
}

/** From /proc/cmdline and the THP files' contents (undefined: not readable). */
export function parseHostMemory(cmdline: string, thpEnabled: string | undefined, thpUseZeroPage: string | undefined): HostMemory {
  const params = cmdline.trim().split(/\s+/).filter((p) => p !== '')
  const value = (key: string): string | undefined => {
    const hit = params.filter((p) => p === key || p.startsWith(`${key}=`)).pop()
    return hit === undefined ? undefined : hit === key ? '1' : hit.slice(key.length + 1)
  }
  const noZero = value('pvm_no_zero_page')
  const order = value('page_reporting.page_reporting_order')
  const orderN = order === undefined ? Number.NaN : Number(order)
  const zp = thpUseZeroPage?.trim()
  return {
    zero_page_on_read: noZero === undefined || noZero === '0' || noZero === 'n' || noZero === 'N',
    page_reporting_order: Number.isInteger(orderN) ? orderN : null,
    thp: selected(thpEnabled),
    thp_use_zero_page: zp === undefined || zp === '' ? null : zp === '1',
    cmdline: params.filter((p) => p.startsWith('pvm_no_zero_page') || p.startsWith('page_reporting.') || p.startsWith('transparent_hugepage')),
  }
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

export function hostMemory(): HostMemory {
  return parseHostMemory(read('/proc/cmdline') ?? '', read('/sys/kernel/mm/transparent_hugepage/enabled'), read('/sys/kernel/mm/transparent_hugepage/use_zero_page'))
}

/**
 * True when a capture's per-page times include first-touch page allocations: the host maps no zero
 * page on reads and the QEMUs' RAM was not preallocated (config.json: `args.prealloc`, `host_memory`).
 * Runs recorded before either existed say nothing: undefined.
 */
export function coldMemoryCapture(config: {args?: {prealloc?: unknown}; host_memory?: Partial<HostMemory>}): boolean | undefined {
  const hm = config.host_memory
  if (hm === undefined || typeof hm.zero_page_on_read !== 'boolean') return undefined
  return !hm.zero_page_on_read && config.args?.prealloc !== true
}
