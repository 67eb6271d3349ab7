/**
 * The slot protocol shared by every channel kind: each step that touches shared memory,
 * written once, with its name. The sync and async drivers (waiting.ts) only decide when
 * to call these steps again; payload.ts copies bytes in and out of a claimed slot.
 *
 * A slot has two state words on the same cache line as the start of its message:
 * `seq` (the lap: 2·lap free, 2·lap + 1 published) and `owner` (phase and pid). The
 * invariant: `seq` only changes while `owner` names the party changing it (WRITING|pid
 * or READING|pid), and that party lets go of `owner` only after its last `seq` store.
 * So a party killed between any two stores leaves its pid in `owner`, and the
 * {@link SlotProtocol.repair} step decides from (`owner`'s phase, `seq`, `head`) alone
 * what it left behind. `head` and `tail` only move forward.
 *
 * Step names (see {@link CHANNEL_STEPS}) mark the gaps between two shared-memory
 * operations where a party can be stopped by the step harness (sync/steps.ts).
 * @internal
 */
import { futexWake } from '../sync/futex.js';
import { PID, processAlive } from '../sync/liveness.js';
import { stepHook } from '../sync/steps.js';
import { cycleOf, FULL, ownerWord, PID_MASK, READING, SLOT_OWNER, SLOT_SEQ, SLOTS_OFFSET, W, WRITING } from './layout.js';

/** A claim found no free slot (send) or no message (receive). */
export const CLAIM_FULL = -1;
/** The channel is closed (send), or closed and empty (receive). */
export const CLAIM_CLOSED = -2;
/** Another party is mid-way through the slot: wait for it, and check it is alive. */
export const CLAIM_BLOCKED = -3;

/** Every named step, for tests that cover them all. */
export const CHANNEL_STEPS = [
  'channel.send.cas', // a sender holds the slot's owner word, not yet verified as this lap's
  'channel.send.claimed', // claimed and verified; tail not moved yet
  'channel.send.tail', // tail moved; the message not copied in yet
  'channel.send.copied', // copied in; seq not published yet
  'channel.send.published-seq', // seq published; owner still WRITING
  'channel.send.published', // owner FULL; receivers not woken yet
  'channel.recv.cas', // a receiver holds the owner word, not yet verified
  'channel.recv.claimed', // claimed and verified; head not moved yet
  'channel.recv.head', // head moved; the message not copied out yet
  'channel.recv.copied', // copied out; the slot not freed yet
  'channel.recv.freed-seq', // seq freed for the next lap; owner still READING
  'channel.recv.freed', // owner released; senders not woken yet
  'channel.skip.seq', // a position given up (closed send, retraction): seq moved on, owner held
  'channel.retract.begin', // an Unbuffered sender decided to take its message back (deadline, close, abort)
  'channel.retract.cas', // an Unbuffered sender took its FULL slot back, not yet verified
  'channel.retract.seq', // its seq is free again for its position; tail not moved back yet
  'channel.retract.tail', // tail moved back; owner still held
  'channel.repair.cas', // a repairer holds a dead party's slot
  'channel.repair.seq', // the repairer moved seq on; owner still held
  'channel.wait.sleep', // a waiter counted itself and is about to sleep
] as const;

/** A step name. */
export type ChannelStep = (typeof CHANNEL_STEPS)[number];

