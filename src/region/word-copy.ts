/**
 * Copies between a caller's bytes and a 4-byte aligned place in mapped memory. Small
 * copies go word by word through an Int32Array over the caller's bytes, made once and
 * kept while the caller goes on reusing them; others are one native copy. Neither
 * allocates, except a copy out of more than {@link WORDS_OUT} bytes (or into a target
 * met once), which takes a `subarray` of the mapped bytes. The loads and stores are
 * plain; callers order them with their own atomics.
 *
 * Measured here (Node 20, one process, 64 bytes): a loop of Int32Array loads and stores
 * 13 ns; one native copy (`set`) 24 ns whatever the size up to 512 bytes, and 67 ns out
 * of mapped memory, where it needs a `subarray`; the same loop through a DataView 29 ns.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';
import { byteLengthOf, byteOffsetOf, bytesOf, typedByteLengthOf } from './view-bytes.js';

/** Copies into mapped memory word by word below this many bytes (the loop matches one native copy at about 100). */
export const WORDS_IN = 100;
/** Copies out of mapped memory word by word up to this many bytes (59 ns for 256, against 70 for the native copy and its `subarray`). */
export const WORDS_OUT = 256;
/** Copies out into a target without words (met once, or not 4-byte aligned) byte by byte up to this many bytes. */
export const BYTES_OUT = 16;

/**
 * An Int32Array over a caller's bytes, made once the caller passes the same view twice in
 * a row, and kept while it goes on reusing it. A view met once gets none: making one
 * costs about 100 ns, several times the copy it would serve (a caller that sends
 * `buf.subarray(0, n)` passes a new object each time). Nor does a view that does not
 * start on a 4-byte boundary, an empty one, or a DataView.
 *
 * The cache is keyed by the view object and checks its byte length on each use, read
 * through the built-in getter (view-bytes.ts). A length-tracking view of a resizable
 * buffer changes length when the buffer is resized, a view of a transferred buffer reads
 * 0: then the words are made again. The words never reach past the view, so a view in
 * bounds has them in bounds.
 */
export class ViewCache {
  #bytes: ArrayBufferView | null = null;
  #words: Int32Array | null = null;
  #length = -1;
  #last: ArrayBufferView | null = null;

  /** The words of `bytes` (its first `length >>> 2`), or null when it was not also the previous call's view, or has no words. */
  of(bytes: ArrayBufferView): Int32Array | null {
    // #length is -1 for a DataView: only typed arrays get that far.
    if (bytes === this.#bytes && this.#length >= 0 && typedByteLengthOf(bytes) === this.#length) return this.#words;
    if (bytes !== this.#last && bytes !== this.#bytes) {
      this.#last = bytes;
      return null;
    }
    this.#bytes = bytes;
    // A transferred buffer's views have length 0 (and no Int32Array can be made over it).
    const length = byteLengthOf(bytes);
    const usable = !(bytes instanceof DataView) && length > 0 && (byteOffsetOf(bytes) & 3) === 0;
    this.#length = usable ? length : -1;
    this.#words = usable ? new Int32Array(bytesOf(bytes).buffer, byteOffsetOf(bytes), length >>> 2) : null;
    return this.#words;
  }
}

/**
 * Copies `src`, of `length` bytes (as checked by the caller in this tick, see
 * view-bytes.ts), into the memory that `i32`/`u8` view, at byte `start` (a multiple of 4).
 * Never writes more than `length` bytes: a source of another length is refused.
 */
export function copyIn(i32: Int32Array, u8: Uint8Array, start: number, src: Uint8Array, length: number, cache: ViewCache): void {
  if (length === 0) return; // also a view of a transferred buffer, which `set` refuses
  const words = length < WORDS_IN ? cache.of(src) : null;
  if (words === null) {
    // One native copy writes all of `src`, whatever `length` says.
    const actual = typedByteLengthOf(src);
    if (actual !== length) throw new InvalidArgumentError(`the message is ${actual} bytes, not the ${length} it was checked as; nothing was copied`);
    u8.set(src, start);
    return;
  }
  const n = length >>> 2;
  const w0 = start >>> 2;
  for (let i = 0; i < n; i++) i32[w0 + i] = words[i]!;
  for (let i = n << 2; i < length; i++) u8[start + i] = src[i]!;
}

/**
 * Copies `length` bytes from byte `start` (a multiple of 4) of the memory that `i32`/`u8`
 * view into `target`, whose `byteLength` the caller has checked in this tick: at least `length`.
 */
export function copyOut(i32: Int32Array, u8: Uint8Array, start: number, length: number, target: ArrayBufferView, cache: ViewCache): void {
  if (length === 0) return; // also into a view of a detached buffer
  const words = length <= WORDS_OUT ? cache.of(target) : null;
  if (words !== null) {
    const n = length >>> 2;
    const w0 = start >>> 2;
    for (let i = 0; i < n; i++) words[i] = i32[w0 + i]!;
    if ((length & 3) !== 0) {
      const dst = target instanceof Uint8Array ? target : bytesOf(target);
      for (let i = n << 2; i < length; i++) dst[i] = u8[start + i]!;
    }
    return;
  }
  const dst = target instanceof Uint8Array ? target : bytesOf(target);
  if (length <= BYTES_OUT) {
    for (let i = 0; i < length; i++) dst[i] = u8[start + i]!;
    return;
  }
  dst.set(u8.subarray(start, start + length));
}
