/**
 * Async waits through one waiter thread per JavaScript thread (waiter-thread.ts): the
 * thread sleeps in the kernel on every pending word at once and reports, by message,
 * which ones may have changed. Used where io_uring cannot wait on futex words
 * (uring-waits.ts): macOS, Linux before 6.7, io_uring disabled or filtered out.
 *
 * A wake-up here costs three thread wake-ups per message (the waiter thread picking the
 * request up, the waiter thread woken by the word, the main thread woken by its message).
 * @internal
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import * as sys from '../sys/libc.js';
import { systemError } from '../system-error.js';
import { futexWait, futexWake } from './futex.js';
import type { WaiterRequest } from './waiter-thread.js';

/** How long, at most, process exit waits for a waiter thread to finish starting. */
const START_WAIT_MS = 5000;

export class ThreadWaits {
  #worker: Worker | undefined;
  #port: MessagePort | undefined;
  #control: Int32Array | undefined;
  #controlAddress = 0;
  /** A wake of the thread is queued for the next microtask checkpoint. */
  #wakeQueued = false;
  readonly #woken: (id: number) => void;
  readonly #failed: (why: string) => void;

  /** `woken(id)` for each wait that may have ended; `failed()` when the thread died (every pending wait must be retried). */
  constructor(woken: (id: number) => void, failed: (why: string) => void) {
    this.#woken = woken;
    this.#failed = failed;
  }

  /** Starts a wait (the thread ends it itself after `timeoutMs`, a backstop to the caller's timer). Always true. */
  add(id: number, address: number, expected: number, timeoutMs: number): boolean {
    this.#start();
    this.#send({ op: 'add', id, address, expected, timeoutMs });
    return true;
  }

  remove(id: number): void {
    if (this.#worker !== undefined) this.#send({ op: 'remove', id });
  }

  ref(): void {
    this.#start().ref();
  }

  unref(): void {
    this.#worker?.unref();
  }

  #send(req: WaiterRequest): void {
    this.#port!.postMessage(req);
    if (this.#wakeQueued) return;
    this.#wakeQueued = true;
    queueMicrotask(this.#wake);
  }

  /**
   * Bumps the generation word and wakes the thread so it picks up the requests sent
   * since the last wake: once per microtask checkpoint, not per request (waits that time
   * out together, sleep-bound.ts, end and start again in one go). A request that waits
   * for this loses nothing: the thread compares each word with its expected value.
   */
  readonly #wake = (): void => {
    this.#wakeQueued = false;
    Atomics.add(this.#control!, 0, 1);
    futexWake(this.#controlAddress, 1);
  };

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
      for (const id of ids) this.#woken(id);
    });
    worker.on('error', (err) => {
      // The thread died (it should not): callers retry, which starts a new thread.
      this.#worker = undefined;
      this.#failed(`concurrent-shm waiter thread failed: ${String(err)}`);
    });
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}
