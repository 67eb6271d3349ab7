// Shared test helpers: unique names, cleanup, child processes with watchdogs.
import { randomBytes } from 'node:crypto';
import { fork } from 'node:child_process';
import { SharedMemory } from '../dist/index.js';
import { RUN_ID, SUITE_PREFIX } from './shm-check.js';

/**
 * A unique shared memory name for one test ("/cshm-test-<run>-<tag>-<pid>-<random>"). It
 * has the suite's prefix and this run's id, so the leak check of test/run.js sees it if a
 * test leaves it behind, and another run of the suite on the same machine does not.
 */
export function uniqueName(tag = 't') {
  return `/${SUITE_PREFIX}test-${RUN_ID}-${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Runs fn(shm) on a fresh object of `size` bytes, and always unlinks and closes it. */
export async function withShm(size, fn, tag) {
  const shm = SharedMemory.open(uniqueName(tag), 0o600, { mode: 'excl' });
  try {
    if (size > 0) shm.size = size;
    return await fn(shm);
  } finally {
    try { shm.unlink(); } catch {}
    shm.close();
  }
}

/**
 * Starts a fixture script (test/fixtures/NAME.js) as a child process and resolves with
 * { code, signal, stdout, stderr } when it exits. Killed with SIGKILL after `timeoutMs`.
 * With `shm`, the child inherits the object's descriptor (shm.fork); `env` adds to its
 * environment.
 */
export function runFixture(name, args = [], { shm, timeoutMs = 30_000, onChild, env } = {}) {
  const path = new URL(`./fixtures/${name}.js`, import.meta.url);
  const options = { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], ...(env ? { env: { ...process.env, ...env } } : {}) };
  const child = shm ? shm.fork(path, args, options) : fork(path, args, options);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  onChild?.(child);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolve({ code, signal, stdout, stderr, child }));
    });
  });
}

/** Rejects if `promise` does not settle within `ms` (a watchdog for waits inside a test). */
export function within(ms, promise, what = 'operation') {
  let timer;
  const watchdog = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`watchdog: ${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, watchdog]).finally(() => clearTimeout(timer));
}
