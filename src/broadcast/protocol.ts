/**
 * The Broadcast's ring protocol: every step that touches shared memory, written once,
 * with its name. The sync and async drivers (waiting.ts) only decide when to call these
 * steps again; broadcast.ts and subscriber.ts copy bytes in and out.
 *
 * A slot has two state words: `seq` (2·p while position p is being written, 2·p + 1 once
 * published) and `owner` (0, or the pid of the party changing `seq`). The invariant:
 * `seq` only changes while `owner` names the party changing it, and that party clears
 * `owner` only after its last `seq` store; so `seq` even implies a named owner. A party
 * killed between any two stores leaves its pid in `owner`, and {@link RingProtocol.repair}
 * decides from `seq` alone what it left behind:
 * - `seq` odd: the slot's message is whole (the party died before claiming it, or after
 *   publishing): clear `owner`;
 * - `seq` even (2·q): it died holding position q unpublished: q is given up ("abandoned":
 *   `length` = 0xFFFFFFFF, `seq` = 2·q + 1), subscribers skip it.
 *
 * Subscribers write only their own table entry (cursor, pid): a subscriber killed at any
 * step corrupts nothing; with back-pressure, a publisher that waited on a subscriber
 * for the liveness bound checks its pid and frees the entry of a dead one.
 *
 * Positions are 32-bit and wrap; the depth is a power of two, so `p & (depth − 1)` does
 * not jump at the wrap, and `seq` compares positions modulo 2^31 (by signed 32-bit
 * differences): a subscriber more than 2^30 positions behind mis-counts its lag.
 * @internal
 */
import { futexWake } from '../sync/futex.js';
import { PID, processAlive } from '../sync/liveness.js';
import { stepHook } from '../sync/steps.js';
import { ABANDONED_LENGTH, BW, ENTRY_BYTES, ENTRY_CURSOR, ENTRY_PID, PID_MASK, publishedSeq, SLOT_LENGTH, SLOT_OWNER, SLOT_SEQ, TABLE_OFFSET, WRITING_BIT } from './layout.js';

/** Every named step, in order, for tests that cover them all. */
export const BROADCAST_STEPS = [
  /** A publisher holds the slot's owner word; its lap not verified yet. */
  'broadcast.publish.cas',
  /** `seq` = 2·p stored: position p is this publisher's; `tail` not moved yet. */
  'broadcast.publish.claimed',
  /** `tail` moved past p; the message not copied in yet. */
  'broadcast.publish.tail',
  /** Length and bytes copied in; `seq` still even (unpublished). */
  'broadcast.publish.copied',
  /** `seq` = 2·p + 1: subscribers take the message; `owner` still held. */
  'broadcast.publish.published',
  /** `owner` cleared; sleeping subscribers not woken yet. */
  'broadcast.publish.released',
  /** A position given up (a dead publisher's, or a publish that met `close()`): marked abandoned and `seq` odd; `owner` still held. */
  'broadcast.skip.seq',
  /** A repairer holds the owner word of a dead publisher's slot. */
  'broadcast.repair.cas',
  /** A subscriber saw its position published; nothing copied yet. */
  'broadcast.recv.seq',
  /** A subscriber copied the message; `seq` not checked again yet. */
  'broadcast.recv.copied',
  /** A subscriber stored its cursor past the message (delivered); back-pressured publishers not woken yet. */
  'broadcast.recv.cursor',
  /** A subscriber holds a table entry; its cursor not stored yet. */
  'broadcast.subscribe.entry',
  /** A waiter counted itself and found nothing changed; about to sleep. */
  'broadcast.wait.sleep',
] as const;

/** A step name. */
export type BroadcastStep = (typeof BROADCAST_STEPS)[number];

/** Outcomes of a claim: done, or what to wait for. */
export const OK = 0;
/** Subscriber: nothing published at its cursor. Publisher (back-pressure): the slowest live subscriber is a ring behind. */
export const EMPTY = 1;
/** Another party is half-way through the slot: wait briefly, then check it is alive. */
export const BLOCKED = 2;
/** Closed (publisher), or closed and nothing left (subscriber). */
export const CLOSED = 3;
/** Subscriber: overrun; its cursor moved on to the oldest message, `missed` says by how much. */
export const LAGGED = 4;

/** A claim meeting states that keep changing gives up as blocked after this many tries. */
const MAX_TRIES = 64;

export function step(name: BroadcastStep): void {
  if (stepHook !== undefined) stepHook(name);
}

