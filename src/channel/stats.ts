/**
 * A channel's counters for monitoring ({@link Channel.stats}), read from its control
 * words and slot states without taking anything.
 * @module
 */
import { PID_MASK, POS_MASK, READING, W, WRITING } from './layout.js';
import type { SlotProtocol } from './slot-protocol.js';

/** Counters read from a channel's header, for monitoring. */
export interface ChannelStats {
  /** Kind, such as `"Buffered.Fixed"`. */
  kind: string;
  /** Number of slots. */
  depth: number;
  /** Fixed: bytes per message; Variable: capacity; Empty: 0. */
  width: number;
  /** Positions claimed by senders so far (messages sent, plus positions given up), modulo depth × 256 × ⌊2^22 / depth⌋ (at most 2^30). */
  sent: number;
  /** Positions passed by receivers so far, modulo the same. */
  received: number;
  /** Messages in the channel now (being written, ready, or being read). */
  queued: number;
  /** `true` once closed. */
  closed: boolean;
  /** Processes sleeping in a send / a receive. */
  waiting: { senders: number; receivers: number };
  /** Slots a process is writing or reading right now, with its pid. */
  busy: { slot: number; phase: 'writing' | 'reading'; pid: number }[];
}

/** @internal The counters of the channel whose words are `w`. */
export function statsOf(w: Int32Array, p: SlotProtocol, kind: string, width: number): ChannelStats {
  const head = Atomics.load(w, W.HEAD);
  const tailWord = Atomics.load(w, W.TAIL);
  const tail = tailWord & POS_MASK;
  const busy: ChannelStats['busy'] = [];
  let reading = 0;
  for (let i = 0; i < p.depth; i++) {
    const state = Atomics.load(w, p.slotWord(i));
    const phase = state >>> 30;
    if (phase === WRITING || phase === READING) busy.push({ slot: i, phase: phase === WRITING ? 'writing' : 'reading', pid: state & PID_MASK });
    if (phase === READING) reading++;
  }
  return {
    kind,
    depth: p.depth,
    width,
    sent: tail,
    received: head,
    // head never passes tail; if the words say so (memory overwritten), nothing is queued.
    queued: Math.min(p.depth, (p.dist(tail, head) > p.cycle / 2 ? 0 : p.dist(tail, head)) + reading),
    closed: tailWord < 0,
    waiting: { senders: Atomics.load(w, W.SEND_WAITERS), receivers: Atomics.load(w, W.RECV_WAITERS) },
    busy,
  };
}
