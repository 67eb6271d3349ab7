/**
 * Objects over a channel: a {@link CodecChannel} wraps one channel handle with a codec
 * (`'json'`, `'v8'` or a user's `{ encode, decode }`), so `send` takes a value and `recv`
 * returns one. The codec belongs to the handle, not to the channel: the bytes in shared
 * memory are the encoded message, and every process must use the same codec.
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import { DecodeError, EncodeError, InvalidArgumentError } from '../errors.js';
import { checkOptions, describe } from '../validate.js';
import { Channel, type ChannelStats, type SendOptions } from './channel.js';

/** A codec of one's own: `encode` turns a value into bytes (or a string, sent as UTF-8), `decode` turns a message back. */
export interface Codec<T = unknown> {
  /** Encodes a value. Throw (any error) to refuse it: the send throws {@link EncodeError} and sends nothing. */
  encode(value: T): Uint8Array | string;
  /** Decodes a received message (a fresh Buffer the codec may keep). Throw to reject it: the receive throws {@link DecodeError}. */
  decode(bytes: Buffer): T;
}

/** The built-in codecs: `'json'` (`JSON.stringify` / `JSON.parse`) and `'v8'` (`v8.serialize` / `v8.deserialize`, the structured clone). */
export type CodecName = 'json' | 'v8';

const SEND_KEYS = ['timeout', 'signal'] as const;

/** The built-in codecs. */
const JSON_CODEC: Codec = {
  encode(value) {
    const text = JSON.stringify(value);
    // JSON.stringify returns undefined for undefined, functions and symbols at the top level
    if (text === undefined) throw new TypeError(`JSON has no representation of ${describe(value)}`);
    return text;
  },
  decode(bytes) {
    return JSON.parse(bytes.toString('utf8'));
  },
};

const V8_CODEC: Codec = {
  encode: (value) => serialize(value),
  decode: (bytes) => deserialize(bytes),
};

/**
 * A typed view of a channel that sends and receives values through a codec:
 *
 * ```js
 * const jobs = new CodecChannel(ch, 'v8');
 * await jobs.send({ id: 1, at: new Date(), tags: new Set(['a']) });
 * const job = await jobs.recv(); // a Date and a Set again
 * ```
 *
 * The channel must be a Variable kind (a message's length is part of what is encoded).
 * Each value is encoded before anything is claimed in the channel: a value the codec
 * refuses throws {@link EncodeError}, one whose encoding exceeds the channel's largest
 * message (its capacity, or the `maxMessage` of a chunked channel) {@link PayloadTooLargeError}, and in both cases nothing was sent. A message the codec
 * cannot decode throws {@link DecodeError}; it was taken from the channel all the same.
 */
export class CodecChannel<T = unknown> implements AsyncIterable<T>, Disposable {
  /** The channel handle underneath (bytes in, bytes out). */
  readonly channel: Channel;
  /** `'json'`, `'v8'` or `'custom'`. */
  readonly codecName: CodecName | 'custom';
  readonly #codec: Codec<T>;

  constructor(channel: Channel, codec: CodecName | Codec<T>) {
    if (!(channel instanceof Channel)) {
      throw new InvalidArgumentError(`a CodecChannel needs a Channel, got ${describe(channel)}`);
    }
    if (!channel.kind.endsWith('.Variable')) {
      throw new InvalidArgumentError(`a codec needs a Variable channel (its messages keep their length), got a ${channel.kind} channel`);
    }
    if (codec === 'json' || codec === 'v8') {
      this.#codec = (codec === 'json' ? JSON_CODEC : V8_CODEC) as Codec<T>;
      this.codecName = codec;
    } else if (codec !== null && typeof codec === 'object' && typeof codec.encode === 'function' && typeof codec.decode === 'function') {
      this.#codec = codec;
      this.codecName = 'custom';
    } else {
      throw new InvalidArgumentError(`codec must be 'json', 'v8' or an object with encode(value) and decode(bytes) methods, got ${describe(codec)}`);
    }
    this.channel = channel;
  }

  /** Kind of the channel underneath, such as `"Buffered.Variable"`. */
  get kind(): string {
    return this.channel.kind;
  }

  /** `true` once any process closed the channel. */
  get closed(): boolean {
    return this.channel.closed;
  }

  /** The channel's counters; see {@link Channel.stats}. */
  stats(): ChannelStats {
    return this.channel.stats();
  }

  /** Encodes `value`; throws {@link EncodeError} when the codec refuses it. */
  encode(value: T): Uint8Array | string {
    let bytes: unknown;
    try {
      bytes = this.#codec.encode(value);
    } catch (err) {
      throw new EncodeError(`cannot encode ${describe(value)} with the ${this.codecName} codec: ${(err as Error)?.message ?? String(err)}; nothing was sent`, { cause: err });
    }
    if (typeof bytes !== 'string' && !(bytes instanceof Uint8Array)) {
      throw new EncodeError(`the ${this.codecName} codec's encode() returned ${describe(bytes)}, not a Uint8Array or a string; nothing was sent`);
    }
    return bytes;
  }

  /** Decodes a received message; throws {@link DecodeError} (the message is consumed). */
  #decode(bytes: Buffer): T {
    try {
      return this.#codec.decode(bytes);
    } catch (err) {
      throw new DecodeError(
        `cannot decode a message of ${bytes.length} bytes from ${this.#where()} with the ${this.codecName} codec: ${(err as Error)?.message ?? String(err)} (the message was taken from the channel; err.bytes holds it)`,
        bytes,
        { cause: err },
      );
    }
  }

  #where(): string {
    return `the ${this.channel.kind} channel at offset ${this.channel.offset}`;
  }

  /** Encodes and sends `value`, blocking this thread while the channel is full; see {@link Channel.sendSync}. */
  sendSync(value: T, options?: SendOptions): void {
    this.channel.sendSync(this.encode(value), options);
  }

  /** Encodes and sends `value` without blocking the event loop; see {@link Channel.send}. */
  async send(value: T, options?: SendOptions): Promise<void> {
    return this.channel.send(this.encode(value), options);
  }

  /** Encodes `value` and sends it if there is room now; see {@link Channel.trySend}. */
  trySend(value: T): boolean {
    return this.channel.trySend(this.encode(value));
  }

  /** Receives and decodes a value, blocking this thread; see {@link Channel.recvSync}. */
  recvSync(options?: SendOptions): T {
    const o = checkOptions<SendOptions>('options', options, SEND_KEYS);
    return this.#decode(this.channel.recvSync(o));
  }

  /** Receives and decodes a value without blocking the event loop; see {@link Channel.recv}. */
  async recv(options?: SendOptions): Promise<T> {
    const o = checkOptions<SendOptions>('options', options, SEND_KEYS);
    return this.#decode(await this.channel.recv(o));
  }

  /**
   * Receives and decodes a value if one is ready now. Returns `undefined` when there is
   * none (with `'v8'`, a sent `undefined` looks the same: use `recv({ timeout: 0 })` to tell them apart).
   */
  tryRecv(): T | undefined {
    const msg = this.channel.tryRecv();
    return msg === undefined ? undefined : this.#decode(msg);
  }

  /** Receives values until the channel is closed and empty: `for await (const value of jobs)`. A message that cannot be decoded ends the loop with {@link DecodeError}. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const msg of this.channel) yield this.#decode(msg);
  }

  /** Closes the channel for every process; see {@link Channel.close}. */
  close(): void {
    this.channel.close();
  }

  /** Releases this process's handle of the channel; see {@link Channel.release}. */
  release(): void {
    this.channel.release();
  }

  /** Same as {@link CodecChannel.release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}
