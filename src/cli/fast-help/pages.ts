/**
 * The help pages oclif renders, saved at build time (dist/help-pages.json) so that `migtrace --help`,
 * `migtrace help <command>` and `<command> --help` print them without loading oclif (issue 15: a
 * help invocation spent two thirds of its time loading @oclif/core, the manifest and the plugins).
 *
 * This module is shared by the build-time renderer (render.ts) and the start-up reader (serve.ts), so
 * it imports nothing: the reader runs before anything else is loaded.
 */

/** Bumped when the file's shape changes: a reader meeting another version falls back to oclif. */
export const PAGES_SCHEMA = 1

/**
 * Where the pages are written, relative to the package root: index.json (which page each argument
 * vector prints, and what the pages were rendered from) and one <n>.json per page, so that start-up
 * reads only the page it prints (all of them together are over a megabyte: each is kept at every
 * width that wraps it differently).
 */
export const PAGES_DIR = 'dist/help-pages'
export const INDEX_FILE = 'index.json'
export const pageFile = (n: number): string => `${n}.json`

/** oclif's narrowest help width (screen.js termwidth: a terminal under 40 columns gets 40). */
export const MIN_WIDTH = 40

/** A file whose contents the pages were rendered from: if it changes, the pages are stale. */
export interface PagesInput {
  /** Relative to the package root, '/'-separated. */
  path: string
  size: number
  hash: number
}

/** One page: its text at each width, the texts as line indices into the page's own lines. */
export interface HelpPage {
  /**
   * [from width, text index] pairs by increasing width: the text for a width is the last pair's
   * whose width is at most it; the last pair holds for every wider terminal (checked at build time).
   */
  widths: [number, number][]
  /** Every distinct line of the page's texts, once. */
  lines: string[]
  /** Each distinct text as indices into lines, joined by '\n'. */
  texts: number[][]
}

export interface HelpIndex {
  schema: typeof PAGES_SCHEMA
  /** oclif's config.userAgent when rendered (the root help's VERSION section). */
  userAgent: string
  /** oclif's config.dirname: a theme.json under its config directory colours help, so no fast path. */
  dirname: string
  inputs: PagesInput[]
  /** Per page: whether it is the root help, which alone prints the user agent. */
  pages: {root: boolean}[]
  /** The argument vector (joined by argvKey) that prints each page, e.g. 'replay\u0000--help'. */
  keys: Record<string, number>
}

/** A page's text at a width (at least MIN_WIDTH). */
export function pageAt(page: HelpPage, width: number): string {
  let t = page.widths[0]![1]
  for (const [from, text] of page.widths) {
    if (from > width) break
    t = text
  }
  return page.texts[t]!.map((l) => page.lines[l]!).join('\n')
}

/** Argument vectors are joined by NUL, which no argument can contain. */
export function argvKey(argv: readonly string[]): string {
  return argv.join('\u0000')
}

/**
 * FNV-1a over the bytes: a change check for the inputs, cheap enough for start-up (node:crypto
 * alone costs more to load than the whole fast path). Not a defence against anyone, only against a
 * stale build.
 */
export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
