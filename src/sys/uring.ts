/**
 * A minimal io_uring (Linux): one submission and one completion ring, in two pages of this
 * process's memory and registered with the calling thread, with the few operations the
 * async waits use (sync/uring-waits.ts). No liburing: the structures below are the
 * kernel's ABI (`<linux/io_uring.h>`), and every access goes through typed arrays over
 * those pages.
 *
 * ## struct io_uring_params (120 bytes, filled by `io_uring_setup`)
 * | offset | field          | use here |
 * |-------:|----------------|----------|
 * | 0      | sq_entries     | submission ring size (out) |
 * | 4      | cq_entries     | completion ring size (in with `IORING_SETUP_CQSIZE`, out) |
 * | 8      | flags          | `IORING_SETUP_CQSIZE`, `IORING_SETUP_NO_MMAP`, `IORING_SETUP_REGISTERED_FD_ONLY` (in) |
 * | 40     | sq_off         | u32 offsets in the rings' page: head 40, tail 44, ring_mask 48, ring_entries 52, flags 56, dropped 60, array 64; u64 user_addr 72 (in: the SQEs' page) |
 * | 80     | cq_off         | u32 offsets: head 80, tail 84, ring_mask 88, ring_entries 92, overflow 96, cqes 100; u64 user_addr 112 (in: the rings' page) |
 *
 * ## struct io_uring_sqe (64 bytes, in the SQEs' page)
 * | offset | field       | |
 * |-------:|-------------|---|
 * | 0      | opcode u8, flags u8 (`IOSQE_*`), ioprio u16 | |
 * | 4      | fd s32      | futex ops: the futex2 flags; write: an index among the fixed files (`IOSQE_FIXED_FILE`) |
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
const SYS_IO_URING_REGISTER = 427;

const IORING_SETUP_CQSIZE = 1 << 3;
/** The application gives the rings' memory (Linux 6.5+); each ring must then fit in one page. */
const IORING_SETUP_NO_MMAP = 1 << 14;
/** io_uring_setup registers the ring with the thread and returns its index, never a descriptor (Linux 6.5+, with NO_MMAP). */
const IORING_SETUP_REGISTERED_FD_ONLY = 1 << 15;
const IORING_ENTER_GETEVENTS = 1 << 0;
/** io_uring_enter's first argument is an index among this thread's registered rings. */
const IORING_ENTER_REGISTERED_RING = 1 << 4;
const IORING_REGISTER_FILES = 2;
const IORING_UNREGISTER_RING_FDS = 21;
/** io_uring_register's first argument is a registered ring's index (Linux 6.3+). */
const IORING_REGISTER_USE_REGISTERED_RING = 1 << 31;
const PAGE = 4096;
/** sq flags bit: completions overflowed the CQ ring and wait in the kernel for room. */
const IORING_SQ_CQ_OVERFLOW = 1 << 1;

/** Opcodes used here. FUTEX_WAIT is Linux 6.7+; older kernels complete it with -EINVAL. */
export const OP = { WRITE: 23, ASYNC_CANCEL: 14, FUTEX_WAIT: 51 } as const;
/** `IOSQE_*` flags. */
export const SQE = {
  /** `fd` is an index among the ring's fixed files. */
  FIXED_FILE: 1 << 0,
  /** Run the next SQE after this one, whatever this one's result. */
  IO_HARDLINK: 1 << 3,
  /** Post no completion when this one succeeds. */
  CQE_SKIP_SUCCESS: 1 << 6,
} as const;

const TWO32 = 2 ** 32;

/** One io_uring instance. Not thread-safe: one per JavaScript thread. */
export class Ring {
  /** The ring's index among this thread's registered rings (its descriptor is closed). */
  readonly #index: number;
  readonly #ring: Uint32Array;
  readonly #sqes: Uint32Array;
  /** The two pages the rings live in (this process's memory, pinned by the kernel). */
  readonly #memory: number;
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
  /** `io_uring_enter` calls made by this thread's rings (for tests). */
  static enters = 0;
  /** SQEs prepared and not yet handed to the kernel. */
  #unsubmitted = 0;
  #closed = false;

  /** SQEs prepared and not yet taken by the kernel (a submit can take fewer when it is short of memory). */
  get unsubmitted(): number {
    return this.#unsubmitted;
  }

