/**
 * The only module that imports koffi: one-to-one declarations of the C library calls
 * the package makes, and nothing else. No validation and no logic happen here; every
 * caller checks its arguments before it reaches this layer.
 *
 * Addresses cross this boundary as plain numbers (`intptr_t`): user-space addresses
 * fit in 47 bits on every supported platform, so they are exact in a double.
 *
 * @internal
 */
import koffi from 'koffi';
import { UnsupportedError } from '../errors.js';
import { DARWIN, FUTEX, LINUX, type OsConstants, type SupportedPlatform } from './constants.js';

function detectPlatform(): SupportedPlatform {
  if (process.platform === 'linux' || process.platform === 'darwin') return process.platform;
  throw new UnsupportedError(
    `concurrent-shm does not support ${process.platform}: it needs POSIX shared memory ` +
      '(shm_open, mmap), which Linux and macOS have and Windows does not',
  );
}

/** The platform this process runs on. Loading the module on any other platform throws. */
export const platform: SupportedPlatform = detectPlatform();

/** Header constants of this platform. */
export const C: OsConstants = platform === 'linux' ? LINUX : DARWIN;

const lib = koffi.load(platform === 'linux' ? 'libc.so.6' : 'libSystem.B.dylib');

/** `int shm_open(const char *name, int oflag, mode_t mode)`; variadic on macOS. */
export const shm_open: (name: string, oflag: number, mode: number) => number =
  platform === 'linux'
    ? lib.func('int shm_open(const char *name, int oflag, uint32_t mode)')
    : ((): ((name: string, oflag: number, mode: number) => number) => {
        const f = lib.func('int shm_open(const char *name, int oflag, ...)');
        return (name, oflag, mode) => f(name, oflag, 'int', mode);
      })();

/** `int close(int fd)`: descriptors from shm_open are not Node's, so they are closed here, not with fs.closeSync. */
export const close: (fd: number) => number = lib.func('int close(int fd)');

/** `int shm_unlink(const char *name)` */
export const shm_unlink: (name: string) => number = lib.func('int shm_unlink(const char *name)');

/** `void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)`; `MAP_FAILED` is -1. */
export const mmap: (addr: number, length: number, prot: number, flags: number, fd: number, offset: number) => number =
  lib.func('intptr_t mmap(intptr_t addr, size_t length, int prot, int flags, int fd, int64_t offset)');

/** `int munmap(void *addr, size_t length)` */
export const munmap: (addr: number, length: number) => number = lib.func('int munmap(intptr_t addr, size_t length)');

/** `int posix_fallocate(int fd, off_t offset, off_t len)`: returns an errno value, does not set errno. Linux only. */
export const posix_fallocate: ((fd: number, offset: number, len: number) => number) | null =
  platform === 'linux' ? lib.func('int posix_fallocate(int fd, int64_t offset, int64_t len)') : null;

/** `int kill(pid_t pid, int sig)`: signal 0 only checks that the process exists. */
export const kill: (pid: number, sig: number) => number = lib.func('int kill(int pid, int sig)');

/** `int sched_yield(void)`: lets another runnable thread have this CPU. */
export const sched_yield: () => number = lib.func('int sched_yield(void)');

/** `long sysconf(int name)` */
export const sysconf: (name: number) => number = lib.func('long sysconf(int name)');

/**
 * Linux `long syscall(long number, ...)`, declared with six integer arguments. This is
 * sound on the x86-64 and arm64 Linux ABIs, where variadic integer arguments travel in
 * the same registers as fixed ones, and it avoids koffi's slower variadic path.
 */
export const syscall6: ((n: number, a: number, b: number, c: number, d: number, e: number, f: number) => number) | null =
  platform === 'linux'
    ? lib.func('long syscall(long n, intptr_t a, intptr_t b, intptr_t c, intptr_t d, intptr_t e, intptr_t f)')
    : null;

/** Linux `int pipe2(int fds[2], int flags)`, with `fds` the address of two ints. */
export const pipe2: ((fds: number, flags: number) => number) | null =
  platform === 'linux' ? lib.func('int pipe2(intptr_t fds, int flags)') : null;

/** `futex` syscall number of this CPU (Linux). */
export const SYS_FUTEX: number = process.arch === 'arm64' ? FUTEX.SYS_FUTEX_ARM64 : FUTEX.SYS_FUTEX_X64;

/** macOS `int __ulock_wait(uint32_t op, void *addr, uint64_t value, uint32_t timeout_us)` */
export const ulock_wait: ((op: number, addr: number, value: number, timeoutUs: number) => number) | null =
  platform === 'darwin' ? lib.func('int __ulock_wait(uint32_t op, intptr_t addr, uint64_t value, uint32_t timeout_us)') : null;

/** macOS `int __ulock_wake(uint32_t op, void *addr, uint64_t wake_value)` */
export const ulock_wake: ((op: number, addr: number, wakeValue: number) => number) | null =
  platform === 'darwin' ? lib.func('int __ulock_wake(uint32_t op, intptr_t addr, uint64_t wake_value)') : null;

/** The calling thread's `errno` after the last call. */
export function errno(): number {
  return koffi.errno();
}

/** An ArrayBuffer over `length` bytes at `address`, without copying. The caller guarantees the memory is mapped. */
export function view(address: number, length: number): ArrayBuffer {
  return koffi.view(address, length);
}

/** The address of a Node Buffer's bytes. */
export function addressOf(buffer: Buffer): number {
  return Number(koffi.address(buffer));
}

/** errno numbers of this platform, by name. */
export const errnoValues: Readonly<Record<string, number>> = koffi.os.errno;
