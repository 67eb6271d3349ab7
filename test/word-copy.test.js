// Copies between callers' buffers and mapped memory (src/region/word-copy.ts): every
// path (word by word through a cached view, one native copy, byte by byte) moves exactly
// the bytes asked for, whatever the source's or target's offset, type and reuse.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BYTES_OUT, copyIn, copyOut, ViewCache, WORDS_IN, WORDS_OUT } from '../dist/region/word-copy.js';

const LENGTHS = [0, 1, 3, 4, 5, BYTES_OUT - 1, BYTES_OUT, BYTES_OUT + 1, WORDS_IN - 1, WORDS_IN, 64, 127, WORDS_OUT - 1, WORDS_OUT, WORDS_OUT + 1, 1000];

function memory() {
  const buffer = new ArrayBuffer(4096);
  return { u8: new Uint8Array(buffer), i32: new Int32Array(buffer) };
}

/** Bytes `seed`, `seed + 1`, ... of `length`, at byte offset `offset` of a larger buffer. */
function pattern(length, offset, seed) {
  const b = new Uint8Array(length + offset + 8).fill(0xee);
  for (let i = 0; i < length; i++) b[offset + i] = (seed + i * 7) & 0xff;
  return b.subarray(offset, offset + length);
}

test('copyIn: fresh, reused and alternating sources at every offset land exactly, nothing past them', () => {
  for (const length of LENGTHS) {
    for (const offset of [0, 1, 2, 3]) {
      const { u8, i32 } = memory();
      const cache = new ViewCache();
      const a = pattern(length, offset, 1);
      const b = pattern(length, offset, 100);
      // a, a (cached from here), a, b, a, b (alternating: never cached), then a fresh one each time
      const sources = [a, a, a, b, a, b, pattern(length, offset, 50), pattern(length, offset, 60)];
      for (const src of sources) {
        u8.fill(0xcc);
        copyIn(i32, u8, 256, src, src.byteLength, cache);
        assert.equal([...u8.subarray(256, 256 + length)], [...src], `length ${length}, offset ${offset}`);
        assert.is(u8[255], 0xcc, 'nothing before');
        assert.is(u8[256 + length], 0xcc, 'nothing after');
      }
    }
  }
});

test('copyOut: reused, fresh and non-byte targets at every offset get exactly the bytes, nothing past them', () => {
  for (const length of LENGTHS) {
    const { u8, i32 } = memory();
    u8.set(pattern(length, 0, 9), 512);
    const want = [...u8.subarray(512, 512 + length)];
    const cache = new ViewCache();
    const reused = new Uint8Array(length + 4).fill(0xcc);
    for (let round = 0; round < 3; round++) {
      copyOut(i32, u8, 512, length, reused, cache);
      assert.equal([...reused.subarray(0, length)], want, `reused, length ${length}, round ${round}`);
      assert.equal([...reused.subarray(length)], [0xcc, 0xcc, 0xcc, 0xcc], 'nothing after');
    }
    for (const offset of [0, 1, 3]) {
      const outer = new Uint8Array(length + offset + 4).fill(0xcc);
      const fresh = outer.subarray(offset, offset + length);
      copyOut(i32, u8, 512, length, fresh, cache);
      assert.equal([...fresh], want, `fresh, length ${length}, offset ${offset}`);
      assert.equal([...outer.subarray(0, offset)], new Array(offset).fill(0xcc), 'nothing before');
      assert.equal([...outer.subarray(offset + length)], [0xcc, 0xcc, 0xcc, 0xcc], 'nothing after');
    }
    if (length % 4 === 0) {
      const words = new Int32Array(length / 4);
      for (let round = 0; round < 3; round++) {
        words.fill(-1);
        copyOut(i32, u8, 512, length, words, cache);
        assert.equal([...new Uint8Array(words.buffer)], want, `an Int32Array target, length ${length}, round ${round}`);
      }
    }
    const dv = new DataView(new ArrayBuffer(length + 4));
    for (let round = 0; round < 2; round++) {
      copyOut(i32, u8, 512, length, dv, cache);
      assert.equal([...new Uint8Array(dv.buffer, 0, length)], want, `a DataView target, length ${length}, round ${round}`);
    }
    // A target reused at an odd offset (no words) and subarrays of one buffer taking turns.
    const big = new Uint8Array(length + 8).fill(0xcc);
    for (const t of [big.subarray(1, 1 + length), big.subarray(1, 1 + length), big.subarray(4, 4 + length), big.subarray(4, 4 + length)]) {
      big.fill(0xcc);
      copyOut(i32, u8, 512, length, t, cache);
      assert.equal([...t], want, `a subarray at ${t.byteOffset}, length ${length}`);
      assert.is(big[t.byteOffset + length], 0xcc, 'nothing after');
    }
  }
});

test('a length-tracking view of a resizable buffer, reused after a resize, is copied in full', () => {
  const { u8, i32 } = memory();
  for (const [from, to] of [[8, 16], [8, 4], [16, 40]]) {
    const rab = new ArrayBuffer(from, { maxByteLength: 64 });
    const v = new Uint8Array(rab);
    const inCache = new ViewCache();
    const outCache = new ViewCache();
    for (let i = 0; i < 2; i++) { copyIn(i32, u8, 0, v, v.byteLength, inCache); copyOut(i32, u8, 0, from, v, outCache); }
    rab.resize(to);
    v.set(pattern(to, 0, 3));
    copyIn(i32, u8, 0, v, v.byteLength, inCache);
    assert.equal([...u8.subarray(0, to)], [...v], `in, ${from} -> ${to}`);
    v.fill(0);
    copyOut(i32, u8, 0, to, v, outCache);
    assert.equal([...v], [...u8.subarray(0, to)], `out, ${from} -> ${to}`);
  }
});

test('a reused view whose buffer was transferred copies nothing and throws nothing', () => {
  const { u8, i32 } = memory();
  const inCache = new ViewCache();
  const outCache = new ViewCache();
  const v = new Uint8Array(64).fill(5);
  for (let i = 0; i < 2; i++) { copyIn(i32, u8, 0, v, v.byteLength, inCache); copyOut(i32, u8, 0, 64, v, outCache); }
  structuredClone(v.buffer, { transfer: [v.buffer] });
  assert.is(v.length, 0);
  u8.fill(9);
  copyIn(i32, u8, 0, v, v.byteLength, inCache); // nothing to copy
  copyOut(i32, u8, 0, 0, v, outCache);
  assert.is(u8[0], 9, 'nothing copied in');
});

test.run();
