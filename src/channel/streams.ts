/**
 * Node streams over a channel: `ch.writable()` sends each chunk written as a message
 * (split into several when it is larger than the channel's largest message: its capacity,
 * or the `maxMessage` of a chunked channel, which thus carries each write of up to
 * `maxMessage` bytes as one message), `ch.readable()` pushes each
 * message received. Both move bytes (object mode off) and follow the channel's
 * back-pressure: a write completes once its message is in the channel, and the readable
 * receives only while its buffer is below its high-water mark.
 * @module
 */
import { Readable, Writable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { ChannelClosedError, InvalidArgumentError } from '../errors.js';
import { checkOptions, describe } from '../validate.js';
import type { Channel } from './channel.js';

/** Options of {@link Channel.writable}. */
export interface WritableOptions {
  /**
   * Close the channel (for every process) when the stream finishes or is destroyed, so
   * that the reader's stream ends. Default `true`; pass `false` when other senders share
   * the channel.
   */
  close?: boolean;
  /** Destroy the stream (and give up a pending send) when the signal aborts. */
  signal?: AbortSignal;
  /** Bytes the stream buffers before `write()` returns `false` (Node's default otherwise). */
  highWaterMark?: number;
}

/** Options of {@link Channel.readable}. */
export interface ReadableOptions {
  /**
   * Close the channel (for every process) when the stream is destroyed before its end,
   * so that senders fail with `ClosedWriteError` instead of waiting for a reader that is
   * gone. Default `true`; pass `false` when other receivers share the channel.
   */
  close?: boolean;
  /** Destroy the stream (and give up the pending receive) when the signal aborts. */
  signal?: AbortSignal;
  /** Bytes the stream buffers before it stops receiving (Node's default otherwise). */
  highWaterMark?: number;
  /** Push strings decoded with this encoding instead of Buffers. */
  encoding?: BufferEncoding;
}

/** A `stream.Writable` that sends each chunk to a channel. */
export class ChannelWritable extends Writable {
  readonly #ch: Channel;
  readonly #close: boolean;
  readonly #stop = new AbortController();

  constructor(ch: Channel, options?: WritableOptions) {
    const o = checkOptions<WritableOptions>('options', options, ['close', 'signal', 'highWaterMark']);
    if (!ch.kind.endsWith('.Variable')) throw new InvalidArgumentError(`a writable stream needs a Variable channel (its messages keep their length), got a ${ch.kind} channel`);
    const close = checkBoolean('options.close', o.close);
    super({ highWaterMark: o.highWaterMark, signal: o.signal, decodeStrings: true });
    this.#ch = ch;
    this.#close = close;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#sendAll(chunk).then(
      () => callback(),
      (err: Error) => callback(this.destroyed ? null : err),
    );
  }

  /** Sends `chunk` as one message, or as consecutive messages of at most the largest message (capacity or maxMessage). */
  async #sendAll(chunk: Buffer): Promise<void> {
    const max = this.#ch.maxMessage;
    const signal = this.#stop.signal;
    for (let at = 0; at < chunk.length; at += max) {
      const piece = chunk.length <= max ? chunk : chunk.subarray(at, at + max);
      // trySend first: no promise and no timer when there is room now
      if (!this.#ch.trySend(piece)) await this.#ch.send(piece, { signal });
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      if (this.#close) this.#ch.close();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stop.abort(error ?? undefined);
    try {
      if (this.#close) this.#ch.close();
    } catch {
      // the handle was released: nothing more to close from here
    }
    callback(error);
  }
}

/** Messages a readable pushes in a row before it lets the event loop run. */
const YIELD_EVERY = 64;

/** A `stream.Readable` that pushes each message received from a channel. */
export class ChannelReadable extends Readable {
  readonly #ch: Channel;
  readonly #close: boolean;
  readonly #stop = new AbortController();
  #pumping = false;
  #ended = false;

  constructor(ch: Channel, options?: ReadableOptions) {
    const o = checkOptions<ReadableOptions>('options', options, ['close', 'signal', 'highWaterMark', 'encoding']);
    const close = checkBoolean('options.close', o.close);
    super({ highWaterMark: o.highWaterMark, signal: o.signal, encoding: o.encoding });
    this.#ch = ch;
    this.#close = close;
  }

  override _read(): void {
    if (!this.#pumping) void this.#pump();
  }

  /** Receives and pushes until the stream's buffer is full (push() returns false), the channel ends, or the stream is destroyed. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      for (let n = 1; ; n++) {
        // A sender that keeps the channel full and a consumer that takes every chunk at
        // once would keep this loop going without a turn of the event loop (tryRecv and
        // an already-settled recv never yield to it): give it a turn now and then.
        if (n % YIELD_EVERY === 0) {
          await yieldToLoop();
          if (this.destroyed) return;
        }
        let msg: Buffer | undefined;
        try {
          // tryRecv first: no promise when a message is ready now
          msg = this.#ch.tryRecv() ?? (await this.#ch.recv({ signal: this.#stop.signal }));
        } catch (err) {
          if (this.destroyed) return;
          if (err instanceof ChannelClosedError) {
            this.#ended = true;
            this.push(null);
          } else {
            this.destroy(err as Error);
          }
          return;
        }
        if (this.destroyed) return;
        if (msg.length === 0) continue;
        if (!this.push(msg)) return;
      }
    } finally {
      this.#pumping = false;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#stop.abort(error ?? undefined);
    try {
      if (this.#close && !this.#ended) this.#ch.close();
    } catch {
      // the handle was released: nothing more to close from here
    }
    callback(error);
  }
}

/** @internal `ch.writable(options)`. */
export function writableOf(ch: Channel, options?: WritableOptions): ChannelWritable {
  return new ChannelWritable(ch, options);
}

/** @internal `ch.readable(options)`. */
export function readableOf(ch: Channel, options?: ReadableOptions): ChannelReadable {
  return new ChannelReadable(ch, options);
}

function checkBoolean(what: string, value: unknown): boolean {
  if (value === undefined) return true;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${what} must be a boolean, got ${describe(value)}`);
  return value;
}
