/**
 * The repair of a slot that a dead party held, in whatever phase it died: one rule for
 * every phase, written once. Claims, an Unbuffered sender waiting for its message to be
 * taken, and try-calls probing the slots at `head` and `tail` call it
 * ({@link SlotProtocol.repair}) once they have proved the party gone.
 *
 * The decision depends only on the slot's phase and lap tag and on `tail` or `head`, so
 * a repairer killed half-way is repaired the same way (it holds the slot in the dead
 * party's phase and tag, and neither `tail` nor `head` moves past the slot meanwhile):
 * - WRITING, and `tail` not past its position: it died before its claim was proved:
 *   FREE again for the same position (as if it never claimed);
 * - WRITING, `tail` moved past it: a torn or never-written message: the position is
 *   skipped (FREE for the next lap);
 * - READING, `head` not past its position: it died before its claim was proved: FULL
 *   again, for the next receiver;
 * - READING, `head` moved past it: the message went with that reader: FREE for the
 *   next lap (a chunked channel first records what that loses: `onReadLost`).
 * @internal
 */
import { processAlive } from '../sync/liveness.js';
import { stepHook } from '../sync/steps.js';
import { FREE, FULL, PID_MASK, POS_MASK, SLOTS_OFFSET, slotState, TAG_MASK, TAG_SHIFT, tagDiff, W, WRITING } from './layout.js';
import type { SlotProtocol } from './slot-protocol.js';

/** Takes over the slot of state word `sw`, which the party of state `dead` held and is proved gone, and leaves it usable. */
export function repairSlot(p: SlotProtocol, sw: number, dead: number): void {
  const w = p.w;
  const mine = ((dead & ~PID_MASK) | p.me) | 0;
  if (Atomics.compareExchange(w, sw, dead, mine) !== dead) return; // someone else did
  if (stepHook !== undefined) stepHook('channel.repair.cas');
  // Between the proof of death and this CAS, the slot may have been repaired by another
  // and claimed again, the very same word, by a new process given the dead pid. Look
  // again: a live holder gets its slot back (its next store overwrites it anyway).
  if (processAlive(dead & PID_MASK)) {
    Atomics.compareExchange(w, sw, mine, dead);
    return;
  }
  const tag = (dead >>> TAG_SHIFT) & TAG_MASK;
  const slot = ((sw << 2) - SLOTS_OFFSET) / p.stride;
  const writer = dead >>> 30 === WRITING;
  const at = Atomics.load(w, writer ? W.TAIL : W.HEAD) & POS_MASK;
  // The position it claimed: the one of this slot and tag nearest to tail (head). Its
  // claim was proved only if tail (head) moved past it; at it, or behind it (a claim
  // that read a position 256 laps old), the slot goes back to what the claim found.
  const base = at - (at % p.depth) + slot;
  const pos = (base + tagDiff(tag, p.tagOf(base)) * p.depth + p.cycle) % p.cycle;
  const passed = p.dist(at, pos);
  const unproved = passed === 0 || passed > p.cycle / 2;
  if (unproved && !writer) {
    Atomics.store(w, sw, slotState(FULL, tag, 0));
    p.signal(W.NOT_EMPTY_SEQ, W.RECV_WAITERS);
    return;
  }
  if (!writer && p.onReadLost !== undefined) p.onReadLost(SLOTS_OFFSET + slot * p.stride);
  Atomics.store(w, sw, slotState(FREE, unproved ? tag : tag + 1, 0));
  p.signal(W.NOT_FULL_SEQ, W.SEND_WAITERS);
}
