/**
 * Async waits through io_uring (Linux 6.7+): the kernel itself sleeps on each pending
 * word (`IORING_OP_FUTEX_WAIT`) and, once the word is woken, writes one byte to a pipe
 * that the event loop watches (a write hard-linked to the wait). A wake-up so costs one
 * thread wake-up, the JavaScript thread's, as a socket read does: no helper thread wakes first
 * and then messages the main thread (thread-waits.ts), which costs two more wake-ups per
 * message and, on busy CPUs, two more waits for a time slice.
 *
 *   wait:   FUTEX_WAIT(word, expected, user_data = id)  --hard link-->  WRITE(pipe, 1 byte)
 *   woken:  the word is woken (or already differed: -EAGAIN, at once) → the completion
 *           (id) is posted → the linked write makes the pipe readable → the event loop
 *           reads it → {@link UringWaits} reaps the completions and reports their ids.
 *   remove: ASYNC_CANCEL(id): the wait completes with -ECANCELED (its id is reported
 *           again and ignored).
 *
 * Nothing here reads the shared memory: the kernel compares the word (and fails the wait
 * with -EFAULT if it is not mapped any more), so a region unmapped meanwhile cannot crash
 * the process.
 * @internal
 */
import net from 'node:net';
import * as sys from '../sys/libc.js';
import { OP, Ring, SQE } from '../sys/uring.js';

/** futex2 flags of the wait: a 32-bit word, shared between processes (no FUTEX2_PRIVATE). */
const FUTEX2_SIZE_U32 = 0x02;
const FUTEX_BITSET_MATCH_ANY = 0xffffffff;
/**
 * Submissions prepared between two submits (two per wait, one per cancel; the cancels of
 * a turn go in one submit while they fit: 64 SQEs fill the one page the ring keeps them
 * in), and completions the ring holds between two reaps (more wait in the kernel).
 */
const SQ_ENTRIES = 64;
const CQ_ENTRIES = 128;
/** The pipe's write end, as the ring's fixed file. */
const PIPE_FILE = 0;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

export class UringWaits {
  readonly #ring: Ring;
  readonly #socket: net.Socket;
  /** The byte the linked writes send (its memory must outlive every pending write). */
  readonly #byte: Buffer;
  readonly #byteAddress: number;
  readonly #woken: (id: number) => void;
  readonly #failed: (why: string) => void;
  #closed = false;
  /** A flush of the prepared SQEs is queued for the next microtask checkpoint. */
  #flushQueued = false;

  /**
   * Opens the ring and its pipe, and checks that the kernel runs futex waits in io_uring.
   * Returns why not when it cannot (the caller then uses a waiter thread). `woken(id)` is
   * called for every wait that ended (woken, the word differed, cancelled) and `failed()`
   * once if the ring or its pipe stops working (every pending wait must then be retried).
   */
  static open(woken: (id: number) => void, failed: (why: string) => void): UringWaits | string {
    if (sys.platform !== 'linux' || sys.pipe2 === null) return 'not Linux';
    const fds = Buffer.alloc(8);
    if (sys.pipe2(sys.addressOf(fds), O_NONBLOCK | O_CLOEXEC) !== 0) return `pipe2 failed (errno ${sys.errno()})`;
    const [readFd, writeFd] = [fds.readInt32LE(0), fds.readInt32LE(4)];
    // The write end becomes the ring's fixed file 0: the ring closes it when it ends (with
    // this thread, at the latest), and no later descriptor can take its number meanwhile.
    const ring = Ring.open(SQ_ENTRIES, CQ_ENTRIES, [writeFd]);
    sys.close(writeFd);
    const why = typeof ring === 'number' ? `io_uring_setup failed (errno ${ring})` : probe(ring);
    if (why !== null) {
      if (typeof ring !== 'number') ring.close();
      sys.close(readFd);
      return why;
    }
    return new UringWaits(ring as Ring, readFd, woken, failed);
  }