  /** SQEs that {@link Ring.prep} can still put in the submission ring before a submit. */
  get room(): number {
    if (this.#closed) return 0;
    const r = this.#ring;
    return this.#sqEntries - ((r[this.#sqTail]! - Atomics.load(r, this.#sqHead)) >>> 0);
  }

  /**
   * Sets up a ring of `sqEntries` submissions and `cqEntries` completions that belongs to
   * the calling thread, with `files` registered as its fixed files 0, 1, … (the caller
   * may close its own descriptors of them afterwards). Returns the errno when the kernel
   * refuses (ENOSYS: no io_uring; EPERM: disabled by `kernel.io_uring_disabled` or a
   * seccomp filter, as Docker's default one; EINVAL: before Linux 6.5; ENOMEM).
   *
   * The rings live in two pages of this process's memory (`IORING_SETUP_NO_MMAP`), and
   * the ring is registered with the thread, without a descriptor (`IORING_SETUP_REGISTERED_FD_ONLY`):
   * when the thread ends, even without running any code (a worker ended by `terminate()`),
   * the kernel drops the ring, cancels what is pending and closes its fixed files. The
   * two pages stay mapped then (8 KiB per such thread).
   */
  static open(sqEntries: number, cqEntries: number, files: readonly number[]): Ring | number {
    if (sys.syscall6 === null) return sys.errnoValues.ENOSYS ?? 38;
    const { PROT_READ, PROT_WRITE, MAP_PRIVATE, MAP_ANONYMOUS } = sys.C;
    const memory = sys.mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory === -1 || memory === 0) return sys.errno();
    const fail = (e: number, index = -1): number => {
      if (index >= 0) unregister(index);
      sys.munmap(memory, 2 * PAGE);
      return e;
    };
    const params = Buffer.alloc(120);
    params.writeUInt32LE(cqEntries, 4);
    params.writeUInt32LE(IORING_SETUP_CQSIZE | IORING_SETUP_NO_MMAP | IORING_SETUP_REGISTERED_FD_ONLY, 8);
    params.writeBigUInt64LE(BigInt(memory + PAGE), 72); // sq_off.user_addr: the SQEs
    params.writeBigUInt64LE(BigInt(memory), 112); // cq_off.user_addr: the rings
    // With REGISTERED_FD_ONLY the kernel registers the ring with this thread and returns
    // its index: no descriptor of it exists at any moment, so a thread ended half-way
    // through this function cannot leave one behind.
    const index = sys.syscall6(SYS_IO_URING_SETUP, sqEntries, sys.addressOf(params), 0, 0, 0, 0);
    if (index < 0) return fail(sys.errno());
    const u32 = (offset: number): number => params.readUInt32LE(offset);
    if (u32(0) * 64 > PAGE || Math.max(u32(64) + u32(0) * 4, u32(100) + u32(4) * 16) > PAGE) return fail(sys.errnoValues.EINVAL ?? 22, index);
    if (files.length > 0) {
      const fds = Buffer.alloc(4 * files.length);
      files.forEach((f, i) => fds.writeInt32LE(f, 4 * i));
      if (sys.syscall6(SYS_IO_URING_REGISTER, index, IORING_REGISTER_FILES | IORING_REGISTER_USE_REGISTERED_RING, sys.addressOf(fds), files.length, 0, 0) < 0) return fail(sys.errno(), index);
    }
    return new Ring(index, params, memory);
  }

  private constructor(index: number, params: Buffer, memory: number) {
    this.#index = index;
    this.#memory = memory;
    this.#ring = new Uint32Array(sys.view(memory, PAGE));
    this.#sqes = new Uint32Array(sys.view(memory + PAGE, PAGE));
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
    s[b] = opcode | (flags << 8); // ioprio 0
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
    s[b + 7] = 0; // op flags
    s[b + 8] = userData >>> 0;
    s[b + 9] = Math.floor(userData / TWO32);
    s[b + 10] = 0; // buf_index, personality
    s[b + 11] = 0; // file_index
    s[b + 12] = addr3 >>> 0;
    s[b + 13] = Math.floor(addr3 / TWO32);
    s[b + 14] = 0;
    s[b + 15] = 0;
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
    Ring.enters++;
    const r = sys.syscall6!(SYS_IO_URING_ENTER, this.#index, n, wait ? 1 : 0, IORING_ENTER_REGISTERED_RING | (wait ? IORING_ENTER_GETEVENTS : 0), 0, 0);
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
      if (sys.syscall6!(SYS_IO_URING_ENTER, this.#index, 0, 0, IORING_ENTER_REGISTERED_RING | IORING_ENTER_GETEVENTS, 0, 0) < 0) return;
    }
  }

  /**
   * Ends the ring: unregisters it from this thread, which drops it (the kernel cancels
   * what is pending and closes its fixed files), and unmaps its pages (the kernel keeps
   * its own hold on them until it is done).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    unregister(this.#index);
    sys.munmap(this.#memory, 2 * PAGE);
  }
}

/** Unregisters the ring of `index` from this thread, which drops it. */
function unregister(index: number): void {
  // struct io_uring_rsrc_update { u32 offset; u32 resv; u64 data; }
  const update = Buffer.alloc(16);
  update.writeUInt32LE(index, 0);
  sys.syscall6!(SYS_IO_URING_REGISTER, index, IORING_UNREGISTER_RING_FDS | IORING_REGISTER_USE_REGISTERED_RING, sys.addressOf(update), 1, 0, 0);
}
