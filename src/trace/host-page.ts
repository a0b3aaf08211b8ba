/**
 * Host page size by RAM backing (header.ts's Backing), in a module without zod: TraceLayout needs
 * it, and the reader's thread (trace/read/pipeline.ts) builds a layout without parsing a header.
 */
const GiB = 2 ** 30

export const HOST_PAGE_SIZE: Record<'anon' | 'thp' | 'hugetlb-2M' | 'hugetlb-1G', number> = {
  anon: 4096,
  // A THP-backed block has 4 KiB host pages for QEMU's bitmaps, but the kernel maps it in 2 MiB
  // pages, and a postcopy fault on it is resolved for the whole huge page.
  thp: 2 * 2 ** 20,
  'hugetlb-2M': 2 * 2 ** 20,
  'hugetlb-1G': GiB,
}
