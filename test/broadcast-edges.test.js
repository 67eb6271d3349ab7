// Edge cases of the Broadcast protocol (src/broadcast/): each test states one promised
// guarantee and drives real child processes (test/fixtures/broadcast-party.js, stopped at
// named steps with test/fixtures/step-gate.js) into the interleaving that used to break
// it; the comments describe how it broke, before the fix that the test pins down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Broadcast, LaggedError, Region } from '../dist/index.js';
import { GATE_BYTES, mapGates } from './fixtures/step-gate.js';
import { harness, settle, until } from './fixtures/channel-harness.js';
import { checkValue, valueOf } from './fixtures/watch-values.js';

const h = harness(test, 'bbreak');
const AT = 4096;
const DEPTH = 4;
const CAPACITY = 64;
// Shape of the Broadcast below (maxSubscribers 64): see src/broadcast/layout.ts.
const SLOTS_OFFSET = 256 + 8 * 64;
const STRIDE = Math.ceil((12 + CAPACITY) / 64) * 64;
const TAIL_WORD = 64 / 4;

const msg = (id, seq) => valueOf((id << 20) | seq);
const idOf = (n) => n >>> 20;

function setup(options = {}, gates = 1) {
  const shm = h.object(AT);
  const bc = h.keep(new Broadcast(shm, { depth: DEPTH, capacity: CAPACITY, offset: AT, ...options }));
  return { shm, bc, gates: mapGates(h, shm, gates) };
}

function party(shm, role, arg, gateIndex = 0) {
  return h.start('broadcast-party', role, { offset: AT, gateOffset: gateIndex * GATE_BYTES, ...arg }, { shm, timeoutMs: 30_000 });
}

/** The Broadcast's words, mapped a second time (to set up a state, or look at one). */
function words(shm, bc) {
  const region = Region.map(shm, AT, bc.byteLength);
  h.defer(() => region.unmap());
  return new Int32Array(region.mapping.buffer, region.start, bc.byteLength / 4);
}

/**
 * Puts a fresh (never published) Broadcast in the state it has after `start` positions
 * (mod 2^32) were published and read: tail = start, and the slot of each next position p
 * holds its previous lap p − depth, published (as the creator leaves positions 0..depth−1).
 */
function startAt(w, start) {
  for (let k = 0; k < DEPTH; k++) {
    const p = (start + k) | 0;
    const sw = (SLOTS_OFFSET + (p & (DEPTH - 1)) * STRIDE) >>> 2;
    w[sw] = (2 * (p - DEPTH) + 1) | 0; // seq of position p − depth, published
  }
  Atomics.store(w, TAIL_WORD, start | 0);
}

// Guarantee: with back-pressure, publishers wait for the slowest live subscriber, and
// 32-bit positions wrap safely. A publisher handle that has not scanned the subscriber
// table yet starts with `#roomUntil` = 0, which #room() takes as "room for every position
// up to 0": when tail is within `depth` positions before 2^32, such a publisher claims
// without looking at the table and overwrites messages a live subscriber has not read.
for (const [what, start] of [
  ['positions far from the wrap (control)', 1000],
  ['positions just before the 2^32 wrap', 2 ** 32 - 7],
]) {
  test(`back-pressure: a fresh publisher process waits for a subscriber a ring behind (${what})`, async () => {
    const { shm, bc } = setup({ backpressure: true });
    startAt(words(shm, bc), start);
    assert.is(bc.published, start >>> 0);
    // A subscriber that joins at `start` and reads nothing until told to.
    const s = party(shm, 'subscriber', { wait: true, count: DEPTH, timeout: 5000 });
    const ready = await s.message('ready');
    assert.is(ready.cursor, start >>> 0);
    // This process fills the ring: the next publish must wait for the subscriber.
    for (let i = 0; i < DEPTH; i++) bc.publishSync(msg(1, i), { timeout: 2000 });
    const mine = await settle(bc.publish(msg(1, DEPTH), { timeout: 200 }));
    assert.is(mine.error?.code, 'ERR_SHM_TIMEOUT', 'this process waits for the subscriber a ring behind');
    // A publisher in another process (a fresh handle) must wait the same way.
    const p = party(shm, 'publisher', { id: 2, from: 0, count: 1, timeout: 300 });
    const pr = await p.result();
    s.send('go');
    const sr = await s.result();
    assert.ok(sr.ok, JSON.stringify(sr));
    assert.equal(pr.error?.code, 'ERR_SHM_TIMEOUT', `the other publisher waited for the live subscriber (got ${JSON.stringify(pr)})`);
    assert.equal(sr.lags, [], 'with back-pressure the subscriber is never overrun');
    assert.equal(sr.got.map(idOf), [1, 1, 1, 1]);
  });
}

