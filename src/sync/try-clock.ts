/**
 * The liveness clock of try-calls (a channel's `trySend` / `tryRecv`, a broadcast's
 * `tryPublish` / `tryRecv`), which never wait: once the calls of a handle have met a
 * claim held up by another party for {@link LIVENESS_MS}, the next try checks that
 * party's liveness (and the protocol repairs what a dead one left), so a program that
 * only polls is not wedged by a party killed in the middle of its claim.
 * @internal
 */
import { LIVENESS_MS } from './liveness.js';

/** A protocol whose claims check the liveness of the parties they meet while `suspect` is set. */
export interface Suspecting {
  suspect: boolean;
}

/** One handle's clock for one kind of try. */
export class TryClock {
  #since = 0;

  /** Runs one try of `attempt`; `held` says which outcomes mean "held up by another party". */
  run(p: Suspecting, attempt: () => number, held: (r: number) => boolean): number {
    const now = performance.now();
    if (this.#since !== 0 && now - this.#since >= LIVENESS_MS) {
      p.suspect = true;
      this.#since = now;
    }
    let r: number;
    try {
      r = attempt();
    } finally {
      p.suspect = false;
    }
    if (!held(r)) this.#since = 0;
    else if (this.#since === 0) this.#since = now;
    return r;
  }
}
