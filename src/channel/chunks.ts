/**
 * Messages larger than a slot (a channel created with `maxMessage` above its capacity,
 * layout version 3): each message goes out as consecutive chunks of at most the capacity,
 * one per slot, through the ordinary slot protocol (slot-protocol.ts), and a receiver
 * reassembles them into one message.
 *
 * Two robust locks (sync/robust-lock.ts) in the channel's control words keep messages
 * apart:
 * - a sender holds `sendLock` for the whole of a message, so the chunks of two messages
 *   never interleave: between one message's first chunk and its last there are only its
 *   own chunks, apart from positions given up by a sender that died there;
 * - a receiver holds `recvLock` while it takes a message, so chunks go to one receiver in
 *   order.
 *
 * Each chunk's length word carries two flags (layout.ts): CONT (not the first chunk of
 * its message) and MORE (not the last). A first chunk with MORE set carries the message's
 * total length and the `sendSerial` its sender stored when it began. From these alone a
 * receiver that takes over after anyone's death knows where messages begin:
 * - a CONT chunk at the head while it holds no partial message is a remnant (the rest of
 *   a message whose receiver died or gave up): it is freed unread;
 * - a first chunk while it holds a partial message means that message's sender is gone
 *   and another began: the partial message is dropped;
 * - while it waits for the next chunk, the message is still coming only while
 *   `sendSerial` is its serial and a live process holds `sendLock`. A sender that gives
 *   up (timeout, abort, close) bumps `sendSerial`; one that dies leaves a dead pid in
 *   `sendLock` (looked at every {@link LIVENESS_MS}). Then, after one more claim (the last
 *   chunk is published before the lock is let go), the partial message is dropped and the
 *   receive waits for the next message.
 *
 * Whole or not at all: a receiver returns a message only once its last chunk is in.
 * A message whose sender died or gave up is received by nobody; one whose receiver died
 * (or whose receive was released) after its first chunk is lost, its remaining chunks
 * dropped by the next receiver. The deadline and the signal of a receive bound the wait
 * for a message to begin; once its first chunk is taken, the receive waits for the rest
 * past them for as long as chunks keep coming (the sender holds the whole message, so
 * the rest comes at the speed of the copies). Past the deadline (or abort), a sender that
 * stalls for {@link STALL_MS} between two chunks (alive, but not sending: stopped, its
 * event loop blocked) ends the receive with a TimeoutError (AbortError), and that message
 * is lost like one whose receiver died.
 *
 * Step names ({@link CHUNK_STEPS}) mark the gaps between shared-memory operations; the
 * slot steps of each chunk's claim, copy and publish are those of slot-protocol.ts.
 * @internal
 */
import { AbortError, ClosedWriteError, DeadlockError, OutOfRangeError, LayoutError, TimeoutError } from '../errors.js';
import { futexWake } from '../sync/futex.js';
import { LIVENESS_MS, processAlive } from '../sync/liveness.js';
import { RobustLock, TIMED_OUT, type AsyncRound } from '../sync/robust-lock.js';
import { SpinBudget } from '../sync/spin.js';
import { stepHook } from '../sync/steps.js';
import { CHUNK_CONT, CHUNK_MORE, CHUNK_PREFIX, FULL, ownerWord, SLOT_OWNER, SLOT_SEQ, W } from './layout.js';
import type { Message, Payloads } from './payload.js';

import { CLAIM_CLOSED, type SlotProtocol } from './slot-protocol.js';
import { CLAIM_STOPPED, type Waits } from './waiting.js';

/** Every named step of the chunk protocol. */
export const CHUNK_STEPS = [
  'channel.chunk.send.locked', // a sender holds sendLock; sendSerial not bumped yet
  'channel.chunk.send.serial', // sendSerial bumped; the first chunk not claimed yet
  'channel.chunk.send.between', // a chunk other than the last published; the next not claimed yet
  'channel.chunk.send.last', // the last chunk published (Unbuffered: and taken); sendLock still held
  'channel.chunk.send.gave-up', // gave a message up half-sent: sendSerial bumped; sendLock still held
  'channel.chunk.recv.locked', // a receiver holds recvLock; nothing claimed yet
  'channel.chunk.recv.between', // a chunk other than the last copied out and freed; the next not claimed yet
  'channel.chunk.recv.whole', // the last chunk copied out and freed; recvLock still held
  'channel.chunk.recv.dropped', // a remnant chunk (of a message this receiver does not hold) freed unread
  'channel.chunk.recv.abandoned', // a partial message dropped: its sender died or gave up
  'channel.chunk.recv.put-back', // a message too long for the target: head moved back; its first chunk not FULL again yet
] as const;

