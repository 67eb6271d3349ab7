/**
 * Async waits on words of shared memory, for the Promise-based API. The main thread never
 * blocks: it hands each wait to the kernel and goes on, and the event loop learns when
 * the word may have changed. Two ways, chosen on the first wait:
 *
 * - **io_uring** (uring-waits.ts; Linux 6.7+ where io_uring is allowed): the kernel
 *   sleeps on the word itself and makes a pipe readable when it is woken. One wake-up,
 *   the JavaScript thread's, per message. One ring per thread (main or worker).
 * - **a waiter thread** (thread-waits.ts; everywhere else, or when
 *   `CONCURRENT_SHM_ASYNC_WAITS=thread`): one thread per process (or worker) sleeps on
 *   all pending words at once and reports by message.
 *
 * Either keeps the process alive only while a wait is pending (as a socket read would),
 * and costs no CPU while nothing happens.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';
import { Deadlines } from './deadlines.js';
import { ThreadWaits } from './thread-waits.js';
import { UringWaits } from './uring-waits.js';

/** The environment variable that picks how async waits sleep: `auto` (the default), `io_uring` or `thread`. */
export const ASYNC_WAITS_ENV = 'CONCURRENT_SHM_ASYNC_WAITS';

/** How async waits sleep in this thread. */
export type AsyncWaitsKind = 'io_uring' | 'thread';

/** One pending wait. */
class Pending {
  readonly id: number;
  readonly deadline: number;
  readonly resolve: () => void;
  /** Ended (woken, timed out, aborted): a later report of it is ignored. */
  done = false;
  /** The groups of the signals it listens to, if any. */
  groups: Group[] | undefined = undefined;

  constructor(id: number, deadline: number, resolve: () => void) {
    this.id = id;
    this.deadline = deadline;
    this.resolve = resolve;
  }
}

/** The waits pending on one signal, and the one listener that ends them when it aborts. */
interface Group {
  readonly signal: AbortSignal;
  readonly waits: Set<Pending>;
  readonly onAbort: () => void;
  /** A signal of the library's own (a handle's "released"): its listener stays between waits. */
  readonly kept: boolean;
}

class AsyncWaiter {
  #backend: UringWaits | ThreadWaits | undefined;
  #why = '';
  readonly #pending = new Map<number, Pending>();
  readonly #deadlines = new Deadlines<Pending>((p) => this.#end(p, true));
  /**
   * The waits pending on each signal. A signal gets one listener, on its first wait,
   * that ends the waits pending on it when it aborts: a channel's "released" signal
   * serves every wait of the channel, where a listener per wait cost 0.5–1 µs a wait.
   */
  readonly #groups = new WeakMap<AbortSignal, Group>();
  /**
   * Signals whose listener stays while no wait is pending on them: the library's own,
   * which live as long as their handle. A caller's signal loses its listener when its last
   * wait ends: Node keeps a composite (`AbortSignal.any`) or timeout signal that has an
   * 'abort' listener alive until it aborts, so a listener left on a signal made per call
   * would keep every such signal, and its group, for good.
   */
  readonly #kept = new WeakSet<AbortSignal>();
  #nextId = 1;
  /** The thread is exiting and the ring is closed: a wait started now never ends (nothing would run after it anyway). */
  #exited = false;

