/**
 * A cpio archive in the "newc" format, the one the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a 110-byte ASCII header
 * `070701` + 13 eight-digit hex fields, the NUL-terminated name padded to 4 bytes, the data padded
 * to 4 bytes; the archive ends with an entry named `TRAILER!!!`. Written here so building the guest
 * image needs no cpio binary.
 */

export type CpioEntry =
  | {type: 'dir'; path: string; mode?: number}
  | {type: 'file'; path: string; data: Uint8Array; mode?: number}
  | {type: 'symlink'; path: string; target: string}
  | {type: 'chardev'; path: string; major: number; minor: number; mode?: number}

const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000
const S_IFCHR = 0o020000

const hex8 = (n: number): string => (n >>> 0).toString(16).padStart(8, '0')
const pad4 = (n: number): number => (4 - (n % 4)) % 4

function header(f: {ino: number; mode: number; nlink: number; size: number; rdevMajor: number; rdevMinor: number; nameSize: number; mtime: number}): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return ['070701', hex8(f.ino), hex8(f.mode), hex8(0), hex8(0), hex8(f.nlink), hex8(f.mtime), hex8(f.size), hex8(0), hex8(0), hex8(f.rdevMajor), hex8(f.rdevMinor), hex8(f.nameSize), hex8(0)].join('')
}

/** The archive's bytes. Paths are relative (no leading slash), parents listed before children. mtime fixed for reproducible images. */
export function cpioNewc(entries: readonly CpioEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = []
  const push = (name: string, mode: number, data: Uint8Array, nlink: number, rdev: [number, number], ino: number): void => {
    const nameBytes = Buffer.from(`${name}\0`, 'utf8')
    parts.push(Buffer.from(header({ino, mode, nlink, size: data.length, rdevMajor: rdev[0], rdevMinor: rdev[1], nameSize: nameBytes.length, mtime}), 'ascii'))
    parts.push(nameBytes, Buffer.alloc(pad4(110 + nameBytes.length)))
    parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength), Buffer.alloc(pad4(data.length)))
  }
  let ino = 1
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '')
    switch (e.type) {
      case 'dir':
        push(path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0), 2, [0, 0], ino++)
        break
      case 'file':
        push(path, S_IFREG | (e.mode ?? 0o644), e.data, 1, [0, 0], ino++)
        break
      case 'symlink':
        push(path, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'), 1, [0, 0], ino++)
        break
      case 'chardev':
        push(path, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(0), 1, [e.major, e.minor], ino++)
        break
    }
  }
  push('TRAILER!!!', 0, new Uint8Array(0), 1, [0, 0], 0)
  return Buffer.concat(parts)
}
