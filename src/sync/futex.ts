/**
 * Sleeping on a 32-bit word of shared memory until another process changes it: `futex`
 * on Linux (shared, not `FUTEX_PRIVATE`, so it works across processes), `__ulock_wait`
 * with `UL_COMPARE_AND_WAIT_SHARED` on macOS.
 *
 * Every result means "look again": callers re-check their condition after any return.
 * @internal
 */
import { FUTEX, ULOCK } from '../sys/constants.js';
import * as sys from '../sys/libc.js';

// One timespec per thread (module state is per thread), at a stable address.
const timespec = Buffer.alloc(16);
const timespecAddress = sys.addressOf(timespec);

/**
 * Sleeps while the word at `address` equals `expected`, at most `timeoutMs` (forever when
 * `undefined`). Returns `false` on timeout, `true` otherwise (woken, value already
 * different, or interrupted by a signal).
 */
export function futexWait(address: number, expected: number, timeoutMs?: number): boolean {
  if (sys.syscall6 !== null) {
    let ts = 0;
    if (timeoutMs !== undefined) {
      const ms = Math.max(0, timeoutMs);
      timespec.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
      timespec.writeBigInt64LE(BigInt(Math.floor((ms % 1000) * 1e6)), 8);
      ts = timespecAddress;
    }
    const r = sys.syscall6(sys.SYS_FUTEX, address, FUTEX.WAIT, expected, ts, 0, 0);
    return r === 0 || sys.errno() !== ETIMEDOUT;
  }
  const us = timeoutMs === undefined ? 0 : Math.max(1, Math.round(timeoutMs * 1000));
  const r = sys.ulock_wait!(ULOCK.COMPARE_AND_WAIT_SHARED | ULOCK.NO_ERRNO, address, expected >>> 0, us);
  return r !== -ETIMEDOUT;
}

/** Wakes up to `count` sleepers on the word at `address` (all of them by default). */
export function futexWake(address: number, count = 0x7fffffff): void {
  if (sys.syscall6 !== null) {
    sys.syscall6(sys.SYS_FUTEX, address, FUTEX.WAKE, count, 0, 0, 0);
  } else {
    const all = count > 1 ? ULOCK.WAKE_ALL : 0;
    sys.ulock_wake!(ULOCK.COMPARE_AND_WAIT_SHARED | ULOCK.NO_ERRNO | all, address, 0);
  }
}

const ETIMEDOUT = sys.errnoValues.ETIMEDOUT ?? 110;