/** A step name. */
export type ChunkStep = (typeof CHUNK_STEPS)[number];

function step(name: ChunkStep): void {
  if (stepHook !== undefined) stepHook(name);
}

const OWNER_FULL = ownerWord(FULL, 0);

/**
 * The locks this thread holds in async calls, by channel: a sync call that would wait for
 * one of them would wait forever (the holder needs this thread's event loop).
 */
const heldHere = new Map<string, number>();

function hold(key: string, delta: number): void {
  const n = (heldHere.get(key) ?? 0) + delta;
  if (n === 0) heldHere.delete(key);
  else heldHere.set(key, n);
}

/** A message being reassembled. */
class Assembly {
  /** The message's bytes (the caller's target, or a new Buffer); null: none begun. */
  out: Uint8Array | null = null;
  total = 0;
  got = 0;
  serial = 0;
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

/** The chunk protocol over one handle of a chunked channel. */
export class Chunks {
  readonly #p: SlotProtocol;
  readonly #w: Int32Array;
  readonly #waits: Waits;
  readonly #payloads: Payloads;
  readonly #width: number;
  readonly #limit: number;
  readonly #rendezvous: boolean;
  readonly #where: () => string;
  readonly #checkMapped: () => void;
  readonly #sendLock: RobustLock;
  readonly #recvLock: RobustLock;
  readonly #sendKey: string;
  readonly #recvKey: string;
  /** The sender a waiting receiver last saw in sendLock, and when to look at its liveness next. */
  #seenHolder = 0;
  #lookAt = 0;
  /** Whether a call of this handle holds the send / receive lock now (release() lets go of them). */
  #sending = false;
  #receiving = false;

  constructor(p: SlotProtocol, waits: Waits, payloads: Payloads, width: number, limit: number, rendezvous: boolean, key: string, where: () => string, checkMapped: () => void) {
    this.#p = p;
    this.#w = p.w;
    this.#waits = waits;
    this.#payloads = payloads;
    this.#width = width;
    this.#limit = limit;
    this.#rendezvous = rendezvous;
    this.#where = where;
    this.#checkMapped = checkMapped;
    this.#sendKey = `${key}:send`;
    this.#recvKey = `${key}:recv`;
    const spin = (): SpinBudget => new SpinBudget(2_000, 64, 50_000);
    this.#sendLock = new RobustLock(p.w, { lock: W.SEND_LOCK, waiters: W.SEND_LOCK_WAITERS, deaths: W.SEND_DEATHS }, p.base + W.SEND_LOCK * 4, spin());
    this.#recvLock = new RobustLock(p.w, { lock: W.RECV_LOCK, waiters: W.RECV_LOCK_WAITERS, deaths: W.RECV_DEATHS }, p.base + W.RECV_LOCK * 4, spin());
  }

  // ---- sending ------------------------------------------------------------------

