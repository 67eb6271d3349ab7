/**
 * Copying messages into and out of a claimed slot, and checking them before anything
 * is claimed. Nothing here allocates on the way in, nor on the way out into a caller's
 * buffer (`recvInto`): small messages are copied byte by byte, larger ones with one
 * native copy.
 * @internal
 */
import { InvalidArgumentError, LayoutError, OutOfRangeError, PayloadTooLargeError } from '../errors.js';
import { describe } from '../validate.js';
import { copyIn, copyOut, ViewCache } from '../region/word-copy.js';
import { CHUNK_LENGTH_MASK, CHUNK_MORE, CHUNK_PREFIX, dataOffset, Payload, SLOT_HEADER } from './layout.js';
import { byteLengthOf, bytesOf, typedByteLengthOf } from '../region/view-bytes.js';


/**
 * The error of a receive whose target became shorter than the message while it waited
 * (its buffer resized, transferred or detached); `outcome` says what became of the message.
 * @internal
 */
export function targetChanged(target: Uint8Array, length: number, outcome: string): InvalidArgumentError {
  return new InvalidArgumentError(`the target changed to ${byteLengthOf(target)} bytes (its buffer was resized, transferred or detached) while the receive of a ${length}-byte message waited; ${outcome}`);
}

/** A message accepted by `send`: a string (sent as UTF-8) or any view of bytes. */
export type Message = string | ArrayBufferView;

export class Payloads {
  readonly #u8: Uint8Array;
  readonly #buf: Buffer;
  readonly #dv: DataView;
  readonly #payload: Payload;
  readonly #width: number;
  /** The largest message: the width, or a chunked channel's maxMessage. */
  readonly #limit: number;
  readonly #data: number;
  readonly #kind: string;
  readonly #i32: Int32Array;
  // The caller's buffers of the last small copy in and out, and a DataView over each: a
  // loop that reuses its buffers allocates nothing.
  readonly #source = new ViewCache();
  readonly #target = new ViewCache();

  constructor(buffer: ArrayBuffer, start: number, length: number, payload: Payload, width: number, kind: string, limit = width) {
    this.#u8 = new Uint8Array(buffer, start, length);
    this.#buf = Buffer.from(buffer, start, length);
    this.#dv = new DataView(buffer, start, length);
    this.#i32 = new Int32Array(buffer, start, length >>> 2);
    this.#payload = payload;
    this.#width = width;
    this.#limit = limit;
    this.#data = dataOffset(payload);
    this.#kind = kind;
  }

  /**
   * Checks a message before anything is claimed; returns its length in bytes. A
   * message that does not fit is refused here, so nothing is sent.
   */
  check(data: unknown): number {
    if (this.#payload === Payload.Empty) {
      if (data === undefined || data === '' || (ArrayBuffer.isView(data) && byteLengthOf(data) === 0)) return 0;
      throw new PayloadTooLargeError(`a ${this.#kind} channel carries no data; send() takes no message`);
    }
    let length: number;
    if (data instanceof Uint8Array) length = typedByteLengthOf(data); // the built-in getter: view-bytes.ts
    else if (typeof data === 'string') length = data.length * 3 <= this.#limit ? data.length : Buffer.byteLength(data);
    else if (ArrayBuffer.isView(data)) length = byteLengthOf(data); // the built-in getter: view-bytes.ts
    else throw new InvalidArgumentError(`a message must be a string or an ArrayBufferView (Buffer, Uint8Array, ...), got ${describe(data)}`);
    if (length > this.#limit) {
      const what = this.#payload === Payload.Fixed ? `width of ${this.#width}` : this.#limit > this.#width ? `maxMessage of ${this.#limit}` : `capacity of ${this.#width}`;
      throw new PayloadTooLargeError(`a message of ${typeof data === 'string' ? Buffer.byteLength(data) : length} bytes exceeds this ${this.#kind} channel's ${what} bytes; nothing was sent`);
    }
    return length;
  }

