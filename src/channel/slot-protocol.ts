/**
 * The slot protocol shared by every channel kind: each step that touches shared memory,
 * written once, with its name. The sync and async drivers (waiting.ts) only decide when
 * to call these steps again; payload.ts copies bytes in and out of a claimed slot.
 *
 * A slot has one state word, on the same cache line as the start of its message: the
 * phase (FREE, WRITING, FULL, READING), the lap tag of the position it is for (its lap
 * modulo 256) and, while a party works on it, that party's pid. A message goes:
 *
 *   FREE|t  --sender CAS-->  WRITING|t|pid  --publish-->  FULL|t
 *           --receiver CAS-->  READING|t|pid  --free-->  FREE|t+1
 *
 * A claim is one CAS on the state word, then one CAS moving `tail` (or `head`) from the
 * position on. The second CAS is what proves the claim: it fails if the position is not
 * the current one any more (a party that slept through 256 laps finds the same tag on a
 * later lap) or, for a send, if the channel closed (close sets `tail`'s bit 31), and the
 * claim then puts the slot back as it found it. So a send costs three atomic operations
 * on two cache lines (the slot's and `tail`'s) and one load of the waiter count, and so
 * does a receive.
 *
 * The invariant that makes a dead party repairable: `head` and `tail` only move forward
 * (except a retraction, below), and only by the party holding the slot of the position
 * they leave, or (`head`) past a position whose slot shows it was given up. So a party
 * killed at any step leaves its pid in the state word, and {@link SlotProtocol.repair}
 * decides from (phase, tag, `head` or `tail`) alone what it left behind.
 *
 * Step names (see {@link CHANNEL_STEPS}) mark the gaps between two shared-memory
 * operations where a party can be stopped by the step harness (sync/steps.ts).
 * @internal
 */
import { futexWake } from '../sync/futex.js';
import { PID, processAlive } from '../sync/liveness.js';
import { stepHook } from '../sync/steps.js';
import { cycleOf, FREE, FULL, PID_MASK, POS_MASK, READING, SLOTS_OFFSET, slotState, TAG_MASK, TAG_SHIFT, tagDiff, TAIL_CLOSED, W, WRITING } from './layout.js';
import { repairSlot } from './slot-repair.js';

/** A claim found no free slot (send) or no message (receive). */
export const CLAIM_FULL = -1;
/** The channel is closed (send), or closed and empty (receive). */
export const CLAIM_CLOSED = -2;
/** Another party is mid-way through the slot: wait for it, and check it is alive. */
export const CLAIM_BLOCKED = -3;

/** Every named step, for tests that cover them all. */
export const CHANNEL_STEPS = [
  'channel.send.cas', // a sender holds the slot (WRITING); tail not moved yet, so the claim is not proved
  'channel.send.tail', // tail moved: the position is this sender's; the message not copied in yet
  'channel.send.copied', // copied in; not published yet
  'channel.send.published', // FULL; receivers not woken yet
  'channel.recv.cas', // a receiver holds the slot (READING); head not moved yet
  'channel.recv.head', // head moved: the message is this receiver's; not copied out yet
  'channel.recv.copied', // copied out; the slot not freed yet
  'channel.recv.freed', // FREE for the next lap; senders not woken yet
  'channel.retract.begin', // an Unbuffered sender decided to take its message back (deadline, close, abort)
  'channel.retract.cas', // it holds its FULL slot again (WRITING); tail not moved back yet
  'channel.retract.tail', // tail moved back; the slot not FREE again yet
  'channel.repair.cas', // a repairer holds a dead party's slot (in that party's phase)
  'channel.wait.sleep', // a waiter counted itself and is about to sleep
] as const;

/** A step name. */
export type ChannelStep = (typeof CHANNEL_STEPS)[number];

/** A claim that keeps meeting states that make no sense gives up as blocked after this many tries. */
const MAX_TRIES = 64;

function step(name: ChannelStep): void {
  if (stepHook !== undefined) stepHook(name);
}

