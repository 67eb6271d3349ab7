/**
 * Operating-system constants, per platform. Data only: no logic lives here.
 *
 * Values are those of the platform's C headers (`<fcntl.h>`, `<sys/mman.h>`,
 * `<unistd.h>`, `<linux/futex.h>`, `<sys/ulock.h>`). Linux values are the same on
 * x86-64 and arm64 except the futex syscall number.
 *
 * @internal
 */

/** The platforms the library runs on. */
export type SupportedPlatform = 'linux' | 'darwin';

/** Constants needed from one platform's headers. */
export interface OsConstants {
  /** `O_RDWR` */
  readonly O_RDWR: number;
  /** `O_CREAT` */
  readonly O_CREAT: number;
  /** `O_EXCL` */
  readonly O_EXCL: number;
  /** `PROT_READ` */
  readonly PROT_READ: number;
  /** `PROT_WRITE` */
  readonly PROT_WRITE: number;
  /** `MAP_SHARED` */
  readonly MAP_SHARED: number;
  /** `MAP_PRIVATE` */
  readonly MAP_PRIVATE: number;
  /** `MAP_FIXED` */
  readonly MAP_FIXED: number;
  /** `MAP_ANONYMOUS` (`MAP_ANON` on macOS) */
  readonly MAP_ANONYMOUS: number;
  /** `MAP_NORESERVE` (0 where the flag does not exist) */
  readonly MAP_NORESERVE: number;
  /** `_SC_PAGESIZE` for `sysconf` */
  readonly SC_PAGESIZE: number;
}

export const LINUX: OsConstants = {
  O_RDWR: 0o2,
  O_CREAT: 0o100,
  O_EXCL: 0o200,
  PROT_READ: 0x1,
  PROT_WRITE: 0x2,
  MAP_SHARED: 0x01,
  MAP_PRIVATE: 0x02,
  MAP_FIXED: 0x10,
  MAP_ANONYMOUS: 0x20,
  MAP_NORESERVE: 0x4000,
  SC_PAGESIZE: 30,
};

export const DARWIN: OsConstants = {
  O_RDWR: 0x0002,
  O_CREAT: 0x0200,
  O_EXCL: 0x0800,
  PROT_READ: 0x1,
  PROT_WRITE: 0x2,
  MAP_SHARED: 0x0001,
  MAP_PRIVATE: 0x0002,
  MAP_FIXED: 0x0010,
  MAP_ANONYMOUS: 0x1000,
  MAP_NORESERVE: 0,
  SC_PAGESIZE: 29,
};

/** Linux futex(2) operations and flags (`<linux/futex.h>`). */
export const FUTEX = {
  /** `FUTEX_WAIT`: sleep if `*addr == val`. Shared (no `FUTEX_PRIVATE_FLAG`): works across processes. */
  WAIT: 0,
  /** `FUTEX_WAKE`: wake up to `val` sleepers on `addr`. */
  WAKE: 1,
  /** `FUTEX_32` flag of `struct futex_waitv` (a 32-bit futex word). */
  SIZE_U32: 2,
  /** `syscall` number of `futex` on x86-64. */
  SYS_FUTEX_X64: 202,
  /** `syscall` number of `futex` on arm64. */
  SYS_FUTEX_ARM64: 98,
  /** `syscall` number of `futex_waitv` (Linux 5.16+, same on x86-64 and arm64). */
  SYS_FUTEX_WAITV: 449,
  /** Maximum number of words in one `futex_waitv` call (`FUTEX_WAITV_MAX`). */
  WAITV_MAX: 128,
  /** `CLOCK_MONOTONIC`, the clock of `futex_waitv` timeouts. */
  CLOCK_MONOTONIC: 1,
} as const;

/** macOS `__ulock_wait` / `__ulock_wake` operations (`<sys/ulock.h>`, used by libc++'s `atomic::wait`). */
export const ULOCK = {
  /** `UL_COMPARE_AND_WAIT_SHARED`: compare-and-wait on a 32-bit word in memory shared between processes. */
  COMPARE_AND_WAIT_SHARED: 3,
  /** `ULF_WAKE_ALL` */
  WAKE_ALL: 0x00000100,
  /** `ULF_NO_ERRNO`: return `-errno` instead of setting `errno`. */
  NO_ERRNO: 0x01000000,
} as const;