  /** Sends a checked message, blocking this thread. */
  sendSync(data: Message | undefined, deadline: number): void {
    const src = bytesOf(data);
    this.#lockSync(this.#sendLock, this.#sendKey, deadline, 'send');
    this.#sending = true;
    let out = 0;
    let pos = -1;
    try {
      const serial = this.#begin();
      do {
        pos = this.#waits.acquireSync(true, deadline);
        out = this.#put(pos, src, out, serial);
      } while (out < src.length);
      if (this.#rendezvous) this.#waits.awaitTakenSync(pos, deadline);
      step('channel.chunk.send.last');
    } catch (err) {
      if (pos >= 0) this.#giveUp(pos, src.length, out < src.length);
      throw err;
    } finally {
      this.#unlockSend();
    }
  }

  /** Sends a checked message without blocking the event loop. */
  async send(data: Message | undefined, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const src = bytesOf(data);
    await this.#lockAsync(this.#sendLock, deadline, signal, 'send');
    hold(this.#sendKey, 1);
    this.#sending = true;
    let out = 0;
    let pos = -1;
    try {
      const serial = this.#begin();
      do {
        pos = await this.#waits.acquireAsync(true, deadline, signal, (at) => {
          out = this.#put(at, src, out, serial);
          return at;
        });
      } while (out < src.length);
      if (this.#rendezvous) await this.#waits.awaitTakenAsync(pos, deadline, signal);
      step('channel.chunk.send.last');
    } catch (err) {
      if (pos >= 0) this.#giveUp(pos, src.length, out < src.length);
      throw err;
    } finally {
      hold(this.#sendKey, -1);
      this.#unlockSend();
    }
  }

  /**
   * Sends if the whole message fits in the channel now (all its chunks in free slots);
   * never waits. `false` when it does not, or another sender holds the send lock.
   */
  trySend(data: Message | undefined): boolean {
    const w = this.#w;
    if (Atomics.load(w, W.CLOSED) !== 0) throw new ClosedWriteError(`Write to closed channel (${this.#where()})`);
    if (this.#rendezvous && Atomics.load(w, W.RECV_ACTIVE) <= 0) return false;
    if (heldHere.has(this.#sendKey)) return false;
    const src = bytesOf(data);
    if (this.#sendLock.try() === TIMED_OUT) return false;
    this.#sending = true;
    try {
      if (!this.#roomFor(chunksOf(src.length, this.#width))) return false;
      const serial = this.#begin();
      let out = 0;
      do {
        const pos = this.#p.claimSend();
        if (pos === CLAIM_CLOSED) throw new ClosedWriteError(`Write to closed channel (${this.#where()})`);
        // Free slots stay free while we hold the send lock; a close meanwhile ends here.
        if (pos < 0) throw new ClosedWriteError(`Write to closed channel (${this.#where()})`);
        out = this.#put(pos, src, out, serial);
      } while (out < src.length);
      step('channel.chunk.send.last');
      return true;
    } catch (err) {
      this.#bumpSerial();
      throw err;
    } finally {
      this.#unlockSend();
    }
  }

  /** With the send lock held: a new serial for the message about to go out. */
  #begin(): number {
    step('channel.chunk.send.locked');
    const serial = this.#bumpSerial();
    step('channel.chunk.send.serial');
    return serial;
  }

  #bumpSerial(): number {
    return (Atomics.add(this.#w, W.SEND_SERIAL, 1) + 1) | 0;
  }

  /** Copies the chunk of `src` that begins at `from` into the slot claimed at `pos`, publishes it; returns where the next chunk begins. */
  #put(pos: number, src: Uint8Array, from: number, serial: number): number {
    const total = src.length;
    let n: number;
    let flags: number;
    if (from === 0) {
      // A message that fits one slot is one chunk, flags 0 (the bytes of version 2).
      n = total <= this.#width ? total : this.#width - CHUNK_PREFIX;
      flags = n < total ? CHUNK_MORE : 0;
    } else {
      n = Math.min(this.#width, total - from);
      flags = from + n < total ? CHUNK_CONT | CHUNK_MORE : CHUNK_CONT;
    }
    this.#payloads.fillChunk(this.#p.slotByte(pos), src, from, n, flags, serial);
    this.#p.publish(pos);
    const next = from + n;
    if (next < total) step('channel.chunk.send.between');
    return next === 0 ? 1 : next; // an empty message is one chunk too
  }

  /**
   * A message given up after some of its chunks went out: Unbuffered takes its last
   * chunk published back if no receiver took it (`retract`: not done yet; a hand-over
   * that timed out took it back itself); receivers waiting for the rest learn it will not
   * come from `sendSerial` (and are woken).
   */
  #giveUp(pos: number, total: number, retract: boolean): void {
    if (this.#rendezvous && retract) this.#p.retract(pos);
    if (total <= this.#width) return; // one chunk: retracted, or whole where it is
    this.#bumpSerial();
    step('channel.chunk.send.gave-up');
    const w = this.#w;
    if (Atomics.load(w, W.RECV_WAITERS) !== 0) {
      Atomics.add(w, W.NOT_EMPTY_SEQ, 1);
      futexWake(this.#p.base + W.NOT_EMPTY_SEQ * 4);
    }
  }

  /** With the send lock held: the `n` slots from `tail` on are free now. */
  #roomFor(n: number): boolean {
    const p = this.#p;
    if (n > p.depth) return false;
    let pos = Atomics.load(this.#w, W.TAIL);
    for (let i = 0; i < n; i++, pos = p.next(pos)) {
      const sw = p.slotWord(pos);
      if (Atomics.load(this.#w, sw + SLOT_OWNER) !== 0 || Atomics.load(this.#w, sw + SLOT_SEQ) !== p.freeSeq(pos)) return false;
    }
    return true;
  }

  // ---- receiving ----------------------------------------------------------------

  /** Receives a whole message, blocking this thread. */
  recvSync(deadline: number, encoding: BufferEncoding | undefined, target: Uint8Array | null): Result {
    if (heldHere.has(this.#sendKey)) {
      throw new DeadlockError(`an async send of this thread is sending a message on ${this.#where()}; a blocking receive could wait for the rest of it forever`);
    }
    this.#lockSync(this.#recvLock, this.#recvKey, deadline, 'receive');
    this.#receiving = true;
    const r = new Assembly();
    r.target = target;
    const stop = this.#stopFor(r, deadline, undefined);
    try {
      step('channel.chunk.recv.locked');
      for (;;) {
        let pos: number;
        if (r.out === null) pos = this.#waits.receiveSync(this.#rendezvous, deadline);
        else {
          pos = this.#waits.acquireSync(false, Infinity, stop);
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
    await this.#lockAsync(this.#recvLock, deadline, signal, 'receive');
    hold(this.#recvKey, 1);
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
            ? await this.#waits.receiveAsync(this.#rendezvous, deadline, signal, (pos) => this.#take(pos, r))
            : await this.#waits.acquireAsync(false, Infinity, undefined, (pos) => this.#take(pos === CLAIM_STOPPED ? this.#lastLook(r) : pos, r), stop);
        if (whole) return finish(r, encoding);
      }
    } finally {
      hold(this.#recvKey, -1);
      this.#unlockRecv();
    }
  }

  /**
   * Receives a message if one is whole in the channel now; never waits (a message of more
   * chunks than the channel has slots is received only by the waiting calls).
   */
  tryRecv(encoding: BufferEncoding | undefined): Buffer | string | undefined {
    if (heldHere.has(this.#recvKey) || this.#recvLock.try() === TIMED_OUT) return undefined;
    this.#receiving = true;
    const r = new Assembly();
    try {
      for (;;) {
        const ready = this.#ready();
        if (ready === 0) return undefined;
        const pos = this.#p.claimRecv();
        if (pos < 0) return undefined;
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
          at = this.#p.claimRecv();
          if (at < 0) throw new LayoutError(`a chunk seen published in ${this.#where()} could not be claimed under the receive lock: a receiver does not follow the chunk protocol`);
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
    const p = this.#p;
    const w = this.#w;
    let pos = Atomics.load(w, W.HEAD);
    let first = true;
    let serial = 0;
    for (let i = 0; i <= p.depth; i++, pos = p.next(pos)) {
      const sw = p.slotWord(pos);
      if (Atomics.load(w, sw + SLOT_OWNER) !== OWNER_FULL || Atomics.load(w, sw + SLOT_SEQ) !== p.freeSeq(pos) + 1) {
        return first || this.#coming(serial) ? 0 : -1;
      }
      const word = this.#payloads.chunkWord(p.slotByte(pos));
      if (first) {
        if ((word & CHUNK_CONT) !== 0) return -1;
        serial = this.#payloads.chunkSerial(p.slotByte(pos));
        first = false;
      } else if ((word & CHUNK_CONT) === 0) return -1; // another message began: this one was abandoned
      if ((word & CHUNK_MORE) === 0) return 1;
    }
    return 0;
  }

  /** After the stop test said the message will not continue: one more claim (its last chunk may have come just before), else drop it. */
  #lastLook(r: Assembly): number {
    const pos = this.#p.claimRecv();
    if (pos >= 0) return pos;
    const total = r.total;
    r.out = null;
    step('channel.chunk.recv.abandoned');
    const why = `half-way through a message of ${total} bytes whose sender stalled (no chunk for ${STALL_MS} ms); what had arrived of it is dropped, and so will be its rest`;
    if (r.why === 'stalled') throw new TimeoutError(`receive on ${this.#where()} timed out ${why}`);
    if (r.why === 'aborted') throw new AbortError(`receive on ${this.#where()} aborted ${why}`);
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
    const w = this.#w;
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
    return processAlive(holder);
  }

  /**
   * Takes the chunk claimed at `pos` (or does nothing for a failed claim): copies it into
   * the message being reassembled and frees the slot. Returns `true` once the message is whole.
   */
  #take(pos: number, r: Assembly): boolean {
    if (pos < 0) return false;
    const p = this.#p;
    const at = p.slotByte(pos);
    const word = this.#payloads.chunkWord(at);
    let length: number;
    try {
      length = this.#payloads.chunkLength(word, pos % p.depth);
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
      this.#payloads.copyChunk(at, 0, length, r.out, r.got);
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
      total = this.#payloads.chunkTotal(at);
      skip = CHUNK_PREFIX;
      if (length <= CHUNK_PREFIX || total <= length - CHUNK_PREFIX || total > this.#limit) {
        return this.#corrupt(pos, r, `a first chunk of ${length} bytes announcing a ${total}-byte message (maxMessage ${this.#limit})`);
      }
      r.serial = this.#payloads.chunkSerial(at);
    }
    if (r.target !== null && total > r.target.length) this.#putBack(pos, total, r.target.length);
    r.out = r.target ?? Buffer.allocUnsafe(total);
    r.total = total;
    r.got = length - skip;
    r.lastAt = performance.now();
    this.#payloads.copyChunk(at, skip, r.got, r.out, 0);
    return this.#freed(pos, r, word);
  }

  /** Frees a copied chunk's slot; `true` when it was the message's last. */
  #freed(pos: number, r: Assembly, word: number): boolean {
    this.#p.free(pos);
    if ((word & CHUNK_MORE) !== 0) {
      step('channel.chunk.recv.between');
      return false;
    }
    if (r.got !== r.total) return this.#corrupt(-1, r, `a last chunk ending the message at ${r.got} of ${r.total} bytes`);
    step('channel.chunk.recv.whole');
    return true;
  }

  #corrupt(pos: number, r: Assembly, what: string): never {
    if (pos >= 0) this.#p.free(pos);
    r.out = null;
    throw new LayoutError(`${this.#where()} holds ${what}: its memory was overwritten, or a party does not follow the chunk protocol; the message is dropped`);
  }

  /**
   * recvInto with a target shorter than the message claimed at `pos`: the message stays
   * in the channel for the next receive. Under the receive lock nobody else moved `head`
   * since this claim: it goes back to `pos` first, then the slot is FULL again (a party
   * killed between the two leaves a claim that repair() makes FULL again, since `head`
   * has not passed it).
   */
  #putBack(pos: number, total: number, room: number): never {
    const w = this.#w;
    Atomics.store(w, W.HEAD, pos);
    step('channel.chunk.recv.put-back');
    Atomics.store(w, this.#p.slotWord(pos) + SLOT_OWNER, OWNER_FULL);
    throw new OutOfRangeError(`target holds ${room} bytes; the next message in ${this.#where()} is ${total} bytes; it stays in the channel (receive it with recv(), or into a larger target)`);
  }

  // ---- the locks ----------------------------------------------------------------

  #unlockSend(): void {
    if (!this.#sending) return; // let go of by release()
    this.#sending = false;
    this.#sendLock.unlock();
  }

  #unlockRecv(): void {
    if (!this.#receiving) return;
    this.#receiving = false;
    this.#recvLock.unlock();
  }

  /**
   * The handle is being released with a call still pending: let go of the locks that call
   * holds while the memory is still mapped (its message is then given up, as if its
   * process had died, but nobody waits a liveness bound for it).
   */
  letGo(): void {
    if (this.#sending) Atomics.add(this.#w, W.SEND_SERIAL, 1);
    this.#unlockSend();
    this.#unlockRecv();
  }

  #lockSync(lock: RobustLock, key: string, deadline: number, what: string): void {
    if (heldHere.has(key)) {
      throw new DeadlockError(`an async ${what} of this thread is taking a message on ${this.#where()}; a blocking ${what} would wait for it forever`);
    }
    if (lock.lockSync(deadline) === TIMED_OUT) throw new TimeoutError(`${what} on ${this.#where()} timed out waiting for another ${what} to finish its message`);
  }

  async #lockAsync(lock: RobustLock, deadline: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    const hooks: AsyncRound = {
      round: () => {
        this.#checkMapped();
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      },
      mayTry: () => true,
      signal,
    };
    hooks.round();
    if ((await lock.lockAsync(deadline, hooks)) === TIMED_OUT) throw new TimeoutError(`${what} on ${this.#where()} timed out waiting for another ${what} to finish its message`);
  }
}

/** A checked message as bytes. */
function bytesOf(data: Message | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Chunks of a message of `total` bytes through slots of `width`. */
function chunksOf(total: number, width: number): number {
  return total <= width ? 1 : 1 + Math.ceil((total - (width - CHUNK_PREFIX)) / width);
}

function finish(r: Assembly, encoding: BufferEncoding | undefined): Result {
  const out = r.out!;
  if (r.target !== null) return r.total;
  return encoding === undefined ? (out as Buffer) : (out as Buffer).toString(encoding);
}
