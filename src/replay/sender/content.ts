/**
 * Page content profiles: what a guest's pages hold, which decides how well multifd compression
 * does on them (a trace records where the guest writes, not what). A trace header may name one
 * profile for the whole guest or one per guest-physical range (`content`, src/trace/header.ts);
 * the ratio and CPU cost of each profile at each level were measured on pages made by fillPage
 * (scripts/measure-compression.ts -> compression-table.ts, docs/stream.md).
 * - random: incompressible bytes (encrypted or already compressed data; the lab's dirtier fill);
 * - text-like: English-like text, words of a small vocabulary with a skewed frequency;
 * - mostly-zero: a page of zeros but eight 32-byte runs of random bytes (sparse structures).
 */
import {CONTENT_PROFILES, type ContentProfile} from '../../trace/header.js'

export {CONTENT_PROFILES, type ContentProfile}
/** Without a profile in the header: the conservative one (nothing compresses). */
export const DEFAULT_CONTENT: ContentProfile = 'random'

/** splitmix32: a page's bytes depend on its index alone. */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

let vocabulary: string[] | undefined
/** 512 words of 2 to 9 letters, fixed. */
function words(): string[] {
  if (vocabulary) return vocabulary
  const r = rng(7)
  const out: string[] = []
  for (let i = 0; i < 512; i++) {
    const n = 2 + (r() % 8)
    let w = ''
    for (let j = 0; j < n; j++) w += String.fromCharCode(97 + (r() % 26))
    out.push(w)
  }
  vocabulary = out
  return out
}

/** Fill `buf` (one page) with page `index`'s content under `profile`. */
export function fillPage(profile: ContentProfile, index: number, buf: Uint8Array): void {
  const r = rng(index * 2654435761 + CONTENT_PROFILES.indexOf(profile))
  if (profile === 'random') {
    for (let i = 0; i < buf.length; i += 4) {
      const v = r()
      buf[i] = v & 255
      if (i + 1 < buf.length) buf[i + 1] = (v >>> 8) & 255
      if (i + 2 < buf.length) buf[i + 2] = (v >>> 16) & 255
      if (i + 3 < buf.length) buf[i + 3] = v >>> 24
    }
    return
  }
  buf.fill(0)
  if (profile === 'mostly-zero') {
    for (let k = 0; k < 8; k++) {
      const at = r() % (buf.length - 32)
      for (let i = 0; i < 32; i++) buf[at + i] = r() & 255
    }
    return
  }
  // text-like: Zipf-like word choice (index = 512 x u^3), a space after each word, a full stop
  // and a newline now and then.
  const w = words()
  let i = 0
  let n = 0
  while (i < buf.length) {
    const u = r() / 2 ** 32
    const word = w[Math.floor(512 * u * u * u)]!
    for (let j = 0; j < word.length && i < buf.length; j++) buf[i++] = word.charCodeAt(j)
    if (i < buf.length) buf[i++] = ++n % 11 === 0 ? 0x2e : 0x20
    if (n % 11 === 0 && i < buf.length) buf[i++] = 0x0a
  }
}
