/**
 * Copies between a caller's bytes and a 4-byte aligned place in mapped memory. Into
 * mapped memory: word by word for a short message from a buffer the caller reuses,
 * otherwise one native copy (`set`); neither allocates. Out of it: word by word into a
 * target the caller reuses, up to {@link WORDS_OUT} bytes; otherwise one native copy,
 * which needs a `subarray` of the mapped bytes (one small object). So a caller that
 * reuses its buffers allocates nothing for messages up to 256 bytes. The loads and
 * stores are plain; callers order them with their own atomics.
 * @internal
 */

/**
 * Copies into mapped memory word by word below this many bytes, when the source's view
 * is cached: 4 ns for 8 bytes where one native copy costs about 21 ns whatever the size
 * (measured here), which the loop matches at about 56 bytes.
 */
export const WORDS_IN = 56;
/**
 * Copies out of mapped memory into a target the caller reuses word by word up to this
 * many bytes (89 ns for 256 here); above it with one native copy, which allocates a
 * `subarray` of the mapped bytes.
 */
export const WORDS_OUT = 256;
/** Copies out into a target met for the first time byte by byte up to this many bytes. */
export const BYTES_OUT = 16;

/**
 * A DataView over a caller's buffer, made once the caller passes the same buffer twice
 * in a row and kept while it goes on reusing it. A buffer met once gets no view: making
 * one costs about 100 ns, several times the copy it would serve (a caller that sends
 * `buf.subarray(0, n)` passes a new object each time).
 */
export class ViewCache {
  #bytes: ArrayBufferView | null = null;
  #view: DataView<ArrayBufferLike> | null = null;
  #last: ArrayBufferView | null = null;
  /** The byte length the view was made for: a length-tracking view of a resizable buffer changes it. */
  #length = 0;

  /** The view over `bytes`, or null when `bytes` was not also the previous call's buffer. */
  of(bytes: ArrayBufferView): DataView<ArrayBufferLike> | null {
    if (bytes === this.#bytes && bytes.byteLength === this.#length) return this.#view;
    if (bytes !== this.#last && bytes !== this.#bytes) {
      this.#last = bytes;
      return null;
    }
    this.#bytes = bytes;
    this.#length = bytes.byteLength;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return this.#view;
  }
}

/** Copies `src` into the memory that `i32`/`u8` view, at byte `start` (a multiple of 4). */
export function copyIn(i32: Int32Array, u8: Uint8Array, start: number, src: Uint8Array, cache: ViewCache): void {
  const length = src.length;
  const view = length < WORDS_IN ? cache.of(src) : null;
  if (view === null) {
    u8.set(src, start);
    return;
  }
  const words = length >>> 2;
  const w0 = start >>> 2;
  for (let i = 0; i < words; i++) i32[w0 + i] = view.getInt32(i << 2, true);
  for (let i = words << 2; i < length; i++) u8[start + i] = src[i]!;
}

/** Copies `length` bytes from byte `start` (a multiple of 4) of the memory that `i32`/`u8` view into `target`. */
export function copyOut(i32: Int32Array, u8: Uint8Array, start: number, length: number, target: ArrayBufferView, cache: ViewCache): void {
  const view = length <= WORDS_OUT ? cache.of(target) : null;
  if (view !== null) {
    const words = length >>> 2;
    const w0 = start >>> 2;
    for (let i = 0; i < words; i++) view.setInt32(i << 2, i32[w0 + i]!, true);
    for (let i = words << 2; i < length; i++) view.setUint8(i, u8[start + i]!);
    return;
  }
  const dst = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
  if (length <= BYTES_OUT) {
    for (let i = 0; i < length; i++) dst[i] = u8[start + i]!;
    return;
  }
  dst.set(u8.subarray(start, start + length));
}
