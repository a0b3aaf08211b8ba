/**
 * Where the lab keeps what it builds and runs: a cache directory outside the repository
 * ($MIGTRACE_LAB_WORK, else $XDG_CACHE_HOME/migtrace-lab, else ~/.cache/migtrace-lab). The guest
 * image lives in image/, runs in runs/<name>/ unless --out says otherwise. Nothing here is
 * committed; small results are copied into the project's lab/runs/ by `migtrace lab matrix`.
 */
import {homedir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

export function labWorkDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MIGTRACE_LAB_WORK) return env.MIGTRACE_LAB_WORK
  const cache = env.XDG_CACHE_HOME || join(homedir(), '.cache')
  return join(cache, 'migtrace-lab')
}

export interface ImagePaths {
  dir: string
  kernel: string
  initrd: string
  /** image.json: kernel version, dirtier source hash, build time. */
  manifest: string
}

export function imagePaths(work = labWorkDir()): ImagePaths {
  const dir = join(work, 'image')
  return {dir, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initramfs.cpio.gz'), manifest: join(dir, 'image.json')}
}

/** The project's lab/ directory (guest sources), found from this module (src/lab or dist/lab). */
export function projectLabDir(): string {
  return fileURLToPath(new URL('../../lab/', import.meta.url))
}