  /**
   * Copies a message checked as `checked` bytes into the slot at byte `at`. With
   * `recheck` (the caller's code may have run since the check: an async send), a view
   * whose length changed since (its buffer resized, transferred or detached while the
   * send waited for room) is refused: never copied past the slot. The caller then gives
   * the claimed position up.
   */
  fill(at: number, data: Message | undefined, checked: number, recheck: boolean): void {
    if (this.#payload === Payload.Empty) return;
    const start = at + this.#data;
    let length: number;
    if (typeof data === 'string') {
      length = this.#buf.write(data, start, this.#width, 'utf8');
    } else {
      if (recheck && byteLengthOf(data!) !== checked) {
        throw new InvalidArgumentError(`the message changed from ${checked} to ${byteLengthOf(data!)} bytes (its buffer was resized, transferred or detached) while the send waited; nothing was sent`);
      }
      const src = data instanceof Uint8Array ? data : bytesOf(data!, 0, checked);
      length = checked;
      copyIn(this.#i32, this.#u8, start, src, length, this.#source); // the message's place is 4-byte aligned
    }
    if (this.#payload === Payload.Variable) this.#dv.setUint32(at + SLOT_HEADER, length, true);
    else if (length < this.#width) this.#u8.fill(0, start + length, start + this.#width);
  }

  /** Length of the message in the slot at byte `at`, checked against the capacity. */
  length(at: number, slot: number): number {
    if (this.#payload !== Payload.Variable) return this.#payload === Payload.Fixed ? this.#width : 0;
    const length = this.#dv.getUint32(at + SLOT_HEADER, true);
    if (length > this.#width) {
      throw new LayoutError(`slot ${slot} of the ${this.#kind} channel holds a length of ${length}, more than its capacity ${this.#width}: the channel's memory was overwritten`);
    }
    return length;
  }

  /** Copies `length` bytes of the slot at byte `at` into `target`. */
  copyOut(at: number, length: number, target: Uint8Array): void {
    copyOut(this.#i32, this.#u8, at + this.#data, length, target, this.#target);
  }

  /** The message in the slot at byte `at` as a new Buffer, or a string in `encoding`. */
  read(at: number, length: number, encoding: BufferEncoding | undefined): Buffer | string {
    const start = at + this.#data;
    if (encoding !== undefined) return this.#buf.toString(encoding, start, start + length);
    const out = Buffer.allocUnsafe(length);
    this.copyOut(at, length, out);
    return out;
  }

  /**
   * Checks a receive target before anything is claimed. A chunked channel takes a target
   * of any length: a message longer than it is left in the channel (see chunks.ts).
   */
  checkTarget(target: unknown): void {
    if (!(target instanceof Uint8Array)) throw new InvalidArgumentError(`target must be a Uint8Array or Buffer, got ${describe(target)}`);
    if (this.#limit > this.#width) return;
    if (typedByteLengthOf(target) < this.#width) throw new OutOfRangeError(`target holds ${byteLengthOf(target)} bytes; this ${this.#kind} channel's messages can be ${this.#width} bytes`);
  }

  /**
   * Before an async receive claims a message after waiting: the target must still hold
   * what {@link Payloads.checkTarget} asked of it (its buffer may have been resized,
   * transferred or detached meanwhile). Nothing is taken when it does not.
   */
  checkTargetKept(target: Uint8Array): void {
    if (this.#limit > this.#width || typedByteLengthOf(target) >= this.#width) return;
    throw new InvalidArgumentError(
      `the target changed to ${byteLengthOf(target)} bytes (its buffer was resized, transferred or detached) while the receive waited; this ${this.#kind} channel's messages can be ${this.#width} bytes. Nothing was taken: the next message stays in the channel`,
    );
  }

  // ---- chunks (version 5) -----------------------------------------------------------

  /** The length word of the slot at byte `at`: chunk flags and length. */
  chunkWord(at: number): number {
    return this.#dv.getUint32(at + SLOT_HEADER, true);
  }

  /** Bytes of the message in a first chunk with MORE set, from its prefix. */
  chunkTotal(at: number): number {
    return this.#dv.getUint32(at + this.#data, true);
  }

  /** The serial in a first chunk's prefix. */
  chunkSerial(at: number): number {
    return this.#dv.getUint32(at + this.#data + 4, true) | 0;
  }

  /**
   * Copies `n` bytes of `src` from `from` into the slot at byte `at` as one chunk with
   * `flags`; a first chunk of several (flags MORE alone) gets its prefix first: the total
   * length and `serial`.
   */
  fillChunk(at: number, src: Uint8Array, total: number, from: number, n: number, flags: number, serial: number): void {
    let start = at + this.#data;
    let length = n;
    if (flags === CHUNK_MORE) {
      this.#dv.setUint32(start, total, true);
      this.#dv.setUint32(start + 4, serial, true);
      start += CHUNK_PREFIX;
      length += CHUNK_PREFIX;
    }
    // Not src.subarray(): that calls the constructor src's class names, which may be the caller's.
    copyIn(this.#i32, this.#u8, start, from === 0 && n === total ? src : bytesOf(src, from, n), n, this.#source);
    this.#dv.setUint32(at + SLOT_HEADER, (length | flags) >>> 0, true);
  }

  /** Copies `n` chunk bytes from `skip` bytes into the chunk's data of the slot at byte `at` into `target` at `into`. */
  copyChunk(at: number, skip: number, n: number, target: Uint8Array, into: number): void {
    const start = at + this.#data + skip;
    if (into === 0 && n === byteLengthOf(target)) copyOut(this.#i32, this.#u8, start, n, target, this.#target);
    else target.set(this.#u8.subarray(start, start + n), into);
  }

  /** The chunk length in a length word, checked against the capacity. */
  chunkLength(word: number, slot: number): number {
    const length = word & CHUNK_LENGTH_MASK;
    if (length > this.#width) {
      throw new LayoutError(`slot ${slot} of the ${this.#kind} channel holds a chunk of ${length} bytes, more than its capacity ${this.#width}: the channel's memory was overwritten`);
    }
    return length;
  }
}

