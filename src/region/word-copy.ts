/**
 * Copies between a caller's bytes and a 4-byte aligned place in mapped memory, 4 bytes at
 * a time for small copies: no view object is allocated per call (a `subarray` would be),
 * and a caller that reuses its buffer allocates nothing at all. Larger copies are one
 * native copy. The loads and stores are plain; callers order them with their own atomics.
 * @internal
 */

/** Copies up to this many bytes word by word; more with one native copy. */
export const SMALL_COPY = 256;

/** A DataView over a caller's buffer, kept while the caller reuses that buffer. */
export class ViewCache {
  #bytes: ArrayBufferView | null = null;
  #view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  of(bytes: ArrayBufferView): DataView<ArrayBufferLike> {
    if (bytes !== this.#bytes) {
      this.#bytes = bytes;
      this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    return this.#view;
  }
}

/** Copies `src` into the memory that `i32`/`u8` view, at byte `start` (a multiple of 4). */
export function copyIn(i32: Int32Array, u8: Uint8Array, start: number, src: Uint8Array, cache: ViewCache): void {
  const length = src.length;
  if (length > SMALL_COPY) {
    u8.set(src, start);
    return;
  }
  const view = cache.of(src);
  const words = length >>> 2;
  const w0 = start >>> 2;
  for (let i = 0; i < words; i++) i32[w0 + i] = view.getInt32(i << 2, true);
  for (let i = words << 2; i < length; i++) u8[start + i] = src[i]!;
}

/** Copies `length` bytes from byte `start` (a multiple of 4) of the memory that `i32`/`u8` view into `target`. */
export function copyOut(i32: Int32Array, u8: Uint8Array, start: number, length: number, target: ArrayBufferView, cache: ViewCache): void {
  if (length > SMALL_COPY) {
    const dst = target instanceof Uint8Array ? target : new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
    dst.set(u8.subarray(start, start + length));
    return;
  }
  const view = cache.of(target);
  const words = length >>> 2;
  const w0 = start >>> 2;
  for (let i = 0; i < words; i++) view.setInt32(i << 2, i32[w0 + i]!, true);
  for (let i = words << 2; i < length; i++) view.setUint8(i, u8[start + i]!);
}