/** The protocol over one mapped channel. One instance per handle; every field is fixed at construction. */
export class SlotProtocol {
  readonly w: Int32Array;
  readonly base: number;
  readonly depth: number;
  readonly stride: number;
  /** head and tail count modulo this multiple of 256·depth (at most 2^30), so a lap tag never jumps when they wrap. */
  readonly cycle: number;
  /** This party's pid, as written in the state words it holds. */
  readonly me: number;
  /** Set by a driver around one claim (or `taken`) once a blocked wait has lasted the liveness bound: that call checks holders' liveness. */
  suspect = false;
  /** Set by a driver once a sleep on an empty channel ran to its end (nobody signalled): the next receive claim reads tail's closed bit. */
  lookClosed = false;
  /** What the last failed claim waits for: word `watchWord` to differ from `watchSeen`. */
  watchWord = 0;
  watchSeen = 0;
  /** Whether `closed` changes the outcome of the last failed claim. */
  watchClosed = false;
  /** The value of tail (send) or head (receive) the last failed claim looked at. */
  watchPos = 0;
  /**
   * Called by {@link SlotProtocol.repair} with the byte offset of a slot whose message
   * went with a dead receiver (chunked channels record what that loses: chunk-context.ts).
   */
  onReadLost: ((slotByte: number) => void) | undefined = undefined;

  constructor(w: Int32Array, base: number, depth: number, stride: number) {
    this.w = w;
    this.base = base;
    this.depth = depth;
    this.stride = stride;
    this.cycle = cycleOf(depth);
    this.me = PID & PID_MASK;
  }

  // ---- positions ----------------------------------------------------------------

  /** Index (in 32-bit words) of the state word of the slot of position `pos`. */
  slotWord(pos: number): number {
    return (SLOTS_OFFSET + (pos % this.depth) * this.stride) >>> 2;
  }

  /** Byte offset of the slot of position `pos`. */
  slotByte(pos: number): number {
    return SLOTS_OFFSET + (pos % this.depth) * this.stride;
  }

  next(pos: number): number {
    return pos + 1 === this.cycle ? 0 : pos + 1;
  }

  /** How far position `a` is ahead of position `b` (modulo the cycle). */
  dist(a: number, b: number): number {
    const d = a - b;
    return d < 0 ? d + this.cycle : d;
  }

  /** The lap tag of position `pos`. */
  tagOf(pos: number): number {
    return ((pos / this.depth) | 0) & TAG_MASK;
  }

  /** The state of the slot of `pos` while it is free for `pos`. */
  freeWord(pos: number): number {
    return this.tagOf(pos) << TAG_SHIFT;
  }

  /** The state of the slot of `pos` once `pos`'s message is published. */
  fullWord(pos: number): number {
    return slotState(FULL, this.tagOf(pos), 0);
  }

  /** `tail` without its closed bit. */
  tail(): number {
    return Atomics.load(this.w, W.TAIL) & POS_MASK;
  }

  /** `true` once the channel is closed (tail's bit 31). */
  isClosed(): boolean {
    return Atomics.load(this.w, W.TAIL) < 0;
  }

  // ---- sending ------------------------------------------------------------------

  /** Claims the slot at `tail` for writing. Returns its position, or a CLAIM_* result. Never waits. */
  claimSend(): number {
    const w = this.w;
    for (let tries = 0; ; tries++) {
      // A plain read: the CASes below prove it (a stale tail fails the second one).
      const t = w[W.TAIL]!;
      if (t < 0) return CLAIM_CLOSED;
      const sw = this.slotWord(t);
      const tag = this.tagOf(t);
      const free = tag << TAG_SHIFT;
      const s = Atomics.compareExchange(w, sw, free, slotState(WRITING, tag, this.me));
      if (s === free) {
        step('channel.send.cas');
        if (Atomics.compareExchange(w, W.TAIL, t, this.next(t)) === t) {
          step('channel.send.tail');
          return t;
        }
        // tail moved meanwhile: closed, or this is a later lap's slot. Put it back.
        Atomics.store(w, sw, free);
        continue;
      }
      const d = tagDiff(s >>> TAG_SHIFT, tag);
      const phase = s >>> 30;
      if (d < 0 && phase === FULL) return this.#wait(sw, s, true, t, CLAIM_FULL); // last lap's message unread
      if ((phase === WRITING || phase === READING) && d <= 0) {
        // A sender claiming this position (d == 0, it moves tail next), or last lap's
        // sender or receiver still at work on the slot (d < 0).
        if (this.#dead(s)) {
          this.repair(sw, s);
          continue;
        }
        if (d < 0 || tries >= MAX_TRIES) return this.#wait(sw, s, false, t, CLAIM_BLOCKED);
        continue;
      }
      // Anything else means tail moved on since it was read: read it again.
      if (tries >= MAX_TRIES) return this.#wait(sw, s, false, t, CLAIM_BLOCKED);
    }
  }

  /** Publishes the message copied in at `pos`. */
  publish(pos: number): void {
    step('channel.send.copied');
    Atomics.store(this.w, this.slotWord(pos), this.fullWord(pos));
    step('channel.send.published');
    this.signal(W.NOT_EMPTY_SEQ, W.RECV_WAITERS);
  }