const OWNER_FULL = ownerWord(FULL, 0);
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
  /** head and tail count modulo this multiple of depth (at most 2^30), so `pos % depth` never jumps when they wrap. */
  readonly cycle: number;
  /** `seq` counts modulo this (2 × laps). */
  readonly seqMod: number;
  readonly laps: number;
  /** This party's owner words. */
  readonly writing: number;
  readonly reading: number;
  readonly me: number;
  /** Set by a driver once a blocked wait has lasted the liveness bound: the next claim checks owners' liveness. */
  suspect = false;
  /** What the last failed claim waits for: word `watchWord` to differ from `watchSeen`. */
  watchWord = 0;
  watchSeen = 0;
  /** Whether `closed` changes the outcome of the last failed claim. */
  watchClosed = false;
  /** The position the last failed claim looked at (tail or head). */
  watchPos = 0;

  constructor(w: Int32Array, base: number, depth: number, stride: number) {
    this.w = w;
    this.base = base;
    this.depth = depth;
    this.stride = stride;
    this.cycle = cycleOf(depth);
    this.laps = this.cycle / depth;
    this.seqMod = 2 * this.laps;
    this.me = PID;
    this.writing = ownerWord(WRITING, PID);
    this.reading = ownerWord(READING, PID);
  }

  // ---- positions ----------------------------------------------------------------

  /** Index (in 32-bit words) of the first word of the slot of position `pos`. */
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

  /** `seq` of the slot of `pos` while it is free for `pos`; +1 once published. */
  freeSeq(pos: number): number {
    return 2 * Math.floor(pos / this.depth);
  }

  /** Signed distance between two `seq` values, in [-laps, laps). */
  seqDiff(a: number, b: number): number {
    const m = this.seqMod;
    let d = (a - b) % m;
    if (d < -this.laps) d += m;
    else if (d >= this.laps) d -= m;
    return d;
  }

  // ---- sending ------------------------------------------------------------------

  /** Claims the slot at `tail` for writing. Returns its position, or a CLAIM_* result. Never waits. */
  claimSend(): number {
    const w = this.w;
    for (let tries = 0; ; tries++) {
      if (Atomics.load(w, W.CLOSED) !== 0) return CLAIM_CLOSED;
      const pos = Atomics.load(w, W.TAIL);
      const sw = this.slotWord(pos);
      const free = this.freeSeq(pos);
      // One CAS takes the line exclusively at once; seq, on the same line, then says
      // whether it is this lap's slot (seq cannot change while we hold the owner word).
      if (Atomics.compareExchange(w, sw + SLOT_OWNER, 0, this.writing) === 0) {
        step('channel.send.cas');
        // seq == free means nobody has claimed this position yet, so tail is still pos.
        if (Atomics.load(w, sw + SLOT_SEQ) === free) return this.#sendClaimed(pos, sw, free);
        Atomics.store(w, sw + SLOT_OWNER, 0); // not this lap's slot: put it back as it was
      }
      const seq = Atomics.load(w, sw + SLOT_SEQ);
      const d = this.seqDiff(seq, free);
      if (d > 0) {
        // The slot is past this position: tail is behind. Move it on if nobody did.
        Atomics.compareExchange(w, W.TAIL, pos, this.next(pos));
        continue;
      }
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      if (owner === 0 && tries < MAX_TRIES) continue; // let go meanwhile
      if (owner === OWNER_FULL && d < 0) return this.#wait(sw + SLOT_SEQ, seq, true, pos, CLAIM_FULL);
      if (owner !== OWNER_FULL && owner !== 0 && this.#dead(owner)) {
        this.repair(sw, owner);
        continue;
      }
      if (Atomics.load(w, W.TAIL) !== pos && tries < MAX_TRIES) continue; // another sender moved on
      // Blocked: a sender verifying its claim or a receiver between its two free stores
      // (d == 0: the owner word changes next), or the previous lap still being written
      // or read (d < 0: seq changes next).
      return d === 0 ? this.#wait(sw + SLOT_OWNER, owner, false, pos, CLAIM_BLOCKED) : this.#wait(sw + SLOT_SEQ, seq, false, pos, CLAIM_BLOCKED);
    }
  }

  /** The slot at `pos` is ours: move tail on, unless the channel closed meanwhile. */
  #sendClaimed(pos: number, sw: number, free: number): number {
    const w = this.w;
    step('channel.send.claimed');
    Atomics.store(w, W.TAIL, this.next(pos));
    step('channel.send.tail');
    this.suspect = false;
    if (Atomics.load(w, W.CLOSED) !== 0) {
      // close() came between our first check and the claim: a receiver may already
      // have concluded "closed and empty". Give the position up and fail the send.
      this.skip(sw, free);
      return CLAIM_CLOSED;
    }
    return pos;
  }

  /** Publishes the message copied in at `pos`: `seq` first, then the owner word lets go. */
  publish(pos: number): void {
    const w = this.w;
    const sw = this.slotWord(pos);
    step('channel.send.copied');
    Atomics.store(w, sw + SLOT_SEQ, this.freeSeq(pos) + 1);
    step('channel.send.published-seq');
    Atomics.store(w, sw + SLOT_OWNER, OWNER_FULL);
    step('channel.send.published');
    this.#signal(W.NOT_EMPTY_SEQ, W.RECV_WAITERS);
  }

  /** Gives up the position of a slot we hold, whose `seq` is `free`: receivers skip it. */
  skip(sw: number, free: number): void {
    const w = this.w;
    Atomics.store(w, sw + SLOT_SEQ, (free + 2) % this.seqMod);
    step('channel.skip.seq');
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  // ---- receiving ----------------------------------------------------------------

  /** Claims the message at `head` for reading. Returns its position, or a CLAIM_* result. Never waits. */
  claimRecv(): number {
    const w = this.w;
    for (let tries = 0; ; tries++) {
      const pos = Atomics.load(w, W.HEAD);
      const sw = this.slotWord(pos);
      const published = this.freeSeq(pos) + 1;
      if (Atomics.compareExchange(w, sw + SLOT_OWNER, OWNER_FULL, this.reading) === OWNER_FULL) {
        step('channel.recv.cas');
        // This lap's message, untaken (nobody can take it while we hold the owner word):
        // head is still pos.
        if (Atomics.load(w, sw + SLOT_SEQ) === published) return this.#recvClaimed(pos);
        Atomics.store(w, sw + SLOT_OWNER, OWNER_FULL); // another lap's message: put it back
      }
      // `closed` is read before the slot's state below: a sender that claims after this
      // read sees the close on its second check and gives its position up, so "closed
      // and empty" never leaves a message behind.
      const closed = Atomics.load(w, W.CLOSED) !== 0;
      const seq = Atomics.load(w, sw + SLOT_SEQ);
      const d = this.seqDiff(seq, published);
      if (d > 0) {
        // The message at this position is gone (taken, skipped): move head on if nobody did.
        Atomics.compareExchange(w, W.HEAD, pos, this.next(pos));
        continue;
      }
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      // Nothing claimed for this position (the slot is free for it): empty.
      if (d < 0 && owner === 0) return this.#wait(sw + SLOT_SEQ, seq, true, pos, closed ? CLAIM_CLOSED : CLAIM_FULL);
      if ((owner === OWNER_FULL || owner === 0) && tries < MAX_TRIES) continue; // changed meanwhile
      if (owner !== OWNER_FULL && owner !== 0 && this.#dead(owner)) {
        this.repair(sw, owner);
        continue;
      }
      if (Atomics.load(w, W.HEAD) !== pos && tries < MAX_TRIES) continue; // another receiver moved on
      // Blocked: a sender writing this position, or the slot's previous lap still being
      // read (d < 0: seq changes at the publish or the free), or a receiver claiming it /
      // a sender between its two publish stores (d == 0: the owner word changes next).
      return d < 0 ? this.#wait(sw + SLOT_SEQ, seq, false, pos, CLAIM_BLOCKED) : this.#wait(sw + SLOT_OWNER, owner, false, pos, CLAIM_BLOCKED);
    }
  }

  /** The message at `pos` is ours: move head on. */
  #recvClaimed(pos: number): number {
    step('channel.recv.claimed');
    Atomics.store(this.w, W.HEAD, this.next(pos));
    step('channel.recv.head');
    this.suspect = false;
    return pos;
  }

  /** Frees the slot of the message read at `pos` for the next lap: `seq` first, then the owner word. */
  free(pos: number): void {
    const w = this.w;
    const sw = this.slotWord(pos);
    step('channel.recv.copied');
    Atomics.store(w, sw + SLOT_SEQ, (this.freeSeq(pos) + 2) % this.seqMod);
    step('channel.recv.freed-seq');
    Atomics.store(w, sw + SLOT_OWNER, 0);
    step('channel.recv.freed');
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  // ---- Unbuffered hand-over -------------------------------------------------------

  /** Unbuffered: the message published at `pos` has been taken (copied out, or lost with a dead receiver). */
  taken(pos: number): boolean {
    const w = this.w;
    const sw = this.slotWord(pos);
    const published = this.freeSeq(pos) + 1;
    if (this.seqDiff(Atomics.load(w, sw + SLOT_SEQ), published) > 0) return true;
    const owner = Atomics.load(w, sw + SLOT_OWNER);
    if (owner >>> 30 === READING && this.#dead(owner)) {
      this.repair(sw, owner);
      return this.seqDiff(Atomics.load(w, sw + SLOT_SEQ), published) > 0;
    }
    return false;
  }

  /** Unbuffered: a receiver holds the message published at `pos` (its copy is awaited, whatever the deadline). */
  held(pos: number): boolean {
    return Atomics.load(this.w, this.slotWord(pos) + SLOT_OWNER) >>> 30 === READING;
  }

  /**
   * Unbuffered: takes the message published at `pos` back if no receiver has claimed it.
   * Returns true when it did (nothing was sent). The slot's `seq` is checked after the
   * CAS: a FULL slot may by then hold the next sender's message, which is put back.
   */
  retract(pos: number): boolean {
    const w = this.w;
    const sw = this.slotWord(pos);
    const free = this.freeSeq(pos);
    step('channel.retract.begin');
    if (Atomics.compareExchange(w, sw + SLOT_OWNER, OWNER_FULL, this.writing) !== OWNER_FULL) return false;
    step('channel.retract.cas');
    if (Atomics.load(w, sw + SLOT_SEQ) !== free + 1) {
      Atomics.store(w, sw + SLOT_OWNER, OWNER_FULL); // not our message: put it back
      return false;
    }
    // Our message, untaken: undo the send. With one slot, nobody can have claimed a later
    // position (the slot was never free), so `tail` is `pos + 1` and goes back to `pos`.
    Atomics.store(w, sw + SLOT_SEQ, free);
    step('channel.retract.seq');
    Atomics.store(w, W.TAIL, pos);
    step('channel.retract.tail');
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
    return true;
  }

  // ---- dead parties -------------------------------------------------------------

  /** `true` when the party named in an owner word is provably gone (checked only once a wait on it lasted the liveness bound). */
  #dead(owner: number): boolean {
    if (!this.suspect) return false;
    const pid = owner & PID_MASK;
    return pid !== this.me && !processAlive(pid);
  }

  /**
   * Takes over the slot a dead party held and leaves it usable. The decision depends
   * only on what the slot shows, so a repairer killed half-way is repaired the same way
   * (it holds the slot in the dead party's phase):
   * - published (`seq` odd) by a dead writer, or claimed by a dead reader that had not
   *   moved `head` past it: the message is whole and was not taken: FULL again;
   * - published, and `head` moved past it by its dead reader: the message went with
   *   that reader: the slot is freed for the next lap;
   * - free (`seq` even) under a dead reader: it had freed the slot: let go;
   * - free under a dead writer: it died before publishing (a torn or never-written
   *   message): the position is skipped.
   */
  repair(sw: number, dead: number): void {
    const w = this.w;
    const phase = dead >>> 30;
    const mine = phase === READING ? this.reading : this.writing;
    if (Atomics.compareExchange(w, sw + SLOT_OWNER, dead, mine) !== dead) return; // someone else did
    step('channel.repair.cas');
    const seq = Atomics.load(w, sw + SLOT_SEQ);
    if ((seq & 1) === 1) {
      const position = (seq >>> 1) * this.depth + (((sw << 2) - SLOTS_OFFSET) / this.stride);
      const passed = this.dist(Atomics.load(w, W.HEAD), position);
      if (phase === WRITING || passed === 0 || passed > this.cycle / 2) {
        Atomics.store(w, sw + SLOT_OWNER, OWNER_FULL);
        this.#signal(W.NOT_EMPTY_SEQ, W.RECV_WAITERS);
        return;
      }
      Atomics.store(w, sw + SLOT_SEQ, (seq + 1) % this.seqMod);
    } else if (phase === WRITING) {
      Atomics.store(w, sw + SLOT_SEQ, (seq + 2) % this.seqMod);
    }
    step('channel.repair.seq');
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.#signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
  }

  // ---- waking -------------------------------------------------------------------

  /** Wakes sleepers of a sequence word, if any: no store and no system call when nobody sleeps. */
  #signal(seq: number, waiters: number): void {
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
