/**
 * The receiving side of a chunked channel (the protocol is described in chunks.ts): under
 * the receive lock, chunks are taken in order and a message is returned once whole;
 * remnants of messages whose receiver died are dropped, and so are messages whose sender
 * died or gave up half-way.
 * @internal
 */
import { AbortError, DeadlockError, LayoutError, OutOfRangeError, TimeoutError } from '../errors.js';
import { LIVENESS_MS, processAlive } from '../sync/liveness.js';
import { lockPid, TIMED_OUT } from '../sync/robust-lock.js';
import { hold, heldByThisThread, step, type ChunkContext } from './chunk-context.js';
import { CHUNK_CONT, CHUNK_MORE, CHUNK_PREFIX, W } from './layout.js';
import { targetChanged } from './payload.js';
import { CLAIM_STOPPED } from './waiting.js';
import { byteLengthOf } from '../region/view-bytes.js';

/** A message being reassembled. */
class Assembly {
  /** The message's bytes (the caller's target, or a new Buffer); null: none begun. */
  out: Uint8Array | null = null;
  total = 0;
  got = 0;
  serial = 0;
  /** Whether `droppedSerial` holds this message's serial, until it is whole. */
  recorded = false;
  /** recvInto's target, or null. */
  target: Uint8Array | null = null;
  /** When the last chunk was taken (performance.now()). */
  lastAt = 0;
  /** Why the wait for the next chunk stopped: the message will not continue, or the receive gave up on a stalled sender. */
  why: 'abandoned' | 'stalled' | 'aborted' = 'abandoned';
}

/**
 * After its deadline (or abort), a receive that has begun a message still waits for its
 * next chunk this long (ms): a sender that keeps sending is waited for, one that stalled
 * (alive but not sending) is not.
 */
export const STALL_MS = 100;

/** What to do with a message once whole: the Buffer, a string, or its length (recvInto). */
type Result = Buffer | string | number;

/** Receives whole messages, for one handle. */
export class ChunkReceiver {
  readonly #c: ChunkContext;
  /** The sender a waiting receiver last saw in sendLock, and when to look at its liveness next. */
  #seenHolder = 0;
  #lookAt = 0;
  /** Whether a call of this handle holds the receive lock now (release() lets go of it). */
  #receiving = false;
  /** What the last #ready() saw at head: its position (-1: nothing published), length word and, for a first chunk with more to come, serial. */
  #judged = -1;
  #judgedWord = 0;
  #judgedSerial = 0;

  constructor(c: ChunkContext) {
    this.#c = c;
  }

