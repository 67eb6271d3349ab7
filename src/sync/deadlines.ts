/**
 * The timeouts of many pending async waits on one Node timer: a min-heap of entries by
 * deadline, and the timer armed for the earliest one.
 *
 * A wait that ends before its deadline is only marked `done`: it stays in the heap until
 * it comes up (popped when the timer fires or when it reaches the top), so starting and
 * ending a wait costs two heap steps of O(log n) and no timer call, where a timer per wait
 * costs a `setTimeout` and a `clearTimeout` (0.4 µs here, more than the rest of the
 * bookkeeping). Entries are bounded by the waits started within the longest timeout.
 * The timer is unreferenced: a pending wait keeps the process alive by its own means.
 * @internal
 */

/** What the heap holds: a deadline on the `performance.now()` clock, and whether the entry still waits for it. */
export interface Deadline {
  deadline: number;
  done: boolean;
}

export class Deadlines<T extends Deadline> {
  readonly #heap: T[] = [];
  readonly #expire: (entry: T) => void;
  #timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for (Infinity: not armed). */
  #armed = Infinity;

  /** `expire(entry)` is called, from the timer, for each entry whose deadline passed while not `done`. */
  constructor(expire: (entry: T) => void) {
    this.#expire = expire;
  }

  /** Entries in the heap, `done` ones included (for tests). */
  get size(): number {
    return this.#heap.length;
  }

  /** Adds an entry; its `deadline` must not change while it is in the heap. */
  add(entry: T): void {
    const h = this.#heap;
    let i = h.length;
    h.push(entry);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.deadline <= entry.deadline) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = entry;
    if (entry.deadline < this.#armed) this.#arm(entry.deadline);
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#armed = deadline;
    // Node's timers count whole milliseconds and may fire up to one early by
    // performance.now(): one more keeps an expiry from coming before its deadline.
    this.#timer = setTimeout(this.#fire, Math.max(0, Math.ceil(deadline - performance.now())) + 1);
    this.#timer.unref();
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#armed = Infinity;
    const h = this.#heap;
    const now = performance.now();
    try {
      while (h.length > 0 && (h[0]!.done || h[0]!.deadline <= now)) {
        const entry = this.#pop();
        if (!entry.done) this.#expire(entry);
      }
    } finally {
      // Re-armed even if an expiry threw: the entries left keep their timeouts.
      if (h.length > 0) this.#arm(h[0]!.deadline);
    }
  };

  #pop(): T {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    const n = h.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && h[r]!.deadline < h[l]!.deadline ? r : l;
      if (h[c]!.deadline >= last.deadline) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }
}