/** The protocol over one mapped Broadcast. One instance per handle. */
export class RingProtocol {
  readonly w: Int32Array;
  /** Address of the structure's first byte. */
  readonly base: number;
  readonly depth: number;
  readonly mask: number;
  readonly stride: number;
  readonly slotsOffset: number;
  readonly maxSubscribers: number;
  readonly backpressure: boolean;
  readonly writing: number;
  /** Set by a driver once a wait has lasted the liveness bound: the next claim checks liveness. */
  suspect = false;
  /** What the last failed claim waits for: word `watchWord` to differ from `watchSeen`. */
  watchWord = 0;
  watchSeen = 0;
  /** Publisher: the position of the last successful claim. */
  position = 0;
  /** Subscriber: after LAGGED, where to continue and how many positions were skipped. */
  lagTo = 0;
  missed = 0;
  /** Back-pressure: positions before this one are known to have room (see #room). */
  #roomUntil = 0;
  #roomFrom = 0;
  #roomJoins = 0;
  /**
   * Back-pressure: a subscriber wakes sleeping publishers only when its cursor crosses a
   * multiple of depth / 4 (and when it leaves): a publisher waiting for room sleeps until
   * the slowest subscriber has made room for a quarter of the ring, one wake per quarter
   * instead of one per message and subscriber.
   */
  readonly wakeMask: number;

  constructor(w: Int32Array, base: number, depth: number, stride: number, slotsOffset: number, backpressure: boolean) {
    this.w = w;
    this.base = base;
    this.depth = depth;
    this.mask = depth - 1;
    this.stride = stride;
    this.slotsOffset = slotsOffset;
    this.maxSubscribers = (slotsOffset - TABLE_OFFSET) / ENTRY_BYTES;
    this.backpressure = backpressure;
    this.writing = (WRITING_BIT | (PID & PID_MASK)) | 0;
    this.wakeMask = Math.max(1, depth >>> 2) - 1;
  }

  /** Index (in words) of the first word of the slot of position `p`. */
  slotWord(p: number): number {
    return (this.slotsOffset + (p & this.mask) * this.stride) >>> 2;
  }

  /** Byte offset of the slot of position `p`. */
  slotByte(p: number): number {
    return this.slotsOffset + (p & this.mask) * this.stride;
  }

  /** Word index of subscriber entry `i`. */
  entryWord(i: number): number {
    return (TABLE_OFFSET + i * ENTRY_BYTES) >>> 2;
  }

  // ---- publishing ---------------------------------------------------------------

