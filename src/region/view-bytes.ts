/**
 * Reading a caller's view (a Buffer, any typed array, a DataView) through the built-in
 * getters of `%TypedArray%.prototype` and `DataView.prototype`, taken once when this module
 * loads, never through the view's own properties. Two reasons:
 *
 * - A view's `byteLength`, `byteOffset` or `buffer` can be the caller's code: a getter on
 *   a subclass or on the object itself. A size checked through it could say 16 bytes for
 *   a view of 68, and a copy bounded by the view itself would then write past its slot;
 *   or it could transfer the buffer between a check and a copy.
 * - In Node 20, optimized code can read the old `length` of a typed array whose buffer
 *   was transferred since (once it has seen views of resizable buffers). The built-in
 *   getters, called directly, read 0 (checked here), and cost 4–7 ns where the property
 *   reads cost 14–18.
 *
 * A view whose class was swapped (a typed array posing as a DataView, or the reverse)
 * gets a TypeError from the getter: refused, never misread.
 * @internal
 */

function getter(proto: object, name: string): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(proto, name)!.get! as (this: unknown) => unknown;
}

const TYPED = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedByteLength = getter(TYPED, 'byteLength') as (this: ArrayBufferView) => number;
const typedByteOffset = getter(TYPED, 'byteOffset') as (this: ArrayBufferView) => number;
const typedBuffer = getter(TYPED, 'buffer') as (this: ArrayBufferView) => ArrayBufferLike;
const viewByteLength = getter(DataView.prototype, 'byteLength') as (this: ArrayBufferView) => number;
const viewByteOffset = getter(DataView.prototype, 'byteOffset') as (this: ArrayBufferView) => number;
const viewBuffer = getter(DataView.prototype, 'buffer') as (this: ArrayBufferView) => ArrayBufferLike;
const U8 = Uint8Array;

/** The byte length of a view, as the engine knows it (0 once its buffer is transferred). */
export function byteLengthOf(view: ArrayBufferView): number {
  return view instanceof DataView ? viewByteLength.call(view) : typedByteLength.call(view);
}

/** {@link byteLengthOf} of a view known to be a typed array (a Uint8Array, a Buffer); a TypeError for any other. */
export function typedByteLengthOf(view: ArrayBufferView): number {
  return typedByteLength.call(view);
}

/** A view's byte offset in its buffer, as the engine knows it. */
export function byteOffsetOf(view: ArrayBufferView): number {
  return view instanceof DataView ? viewByteOffset.call(view) : typedByteOffset.call(view);
}

/**
 * A plain Uint8Array over `length` bytes of `view` from its byte `from` (by default all of
 * them): the same memory, with no getter of the caller's in the way.
 */
export function bytesOf(view: ArrayBufferView, from = 0, length = byteLengthOf(view) - from): Uint8Array {
  const dv = view instanceof DataView;
  const buffer = dv ? viewBuffer.call(view) : typedBuffer.call(view);
  const offset = dv ? viewByteOffset.call(view) : typedByteOffset.call(view);
  return new U8(buffer, offset + from, length);
}
