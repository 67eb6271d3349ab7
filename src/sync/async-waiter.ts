/**
 * Async waits on words of shared memory, for the Promise-based API. The main thread never
 * blocks: it hands the word to one waiter thread per process (waiter-thread.ts), which
 * sleeps in the kernel on all pending words at once and reports back through a message.
 *
 * The thread is started on the first wait, keeps the process alive only while a wait is
 * pending (like a socket read would), and costs no CPU while it sleeps.
 * @internal
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as sys from '../sys/libc.js';
import { systemError } from '../system-error.js';
import { futexWait, futexWake } from './futex.js';
import type { WaiterRequest } from './waiter-thread.js';

/** How long, at most, process exit waits for a waiter thread to finish starting. */
const START_WAIT_MS = 5000;

interface Pending {
  resolve: () => void;
}

class AsyncWaiter {
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  #control: Int32Array | undefined;
  #controlAddress = 0;
  #pending = new Map<number, Pending>();
  #nextId = 1;

  /**
   * Resolves once the word at `address` may no longer equal `expected` (woken, changed,
   * or `timeoutMs` passed; callers always re-check). Any of `signals` aborting ends the
   * wait silently (the caller checks its own signal).
   */
  wait(address: number, expected: number, timeoutMs: number, signals: readonly (AbortSignal | undefined)[] = []): Promise<void> {
    const id = this.#nextId++;
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        for (const s of signals) s?.removeEventListener('abort', onAbort);
        if (this.#pending.delete(id) && this.#pending.size === 0) this.#worker?.unref();
        resolve();
      };
      const onAbort = (): void => {
        if (!this.#pending.has(id)) return;
        this.#send({ op: 'remove', id });
        done();
      };
      // The thread counts the timeout from when it picks the request up, which can be
      // tens of ms later (the thread starting, a busy machine): a timer here makes the
      // wait end on time whatever the thread does.
      if (Number.isFinite(timeoutMs)) timer = setTimeout(onAbort, Math.max(0, timeoutMs) + 1);
      if (signals.some((s) => s?.aborted)) {
        resolve();
        return;
      }
      for (const s of signals) s?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, { resolve: done });
      try {
        this.#start().ref();
      } catch (err) {
        done();
        throw err;
      }
      // The timer above ends a timed wait; the thread's own timeout, a little later, is
      // only a backstop (one wake-up per timeout, not two).
      this.#send({ op: 'add', id, address, expected, timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs + 20 : 2 ** 31 });
    });
  }

  /** Number of waits pending (for tests). */
  get pending(): number {
    return this.#pending.size;
  }

  #send(req: WaiterRequest): void {
    this.#port!.postMessage(req);
    // Bump the generation word and wake the thread so it picks the request up now.
    Atomics.add(this.#control!, 0, 1);
    futexWake(this.#controlAddress, 1);
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    if (this.#control === undefined) {
      // The control word lives in memory that is never unmapped, so the thread may always use it.
      const { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } = sys.C;
      const address = sys.mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (address === -1 || address === 0) throw systemError('allocate the async waiter control page', 'mmap', sys.errno());
      this.#controlAddress = address;
      const control = (this.#control = new Int32Array(sys.view(address, 12)));
      // At exit Node joins worker threads, and a thread sleeping in a system call would
      // keep it waiting: tell the thread to end and wake it.
      process.once('exit', () => {
        // A thread still loading its modules must not be stopped there: koffi, stopped
        // half-way through its start-up, aborts the whole process ("napi_throw"). Let it
        // finish loading first (it takes milliseconds; bounded for a thread that never
        // comes up).
        const until = performance.now() + START_WAIT_MS;
        while (this.#worker !== undefined && Atomics.load(control, 2) === 0 && performance.now() < until) {
          futexWait(address + 8, 0, 10);
        }
        Atomics.store(control, 1, 1);
        Atomics.add(control, 0, 1);
        futexWake(address);
      });
    }
    const address = this.#controlAddress;
    Atomics.store(this.#control, 2, 0);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    port1.unref();
    const worker = new Worker(new URL('./waiter-thread.js', import.meta.url), {
      workerData: { port: port2, controlAddress: address },
      transferList: [port2],
      name: 'concurrent-shm waiter',
      // A small thread: it only loops over futex calls.
      resourceLimits: { maxOldGenerationSizeMb: 16, maxYoungGenerationSizeMb: 4, stackSizeMb: 1 },
    });
    worker.on('message', (ids: number[]) => {
      for (const id of ids) this.#pending.get(id)?.resolve();
    });
    worker.on('error', (err) => {
      // The thread died (it should not): fail over by waking every pending wait; callers
      // re-check and come back, which restarts a thread.
      this.#worker = undefined;
      for (const p of [...this.#pending.values()]) p.resolve();
      process.emitWarning(`concurrent-shm waiter thread failed: ${String(err)}`);
    });
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}

/** The process's async waiter. */
export const asyncWaiter = new AsyncWaiter();

/** Resolves on the next turn of the event loop (after I/O callbacks). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
