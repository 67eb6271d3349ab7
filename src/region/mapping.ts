/**
 * One `mmap` of a shared memory object and its lifetime. Regions are leases on a
 * mapping; the mapping goes away when a region unmaps it explicitly, or when every
 * region over it has been garbage collected.
 *
 * Going away never leaves a crash behind. A koffi ArrayBuffer cannot be detached, so a
 * typed array kept by user code would fault after `munmap`. Instead of unmapping, the
 * range is replaced by private anonymous memory (`MAP_FIXED`): the shared object is no
 * longer mapped there, writes stop reaching other processes, and a stale view reads
 * zeros. The address range is released for real (`munmap`) once the ArrayBuffer itself
 * has been collected, which a FinalizationRegistry on the buffer reports.
 * @internal
 */
import { hold } from '../shared-memory/registry.js';
import * as sys from '../sys/libc.js';

interface Reservation {
  address: number;
  length: number;
}

// The placeholder memory behind a detached mapping is released once no JS object can reach it.
const placeholders = new FinalizationRegistry<Reservation>(({ address, length }) => {
  sys.munmap(address, length);
});

/** A live `mmap` of `length` bytes at `address`, covering object bytes `[objectOffset, objectOffset + length)`. */
export class Mapping {
  /** Absolute address of the first mapped byte (page-aligned). */
  readonly address: number;
  /** Mapped length in bytes. */
  readonly length: number;
  /** Offset in the object of the first mapped byte (page-aligned). */
  readonly objectOffset: number;
  /** Identity of the object ("dev:ino"). */
  readonly objectKey: string;
  /** Name of the object, for messages. */
  readonly objectName: string;
  /** `false` once detached: every access through a region or pointer checks this first. */
  mapped = true;
  /** The whole mapping as one ArrayBuffer (no copy); `null` once detached. */
  buffer: ArrayBuffer | null;
  #leases = 0;
  #forget: () => void;

  constructor(address: number, length: number, objectOffset: number, objectKey: string, objectName: string, heldEnd: number) {
    this.address = address;
    this.length = length;
    this.objectOffset = objectOffset;
    this.objectKey = objectKey;
    this.objectName = objectName;
    this.buffer = sys.view(address, length);
    this.#forget = hold(objectKey, { start: objectOffset, end: heldEnd, what: `a mapping of bytes ${objectOffset}..${heldEnd}` });
  }

  /** Adds a lease (a region was created over this mapping). */
  acquire(): void {
    this.#leases++;
  }

  /** Drops a lease; detaches the mapping when none is left. */
  release(): void {
    if (--this.#leases <= 0) this.detach();
  }

  /** Stops mapping the shared object here. Idempotent; see the module comment for why this is not a plain `munmap`. */
  detach(): void {
    if (!this.mapped) return;
    this.mapped = false;
    this.#forget();
    const buffer = this.buffer;
    this.buffer = null;
    const { PROT_READ, PROT_WRITE, MAP_FIXED, MAP_PRIVATE, MAP_ANONYMOUS, MAP_NORESERVE } = sys.C;
    const placeholder = sys.mmap(
      this.address,
      this.length,
      PROT_READ | PROT_WRITE,
      MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
      -1,
      0,
    );
    // If the placeholder could not be made, the shared mapping stays in place (a leak,
    // never a crash): unmapping under a live ArrayBuffer would turn stale views into faults.
    if (placeholder === this.address && buffer !== null) {
      placeholders.register(buffer, { address: this.address, length: this.length });
    }
  }
}
