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

/** Runs `attempt` with `p.suspect` set: that one call looks at the liveness of the parties it meets. */
export function lookingAt<T>(p: Suspecting, attempt: () => T): T {
  p.suspect = true;
  try {
    return attempt();
  } finally {
    p.suspect = false;
  }
}

/** One handle's clock for one kind of try. */
export class TryClock {
  #since = 0;

  /** Runs one try of `attempt`; `held` says which outcomes mean "held up by another party". */
  run(p: Suspecting, attempt: () => number, held: (r: number) => boolean): number {
    const now = performance.now();
    let r: number;
    if (this.#since !== 0 && now - this.#since >= LIVENESS_MS) {
      this.#since = now;
      r = lookingAt(p, attempt);
    } else {
      r = attempt();
    }
    if (!held(r)) this.#since = 0;
    else if (this.#since === 0) this.#since = now;
    return r;
  }
}
