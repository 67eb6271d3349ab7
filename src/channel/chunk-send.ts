/**
 * The sending side of a chunked channel (the protocol is described in chunks.ts): a
 * message goes out as consecutive chunks under the send lock, with a new serial; one given
 * up half-way bumps the serial so that receivers drop what they hold of it.
 * @internal
 */
import { ClosedWriteError, DeadlockError, InvalidArgumentError, TimeoutError } from '../errors.js';
import { futexWake } from '../sync/futex.js';
import { TIMED_OUT } from '../sync/robust-lock.js';
import { bytesOf, chunksOf, hold, heldByThisThread, step, type ChunkContext } from './chunk-context.js';
import { CHUNK_CONT, CHUNK_MORE, CHUNK_PREFIX, W } from './layout.js';
import type { Message } from './payload.js';
import { CLAIM_CLOSED } from './slot-protocol.js';
import { byteLengthOf } from '../region/view-bytes.js';

/** Sends whole messages in chunks, for one handle. */
export class ChunkSender {
  readonly #c: ChunkContext;
  /** Whether a call of this handle holds the send lock now (release() lets go of it). */
  #sending = false;

  constructor(c: ChunkContext) {
    this.#c = c;
  }

  /** Sends a checked message, blocking this thread. */
  sendSync(data: Message | undefined, deadline: number): void {
    const src = bytesOf(data);
    const total = src.length; // checked: a view whose buffer changes later is refused (#put)
    this.#c.lockSync(this.#c.sendLock, this.#c.sendKey, deadline, 'send');
    this.#sending = true;
    let out = 0;
    let pos = -1;
    try {
      // An async receive of this thread holds the receive lock: nobody (here or in another
      // process) takes a chunk while this thread blocks, so a send that must wait for a
      // receiver would wait forever.
      if (heldByThisThread(this.#c.recvKey) && (this.#c.rendezvous || !this.#roomFor(chunksOf(total, this.#c.width)))) {
        throw new DeadlockError(`an async receive of this thread is taking a message on ${this.#c.where()}; a blocking send that must wait for a receiver would wait for it forever`);
      }
      const serial = this.#begin();
      do {
        pos = this.#c.waits.acquireSync(true, deadline);
        out = this.#put(pos, src, total, out, serial);
      } while (out < total);
      if (this.#c.rendezvous) {
        this.#c.waits.awaitTakenSync(pos, deadline);
        this.#delivered(serial, total);
      }
      step('channel.chunk.send.last');
    } catch (err) {
      if (pos >= 0) this.#giveUp(pos, total, out < total);
      throw err;
    } finally {
      this.#unlockSend();
    }
  }

  /** Sends a checked message without blocking the event loop. */
  async send(data: Message | undefined, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const src = bytesOf(data);
    const total = src.length; // checked: a view whose buffer changes later is refused (#put)
    await this.#c.lockAsync(this.#c.sendLock, deadline, signal, 'send');
    hold(this.#c.sendKey, 1);
    this.#sending = true;
    let out = 0;
    let pos = -1;
    try {
      const serial = this.#begin();
      do {
        pos = await this.#c.waits.acquireAsync(true, deadline, signal, (at) => {
          out = this.#put(at, src, total, out, serial);
          return at;
        });
      } while (out < total);
      if (this.#c.rendezvous) {
        await this.#c.waits.awaitTakenAsync(pos, deadline, signal);
        this.#delivered(serial, total);
      }
      step('channel.chunk.send.last');
    } catch (err) {
      if (pos >= 0) this.#giveUp(pos, total, out < total);
      throw err;
    } finally {
      hold(this.#c.sendKey, -1);
      this.#unlockSend();
    }
  }

  /**
   * Sends if the whole message fits in the channel now (all its chunks in free slots);
   * never waits. `false` when it does not, or another sender holds the send lock.
   */
  trySend(data: Message | undefined): boolean {
    const w = this.#c.w;
    if (this.#c.p.isClosed()) throw new ClosedWriteError(`Write to closed channel (${this.#c.where()})`);
    if (this.#c.rendezvous && Atomics.load(w, W.RECV_ACTIVE) <= 0) return false;
    if (heldByThisThread(this.#c.sendKey)) return false;
    const src = bytesOf(data);
    const total = src.length;
    if (this.#c.sendLock.try(true) === TIMED_OUT) return false;
    this.#sending = true;
    try {
      if (!this.#roomFor(chunksOf(total, this.#c.width))) {
        this.#c.probeHolders();
        return false;
      }
      const serial = this.#begin();
      let out = 0;
      do {
        const pos = this.#c.p.claimSend();
        if (pos === CLAIM_CLOSED) throw new ClosedWriteError(`Write to closed channel (${this.#c.where()})`);
        // Free slots stay free while we hold the send lock; a close meanwhile ends here.
        if (pos < 0) throw new ClosedWriteError(`Write to closed channel (${this.#c.where()})`);
        out = this.#put(pos, src, total, out, serial);
      } while (out < total);
      step('channel.chunk.send.last');
      return true;
    } catch (err) {
      this.#giveUp(-1, total, false);
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
    return (Atomics.add(this.#c.w, W.SEND_SERIAL, 1) + 1) | 0;
  }

  /** Copies the chunk of `src` that begins at `from` into the slot claimed at `pos`, publishes it; returns where the next chunk begins. */
  #put(pos: number, src: Uint8Array, total: number, from: number, serial: number): number {
    if (byteLengthOf(src) !== total) {
      // Its buffer was resized, transferred or detached while the send waited: the claimed
      // position is given up (receivers skip it), never copied past or left WRITING.
      const p = this.#c.p;
      p.skip(pos);
      throw new InvalidArgumentError(`the message changed from ${total} to ${byteLengthOf(src)} bytes (its buffer was resized, transferred or detached) while the send waited; nothing of it is received`);
    }
    let n: number;
    let flags: number;
    if (from === 0) {
      // A message that fits one slot is one chunk, flags 0 (the bytes of version 4).
      n = total <= this.#c.width ? total : this.#c.width - CHUNK_PREFIX;
      flags = n < total ? CHUNK_MORE : 0;
    } else {
      n = Math.min(this.#c.width, total - from);
      flags = from + n < total ? CHUNK_CONT | CHUNK_MORE : CHUNK_CONT;
    }
    this.#c.payloads.fillChunk(this.#c.p.slotByte(pos), src, total, from, n, flags, serial);
    this.#c.p.publish(pos);
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
    if (this.#c.rendezvous && retract) this.#c.p.retract(pos);
    if (total <= this.#c.width) return; // one chunk: retracted, or whole where it is
    this.#bumpSerial();
    step('channel.chunk.send.gave-up');
    const w = this.#c.w;
    if (Atomics.load(w, W.RECV_WAITERS) !== 0) {
      Atomics.add(w, W.NOT_EMPTY_SEQ, 1);
      futexWake(this.#c.p.base + W.NOT_EMPTY_SEQ * 4);
    }
  }

  /**
   * Unbuffered, after the last chunk was taken: `droppedSerial` still holding this
   * message's serial means the receive that took its first chunk never finished it (it
   * gave up half-way on this sender stalled past its deadline, or it was killed or
   * released), and the chunks "taken" since were the next receiver dropping the rest.
   * The send fails: nobody received the message.
   */
  #delivered(serial: number, total: number): void {
    if (total <= this.#c.width || Atomics.load(this.#c.w, W.DROPPED_SERIAL) !== serial) return;
    throw new TimeoutError(`send on ${this.#c.where()}: the receive taking this message of ${total} bytes did not finish it (it gave up half-way after this sender stalled past its deadline, or it was killed or released); nobody received it`);
  }

  /** With the send lock held: the `n` slots from `tail` on are free now. */
  #roomFor(n: number): boolean {
    const p = this.#c.p;
    if (n > p.depth) return false;
    let pos = this.#c.p.tail();
    for (let i = 0; i < n; i++, pos = p.next(pos)) {
      const sw = p.slotWord(pos);
      if (Atomics.load(this.#c.w, sw) !== p.freeWord(pos)) return false;
    }
    return true;
  }

  #unlockSend(): void {
    if (!this.#sending) return; // let go of by release()
    this.#sending = false;
    this.#c.sendLock.unlock();
  }

  /** The handle is being released with a send pending: its message is given up, the lock let go. */
  letGo(): void {
    if (this.#sending) Atomics.add(this.#c.w, W.SEND_SERIAL, 1);
    this.#unlockSend();
  }
}
