/**
 * The name directory of a Heap: fixed entries of 64 bytes (layout.ts), each naming one
 * block. Read and written with the heap's lock held; every write goes through the undo
 * log, so a process killed while naming a block leaves neither the name nor the block.
 * @internal
 */
import { InvalidArgumentError } from '../errors.js';
import { stepHook } from '../sync/steps.js';
import { describe } from '../validate.js';
import type { Allocator } from './allocator.js';
import { HW, NAME_MAX } from './layout.js';

/** Words of a name: its byte length, then 14 words of UTF-8 bytes, zero-padded. */
const KEY_WORDS = 1 + NAME_MAX / 4;

/** The directory over one heap's words. */
export class NameTable {
  readonly #a: Allocator;

  constructor(a: Allocator) {
    this.#a = a;
  }

  /** Checks `name` and returns its key (refused before any lock or write). */
  encode(name: unknown): Int32Array {
    if (typeof name !== 'string') throw new InvalidArgumentError(`a block name must be a string, got ${describe(name)}`);
    if (name.length === 0) throw new InvalidArgumentError('a block name must not be empty');
    if (name.includes('\0')) throw new InvalidArgumentError(`a block name must not contain NUL characters, got ${describe(name)}`);
    if (!(name as string & { isWellFormed(): boolean }).isWellFormed()) throw new InvalidArgumentError(`a block name must be valid Unicode (no lone surrogates), got ${describe(name)}`);
    const bytes = Buffer.from(name, 'utf8');
    if (bytes.length > NAME_MAX) throw new InvalidArgumentError(`a block name must be at most ${NAME_MAX} bytes of UTF-8, got ${bytes.length} (${describe(name)})`);
    const padded = Buffer.alloc(NAME_MAX);
    bytes.copy(padded);
    const key = new Int32Array(KEY_WORDS);
    key[0] = bytes.length;
    for (let i = 1; i < KEY_WORDS; i++) key[i] = padded.readInt32LE((i - 1) * 4);
    return key;
  }

  /** The entry holding `key`, or -1. */
  find(key: Int32Array): number {
    const w = this.#a.w;
    for (let k = 0; k < this.#a.names; k++) {
      const e = this.#a.entry(k);
      if (w[e] === 0 || w[e + 1] !== key[0]) continue;
      let i = 1;
      while (i < KEY_WORDS && w[e + 1 + i] === key[i]) i++;
      if (i === KEY_WORDS) return k;
    }
    return -1;
  }

  /** An unused entry, or -1. */
  vacant(): number {
    const w = this.#a.w;
    for (let k = 0; k < this.#a.names; k++) if (w[this.#a.entry(k)] === 0) return k;
    return -1;
  }

  /** Heap offset of the data of entry `k`'s block. */
  blockOf(k: number): number {
    return this.#a.w[this.#a.entry(k)]!;
  }

  /** Fills entry `k` (logged): name, length, then the block. */
  enter(k: number, key: Int32Array, d: number): void {
    const a = this.#a;
    const e = a.entry(k);
    for (let i = 1; i < KEY_WORDS; i++) a.set(e + 1 + i, key[i]!);
    a.set(e + 1, key[0]!);
    a.set(e, d);
    a.set(HW.NAMED, a.w[HW.NAMED]! + 1);
    if (stepHook !== undefined) stepHook('heap.named.entered');
  }

  /** Clears entry `k` (logged). */
  remove(k: number): void {
    const a = this.#a;
    const e = a.entry(k);
    a.set(e, 0);
    a.set(e + 1, 0);
    a.set(HW.NAMED, a.w[HW.NAMED]! - 1);
  }

  /** Every entry in use: name and heap offset of its data. */
  list(): { name: string; d: number }[] {
    const w = this.#a.w;
    const out: { name: string; d: number }[] = [];
    for (let k = 0; k < this.#a.names; k++) {
      const e = this.#a.entry(k);
      if (w[e] === 0) continue;
      const bytes = Buffer.alloc(NAME_MAX);
      for (let i = 0; i < NAME_MAX / 4; i++) bytes.writeInt32LE(w[e + 2 + i]!, i * 4);
      out.push({ name: bytes.toString('utf8', 0, Math.min(NAME_MAX, w[e + 1]!)), d: w[e]! });
    }
    return out;
  }
}

