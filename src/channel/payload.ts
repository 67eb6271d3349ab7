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
import { dataOffset, Payload, SLOT_HEADER } from './layout.js';


/** A message accepted by `send`: a string (sent as UTF-8) or any view of bytes. */
export type Message = string | ArrayBufferView;

export class Payloads {
  readonly #u8: Uint8Array;
  readonly #buf: Buffer;
  readonly #dv: DataView;
  readonly #payload: Payload;
  readonly #width: number;
  readonly #data: number;
  readonly #kind: string;
  readonly #i32: Int32Array;
  // The caller's buffers of the last small copy in and out, and a DataView over each: a
  // loop that reuses its buffers allocates nothing.
  readonly #source = new ViewCache();
  readonly #target = new ViewCache();

  constructor(buffer: ArrayBuffer, start: number, length: number, payload: Payload, width: number, kind: string) {
    this.#u8 = new Uint8Array(buffer, start, length);
    this.#buf = Buffer.from(buffer, start, length);
    this.#dv = new DataView(buffer, start, length);
    this.#i32 = new Int32Array(buffer, start, length >>> 2);
    this.#payload = payload;
    this.#width = width;
    this.#data = dataOffset(payload);
    this.#kind = kind;
  }

  /**
   * Checks a message before anything is claimed; returns its length in bytes. A
   * message that does not fit is refused here, so nothing is sent.
   */
  check(data: unknown): number {
    if (this.#payload === Payload.Empty) {
      if (data === undefined || data === '' || (ArrayBuffer.isView(data) && data.byteLength === 0)) return 0;
      throw new PayloadTooLargeError(`a ${this.#kind} channel carries no data; send() takes no message`);
    }
    let length: number;
    if (typeof data === 'string') length = data.length * 3 <= this.#width ? data.length : Buffer.byteLength(data);
    else if (ArrayBuffer.isView(data)) length = data.byteLength;
    else throw new InvalidArgumentError(`a message must be a string or an ArrayBufferView (Buffer, Uint8Array, ...), got ${describe(data)}`);
    if (length > this.#width) {
      const what = this.#payload === Payload.Fixed ? `width of ${this.#width}` : `capacity of ${this.#width}`;
      throw new PayloadTooLargeError(`a message of ${typeof data === 'string' ? Buffer.byteLength(data) : length} bytes exceeds this ${this.#kind} channel's ${what} bytes; nothing was sent`);
    }
    return length;
  }

  /** Copies a checked message into the slot at byte `at`. */
  fill(at: number, data: Message | undefined): void {
    if (this.#payload === Payload.Empty) return;
    const start = at + this.#data;
    let length: number;
    if (typeof data === 'string') {
      length = this.#buf.write(data, start, this.#width, 'utf8');
    } else {
      const src = data instanceof Uint8Array ? data : new Uint8Array(data!.buffer, data!.byteOffset, data!.byteLength);
      length = src.length;
      copyIn(this.#i32, this.#u8, start, src, this.#source); // the message's place is 4-byte aligned
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

  /** Checks a receive target before anything is claimed. */
  checkTarget(target: unknown): void {
    if (!(target instanceof Uint8Array)) throw new InvalidArgumentError(`target must be a Uint8Array or Buffer, got ${describe(target)}`);
    if (target.length < this.#width) throw new OutOfRangeError(`target holds ${target.length} bytes; this ${this.#kind} channel's messages can be ${this.#width} bytes`);
  }
}

