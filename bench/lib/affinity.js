// Optional CPU pinning (`--pin same|split`), Linux only, via taskset(1).
//
// Unpinned (the default) is what a user gets, but on small machines the latency of a
// ping-pong depends a lot on where the scheduler puts the two sides: on this 2-core VM a
// round trip costs ~20 µs when both sides share a core and ~80 µs when they sit on two
// (mostly idle) cores. Pinning makes runs comparable:
//   same:  this process (all threads) and every peer on CPU 0
//   split: this process on CPU 0, peers (child processes, and the worker thread of an
//          in-process peer) on CPU 1

import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import os from 'node:os';

export const PIN_MODES = ['same', 'split'];

/** CPU lists for a pin mode, or null when unpinned. */
export function pinPlan(mode) {
  if (!mode || mode === 'none') return null;
  if (!PIN_MODES.includes(mode)) throw new Error(`--pin must be one of ${PIN_MODES.join(', ')} (got ${mode})`);
  if (process.platform !== 'linux') throw new Error('--pin needs Linux (taskset)');
  if (mode === 'split' && os.cpus().length < 2) throw new Error('--pin split needs at least 2 CPUs');
  return { mode, parent: '0', peer: mode === 'same' ? '0' : '1' };
}

function taskset(args) {
  try {
    return execFileSync('taskset', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const why = err.code === 'ENOENT' ? 'taskset not found (install util-linux)' : String(err.stderr || err.message).trim();
    throw new Error(`taskset ${args.join(' ')}: ${why}`);
  }
}

/** Current CPU list of a process or thread id, e.g. "0,1" or "0-3". */
export function getAffinity(id) {
  const out = taskset(['-pc', String(id)]);
  return out.slice(out.lastIndexOf(':') + 1).trim();
}

/** Pin a whole process (all its threads) to `cpus`. */
export function pinProcess(pid, cpus) {
  taskset(['-a', '-pc', cpus, String(pid)]);
}

/** Pin only the calling thread (works in worker threads: uses /proc/thread-self). */
export function pinCurrentThread(cpus) {
  const tid = readlinkSync('/proc/thread-self').split('/').pop();
  taskset(['-pc', cpus, tid]);
}