  /** Receives a whole message, blocking this thread. */
  recvSync(deadline: number, encoding: BufferEncoding | undefined, target: Uint8Array | null): Result {
    if (heldByThisThread(this.#c.sendKey)) {
      throw new DeadlockError(`an async send of this thread is sending a message on ${this.#c.where()}; a blocking receive could wait for the rest of it forever`);
    }
    this.#c.lockSync(this.#c.recvLock, this.#c.recvKey, deadline, 'receive');
    this.#receiving = true;
    const r = new Assembly();
    r.target = target;
    const stop = this.#stopFor(r, deadline, undefined);
    try {
      step('channel.chunk.recv.locked');
      for (;;) {
        let pos: number;
        if (r.out === null) pos = this.#c.waits.receiveSync(this.#c.rendezvous, deadline);
        else {
          pos = this.#c.waits.acquireSync(false, Infinity, stop);
          if (pos === CLAIM_STOPPED) pos = this.#lastLook(r);
        }
        if (this.#take(pos, r)) return finish(r, encoding);
      }
    } finally {
      this.#unlockRecv();
    }
  }

  /** Receives a whole message without blocking the event loop. */
  async recv(deadline: number, signal: AbortSignal | undefined, encoding: BufferEncoding | undefined, target: Uint8Array | null): Promise<Result> {
    await this.#c.lockAsync(this.#c.recvLock, deadline, signal, 'receive');
    hold(this.#c.recvKey, 1);
    this.#receiving = true;
    const r = new Assembly();
    r.target = target;
    const stop = this.#stopFor(r, deadline, signal);
    try {
      step('channel.chunk.recv.locked');
      for (;;) {
        // Each claimed chunk is taken in the tick of its claim.
        const whole =
          r.out === null
            ? await this.#c.waits.receiveAsync(this.#c.rendezvous, deadline, signal, (pos) => this.#take(pos, r))
            : await this.#c.waits.acquireAsync(false, Infinity, undefined, (pos) => this.#take(pos === CLAIM_STOPPED ? this.#lastLook(r) : pos, r), stop);
        if (whole) return finish(r, encoding);
      }
    } finally {
      hold(this.#c.recvKey, -1);
      this.#unlockRecv();
    }
  }

  /**
   * Receives a message if one is whole in the channel now; never waits (a message of more
   * chunks than the channel has slots is received only by the waiting calls).
   */
  tryRecv(encoding: BufferEncoding | undefined): Buffer | string | undefined {
    if (heldByThisThread(this.#c.recvKey) || this.#c.recvLock.try(true) === TIMED_OUT) return undefined;
    this.#receiving = true;
    const r = new Assembly();
    try {
      for (;;) {
        const ready = this.#ready();
        if (ready === 0) return this.#nothing();
        const pos = this.#c.p.claimRecv();
        if (pos < 0) return this.#nothing();
        if (!this.#asJudged(pos)) {
          // Not the chunk #ready() judged: an Unbuffered sender took its chunk back
          // meanwhile and another message took its place. Judge again.
          this.#c.p.putBack(pos, () => step('channel.chunk.recv.put-back'));
          continue;
        }
        if (ready < 0) {
          // A remnant chunk (dropped by #take), or the first chunk of a message that will
          // never be whole: dropped here; its other chunks are remnants, next time round.
          this.#take(pos, r);
          if (r.out !== null) {
            r.out = null;
            step('channel.chunk.recv.abandoned');
          }
          continue;
        }
        // Whole in the channel: its chunks are claimed one after another.
        for (let at = pos; !this.#take(at, r); ) {
          at = this.#c.p.claimRecv();
          if (at < 0) throw new LayoutError(`a chunk seen published in ${this.#c.where()} could not be claimed under the receive lock: a receiver does not follow the chunk protocol`);
        }
        return finish(r, encoding) as Buffer | string;
      }
    } finally {
      this.#unlockRecv();
    }
  }

  /**
   * With the receive lock held: what is at the head now. 0: nothing ready (or a message not
   * whole yet that is still coming); 1: a whole message; -1: a remnant chunk, or the
   * beginning of a message that will never be whole.
   */
  #ready(): number {
    const p = this.#c.p;
    const w = this.#c.w;
    let pos = Atomics.load(w, W.HEAD);
    this.#judged = -1;
    let first = true;
    let serial = 0;
    for (let i = 0; i <= p.depth; i++, pos = p.next(pos)) {
      const sw = p.slotWord(pos);
      const full = (): boolean => Atomics.load(w, sw) === p.fullWord(pos);
      if (!full()) {
        if (first || this.#coming(serial)) return 0;
        // Not coming any more: its sender let go (or bumped the serial) only after
        // publishing its last chunk, so a chunk published just before is visible now.
        if (!full()) return -1;
      }
      const word = this.#c.payloads.chunkWord(p.slotByte(pos));
      if (first) {
        this.#judged = pos;
        this.#judgedWord = word;
        this.#judgedSerial = (word & CHUNK_MORE) !== 0 && (word & CHUNK_CONT) === 0 ? this.#c.payloads.chunkSerial(p.slotByte(pos)) : 0;
        if ((word & CHUNK_CONT) !== 0) return -1;
        serial = this.#c.payloads.chunkSerial(p.slotByte(pos));
        first = false;
      } else if ((word & CHUNK_CONT) === 0) return -1; // another message began: this one was abandoned
      if ((word & CHUNK_MORE) === 0) return 1;
    }
    return 0;
  }

  /** tryRecv found nothing to take: a dead party may hold the slot at head (chunk-context.ts). */
  #nothing(): undefined {
    this.#c.probeHolders();
    return undefined;
  }

  /** Whether the chunk claimed at `pos` is the one the last #ready() judged (position, flags and length, serial). */
  #asJudged(pos: number): boolean {
    const at = this.#c.p.slotByte(pos);
    const word = this.#c.payloads.chunkWord(at);
    if (pos !== this.#judged || word !== this.#judgedWord) return false;
    return (word & CHUNK_MORE) === 0 || (word & CHUNK_CONT) !== 0 || this.#c.payloads.chunkSerial(at) === this.#judgedSerial;
  }

  /** After the stop test said the message will not continue: one more claim (its last chunk may have come just before), else drop it. */
  #lastLook(r: Assembly): number {
    const pos = this.#c.p.claimRecv();
    if (pos >= 0) return pos;
    const total = r.total;
    r.out = null;
    step('channel.chunk.recv.abandoned');
    // `droppedSerial` keeps its serial: a live sender given up on learns that nobody
    // received it (an Unbuffered one would otherwise take the next receiver's dropping of
    // the rest for a hand-over).
    const why = `half-way through a message of ${total} bytes whose sender stalled (no chunk for ${STALL_MS} ms); what had arrived of it is dropped, and so will be its rest`;
    if (r.why === 'stalled') throw new TimeoutError(`receive on ${this.#c.where()} timed out ${why}`);
    if (r.why === 'aborted') throw new AbortError(`receive on ${this.#c.where()} aborted ${why}`);
    return pos;
  }

  /** The stop test of a wait for the next chunk: the message will not continue, or the receive's time is up and its sender stalled. */
  #stopFor(r: Assembly, deadline: number, signal: AbortSignal | undefined): () => boolean {
    return () => {
      if (!this.#coming(r.serial)) {
        r.why = 'abandoned';
        return true;
      }
      const now = performance.now();
      if ((now >= deadline || signal?.aborted === true) && now - r.lastAt >= STALL_MS) {
        r.why = now >= deadline ? 'stalled' : 'aborted';
        return true;
      }
      return false;
    };
  }

  /**
   * Whether the rest of message `serial` may still come: it is the message being sent and
   * its sender holds the send lock and is alive (looked at every LIVENESS_MS).
   */
  #coming(serial: number): boolean {
    const w = this.#c.w;
    if (Atomics.load(w, W.SEND_SERIAL) !== serial) return false;
    const holder = Atomics.load(w, W.SEND_LOCK);
    if (holder === 0) return false;
    const now = performance.now();
    if (holder !== this.#seenHolder) {
      this.#seenHolder = holder;
      this.#lookAt = now + LIVENESS_MS;
      return true;
    }
    if (now < this.#lookAt) return true;
    this.#lookAt = now + LIVENESS_MS;
    return processAlive(lockPid(holder));
  }

  /**
   * Takes the chunk claimed at `pos` (or does nothing for a failed claim): copies it into
   * the message being reassembled and frees the slot. Returns `true` once the message is whole.
   */
  #take(pos: number, r: Assembly): boolean {
    if (pos < 0) return false;
    const p = this.#c.p;
    const at = p.slotByte(pos);
    const word = this.#c.payloads.chunkWord(at);
    let length: number;
    try {
      length = this.#c.payloads.chunkLength(word, pos % p.depth);
    } catch (err) {
      p.free(pos);
      throw err;
    }
    if ((word & CHUNK_CONT) !== 0) {
      if (r.out === null) {
        p.free(pos);
        step('channel.chunk.recv.dropped');
        return false;
      }
      if (r.got + length > r.total) return this.#corrupt(pos, r, `a chunk of ${length} bytes after ${r.got} of a ${r.total}-byte message`);
      this.#copy(pos, at, 0, length, r, r.got);
      r.got += length;
      r.lastAt = performance.now();
      return this.#freed(pos, r, word);
    }
    // A first chunk. A partial message held now was abandoned by its sender.
    if (r.out !== null) {
      r.out = null;
      step('channel.chunk.recv.abandoned');
    }
    let total = length;
    let skip = 0;
    if ((word & CHUNK_MORE) !== 0) {
      total = this.#c.payloads.chunkTotal(at);
      skip = CHUNK_PREFIX;
      if (length <= CHUNK_PREFIX || total <= length - CHUNK_PREFIX || total > this.#c.limit) {
        return this.#corrupt(pos, r, `a first chunk of ${length} bytes announcing a ${total}-byte message (maxMessage ${this.#c.limit})`);
      }
      r.serial = this.#c.payloads.chunkSerial(at);
    }
    if (r.target !== null && total > byteLengthOf(r.target)) {
      this.#putBack(pos);
      throw new OutOfRangeError(`target holds ${byteLengthOf(r.target)} bytes; the next message in ${this.#c.where()} is ${total} bytes; it stays in the channel (receive it with recv(), or into a larger target)`);
    }
    try {
      r.out = r.target ?? Buffer.allocUnsafe(total);
    } catch (err) {
      this.#putBack(pos); // no memory for it here: it stays for another receive
      throw err;
    }
    r.total = total;
    r.got = length - skip;
    r.lastAt = performance.now();
    // A message of several chunks is lost unless it ends whole here: said in
    // `droppedSerial` before its first chunk is freed (so before its sender goes on), and
    // taken back before its last one is.
    r.recorded = (word & CHUNK_MORE) !== 0;
    if (r.recorded) Atomics.store(this.#c.w, W.DROPPED_SERIAL, r.serial);
    this.#copy(pos, at, skip, r.got, r, 0);
    return this.#freed(pos, r, word);
  }

  /**
   * Copies a claimed chunk out. A copy that fails (recvInto's target resized, transferred
   * or detached while the receive waited between chunks) frees the slot first (never a
   * slot left claimed by a live receiver) and drops the message: its rest are remnants.
   */
  #copy(pos: number, at: number, skip: number, n: number, r: Assembly, into: number): void {
    try {
      if (r.target !== null && into + n > byteLengthOf(r.target)) {
        throw targetChanged(r.target, r.total, 'the message is dropped');
      }
      this.#c.payloads.copyChunk(at, skip, n, r.out!, into);
    } catch (err) {
      this.#c.p.free(pos);
      r.out = null;
      step('channel.chunk.recv.abandoned');
      throw err;
    }
  }

  /** Frees a copied chunk's slot; `true` when it was the message's last. */
  #freed(pos: number, r: Assembly, word: number): boolean {
    if ((word & CHUNK_MORE) !== 0) {
      this.#c.p.free(pos);
      step('channel.chunk.recv.between');
      return false;
    }
    if (r.got !== r.total) return this.#corrupt(pos, r, `a last chunk ending the message at ${r.got} of ${r.total} bytes`);
    if (r.recorded) {
      // Received: any value but its serial. The one before it: never a later serial
      // (until 2^32 messages on), so a stale value never names a message still to come.
      Atomics.store(this.#c.w, W.DROPPED_SERIAL, (r.serial - 1) | 0);
      r.recorded = false;
    }
    this.#c.p.free(pos);
    step('channel.chunk.recv.whole');
    return true;
  }

  #corrupt(pos: number, r: Assembly, what: string): never {
    if (pos >= 0) this.#c.p.free(pos);
    r.out = null;
    throw new LayoutError(`${this.#c.where()} holds ${what}: its memory was overwritten, or a party does not follow the chunk protocol; the message is dropped`);
  }

  /**
   * A message this receive cannot take (a target shorter than it, no memory for it): it
   * stays in the channel for the next receive. Under the receive lock nobody else moved
   * `head` since the claim at `pos`: it goes back to `pos` first, then the slot is FULL
   * again (a party killed between the two leaves a claim that repair() makes FULL again,
   * since `head` has not passed it).
   */
  #putBack(pos: number): void {
    this.#c.p.putBack(pos, () => step('channel.chunk.recv.put-back'));
  }

  #unlockRecv(): void {
    if (!this.#receiving) return;
    this.#receiving = false;
    this.#c.recvLock.unlock();
  }

  /** The handle is being released with a receive pending: the lock is let go (its message is lost). */
  letGo(): void {
    this.#unlockRecv();
  }
}

function finish(r: Assembly, encoding: BufferEncoding | undefined): Result {
  const out = r.out!;
  if (r.target !== null) return r.total;
  return encoding === undefined ? (out as Buffer) : (out as Buffer).toString(encoding);
}
