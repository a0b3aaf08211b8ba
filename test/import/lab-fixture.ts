/**
 * A hand-made lab run shared by the importer's tests: a 1 MiB working set (256 pages) written in
 * sequence with zero fill (no PRNG draws), its page map on frames 0x1000.. and 0x2000.., printed
 * at 999.95 s of host time, before `DIRTIER READY` at 1000 s.
 */
export const seqLabConfig = (name: string) => ({name, args: {accel: 'tcg', mem: 256, ws: 1, rate: 100, pattern: 'seq', fill: 'zero', seed: 1, warmup: 1, bandwidth: 128, downtime: 300}})

export const PAGE_MAP_LINES = [
  '[999.950000] DIRTIER PFNMAP epoch=0 total=0 runs=2',
  '[999.950000] DIRTIER PFNRUN vpage=0 pfn=0x1000 npages=128',
  '[999.950000] DIRTIER PFNRUN vpage=128 pfn=0x2000 npages=128',
  '[999.950000] DIRTIER PFNMAP epoch=0 end',
]
