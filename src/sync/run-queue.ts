/**
 * Whether this machine's CPUs are oversubscribed right now: more runnable threads than
 * CPUs. A waiter spinning for a peer's change asks this before it spins on: when the
 * answer is yes, the peer may be waiting for a CPU, and the spinner's is the one to give.
 *
 * Linux: the fourth field of /proc/loadavg, "runnable/total" (runnable counts the threads
 * running and those queued for a CPU, the asker included), against the CPUs this process
 * may run on (`os.availableParallelism()`, which follows its affinity: a process pinned
 * to one CPU sees any second runnable thread as oversubscription, even one running on
 * another CPU: pinned processes, as in `bench --pin split`, sleep sooner than they need).
 * Reading it costs about a microsecond. Elsewhere (macOS) it answers `false`: waits are
 * bounded in time only.
 * @internal
 */
import { availableParallelism } from 'node:os';
import { openSync, readSync } from 'node:fs';

const CPUS = Math.max(1, availableParallelism());
const buffer = Buffer.alloc(64);
/** The open /proc/loadavg, -1 before the first look, -2 where there is none. */
let fd = -1;

/** Runnable threads on the machine now, or -1 when this OS does not tell. */
export function runnableThreads(): number {
  if (fd === -1) {
    try {
      fd = openSync('/proc/loadavg', 'r');
    } catch {
      fd = -2;
    }
  }
  if (fd === -2) return -1;
  let n: number;
  try {
    n = readSync(fd, buffer, 0, buffer.length, 0);
  } catch {
    return -1;
  }
  // "0.75 1.20 1.19 3/345 12345": the number after the third space, up to '/'.
  let i = 0;
  for (let spaces = 0; i < n && spaces < 3; i++) if (buffer[i] === 32) spaces++;
  let runnable = 0;
  for (; i < n && buffer[i]! >= 48 && buffer[i]! <= 57; i++) runnable = runnable * 10 + buffer[i]! - 48;
  return i < n && buffer[i] === 47 ? runnable : -1;
}

/** `true` when more threads are runnable than there are CPUs (never where the OS does not tell). */
export function cpusOversubscribed(): boolean {
  return runnableThreads() > CPUS;
}
