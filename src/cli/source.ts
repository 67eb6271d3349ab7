/**
 * Read-only access to the bytes of a shared memory object, for inspection.
 *
 * Where the OS shows objects as files (Linux: /dev/shm), the file is opened read-only
 * (`O_RDONLY`, plus `O_NOATIME` when allowed) and read with `pread`: nothing is mapped and
 * nothing can be written. Elsewhere the library opens the object (read-write: that is how
 * `shm_open` is called by it) and maps only the ranges asked for, one at a time.
 * @internal
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/** Bytes of an object, read on demand. */
export interface ByteSource {
  /** `fstat` of the object (size, owner, mode, times). */
  stat(): Stats;
  /** Up to `length` bytes from `position` (fewer if the object is shorter). */
  read(position: number, length: number): Buffer;
  close(): void;
}

/** Opens `/dev/shm/<name>` (or the namespace directory given) read-only. Throws Node's fs errors (ENOENT, EACCES). */
export function openFileSource(dir: string, name: string): ByteSource {
  const path = join(dir, name.slice(1));
  let fd: number;
  try {
    // O_NOATIME: do not even touch the access time (allowed only to the owner, or root).
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOATIME ?? 0));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    fd = openSync(path, constants.O_RDONLY);
  }
  let open = true;
  return {
    stat: () => fstatSync(fd),
    read(position, length) {
      const buf = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buf, done, length - done, position + done);
        if (n === 0) break;
        done += n;
      }
      return done === length ? buf : buf.subarray(0, done);
    },
    close() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Opens the object through the library (`shm_open` O_RDWR, `mmap` of each range read). */
export async function openMappedSource(name: string): Promise<ByteSource> {
  const { SharedMemory, Region } = await import('../index.js');
  const shm = SharedMemory.open(name, 0, { mode: 'open' });
  return {
    stat: () => shm.stat(),
    read(position, length) {
      const size = shm.size;
      const n = Math.max(0, Math.min(length, size - position));
      if (n === 0) return Buffer.alloc(0);
      const region = Region.map(shm, position, n);
      try {
        return region.read();
      } finally {
        region.unmap();
      }
    },
    close: () => shm.close(),
  };
}
