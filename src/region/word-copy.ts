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
 * The cache is keyed by the view object and checks its `length` on each use: reading
 * `byteLength`, `byteOffset` or `buffer` of a typed array costs 17–25 ns each in Node 20,
 * `length` 4 ns. A length-tracking view of a resizable buffer changes length when the
 * buffer is resized: then the words are made again. The words never reach past the view,
 * so a view in bounds has them in bounds. But `length` is no proof that a view's buffer
 * is still there: Node 20's optimized code can read the old `length` of a view whose
 * buffer was transferred since (`byteLength` reads 0). So the copies below take the
 * number of bytes from their callers, who read it with `byteLength` in the same tick.
 */
export class ViewCache {
  #bytes: ArrayBufferView | null = null;
  #words: Int32Array | null = null;
  #length = -1;
  #last: ArrayBufferView | null = null;

  /** The words of `bytes` (its first `length >>> 2`), or null when it was not also the previous call's view, or has no words. */
  of(bytes: ArrayBufferView): Int32Array | null {
    if (bytes === this.#bytes && (bytes as Uint8Array).length === this.#length) return this.#words;
    if (bytes !== this.#last && bytes !== this.#bytes) {
      this.#last = bytes;
      return null;
    }
    this.#bytes = bytes;
    // A detached buffer's views have length 0 (and no Int32Array can be made over it).
    const usable = !(bytes instanceof DataView) && (bytes as Uint8Array).length > 0 && (bytes.byteOffset & 3) === 0;
    this.#length = usable ? (bytes as Uint8Array).length : -1;
    this.#words = usable ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2) : null;
    return this.#words;
  }
}

/**
 * Copies `src`, of `length` bytes (its `byteLength`, read by the caller in this tick), into
 * the memory that `i32`/`u8` view, at byte `start` (a multiple of 4).
 */
export function copyIn(i32: Int32Array, u8: Uint8Array, start: number, src: Uint8Array, length: number, cache: ViewCache): void {
  if (length === 0) return; // also a view of a detached buffer, which `set` refuses
  const words = length < WORDS_IN ? cache.of(src) : null;
  if (words === null) {
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
      const dst = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
      for (let i = n << 2; i < length; i++) dst[i] = u8[start + i]!;
    }
    return;
  }
  const dst = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  if (length <= BYTES_OUT) {
    for (let i = 0; i < length; i++) dst[i] = u8[start + i]!;
    return;
  }
  dst.set(u8.subarray(start, start + length));
}