  private constructor(ring: Ring, readFd: number, woken: (id: number) => void, failed: (why: string) => void) {
    this.#ring = ring;
    this.#woken = woken;
    this.#failed = failed;
    this.#byte = Buffer.alloc(1);
    this.#byteAddress = sys.addressOf(this.#byte);
    // `onread`: each read lands in one buffer and calls back directly, without the
    // stream's 'data' machinery (a Buffer and an event per wake-up): about 1 µs less per
    // wake-up here. Only that the pipe was readable matters, not what it held.
    // (Node reads `onread` in the constructor too; its types declare it for connect() only.)
    const options: net.SocketConstructorOpts & { onread: net.OnReadOpts } = {
      fd: readFd,
      readable: true,
      writable: false,
      onread: {
        buffer: Buffer.alloc(64),
        callback: () => {
          this.#reap();
          return true;
        },
      },
    };
    const socket = (this.#socket = new net.Socket(options));
    socket.unref();
    socket.on('error', (err) => this.#fail(`its pipe failed: ${err.message}`));
    socket.on('close', () => this.#fail('its pipe closed'));
  }

  /**
   * Starts a wait for the word at `address` to be woken or to differ from `expected`.
   * False if the ring refused it (the caller retries elsewhere). The wait is submitted at
   * once, with any cancels still prepared: deferring it to the end of the turn cost a
   * pinned, loaded ping-pong a quarter of its speed (38 → 51 µs median round trip).
   */
  add(id: number, address: number, expected: number): boolean {
    if (this.#closed || !this.#makeRoom(2)) return false;
    const r = this.#ring;
    if (!r.prep(OP.FUTEX_WAIT, SQE.IO_HARDLINK, FUTEX2_SIZE_U32, address, expected >>> 0, 0, id, FUTEX_BITSET_MATCH_ANY)) return false;
    // The linked write finds room: #makeRoom made room for both.
    r.prep(OP.WRITE, SQE.FIXED_FILE | SQE.CQE_SKIP_SUCCESS, PIPE_FILE, this.#byteAddress, -1, 1, 0);
    // A word that already differed completes during the submit, and is reaped then.
    return this.#flushNow();
  }

  /**
   * Cancels a wait (its id is reported once more, and ignored). The cancels of one turn
   * (the waits that time out together on a mark, sleep-bound.ts) reach the kernel in one
   * `io_uring_enter`, at the next microtask checkpoint or with the next wait, whichever
   * comes first; a wait that is cancelled a moment later than it could be costs nothing.
   */
  remove(id: number): void {
    if (this.#closed) return;
    // If the cancel cannot be submitted, the wait stays in the kernel until its word is
    // woken, and its id is then ignored.
    if (this.#makeRoom(1) && this.#ring.prep(OP.ASYNC_CANCEL, SQE.CQE_SKIP_SUCCESS, 0, id, 0, 0, 0)) this.#queueFlush();
  }

  /** Submits what is prepared when the ring has room for fewer than `n` more SQEs. False if that failed (the ring is closed then). */
  #makeRoom(n: number): boolean {
    if (this.#ring.room >= n) return true;
    return this.#flushNow();
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(this.#flush);
  }

  readonly #flush = (): void => {
    this.#flushQueued = false;
    this.#flushNow();
  };

  /**
   * Hands every prepared SQE to the kernel and reaps what completed meanwhile (a word
   * that already differed). False if the submit failed: the ring is closed then and every
   * pending wait reported as failed, so its caller looks again and waits elsewhere.
   */
  #flushNow(): boolean {
    if (this.#closed) return false;
    if (this.#ring.unsubmitted === 0) return true;
    const e = this.#submit();
    if (e !== 0) {
      this.#fail(`io_uring_enter failed (errno ${e})`);
      return false;
    }
    this.#reap();
    return true;
  }

  /** Keeps the process alive (while waits are pending), or not. */
  ref(): void {
    if (!this.#closed) this.#socket.ref();
  }

  unref(): void {
    if (!this.#closed) this.#socket.unref();
  }

  /** Ends every wait in the kernel and releases the ring and the pipe. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#ring.close();
  }

  /** Closes, and reports that waits must go elsewhere now. */
  #fail(why: string): void {
    if (this.#closed) return;
    this.close();
    this.#failed(why);
  }

  /** Hands every prepared SQE to the kernel. Returns the errno that stopped it, or 0. */
  #submit(): number {
    let e = 0;
    for (let tries = 0; tries < 8; tries++) {
      e = this.#ring.submit();
      if (e === 0 && this.#ring.unsubmitted === 0) return 0;
      // EINTR: a signal; EAGAIN / EBUSY, or fewer taken than prepared: the kernel is short
      // of memory or completions wait to be reaped: reap, then try again.
      if (e !== 0 && e !== (sys.errnoValues.EINTR ?? 4) && e !== (sys.errnoValues.EAGAIN ?? 11) && e !== (sys.errnoValues.EBUSY ?? 16)) break;
      this.#reap();
    }
    return e === 0 ? sys.errnoValues.EAGAIN ?? 11 : e;
  }

  #reap(): void {
    if (this.#closed) return;
    this.#ring.reap((userData) => {
      if (userData !== 0) this.#woken(userData);
    });
  }
}

/** Whether this kernel runs futex waits in io_uring: a wait on a word that differs must complete with -EAGAIN (an older kernel: -EINVAL). */
function probe(ring: Ring): string | null {
  const word = Buffer.alloc(4);
  if (!ring.prep(OP.FUTEX_WAIT, 0, FUTEX2_SIZE_U32, sys.addressOf(word), 1, 0, 1, FUTEX_BITSET_MATCH_ANY)) return 'io_uring refused a submission';
  const e = ring.submit(true);
  if (e !== 0) return `io_uring_enter failed (errno ${e})`;
  let res = 0;
  ring.reap((_, r) => {
    res = r;
  });
  if (res === -(sys.errnoValues.EAGAIN ?? 11)) return null;
  if (res === -(sys.errnoValues.EINVAL ?? 22)) return 'the kernel has no futex waits in io_uring (Linux < 6.7)';
  return `a futex wait in io_uring completed with ${res}`;
}
