/**
 * A minimal io_uring (Linux): one submission and one completion ring, mapped into this
 * process, with the few operations the async waits use (sync/uring-waits.ts). No
 * liburing: the structures below are the kernel's ABI (`<linux/io_uring.h>`), and every
 * access goes through typed arrays over the mapped rings.
 *
 * ## struct io_uring_params (120 bytes, filled by `io_uring_setup`)
 * | offset | field          | use here |
 * |-------:|----------------|----------|
 * | 0      | sq_entries     | submission ring size (out) |
 * | 4      | cq_entries     | completion ring size (in with `IORING_SETUP_CQSIZE`, out) |
 * | 8      | flags          | `IORING_SETUP_CQSIZE` (in) |
 * | 20     | features       | must have `IORING_FEAT_SINGLE_MMAP` (Linux 5.4+: both rings in one mapping) |
 * | 40     | sq_off         | u32 offsets in the ring mapping: head 40, tail 44, ring_mask 48, ring_entries 52, flags 56, dropped 60, array 64 |
 * | 80     | cq_off         | u32 offsets: head 80, tail 84, ring_mask 88, ring_entries 92, overflow 96, cqes 100 |
 *
 * ## struct io_uring_sqe (64 bytes, in the SQE array mapped at `IORING_OFF_SQES`)
 * | offset | field       | |
 * |-------:|-------------|---|
 * | 0      | opcode u8, flags u8 (`IOSQE_*`), ioprio u16 | |
 * | 4      | fd s32      | futex ops: the futex2 flags |
 * | 8      | off / addr2 u64 | futex wait: the expected value |
 * | 16     | addr u64    | futex wait: the word's address; write: the buffer; cancel: the user_data to cancel |
 * | 24     | len u32     | |
 * | 28     | op flags u32 | 0 |
 * | 32     | user_data u64 | returned in the completion |
 * | 48     | addr3 u64   | futex wait: the bitset mask |
 *
 * ## struct io_uring_cqe (16 bytes): user_data u64 at 0, res s32 at 8 (`-errno` on failure), flags u32 at 12.
 * @internal
 */
import * as sys from './libc.js';

/** `io_uring_setup`, `io_uring_enter`: the same numbers on x86-64 and arm64. */
const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;

const IORING_SETUP_CQSIZE = 1 << 3;
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
const IORING_OFF_SQES = 0x10000000;
const IORING_ENTER_GETEVENTS = 1 << 0;
/** sq flags bit: completions overflowed the CQ ring and wait in the kernel for room. */
const IORING_SQ_CQ_OVERFLOW = 1 << 1;
const MAP_POPULATE = 0x8000;

/** Opcodes used here. FUTEX_WAIT is Linux 6.7+; older kernels complete it with -EINVAL. */
export const OP = { WRITE: 23, ASYNC_CANCEL: 14, FUTEX_WAIT: 51 } as const;
/** `IOSQE_*` flags. */
export const SQE = {
  /** Run the next SQE after this one, whatever this one's result. */
  IO_HARDLINK: 1 << 3,
  /** Post no completion when this one succeeds. */
  CQE_SKIP_SUCCESS: 1 << 6,
} as const;

const TWO32 = 2 ** 32;

/** One io_uring instance. Not thread-safe: one per JavaScript thread. */
export class Ring {
  readonly fd: number;
  readonly #ring: Uint32Array;
  readonly #sqes: Uint32Array;
  readonly #mappings: [number, number][];
  readonly #sqHead: number;
  readonly #sqTail: number;
  readonly #sqMask: number;
  readonly #sqEntries: number;
  readonly #sqFlags: number;
  readonly #sqArray: number;
  readonly #cqHead: number;
  readonly #cqTail: number;
  readonly #cqMask: number;
  readonly #cqes: number;
  /** SQEs prepared and not yet handed to the kernel. */
  #unsubmitted = 0;

  /** SQEs prepared and not yet taken by the kernel (a submit can take fewer when it is short of memory). */
  get unsubmitted(): number {
    return this.#unsubmitted;
  }
  #closed = false;

