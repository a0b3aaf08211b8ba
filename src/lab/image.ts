/**
 * The lab's guest image: Debian's stock kernel (from its .deb, fetched with `apt-get download` and
 * unpacked, never installed on the host) and an initramfs holding busybox (static), the dirtier
 * (lab/guest/dirtier.c, compiled here with gcc -static), the lab's /init and the virtio-mem
 * modules. Everything lands in the lab's cache directory (paths.ts); image.json records what was
 * built from what, so a run can tell when the guest sources changed since.
 */
import {createHash} from 'node:crypto'
import {spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'
import {UserError} from '../util/errors.js'
import {cpioNewc, type CpioEntry} from './cpio.js'
import {imagePaths, labWorkDir, projectLabDir, type ImagePaths} from './paths.js'
import {findExecutable} from '../qemu/process.js'

/** Modules /init loads for virtio-mem, in load order (Debian builds them as modules). */
export const VIRTIO_MEM_MODULES = ['virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_pci', 'virtio_mem']

/** Host tools the builder runs, and the Debian package of each. */
const TOOLS: {tool: string; pkg: string}[] = [
  {tool: 'gcc', pkg: 'gcc'},
  {tool: 'apt-get', pkg: 'apt'},
  {tool: 'dpkg-deb', pkg: 'dpkg'},
  {tool: 'tar', pkg: 'tar'},
]
const BUSYBOX = '/bin/busybox'

export interface ImageManifest {
  kernelVersion: string
  kernelPackage: string
  /** sha256 of dirtier.c and init together: a change to either needs a rebuild. */
  guestSourceHash: string
  builtAt: string
  initrdBytes: number
}

export interface BuildOptions {
  work?: string
  /** apt-get install missing host packages (needs root). */
  install?: boolean
  /** Rebuild the initramfs even when it is current. */
  force?: boolean
  /** A kernel package name instead of the one linux-image-amd64 depends on. */
  kernelPackage?: string
  log?: (line: string) => void
}

function run(cmd: string, args: string[], what: string): string {
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 64 << 20})
  if (r.error) throw new UserError(`${what}: cannot run ${cmd}`, {found: (r.error as NodeJS.ErrnoException).code ?? r.error.message})
  if (r.status !== 0) throw new UserError(`${what} failed`, {found: `${cmd} exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`})
  return r.stdout
}

/** An ELF executable without a program interpreter (PT_INTERP) is statically linked. */
export function isStaticElf(path: string): boolean {
  const b = readFileSync(path)
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return false
  const phoff = Number(b.readBigUInt64LE(0x20))
  const phentsize = b.readUInt16LE(0x36)
  const phnum = b.readUInt16LE(0x38)
  for (let i = 0; i < phnum; i++) if (b.readUInt32LE(phoff + i * phentsize) === 3) return false
  return true
}

export function guestSourceHash(labDir = projectLabDir()): string {
  const h = createHash('sha256')
  for (const f of ['guest/dirtier.c', 'guest/init']) h.update(readFileSync(join(labDir, f)))
  return h.digest('hex').slice(0, 16)
}

export function readManifest(paths: ImagePaths = imagePaths()): ImageManifest | undefined {
  try {
    return JSON.parse(readFileSync(paths.manifest, 'utf8')) as ImageManifest
  } catch {
    return undefined
  }
}

/** Host packages missing for the build (and for running QEMU). */
export function missingPackages(): string[] {
  const miss = TOOLS.filter((t) => findExecutable(t.tool) === undefined).map((t) => t.pkg)
  if (!existsSync(BUSYBOX) || !isStaticElf(BUSYBOX)) miss.push('busybox-static')
  if (!existsSync('/usr/include/stdio.h')) miss.push('libc6-dev')
  if (findExecutable('qemu-system-x86_64') === undefined) miss.push('qemu-system-x86')
  return [...new Set(miss)]
}