// Guarantee: a publish whose message does not fit publishes nothing (PayloadTooLargeError),
// and a message never exceeds the capacity. publish() checks the message's length, then may
// wait (back-pressure) with the event loop running, then copies the message as it is *now*:
// a length-tracking view over a resizable ArrayBuffer grown meanwhile is copied whole, past
// the slot, over the next slot's seq / owner / length words.
test('back-pressure: a message grown while its async publish waits is never copied past its slot', async () => {
  const { shm, bc } = setup({ backpressure: true });
  const w = words(shm, bc);
  const mine = bc.subscribe();
  const hold = party(shm, 'hold', {});
  await hold.message('ready');
  for (let i = 0; i < DEPTH; i++) bc.publishSync(msg(1, i));
  for (let i = 0; i < DEPTH; i++) assert.is(checkValue(mine.recvSync({ timeout: 1000 })), (1 << 20) | i);
  // The ring is full for the holder (cursor 0): this publish waits.
  const ab = new ArrayBuffer(8, { maxByteLength: 1024 });
  const view = new Uint8Array(ab);
  view.fill(1);
  const pending = settle(bc.publish(view, { timeout: 5000 }));
  ab.resize(256); // the view tracks the length: 256 bytes now
  view.fill(0xab);
  hold.send('go'); // the holder leaves: the publish goes on
  const r = await pending;
  await hold.result();
  // Slot 1 (position 5 next) must not have been touched by the message of position 4.
  const slot1 = (SLOTS_OFFSET + 1 * STRIDE) >>> 2;
  const seq1 = w[slot1];
  const owner1 = w[slot1 + 1];
  if (r.error) assert.is(r.error.code, 'ERR_SHM_PAYLOAD_TOO_LARGE', String(r.error));
  assert.is(owner1, 0, `the next slot's owner word is untouched (0x${(owner1 >>> 0).toString(16)})`);
  assert.is(seq1, 2 * 1 + 1, `the next slot's seq is untouched (0x${(seq1 >>> 0).toString(16)})`);
  const got = await settle(mine.recv({ timeout: 500 }));
  if (!r.error) assert.ok(got.value && got.value.length <= CAPACITY, `a message within the capacity is delivered (got ${got.error ?? got.value?.length})`);
});

// Guarantee: a publisher never wedges the others. If copying the message in throws after
// the position was claimed (here: a Float64Array whose buffer was transferred while its
// async publish waited for back-pressure), the claim stays held by a *live* pid: nobody
// ever repairs it, and every subscriber, in every process, stops at that position.
test('back-pressure: a publish that fails after its claim does not wedge subscribers', async () => {
  const { shm, bc } = setup({ backpressure: true });
  const mine = bc.subscribe();
  const hold = party(shm, 'hold', {});
  await hold.message('ready');
  for (let i = 0; i < DEPTH; i++) bc.publishSync(msg(1, i));
  for (let i = 0; i < DEPTH; i++) assert.is(checkValue(mine.recvSync({ timeout: 1000 })), (1 << 20) | i);
  // Another process subscribes now (at position 4) and wants the next message of publisher 2.
  const other = party(shm, 'subscriber', { count: 1, timeout: 3000 });
  assert.is((await other.message('ready')).cursor, DEPTH);
  const data = new Float64Array(1);
  const pending = settle(bc.publish(data, { timeout: 5000 }));
  structuredClone(data.buffer, { transfer: [data.buffer] }); // the caller gives its buffer away meanwhile
  hold.send('go');
  const r = await pending;
  await hold.result();
  // Whatever became of that publish, the next one reaches every subscriber.
  bc.publishSync(msg(2, 0), { timeout: 2000 });
  const got = [];
  const deadline = performance.now() + 2000;
  let last;
  while (!got.some((m) => checkValue(m) === ((2 << 20) | 0)) && performance.now() < deadline) {
    try {
      got.push(mine.recvSync({ timeout: Math.max(1, deadline - performance.now()) }));
    } catch (err) {
      last = err;
      if (!(err instanceof LaggedError)) break;
    }
  }
  const or = await other.result();
  assert.ok(
    got.some((m) => checkValue(m) === ((2 << 20) | 0)),
    `this process got publisher 2's message within 2 s (the failed publish: ${r.error ?? 'ok'}; last error: ${last})`,
  );
  assert.ok(or.ok && or.got.includes((2 << 20) | 0), `the other process got it too: ${JSON.stringify(or)}`);
});

// The same without back-pressure or any wait: a typed array whose buffer was transferred
// passes the length check (0 bytes), then the copy throws after the position was claimed.
test('a publishSync whose copy throws after the claim does not wedge other processes', async () => {
  const { shm, bc } = setup();
  const other = party(shm, 'subscriber', { count: 1, timeout: 3000 });
  assert.is((await other.message('ready')).cursor, 0);
  const data = new Float64Array(1);
  structuredClone(data.buffer, { transfer: [data.buffer] });
  let thrown;
  try {
    bc.publishSync(data);
  } catch (err) {
    thrown = err;
  }
  bc.publishSync(msg(2, 0));
  const or = await other.result();
  assert.ok(or.ok && or.got.includes((2 << 20) | 0), `the other process got the next message (the failed publish threw ${thrown}; the other process: ${JSON.stringify(or)})`);
});