  /**
   * Resolves once the word at `address` may no longer equal `expected` (woken, changed,
   * or `timeoutMs` passed; callers always re-check). Any of `signals` aborting ends the
   * wait silently (the caller checks its own signal).
   */
  wait(address: number, expected: number, timeoutMs: number, signals: readonly (AbortSignal | undefined)[] = []): Promise<void> {
    if (this.#exited) return new Promise<void>(() => {});
    for (const s of signals) if (s?.aborted) return Promise.resolve();
    let backend: UringWaits | ThreadWaits;
    try {
      backend = this.#open();
    } catch (err) {
      return Promise.reject(err);
    }
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    const timed = Number.isFinite(timeoutMs);
    // The timer ends a timed wait on time whatever the backend does (a waiter thread
    // counts from when it picks the request up, which can be tens of ms later).
    const p = new Pending(this.#nextId++, timed ? performance.now() + Math.max(0, timeoutMs) : Infinity, resolve);
    for (const s of signals) {
      if (s === undefined) continue;
      const group = this.#groupOf(s);
      group.waits.add(p);
      (p.groups ??= []).push(group);
    }
    if (timed) this.#deadlines.add(p);
    this.#pending.set(p.id, p);
    try {
      backend.ref();
      // The thread's own timeout, a little later than the timer, is only a backstop
      // (one wake-up per timeout, not two).
      if (!backend.add(p.id, address, expected, timed ? timeoutMs + 20 : 2 ** 31)) this.#end(p, false);
    } catch (err) {
      this.#end(p, false);
      return Promise.reject(err);
    }
    return promise;
  }

  /** The waits pending on `signal`, with the one listener that ends them. */
  #groupOf(signal: AbortSignal): Group {
    let group = this.#groups.get(signal);
    if (group === undefined) {
      const waits = new Set<Pending>();
      const onAbort = (): void => {
        for (const p of [...waits]) this.#end(p, true);
      };
      group = { signal, waits, onAbort, kept: this.#kept.has(signal) };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#groups.set(signal, group);
    }
    return group;
  }

  /** Keeps the listener on `signal` between its waits (a handle's own signal, aborted when the handle is released). */
  keepListening(signal: AbortSignal): void {
    this.#kept.add(signal);
  }

  /** Ends a wait (`cancel`: also in the backend, as it was not woken there) and resolves it. */
  #end(p: Pending, cancel: boolean): void {
    if (p.done) return;
    p.done = true;
    if (p.groups !== undefined) {
      for (const g of p.groups) {
        g.waits.delete(p);
        if (g.waits.size === 0 && !g.kept && this.#groups.get(g.signal) === g) {
          g.signal.removeEventListener('abort', g.onAbort);
          this.#groups.delete(g.signal);
        }
      }
      p.groups = undefined;
    }
    this.#pending.delete(p.id);
    if (cancel) this.#backend?.remove(p.id);
    if (this.#pending.size === 0) this.#backend?.unref();
    p.resolve();
  }

  /** How waits sleep in this thread (opens the way on the first call), and why not io_uring when not. */
  kind(): { kind: AsyncWaitsKind; why: string } {
    return { kind: this.#open() instanceof UringWaits ? 'io_uring' : 'thread', why: this.#why };
  }

  /** Whether a wait wakes this thread directly (io_uring), rather than through a waiter thread. Opens the way on the first call. */
  get direct(): boolean {
    return this.#open() instanceof UringWaits;
  }

  /** Number of waits pending (for tests). */
  get pending(): number {
    return this.#pending.size;
  }

  #open(): UringWaits | ThreadWaits {
    if (this.#backend !== undefined) return this.#backend;
    const woken = (id: number): void => {
      const p = this.#pending.get(id);
      if (p !== undefined) this.#end(p, false);
    };
    // The way in use stopped working: every pending wait ends (its caller re-checks and
    // waits again, through a waiter thread).
    const failed = (why: string): void => {
      this.#backend = new ThreadWaits(woken, failed);
      this.#why = why;
      for (const p of [...this.#pending.values()]) this.#end(p, false);
      process.emitWarning(`concurrent-shm: async waits moved to a waiter thread: ${why}`);
    };
    const wanted = process.env[ASYNC_WAITS_ENV] ?? 'auto';
    if (wanted !== 'auto' && wanted !== 'io_uring' && wanted !== 'thread') {
      throw new InvalidArgumentError(`${ASYNC_WAITS_ENV} must be auto, io_uring or thread, not ${JSON.stringify(wanted)}`);
    }
    if (wanted === 'thread') {
      this.#why = `${ASYNC_WAITS_ENV}=thread`;
      return (this.#backend = new ThreadWaits(woken, failed));
    }
    const uring = UringWaits.open(woken, failed);
    if (typeof uring !== 'string') {
      // The ring ends with this thread (uring-waits.ts): here, when the thread exits on its
      // own; the kernel drops it even when a worker is ended by terminate() instead.
      process.once('exit', () => {
        this.#exited = true;
        uring.close();
      });
      return (this.#backend = uring);
    }
    if (wanted === 'io_uring') throw new InvalidArgumentError(`${ASYNC_WAITS_ENV}=io_uring, but io_uring cannot wait here: ${uring}`);
    this.#why = uring;
    return (this.#backend = new ThreadWaits(woken, failed));
  }
}

/** The process's async waiter. */
export const asyncWaiter = new AsyncWaiter();

/** Resolves on the next turn of the event loop (after I/O callbacks). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
