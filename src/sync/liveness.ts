/**
 * Who this party is and whether another party still exists: the identity stored in
 * owner and lock words, and the liveness check that decides when a peer's claim may be
 * taken over.
 *
 * The one rule: **only proof that a process is gone makes it dead.** `kill(pid, 0)`
 * failing with `ESRCH`, or (Linux) `/proc/<pid>/stat` missing or showing a zombie. Any
 * failure to look (`EMFILE`, `ENFILE`, `ENOMEM`, `EACCES`, ...) means "alive": taking
 * over a live peer's claim loses its message or lets two holders into a mutex, while
 * judging a dead peer alive only delays recovery until the next check.
 * @internal
 */
import { readFileSync } from 'node:fs';
import * as sys from '../sys/libc.js';

/** How long a wait on a busy peer lasts before checking that the peer is alive, in ms. */
export let LIVENESS_MS = 100;

/** This party's id, as stored in lock and owner words: the process id. */
export let PID = process.pid;

const ESRCH = sys.errnoValues.ESRCH ?? 3;
const EPERM = sys.errnoValues.EPERM ?? 1;

/**
 * `true` unless the process with this id is provably gone. A zombie (exited, not yet
 * reaped) counts as gone: a parent blocked in a sync call cannot reap its own dead
 * child, and would otherwise wait for it forever. (macOS has no /proc: there a zombie
 * counts as alive until reaped.)
 */
export function processAlive(pid: number): boolean {
  return aliveCheck(pid);
}

function osAlive(pid: number): boolean {
  if (pid <= 0) return false;
  if (sys.kill(pid, 0) !== 0) {
    const e = sys.errno();
    if (e === ESRCH) return false;
    if (e !== EPERM) return true; // could not tell: never judge a live process dead
  }
  if (sys.platform !== 'linux') return true;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Gone between kill() and the read. Anything else (out of descriptors, memory,
    // permission) says nothing about the process: it stays alive.
    return !(code === 'ENOENT' || code === 'ESRCH');
  }
  const state = stat.charAt(stat.lastIndexOf(')') + 2);
  return state !== 'Z' && state !== 'X';
}

let aliveCheck: (pid: number) => boolean = osAlive;

/**
 * For the step harness and the schedule explorer only: act as party `pid` (several
 * parties, each a worker thread, in one process) with `alive` deciding liveness, and a
 * shorter liveness bound. Affects structures opened afterwards in this thread.
 */
export function setIdentity(pid: number, alive: (pid: number) => boolean, livenessMs = LIVENESS_MS): void {
  // A lock word holds a pid in 22 bits (robust-lock.ts), as every real pid fits.
  if (!Number.isInteger(pid) || pid <= 0 || pid >= 2 ** 22) throw new RangeError(`a party's pid must be from 1 to 2^22 - 1, got ${pid}`);
  PID = pid;
  aliveCheck = alive;
  LIVENESS_MS = livenessMs;
}