  /** Claims the position at `tail` (in `position`). Returns OK, EMPTY (back-pressure), BLOCKED or CLOSED. Never waits. */
  claimPublish(): number {
    const w = this.w;
    for (let tries = 0; ; tries++) {
      if (Atomics.load(w, BW.CLOSED) !== 0) return CLOSED;
      const p = Atomics.load(w, BW.TAIL);
      if (this.backpressure && !this.#room(p)) return EMPTY;
      const sw = this.slotWord(p);
      const prev = publishedSeq(p - this.depth);
      // The owner word first: while we hold it nobody else changes `seq`, which then says
      // whether the slot is free for p (its previous lap published).
      if (Atomics.compareExchange(w, sw + SLOT_OWNER, 0, this.writing) === 0) {
        step('broadcast.publish.cas');
        if (Atomics.load(w, sw + SLOT_SEQ) === prev) {
          Atomics.store(w, sw + SLOT_SEQ, (2 * p) | 0);
          step('broadcast.publish.claimed');
          Atomics.compareExchange(w, BW.TAIL, p, (p + 1) | 0);
          step('broadcast.publish.tail');
          this.suspect = false;
          if (Atomics.load(w, BW.CLOSED) !== 0) {
            // close() came between our first look and the claim: a subscriber may already
            // have concluded "closed and nothing left". Give p up and fail.
            this.skip(sw, p);
            return CLOSED;
          }
          this.position = p;
          return OK;
        }
        Atomics.store(w, sw + SLOT_OWNER, 0); // not this lap's slot: put it back
      }
      const seq = Atomics.load(w, sw + SLOT_SEQ);
      if (((seq - prev) | 0) > 0) {
        // The slot is at p or later: tail is behind. Move it on if nobody did.
        Atomics.compareExchange(w, BW.TAIL, p, (p + 1) | 0);
        continue;
      }
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      if (owner !== 0 && this.#dead(owner)) {
        this.repair(sw, owner);
        continue;
      }
      if ((owner === 0 || Atomics.load(w, BW.TAIL) !== p) && tries < MAX_TRIES) continue; // changed meanwhile
      // Blocked: another publisher verifying its claim, or the slot's previous lap still
      // being written (a publisher that lost its CPU, or died: `suspect` checks).
      return this.#wait(sw + SLOT_SEQ, seq, BLOCKED);
    }
  }

  /** Publishes the message copied in at `position`: `seq` first, then the owner word lets go. */
  commit(p: number): void {
    const w = this.w;
    const sw = this.slotWord(p);
    step('broadcast.publish.copied');
    Atomics.store(w, sw + SLOT_SEQ, publishedSeq(p));
    step('broadcast.publish.published');
    Atomics.store(w, sw + SLOT_OWNER, 0);
    step('broadcast.publish.released');
    this.signal(BW.PUBLISHED, BW.RECV_WAITERS);
  }

  /** Gives up position `p` of a slot we hold (abandoned: subscribers skip it), moving `tail` past it if nobody did. */
  skip(sw: number, p: number): void {
    const w = this.w;
    Atomics.store(w, sw + SLOT_LENGTH, ABANDONED_LENGTH | 0);
    Atomics.store(w, sw + SLOT_SEQ, publishedSeq(p));
    step('broadcast.skip.seq');
    Atomics.add(w, BW.ABANDONED, 1);
    Atomics.compareExchange(w, BW.TAIL, p, (p + 1) | 0);
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.signal(BW.PUBLISHED, BW.RECV_WAITERS);
  }

  /**
   * `true` when every live subscriber has read past position `p − depth` (back-pressure).
   * A scan that finds room for more than p remembers how far (`#roomUntil`): cursors only
   * move forward, and a subscriber joining at the next message is past every position a
   * publisher can be about to overwrite, so positions before it need no other scan.
   */
  #room(p: number): boolean {
    const w = this.w;
    const joins = Atomics.load(w, BW.JOINS);
    if (joins === this.#roomJoins && ((p - this.#roomFrom) | 0) >= 0 && ((this.#roomUntil - p) | 0) > 0) return true;
    let behind = 0; // the most any live subscriber is behind p
    for (let i = 0; i < this.maxSubscribers; i++) {
      const e = this.entryWord(i);
      const pid = Atomics.load(w, e + ENTRY_PID);
      if (pid === 0) continue;
      const cursor = Atomics.load(w, e + ENTRY_CURSOR);
      const d = (p - cursor) | 0;
      if (d < this.depth) {
        if (d > behind) behind = d;
        continue;
      }
      if (this.#dead(pid)) {
        // A dead subscriber never holds publishers up: its entry is freed.
        if (Atomics.compareExchange(w, e + ENTRY_PID, pid, 0) === pid) this.signal(BW.PROGRESS, BW.SEND_WAITERS);
        continue;
      }
      this.#wait(e + ENTRY_CURSOR, cursor, EMPTY);
      return false;
    }
    this.#roomUntil = (p + this.depth - behind) | 0;
    this.#roomFrom = p;
    this.#roomJoins = joins;
    return true;
  }

  // ---- receiving ----------------------------------------------------------------

  /**
   * Looks at cursor `c`: OK (published: the caller copies it, then checks with
   * {@link RingProtocol.still}), LAGGED (`lagTo`, `missed`), EMPTY, BLOCKED or CLOSED.
   * Never waits, never writes (except to repair a dead publisher's slot).
   */
  claimRecv(c: number): number {
    const w = this.w;
    const want = publishedSeq(c);
    const sw = this.slotWord(c);
    for (let tries = 0; ; tries++) {
      const seq = Atomics.load(w, sw + SLOT_SEQ);
      const d = (seq - want) | 0;
      if (d === 0) {
        step('broadcast.recv.seq');
        return OK;
      }
      if (d > 0) return this.#lagged(c, d);
      // `closed` is read before `tail`: a publisher that claims after this read sees the
      // close on its second look and gives its position up.
      const closed = Atomics.load(w, BW.CLOSED) !== 0;
      const tail = Atomics.load(w, BW.TAIL);
      if (d === -1) {
        // Position c is claimed (seq = 2·c), not yet published. Its claimant moves `tail`
        // past it next; if it died first, move it ourselves.
        if (tail === c) Atomics.compareExchange(w, BW.TAIL, c, (c + 1) | 0);
      } else if (tail === c) return this.#wait(sw + SLOT_SEQ, seq, closed ? CLOSED : EMPTY);
      else if (((c - tail) | 0) > 0) {
        // Behind us, tail names a position already claimed whose claimant died before
        // moving it: move it on (as a publisher would) and look again.
        const ts = Atomics.load(w, this.slotWord(tail) + SLOT_SEQ);
        if (((ts - publishedSeq(tail - this.depth)) | 0) > 0) Atomics.compareExchange(w, BW.TAIL, tail, (tail + 1) | 0);
        if (tries < MAX_TRIES) continue;
        return this.#wait(sw + SLOT_SEQ, seq, BLOCKED);
      }
      const owner = Atomics.load(w, sw + SLOT_OWNER);
      if (owner !== 0 && this.#dead(owner)) {
        this.repair(sw, owner);
        continue;
      }
      if ((owner === 0 || Atomics.load(w, sw + SLOT_SEQ) !== seq) && tries < MAX_TRIES) continue; // changed meanwhile
      // Claimed, not yet published (or the slot's previous lap still being written).
      return this.#wait(sw + SLOT_SEQ, seq, BLOCKED);
    }
  }

  /** After a copy at cursor `c`: `true` when the slot still holds c (the copy is whole). */
  still(c: number): boolean {
    return Atomics.load(this.w, this.slotWord(c) + SLOT_SEQ) === publishedSeq(c);
  }

  /** Cursor `c` was overrun: the slot holds position c + ⌈d / 2⌉. Continue at the oldest message. */
  #lagged(c: number, d: number): number {
    const q = (c + ((d + 1) >> 1)) | 0;
    const tail = Atomics.load(this.w, BW.TAIL);
    // Positions from newest − depth on are still in the ring (q itself may be claimed
    // before `tail` moves past it).
    const newest = ((tail - q) | 0) > 0 ? tail : (q + 1) | 0;
    let to = (newest - this.depth) | 0;
    if (((to - c) | 0) <= 0) to = (c + 1) | 0;
    // A claimant that has not moved tail yet may already hold the slot of `to`.
    for (let k = 0; k < this.depth && ((Atomics.load(this.w, this.slotWord(to) + SLOT_SEQ) - publishedSeq(to)) | 0) > 0; k++) to = (to + 1) | 0;
    this.lagTo = to;
    this.missed = (to - c) >>> 0;
    return LAGGED;
  }