// Guarantee (docs/api/broadcast.md): with back-pressure, a subscriber joining `from:
// 'oldest'` may find the oldest messages overwritten *as it joins* (its first receive then
// reports the lag); after that, publishers wait for it. A publisher's scan cache
// (`#roomUntil`) is computed for the subscribers present at its last scan, and it assumes
// a subscriber joining later starts at the next message: the 'oldest' subscriber reads its
// first message fine, and is then overrun by a publisher that never looks at it again.
test('back-pressure: a subscriber joined from the oldest message is not overrun after its first receive', async () => {
  const { shm, bc, gates: [gate] } = setup({ backpressure: true });
  // Positions 0..4 published with nobody subscribed: this handle's last scan found room up to 8.
  for (let i = 0; i <= DEPTH; i++) bc.publishSync(msg(1, i));
  // A subscriber joins from the oldest (position 1), receives it, and is stopped before its second.
  const s = party(shm, 'subscriber', { from: 'oldest', until: 'timeout', timeout: 2000, step: 'broadcast.recv.seq', nth: 2 });
  assert.is((await s.message('ready')).cursor, 1);
  await gate.reached({ peer: s });
  // Its cursor is 2 (position 1 received). Position 5 overwrites 1 (read): fine. Position 6
  // would overwrite 2, which it has not read: that publish must wait.
  bc.publishSync(msg(1, 5), { timeout: 1000 });
  const sixth = await settle(bc.publish(msg(1, 6), { timeout: 300 }));
  gate.release();
  const r = await s.result();
  assert.ok(r.ok, JSON.stringify(r));
  assert.is(sixth.error?.code, 'ERR_SHM_TIMEOUT', `the publish of position 6 waited for the subscriber at position 2 (it ${sixth.error ? 'failed: ' + sixth.error : 'went through'}; subscriber: ${JSON.stringify({ lags: r.lags, got: r.got.map((n) => n & 0xfffff) })})`);
  assert.equal(r.lags, [], 'no lag after the first receive');
});

// Guarantee: a lagging subscriber's receive throws one LaggedError with the exact count,
// and "the receive after that continues from the oldest message still in the ring"
// (docs/api/broadcast.md). #lagged() takes the oldest as tail − depth; a publisher that
// has claimed position `tail` (seq stored) but not moved `tail` yet has already taken the
// slot of tail − depth, so the subscriber is sent to a position being overwritten and the
// next receive throws a second LaggedError for the same overrun.
test('one overrun, one LaggedError: the lag moves the cursor past a slot already claimed', async () => {
  const { shm, bc, gates: [gate] } = setup();
  const s = party(shm, 'subscriber', { wait: true, count: 4, timeout: 3000 });
  assert.is((await s.message('ready')).cursor, 0);
  for (let i = 0; i <= DEPTH; i++) bc.publishSync(msg(1, i)); // positions 0..4: 0 is overwritten
  // A publisher claims position 5 (the slot of position 1) and is stopped before moving tail.
  const a = party(shm, 'publisher', { id: 2, from: 0, count: 1, step: 'broadcast.publish.claimed' });
  await gate.reached({ peer: a });
  s.send('go');
  // Its first receive reports the lag (its cursor in the table moves) while A is still stopped.
  await until(() => bc.stats().subscribers.some((x) => x.cursor !== 0), { what: 'the lag', peers: [s] });
  gate.release();
  assert.ok((await a.result()).ok);
  const r = await s.result();
  assert.ok(r.ok, JSON.stringify(r));
  // Positions 0 and 1 are lost (1 was being overwritten when the lag was computed).
  assert.equal(r.got.map((n) => [idOf(n), n & 0xfffff]), [[1, 2], [1, 3], [1, 4], [2, 0]]);
  assert.is(r.missed, 2);
  assert.equal(r.lags, [2], `one LaggedError for the one overrun (got ${JSON.stringify(r.lags)})`);
});

// A receive whose target shrinks or goes away while it waits fails with a clear error,
// copies nothing past the target, and leaves the message for the next receive.
test('recvInto(): a target transferred while the receive waits gets an InvalidArgumentError; the message stays for the next receive', async () => {
  const { bc } = setup();
  const mine = bc.subscribe();
  const ab = new ArrayBuffer(CAPACITY);
  const target = new Uint8Array(ab);
  for (let i = 0; i < 2; i++) {
    bc.publishSync(msg(1, i));
    assert.is(await mine.recvInto(target), msg(1, i).length);
  }
  const pending = mine.recvInto(target).then((n) => n, (err) => err);
  structuredClone(ab, { transfer: [ab] });
  bc.publishSync(msg(1, 2));
  const outcome = await pending;
  assert.is(outcome?.code, 'ERR_SHM_INVALID_ARGUMENT', `the receive ${typeof outcome === 'number' ? `returned ${outcome}` : `failed with ${outcome}`}`);
  assert.match(outcome.message, /target changed to 0 bytes .* stays for the next receive/);
  assert.is(checkValue(mine.recvSync({ timeout: 1000 })), (1 << 20) | 2);
});

test.run();