  /**
   * Sets up a ring of `sqEntries` submissions and `cqEntries` completions. Returns the
   * errno when the kernel refuses (ENOSYS: no io_uring; EPERM: disabled by
   * `kernel.io_uring_disabled` or a seccomp filter, as Docker's default one; ENOMEM).
   */
  static open(sqEntries: number, cqEntries: number): Ring | number {
    if (sys.syscall6 === null) return sys.errnoValues.ENOSYS ?? 38;
    const params = Buffer.alloc(120);
    params.writeUInt32LE(cqEntries, 4);
    params.writeUInt32LE(IORING_SETUP_CQSIZE, 8);
    const fd = sys.syscall6(SYS_IO_URING_SETUP, sqEntries, sys.addressOf(params), 0, 0, 0, 0);
    if (fd < 0) return sys.errno();
    const u32 = (offset: number): number => params.readUInt32LE(offset);
    const sqN = u32(0);
    const cqN = u32(4);
    if ((u32(20) & IORING_FEAT_SINGLE_MMAP) === 0) {
      sys.close(fd);
      return sys.errnoValues.ENOSYS ?? 38;
    }
    const ringBytes = Math.max(u32(64) + sqN * 4, u32(100) + cqN * 16);
    const { PROT_READ, PROT_WRITE, MAP_SHARED } = sys.C;
    const ringAddress = sys.mmap(0, ringBytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (ringAddress === -1) {
      const e = sys.errno();
      sys.close(fd);
      return e;
    }
    const sqeAddress = sys.mmap(0, sqN * 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (sqeAddress === -1) {
      const e = sys.errno();
      sys.munmap(ringAddress, ringBytes);
      sys.close(fd);
      return e;
    }
    return new Ring(fd, params, [ringAddress, ringBytes], [sqeAddress, sqN * 64]);
  }

  private constructor(fd: number, params: Buffer, ring: [number, number], sqes: [number, number]) {
    this.fd = fd;
    this.#mappings = [ring, sqes];
    this.#ring = new Uint32Array(sys.view(ring[0], ring[1]));
    this.#sqes = new Uint32Array(sys.view(sqes[0], sqes[1]));
    const word = (offset: number): number => params.readUInt32LE(offset) >>> 2;
    this.#sqHead = word(40);
    this.#sqTail = word(44);
    this.#sqMask = this.#ring[word(48)]!;
    this.#sqEntries = this.#ring[word(52)]!;
    this.#sqFlags = word(56);
    this.#sqArray = word(64);
    this.#cqHead = word(80);
    this.#cqTail = word(84);
    this.#cqMask = this.#ring[word(88)]!;
    this.#cqes = word(100);
  }

  /**
   * Puts one SQE in the submission ring (handed to the kernel by {@link Ring.submit}).
   * Returns false when the ring is full. `off`, `addr`, `userData` and `addr3` are
   * unsigned integers below 2^53; `off` -1 stands for the u64 all-ones ("current file
   * position").
   */
  prep(opcode: number, flags: number, fd: number, addr: number, off: number, len: number, userData: number, addr3 = 0): boolean {
    if (this.#closed) return false;
    const r = this.#ring;
    const tail = r[this.#sqTail]!;
    if (((tail - Atomics.load(r, this.#sqHead)) >>> 0) >= this.#sqEntries) return false;
    const index = tail & this.#sqMask;
    const s = this.#sqes;
    const b = index * 16;
    s.fill(0, b, b + 16);
    s[b] = opcode | (flags << 8);
    s[b + 1] = fd >>> 0;
    if (off === -1) {
      s[b + 2] = 0xffffffff;
      s[b + 3] = 0xffffffff;
    } else {
      s[b + 2] = off >>> 0;
      s[b + 3] = Math.floor(off / TWO32);
    }
    s[b + 4] = addr >>> 0;
    s[b + 5] = Math.floor(addr / TWO32);
    s[b + 6] = len;
    s[b + 8] = userData >>> 0;
    s[b + 9] = Math.floor(userData / TWO32);
    s[b + 12] = addr3 >>> 0;
    s[b + 13] = Math.floor(addr3 / TWO32);
    r[this.#sqArray + index] = index;
    Atomics.store(r, this.#sqTail, (tail + 1) >>> 0); // release: the SQE is written
    this.#unsubmitted++;
    return true;
  }

  /**
   * Hands the prepared SQEs to the kernel, which starts them before this returns (a futex
   * wait whose word already differs completes at once). `wait`: also wait for one
   * completion. Returns 0, or the errno.
   */
  submit(wait = false): number {
    if (this.#closed) return sys.errnoValues.EBADF ?? 9;
    const n = this.#unsubmitted;
    const r = sys.syscall6!(SYS_IO_URING_ENTER, this.fd, n, wait ? 1 : 0, wait ? IORING_ENTER_GETEVENTS : 0, 0, 0);
    if (r < 0) return sys.errno();
    this.#unsubmitted -= r;
    return 0;
  }

  /**
   * Calls `done(userData, res)` for each completion and frees its entry. Completions that
   * overflowed the ring (more than it holds between two reaps) are fetched too.
   */
  reap(done: (userData: number, res: number) => void): void {
    if (this.#closed) return;
    const r = this.#ring;
    for (;;) {
      let head = r[this.#cqHead]!;
      const tail = Atomics.load(r, this.#cqTail); // acquire: the entries up to tail are written
      while (head !== tail) {
        const b = this.#cqes + (head & this.#cqMask) * 4;
        const userData = r[b]! + r[b + 1]! * TWO32;
        const res = r[b + 2]! | 0;
        head = (head + 1) >>> 0;
        Atomics.store(r, this.#cqHead, head);
        done(userData, res);
        if (this.#closed) return;
      }
      if ((Atomics.load(r, this.#sqFlags) & IORING_SQ_CQ_OVERFLOW) === 0) return;
      // The kernel keeps overflowed completions and moves them in on the next enter.
      if (sys.syscall6!(SYS_IO_URING_ENTER, this.fd, 0, 0, IORING_ENTER_GETEVENTS, 0, 0) < 0) return;
    }
  }

  /** Unmaps the rings and closes the ring (the kernel cancels what is still pending). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [address, length] of this.#mappings) sys.munmap(address, length);
    sys.close(this.fd);
  }
}