function ensurePackages(opts: BuildOptions, log: (l: string) => void): void {
  const miss = missingPackages()
  if (miss.length === 0) return
  if (!opts.install) throw new UserError('host packages missing for the lab', {expected: `apt-get install ${miss.join(' ')} (or migtrace lab image --install)`, found: `${miss.join(', ')} missing`})
  log(`apt-get install ${miss.join(' ')}`)
  run('apt-get', ['update', '-qq'], 'apt-get update')
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...miss], {encoding: 'utf8', env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
  if (r.status !== 0) throw new UserError('apt-get install failed', {found: (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')})
}

/** The kernel package linux-image-amd64 points at (e.g. linux-image-6.1.0-57-amd64). */
function kernelPackageName(opts: BuildOptions, log: (l: string) => void): string {
  if (opts.kernelPackage !== undefined) return opts.kernelPackage
  const find = (): string | undefined => /Depends: (linux-image-\d\S*)/.exec(spawnSync('apt-cache', ['depends', 'linux-image-amd64'], {encoding: 'utf8'}).stdout ?? '')?.[1]
  let pkg = find()
  if (pkg === undefined && opts.install) {
    log('apt-get update (no package lists)')
    run('apt-get', ['update', '-qq'], 'apt-get update')
    pkg = find()
  }
  if (pkg === undefined) throw new UserError('cannot find the Debian kernel package', {expected: 'apt-cache depends linux-image-amd64 to name one (run apt-get update, or pass --kernel-package)', found: 'nothing'})
  return pkg
}

/** Download (once) and unpack the kernel, its config and the virtio modules; returns the version. */
function fetchKernel(work: string, pkg: string, log: (l: string) => void): {version: string; root: string} {
  const debs = join(work, 'debs')
  const root = join(work, 'kernel', pkg)
  const version = pkg.replace(/^linux-image-/, '')
  if (existsSync(join(root, 'boot', `vmlinuz-${version}`))) return {version, root}
  mkdirSync(debs, {recursive: true})
  let deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
  if (deb === undefined) {
    log(`apt-get download ${pkg}`)
    const r = spawnSync('apt-get', ['download', pkg], {cwd: debs, encoding: 'utf8'})
    deb = readdirSync(debs).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'))
    if (deb === undefined) throw new UserError(`apt-get download ${pkg} failed`, {found: (r.stderr || r.stdout || '').trim().split('\n').slice(-2).join(' | ')})
  }
  log(`unpacking ${deb} (kernel, config, virtio modules)`)
  const tmp = `${root}.tmp`
  rmSync(tmp, {recursive: true, force: true})
  mkdirSync(tmp, {recursive: true})
  // Only the members the image needs: the whole package unpacks to ~400 MB.
  run('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./boot/vmlinuz-*" "./boot/config-*" "./lib/modules/*/kernel/drivers/virtio/*"', 'sh', join(debs, deb), tmp], 'unpacking the kernel package')
  rmSync(root, {recursive: true, force: true})
  renameSync(tmp, root)
  if (!existsSync(join(root, 'boot', `vmlinuz-${version}`))) throw new UserError('the kernel package has no kernel', {file: join(debs, deb), expected: `boot/vmlinuz-${version}`})
  return {version, root}
}

/** A module file, decompressed when Debian ships it compressed (.ko.xz / .ko.zst). */
function moduleBytes(dir: string, name: string): Buffer {
  for (const [ext, cmd] of [['.ko', ''], ['.ko.xz', 'xz'], ['.ko.zst', 'zstd']] as const) {
    const p = join(dir, name + ext)
    if (!existsSync(p)) continue
    if (cmd === '') return readFileSync(p)
    const r = spawnSync(cmd, ['-dc', p], {maxBuffer: 64 << 20})
    if (r.status !== 0) throw new UserError(`cannot decompress ${p}`, {expected: `${cmd} installed`})
    return r.stdout
  }
  throw new UserError('a kernel module is missing from the kernel package', {file: dir, expected: `${name}.ko`})
}

/** Build (or bring up to date) the guest image. Returns its paths and manifest. */
export function buildImage(opts: BuildOptions = {}): {paths: ImagePaths; manifest: ImageManifest; rebuilt: boolean} {
  const log = opts.log ?? (() => undefined)
  const work = opts.work ?? labWorkDir()
  const paths = imagePaths(work)
  ensurePackages(opts, log)
  const pkg = kernelPackageName(opts, log)
  const hash = guestSourceHash()
  const old = readManifest(paths)
  if (!opts.force && old && old.kernelPackage === pkg && old.guestSourceHash === hash && existsSync(paths.initrd) && existsSync(paths.kernel)) return {paths, manifest: old, rebuilt: false}

  const {version, root} = fetchKernel(work, pkg, log)
  mkdirSync(paths.dir, {recursive: true})
  const labDir = projectLabDir()
  const dirtier = join(paths.dir, 'dirtier')
  log('gcc -O2 -static lab/guest/dirtier.c')
  run('gcc', ['-O2', '-static', '-Wall', '-Wextra', '-o', dirtier, join(labDir, 'guest', 'dirtier.c')], 'compiling the dirtier')

  const modDir = join(root, 'lib', 'modules', version, 'kernel', 'drivers', 'virtio')
  const modPath = `lib/modules/${version}/kernel/drivers/virtio`
  const dirs = ['bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'etc', 'lib', 'lib/modules', `lib/modules/${version}`, `lib/modules/${version}/kernel`, `lib/modules/${version}/kernel/drivers`, modPath]
  const entries: CpioEntry[] = [
    ...dirs.map((path): CpioEntry => ({type: 'dir', path})),
    // The kernel opens /dev/console for init's stdio before /init can mount devtmpfs.
    {type: 'chardev', path: 'dev/console', major: 5, minor: 1, mode: 0o600},
    {type: 'file', path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755},
    {type: 'file', path: 'bin/dirtier', data: readFileSync(dirtier), mode: 0o755},
    {type: 'file', path: 'init', data: readFileSync(join(labDir, 'guest', 'init')), mode: 0o755},
    ...VIRTIO_MEM_MODULES.map((m): CpioEntry => ({type: 'file', path: `${modPath}/${m}.ko`, data: moduleBytes(modDir, m)})),
  ]
  const gz = gzipSync(cpioNewc(entries), {level: 6})
  writeFileSync(`${paths.initrd}.tmp`, gz)
  renameSync(`${paths.initrd}.tmp`, paths.initrd)
  copyFileSync(join(root, 'boot', `vmlinuz-${version}`), `${paths.kernel}.tmp`)
  renameSync(`${paths.kernel}.tmp`, paths.kernel)
  copyFileSync(join(root, 'boot', `config-${version}`), join(paths.dir, 'kernel-config'))
  const manifest: ImageManifest = {kernelVersion: version, kernelPackage: pkg, guestSourceHash: hash, builtAt: new Date().toISOString(), initrdBytes: gz.length}
  writeFileSync(paths.manifest, `${JSON.stringify(manifest, null, 2)}\n`)
  log(`built ${paths.initrd} (${(gz.length / 1048576).toFixed(1)} MiB) for kernel ${version}`)
  return {paths, manifest, rebuilt: true}
}

/** The image a run needs: present, and built from the current guest sources; else a UserError saying what to do. */
export function requireImage(work = labWorkDir()): {paths: ImagePaths; manifest: ImageManifest} {
  const paths = imagePaths(work)
  const manifest = readManifest(paths)
  if (manifest === undefined || !existsSync(paths.kernel) || !existsSync(paths.initrd))
    throw new UserError('the lab guest image is not built', {file: paths.dir, expected: 'run `migtrace lab image` first (add --install to apt-get what it needs)'})
  if (manifest.guestSourceHash !== guestSourceHash())
    throw new UserError('the lab guest image is older than lab/guest/', {file: paths.manifest, expected: 'run `migtrace lab image` to rebuild it'})
  return {paths, manifest}
}