  // ---- dead parties -------------------------------------------------------------

  /**
   * `true` when the party named in an owner word (or a subscriber's pid) is provably gone
   * (looked at only once a wait lasted the liveness bound). A party found alive is not
   * looked at again in the same round: each look reads /proc.
   */
  #dead(owner: number): boolean {
    if (!this.suspect) return false;
    const pid = owner & PID_MASK;
    if (pid === (PID & PID_MASK) || processAlive(pid)) {
      this.suspect = false;
      return false;
    }
    return true;
  }

  /**
   * Takes over the slot a dead publisher (or repairer) held and leaves it usable. The
   * decision depends only on `seq`, so a repairer killed half-way is repaired the same way.
   */
  repair(sw: number, dead: number): void {
    const w = this.w;
    if (Atomics.compareExchange(w, sw + SLOT_OWNER, dead, this.writing) !== dead) return; // someone else did
    step('broadcast.repair.cas');
    // Between the proof of death and the CAS, the slot may have been repaired by another
    // and claimed again, the very same owner word, by a new process given the dead pid.
    // Look again: a live publisher gets its slot back (its next store overwrites it anyway).
    if (processAlive(dead & PID_MASK)) {
      Atomics.compareExchange(w, sw + SLOT_OWNER, this.writing, dead);
      return;
    }
    const seq = Atomics.load(w, sw + SLOT_SEQ);
    if ((seq & 1) === 0) {
      // It held position q (seq = 2·q mod 2^32) unpublished: the nearest such q to tail.
      const tail = Atomics.load(w, BW.TAIL);
      const q = (tail - (((2 * tail - seq) | 0) >> 1)) | 0;
      this.skip(sw, q);
      return;
    }
    Atomics.store(w, sw + SLOT_OWNER, 0);
    this.signal(BW.PUBLISHED, BW.RECV_WAITERS);
  }

  // ---- waking -------------------------------------------------------------------

  /** Wakes sleepers of a futex word, if any: no store and no system call when nobody sleeps. */
  signal(word: number, waiters: number): void {
    const w = this.w;
    if (Atomics.load(w, waiters) !== 0) {
      Atomics.add(w, word, 1);
      futexWake(this.base + word * 4);
    }
  }

  /** Records what a failed claim waits for, and returns its result. */
  #wait(word: number, seen: number, result: number): number {
    this.watchWord = word;
    this.watchSeen = seen;
    return result;
  }
}
