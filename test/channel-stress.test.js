// Several producers and consumers in several processes on one channel: nothing lost,
// nothing duplicated, each producer's messages in the order sent (every consumer sees each
// producer's sequence numbers strictly increasing), none torn (each message carries its
// producer, number, length and a checksum over a pattern, checked by the consumer).
// Half the children use the blocking API and half the Promise API.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Channel } from '../dist/index.js';
import { harness, within } from './fixtures/channel-harness.js';

const h = harness(test, 'chs');

async function stream(make, { producers, consumers, perProducer, payload, width }) {
  const shm = h.object();
  const ch = h.keep(make(shm));
  const P = Array.from({ length: producers }, (_, id) =>
    h.start('channel-stream', 'produce', { offset: 0, id, count: perProducer, async: id % 2 === 1, payload, width }, { shm, timeoutMs: 90_000 }),
  );
  const C = Array.from({ length: consumers }, (_, id) =>
    h.start('channel-stream', 'consume', { offset: 0, async: id % 2 === 1, payload, width }, { shm, timeoutMs: 90_000 }),
  );
  for (const p of [...P, ...C]) await p.message('ready');
  const t0 = performance.now();
  for (const p of [...C, ...P]) p.send('go');
  const sent = await within(80_000, Promise.all(P.map((p) => p.result(80_000))), 'the producers');
  for (const s of sent) assert.equal({ sent: s.sent, error: s.error }, { sent: perProducer, error: null }, `producer ${s.id}`);
  ch.close();
  const got = await within(30_000, Promise.all(C.map((c) => c.result(30_000))), 'the consumers');
  const ms = performance.now() - t0;

  for (const [i, g] of got.entries()) {
    assert.is(g.error, null, `consumer ${i}: ${JSON.stringify(g.error)}`);
    assert.is(g.torn, 0, `consumer ${i} got ${g.torn} torn messages, the first: ${g.firstTorn}`);
    for (const [producer, seqs] of Object.entries(g.perProducer)) {
      for (let k = 1; k < seqs.length; k++) {
        if (!(seqs[k] > seqs[k - 1])) assert.unreachable(`consumer ${i} got producer ${producer}'s message ${seqs[k]} after ${seqs[k - 1]}`);
      }
    }
  }
  for (let p = 0; p < producers; p++) {
    const all = got.flatMap((g) => g.perProducer[p] ?? []).sort((x, y) => x - y);
    assert.is(all.length, perProducer, `producer ${p}: ${all.length} of ${perProducer} messages delivered`);
    for (let k = 0; k < all.length; k++) {
      if (all[k] !== k) assert.unreachable(`producer ${p}: message ${k} ${all[k] < k ? 'duplicated' : 'lost'}`);
    }
  }
  const total = producers * perProducer;
  assert.is(got.reduce((n, g) => n + g.count, 0), total);
  const s = ch.stats();
  assert.is(s.queued, 0);
  assert.is(s.sent, s.received);
  return { ms, perConsumer: got.map((g) => g.count) };
}

test('Buffered.Variable (depth 8): 4 producer and 4 consumer processes, 10,000 messages per producer', async () => {
  const r = await stream((shm) => new Channel.Buffered.Variable(shm, { depth: 8, capacity: 512 }), {
    producers: 4,
    consumers: 4,
    perProducer: 10_000,
    payload: 'Variable',
    width: 512,
  });
  console.log(`      Buffered.Variable: ${r.ms.toFixed(0)} ms, per consumer ${r.perConsumer.join(' ')}`);
});

test('SingleBuffered.Fixed: 4 producer and 4 consumer processes, 10,000 messages per producer', async () => {
  const r = await stream((shm) => new Channel.SingleBuffered.Fixed(shm, { width: 64 }), {
    producers: 4,
    consumers: 4,
    perProducer: 10_000,
    payload: 'Fixed',
    width: 64,
  });
  console.log(`      SingleBuffered.Fixed: ${r.ms.toFixed(0)} ms, per consumer ${r.perConsumer.join(' ')}`);
});

test('Buffered.Variable with large messages (up to 16 KiB, so copies overlap for longer): 2 producers × 2 consumers, 3,000 messages per producer', async () => {
  const r = await stream((shm) => new Channel.Buffered.Variable(shm, { depth: 4, capacity: 16 * 1024 }), {
    producers: 2,
    consumers: 2,
    perProducer: 3_000,
    payload: 'Variable',
    width: 16 * 1024,
  });
  console.log(`      Buffered.Variable, 16 KiB: ${r.ms.toFixed(0)} ms, per consumer ${r.perConsumer.join(' ')}`);
});

test('Unbuffered.Variable: 3 producer and 3 consumer processes, 2,000 messages per producer', async () => {
  const r = await stream((shm) => new Channel.Unbuffered.Variable(shm, { capacity: 128 }), {
    producers: 3,
    consumers: 3,
    perProducer: 2_000,
    payload: 'Variable',
    width: 128,
  });
  console.log(`      Unbuffered.Variable: ${r.ms.toFixed(0)} ms, per consumer ${r.perConsumer.join(' ')}`);
});

test.run();
