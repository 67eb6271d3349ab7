/**
 * What the sending and the receiving side of a chunked channel share (chunk-send.ts,
 * chunk-recv.ts; the protocol is described in chunks.ts): the channel's slot protocol and
 * waits, its two robust locks, the named steps, and this thread's record of the locks its
 * async calls hold.
 * @internal
 */
import { AbortError, DeadlockError, TimeoutError } from '../errors.js';
import { RobustLock, TIMED_OUT, type AsyncRound } from '../sync/robust-lock.js';
import { TryClock } from '../sync/try-clock.js';
import { SpinBudget } from '../sync/spin.js';
import { stepHook } from '../sync/steps.js';
import { CHUNK_CONT, CHUNK_MORE, CHUNK_PREFIX, W } from './layout.js';
import type { Message, Payloads } from './payload.js';
import { CLAIM_BLOCKED, type SlotProtocol } from './slot-protocol.js';
import type { Waits } from './waiting.js';
import { bytesOf as viewBytes } from '../region/view-bytes.js';

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

/** Stops at a named step when the step harness asks (sync/steps.ts). */
export function step(name: ChunkStep): void {
  if (stepHook !== undefined) stepHook(name);
}

/**
 * The locks this thread holds in async calls, by channel: a sync call that would wait for
 * one of them would wait forever (the holder needs this thread's event loop).
 */
const heldHere = new Map<string, number>();

/** Counts an async call of this thread holding (1) or letting go of (-1) the lock `key`. */
export function hold(key: string, delta: number): void {
  const n = (heldHere.get(key) ?? 0) + delta;
  if (n === 0) heldHere.delete(key);
  else heldHere.set(key, n);
}

/** Whether an async call of this thread holds the lock `key`. */
export function heldByThisThread(key: string): boolean {
  return heldHere.has(key);
}

/** One handle's view of a chunked channel. */
export class ChunkContext {
  readonly p: SlotProtocol;
  readonly w: Int32Array;
  readonly waits: Waits;
  readonly payloads: Payloads;
  /** The capacity: the largest chunk. */
  readonly width: number;
  /** maxMessage. */
  readonly limit: number;
  readonly rendezvous: boolean;
  readonly where: () => string;
  readonly checkMapped: () => void;
  readonly sendLock: RobustLock;
  readonly recvLock: RobustLock;
  /** Keys of the two locks in this thread's record. */
  readonly sendKey: string;
  readonly recvKey: string;
  readonly #tries = new TryClock();
  readonly #repairHolders = (): number => this.p.repairHolders();

  constructor(p: SlotProtocol, waits: Waits, payloads: Payloads, width: number, limit: number, rendezvous: boolean, key: string, where: () => string, checkMapped: () => void) {
    this.p = p;
    this.w = p.w;
    this.waits = waits;
    this.payloads = payloads;
    this.width = width;
    this.limit = limit;
    this.rendezvous = rendezvous;
    this.where = where;
    this.checkMapped = checkMapped;
    this.sendKey = `${key}:send`;
    this.recvKey = `${key}:recv`;
    const spin = (): SpinBudget => new SpinBudget(2_000, 64, 50_000);
    p.onReadLost = (at) => this.#readLost(at);
    this.sendLock = new RobustLock(p.w, { lock: W.SEND_LOCK, waiters: W.SEND_LOCK_WAITERS, deaths: W.SEND_DEATHS }, p.base + W.SEND_LOCK * 4, spin());
    this.recvLock = new RobustLock(p.w, { lock: W.RECV_LOCK, waiters: W.RECV_LOCK_WAITERS, deaths: W.RECV_DEATHS }, p.base + W.RECV_LOCK * 4, spin());
  }

  /**
   * repair() gave up a chunk a dead receiver had claimed and moved `head` past. The first
   * chunk of a message of several: that receiver may have died before it recorded the
   * message in `droppedSerial` (chunk-recv.ts), so it is recorded here, and an Unbuffered
   * sender learns that nobody received it. (A later chunk: its receiver recorded the
   * message when it took the first.)
   */
  #readLost(at: number): void {
    const word = this.payloads.chunkWord(at);
    if ((word & CHUNK_MORE) !== 0 && (word & CHUNK_CONT) === 0) Atomics.store(this.w, W.DROPPED_SERIAL, this.payloads.chunkSerial(at));
  }

  /**
   * After a try-call found no room or nothing whole: once this handle's tries have found
   * a party holding the slot at head or tail for the liveness bound, looks at it and
   * repairs what it left if it is gone (try-calls never wait, so no wait would).
   */
  probeHolders(): void {
    this.#tries.run(this.p, this.#repairHolders, isBlocked);
  }

  /** Takes a lock, blocking this thread until `deadline`; refuses one an async call of this thread holds. */
  lockSync(lock: RobustLock, key: string, deadline: number, what: string): void {
    if (heldHere.has(key)) {
      throw new DeadlockError(`an async ${what} of this thread is taking a message on ${this.where()}; a blocking ${what} would wait for it forever`);
    }
    if (lock.lockSync(deadline) === TIMED_OUT) throw new TimeoutError(`${what} on ${this.where()} timed out waiting for another ${what} to finish its message`);
  }

  async lockAsync(lock: RobustLock, deadline: number, signal: AbortSignal | undefined, what: string): Promise<void> {
    const hooks: AsyncRound = {
      round: () => {
        this.checkMapped();
        if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
      },
      mayTry: () => true,
      signal,
    };
    hooks.round();
    if ((await lock.lockAsync(deadline, hooks)) === TIMED_OUT) throw new TimeoutError(`${what} on ${this.where()} timed out waiting for another ${what} to finish its message`);
  }
}

const isBlocked = (r: number): boolean => r === CLAIM_BLOCKED;

/** A checked message as bytes. */
export function bytesOf(data: Message | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  return data instanceof Uint8Array ? data : viewBytes(data);
}

/** Chunks of a message of `total` bytes through slots of `width`. */
export function chunksOf(total: number, width: number): number {
  return total <= width ? 1 : 1 + Math.ceil((total - (width - CHUNK_PREFIX)) / width);
}