  /** Gives up the position `pos` claimed by this sender (tail moved past it): receivers skip it. */
  skip(pos: number): void {
    Atomics.store(this.w, this.slotWord(pos), slotState(FREE, this.tagOf(pos) + 1, 0));
    this.signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  // ---- receiving ----------------------------------------------------------------

  /** Claims the message at `head` for reading. Returns its position, or a CLAIM_* result. Never waits. */
  claimRecv(): number {
    const w = this.w;
    for (let tries = 0; ; tries++) {
      const h = w[W.HEAD]!; // a plain read, proved by the CASes below
      const sw = this.slotWord(h);
      const tag = this.tagOf(h);
      const full = slotState(FULL, tag, 0);
      const s = Atomics.compareExchange(w, sw, full, slotState(READING, tag, this.me));
      if (s === full) {
        step('channel.recv.cas');
        if (Atomics.compareExchange(w, W.HEAD, h, this.next(h)) === h) {
          step('channel.recv.head');
          return h;
        }
        Atomics.store(w, sw, full); // head moved meanwhile: a later lap's message. Put it back.
        continue;
      }
      const d = tagDiff(s >>> TAG_SHIFT, tag);
      const phase = s >>> 30;
      if (d > 0) {
        // The message at this position is gone (taken, or its position given up): move
        // head on if nobody did.
        Atomics.compareExchange(w, W.HEAD, h, this.next(h));
        continue;
      }
      if ((phase === WRITING && d === 0) || phase === READING) {
        // A sender writing this position, a receiver claiming it (d == 0, moves head
        // next), or last lap's receiver still copying (d < 0).
        if (this.#dead(s)) {
          this.repair(sw, s);
          continue;
        }
        if (phase === WRITING || d < 0 || tries >= MAX_TRIES) return this.#wait(sw, s, false, h, CLAIM_BLOCKED);
        continue;
      }
      if (phase === FULL && d === 0) continue; // published meanwhile
      // Nothing sent to this position yet. Closed and empty when close froze tail here:
      // a sender moves tail only by a CAS that fails once tail's closed bit is set, so
      // nothing will be published here any more. `closed` (set after the bit) says when
      // to look at tail, which the senders' line holds; so does a wait whose sleep ran
      // to its end (`lookClosed`), in case a closer died between its two stores: then
      // this receiver finishes the close.
      const closedWord = Atomics.load(w, W.CLOSED) !== 0;
      let closed = false;
      if (closedWord || this.lookClosed) {
        this.lookClosed = false;
        const t = Atomics.load(w, W.TAIL);
        closed = t < 0 && (t & POS_MASK) === h;
        if (t < 0 && !closedWord) this.close();
      }
      return this.#wait(sw, s, true, h, closed ? CLAIM_CLOSED : CLAIM_FULL);
    }
  }

  /** Frees the slot of the message read at `pos` for the next lap. */
  free(pos: number): void {
    step('channel.recv.copied');
    Atomics.store(this.w, this.slotWord(pos), slotState(FREE, this.tagOf(pos) + 1, 0));
    step('channel.recv.freed');
    this.signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  /**
   * A receiver that claimed `pos` puts the message back for the next receive (chunks.ts):
   * `head` back to `pos` first, then FULL. Only where no other receiver can move `head`
   * meanwhile (under the chunked receive lock). Killed between the two, it leaves a
   * READING slot at `head`, which repair() makes FULL again.
   */
  putBack(pos: number, between: () => void): void {
    Atomics.store(this.w, W.HEAD, pos);
    between();
    Atomics.store(this.w, this.slotWord(pos), this.fullWord(pos));
  }

  // ---- Unbuffered hand-over -------------------------------------------------------

  /**
   * Unbuffered: the message published at `pos` has been taken (copied out, or lost with a
   * dead receiver). While this sender waits, only receivers change its slot, and only
   * from FULL to READING and on; any other state means taken, however many laps went by
   * since. With one slot, `tail` stays at `pos + 1` until the slot is free again, which
   * tells this lap's FULL from one 256 laps later.
   */
  taken(pos: number): boolean {
    const w = this.w;
    const sw = this.slotWord(pos);
    const tag = this.tagOf(pos);
    let s = Atomics.load(w, sw);
    const reading = (x: number): boolean => x >>> 30 === READING && ((x >>> TAG_SHIFT) & TAG_MASK) === tag;
    if (reading(s) && this.#dead(s)) {
      this.repair(sw, s);
      s = Atomics.load(w, sw);
    }
    if (s !== this.fullWord(pos) && !reading(s)) return true;
    return (Atomics.load(w, W.TAIL) & POS_MASK) !== this.next(pos);
  }

  /** Unbuffered: a receiver holds the message published at `pos` (its copy is awaited, whatever the deadline). */
  held(pos: number): boolean {
    const s = Atomics.load(this.w, this.slotWord(pos));
    return s >>> 30 === READING && ((s >>> TAG_SHIFT) & TAG_MASK) === this.tagOf(pos);
  }

  /**
   * Unbuffered: takes the message published at `pos` back if no receiver has claimed it.
   * Returns true when it did (nothing was sent). After the CAS, `tail` proves the slot
   * still holds this sender's message (with one slot, nobody claims a later position
   * while it is FULL or held, so tail is `pos + 1` unless 256 laps went by).
   */
  retract(pos: number): boolean {
    const w = this.w;
    const sw = this.slotWord(pos);
    const full = this.fullWord(pos);
    step('channel.retract.begin');
    if (Atomics.compareExchange(w, sw, full, slotState(WRITING, this.tagOf(pos), this.me)) !== full) return false;
    step('channel.retract.cas');
    for (;;) {
      const t = Atomics.load(w, W.TAIL);
      if ((t & POS_MASK) !== this.next(pos)) {
        Atomics.store(w, sw, full); // not this sender's message: put it back
        return false;
      }
      // Keep the closed bit, which close() may set meanwhile (then try again).
      if (Atomics.compareExchange(w, W.TAIL, t, (t & TAIL_CLOSED) | pos) === t) break;
    }
    step('channel.retract.tail');
    Atomics.store(w, sw, this.freeWord(pos));
    this.signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
    return true;
  }

  // ---- closing ------------------------------------------------------------------

  /**
   * Closes the channel: tail's bit first (no send can claim a position after it), then
   * `closed`, then every sleeper wakes. Returns false when it was closed already.
   */
  close(): boolean {
    const w = this.w;
    Atomics.or(w, W.TAIL, TAIL_CLOSED);
    if (Atomics.exchange(w, W.CLOSED, 1) !== 0) return false;
    Atomics.add(w, W.NOT_EMPTY_SEQ, 1);
    Atomics.add(w, W.NOT_FULL_SEQ, 1);
    futexWake(this.base + W.NOT_EMPTY_SEQ * 4);
    futexWake(this.base + W.NOT_FULL_SEQ * 4);
    return true;
  }

  // ---- dead parties -------------------------------------------------------------

  /**
   * `true` when the party named in a state word is provably gone (looked at only once a
   * wait on it lasted the liveness bound). A party found alive is not looked at again in
   * the same call: a claim retries a few dozen times behind a claim in progress, and
   * each look reads /proc.
   */
  #dead(state: number): boolean {
    if (!this.suspect) return false;
    const pid = state & PID_MASK;
    if (pid === this.me || processAlive(pid)) {
      this.suspect = false;
      return false;
    }
    return true;
  }

  /**
   * For try-calls that judge slots without claiming them (a chunked channel's): while
   * `suspect` is set, repairs the slots at `head` and `tail` if a party that is provably
   * gone holds them. Returns {@link CLAIM_BLOCKED} when a live party holds one, else 0.
   */
  repairHolders(): number {
    const atHead = this.#repairHolder(W.HEAD);
    return this.#repairHolder(W.TAIL) || atHead;
  }

  /** {@link SlotProtocol.repairHolders} for the slot at `head` or `tail` (word `at`). */
  #repairHolder(at: number): number {
    const sw = this.slotWord(Atomics.load(this.w, at) & POS_MASK);
    const s = Atomics.load(this.w, sw);
    const phase = s >>> 30;
    if (phase !== WRITING && phase !== READING) return 0;
    if (!this.#dead(s)) return CLAIM_BLOCKED;
    this.repair(sw, s);
    return 0;
  }

  /** Takes over the slot (state word `sw`) that the dead party of state `dead` held, and leaves it usable (slot-repair.ts). */
  repair(sw: number, dead: number): void {
    repairSlot(this, sw, dead);
  }

  // ---- waking -------------------------------------------------------------------

  /** Wakes sleepers of a sequence word, if any: no store and no system call when nobody sleeps. */
  signal(seq: number, waiters: number): void {
    const w = this.w;
    if (Atomics.load(w, waiters) !== 0) {
      Atomics.add(w, seq, 1);
      futexWake(this.base + seq * 4);
    }
  }

  /** Records what a failed claim waits for, and returns its result. */
  #wait(word: number, seen: number, closedMatters: boolean, pos: number, result: number): number {
    this.watchWord = word;
    this.watchSeen = seen;
    this.watchClosed = closedMatters;
    this.watchPos = pos;
    return result;
  }
}
