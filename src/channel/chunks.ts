/**
 * Messages larger than a slot (a channel created with `maxMessage` above its capacity,
 * layout version 5): each message goes out as consecutive chunks of at most the capacity,
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
 * dropped by the next receiver, and its Unbuffered sender fails: `droppedSerial` names
 * a message of several chunks from when its first chunk is taken until it is whole. The deadline and the signal of a receive bound the wait
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
import { ChunkContext } from './chunk-context.js';
import { ChunkReceiver } from './chunk-recv.js';
import { ChunkSender } from './chunk-send.js';
import type { Message, Payloads } from './payload.js';
import type { SlotProtocol } from './slot-protocol.js';
import type { Waits } from './waiting.js';

export { CHUNK_STEPS, type ChunkStep } from './chunk-context.js';
export { STALL_MS } from './chunk-recv.js';

/** The chunk protocol over one handle of a chunked channel: its sending and its receiving side. */
export class Chunks {
  readonly #send: ChunkSender;
  readonly #recv: ChunkReceiver;

  constructor(p: SlotProtocol, waits: Waits, payloads: Payloads, width: number, limit: number, rendezvous: boolean, key: string, where: () => string, checkMapped: () => void) {
    const c = new ChunkContext(p, waits, payloads, width, limit, rendezvous, key, where, checkMapped);
    this.#send = new ChunkSender(c);
    this.#recv = new ChunkReceiver(c);
  }

  /** Sends a checked message, blocking this thread. */
  sendSync(data: Message | undefined, deadline: number): void {
    this.#send.sendSync(data, deadline);
  }

  /** Sends a checked message without blocking the event loop. */
  send(data: Message | undefined, deadline: number, signal: AbortSignal | undefined): Promise<void> {
    return this.#send.send(data, deadline, signal);
  }

  /** Sends if the whole message fits in the free slots now; never waits. */
  trySend(data: Message | undefined): boolean {
    return this.#send.trySend(data);
  }

  /** Receives a whole message (into `target` when given), blocking this thread. */
  recvSync(deadline: number, encoding: BufferEncoding | undefined, target: Uint8Array | null): Buffer | string | number {
    return this.#recv.recvSync(deadline, encoding, target);
  }

  /** Receives a whole message without blocking the event loop. */
  recv(deadline: number, signal: AbortSignal | undefined, encoding: BufferEncoding | undefined, target: Uint8Array | null): Promise<Buffer | string | number> {
    return this.#recv.recv(deadline, signal, encoding, target);
  }

  /** Receives a message if one is whole in the channel now; never waits. */
  tryRecv(encoding: BufferEncoding | undefined): Buffer | string | undefined {
    return this.#recv.tryRecv(encoding);
  }

  /**
   * The handle is being released with calls still pending: let go of the locks they hold
   * while the memory is still mapped (their messages are then given up, as if their
   * process had died, but nobody waits a liveness bound for it).
   */
  letGo(): void {
    this.#send.letGo();
    this.#recv.letGo();
  }
}
