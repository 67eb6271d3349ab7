// Codecs: values (not bytes) over a channel. Round trips of each codec across processes
// (a child decodes, re-encodes and sends back), refusal before anything is sent (the
// channel's counters unchanged), decode failures that consume the message, and the
// checks on what a CodecChannel accepts. Every test has a watchdog.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  Channel,
  CodecChannel,
  DecodeError,
  EncodeError,
  InvalidArgumentError,
  PayloadTooLargeError,
  TimeoutError,
} from '../dist/index.js';
import { harness, rejects, throws, within } from './fixtures/channel-harness.js';
import { CODECS, VALUES, pairCodec } from './fixtures/codec-common.js';

const h = harness(test, 'codec');
const WATCHDOG = 20_000;
const it = (name, fn) => test(name, () => within(WATCHDOG, fn(), name));

/** A Buffered.Variable channel on a fresh object, released after the test. */
function channel({ depth = 4, capacity = 4096, offset = 0, shm = h.object() } = {}) {
  return { shm, ch: h.keep(new Channel.Buffered.Variable(shm, { depth, capacity, offset })) };
}

// ---- across processes ---------------------------------------------------------------

for (const codec of ['json', 'v8', 'custom']) {
  it(`${codec}: values sent by the parent come back from a child that decoded and re-encoded them, equal`, async () => {
    const shm = h.object();
    const there = new CodecChannel(channel({ shm, offset: 0 }).ch, CODECS[codec]);
    const back = new CodecChannel(channel({ shm, offset: 65536 }).ch, CODECS[codec]);
    const child = h.start('codec-peer', 'echo', { codec, in: 0, out: 65536 }, { shm });
    await child.message('ready');
    const values = VALUES[codec]();
    const got = [];
    const receiving = (async () => {
      for await (const v of back) got.push(v);
    })();
    for (const v of values) await there.send(v, { timeout: 10_000 });
    there.close();
    await receiving;
    const { seen } = await child.result();
    assert.equal(got, values);
    assert.is(seen.length, values.length);
    if (codec === 'v8') {
      // the child saw the real types, not lookalikes
      assert.equal(seen, ['Object', 'Map', 'Uint8Array', 'Float64Array', 'Int32Array', 'Buffer', 'Object', 'String', 'undefined']);
      assert.instance(got[0].at, Date);
      assert.instance(got[0].tags, Set);
      assert.instance(got[5], Buffer);
    }
  });
}

it('v8: a child sends Maps, Dates, typed arrays and bigints with sendSync; recvSync and tryRecv return them', async () => {
  const { shm, ch } = channel({ depth: 16 });
  const values = new CodecChannel(ch, 'v8');
  const child = h.start('codec-peer', 'send', { codec: 'v8', out: 0 }, { shm });
  await child.result();
  const expected = VALUES.v8();
  assert.equal(values.recvSync({ timeout: 5000 }), expected[0]);
  const rest = [];
  for (let i = 1; i < expected.length - 1; i++) rest.push(values.tryRecv());
  assert.equal(rest, expected.slice(1, -1));
  // the last value is undefined: tryRecv cannot tell it from "none", recv can
  assert.is(await values.recv({ timeout: 0 }), undefined);
  assert.is(values.tryRecv(), undefined);
});

it('json: Dates arrive as strings and Maps as {} (JSON\'s own rules); a Date survives with v8', async () => {
  const { ch } = channel();
  const json = new CodecChannel(ch, 'json');
  const at = new Date(0);
  json.sendSync({ at, m: new Map([[1, 2]]) });
  assert.equal(json.recvSync(), { at: '1970-01-01T00:00:00.000Z', m: {} });
  const v8 = new CodecChannel(ch, 'v8');
  v8.sendSync({ at });
  assert.equal(v8.recvSync(), { at });
});

// ---- refused before anything is sent -------------------------------------------------

const circular = () => {
  const o = { a: 1 };
  o.self = o;
  return o;
};
const refusals = [
  ['json', { n: 1n }, EncodeError, /^cannot encode an object \(Object\) with the json codec: Do not know how to serialize a BigInt; nothing was sent$/],
  ['json', circular(), EncodeError, /^cannot encode an object \(Object\) with the json codec: Converting circular structure to JSON/],
  ['json', undefined, EncodeError, /^cannot encode undefined with the json codec: JSON has no representation of undefined; nothing was sent$/],
  ['json', () => 1, EncodeError, /^cannot encode a function with the json codec: JSON has no representation of a function/],
  ['v8', () => 1, EncodeError, /^cannot encode a function with the v8 codec: .*could not be cloned/],
  ['v8', { s: Symbol('s') }, EncodeError, /^cannot encode an object \(Object\) with the v8 codec: Symbol\(s\) could not be cloned/],
  ['custom', { name: 'a|b', n: 1 }, EncodeError, /^cannot encode an object \(Object\) with the custom codec: a pair needs a name without "\|"; nothing was sent$/],
  ['json', { long: 'x'.repeat(5000) }, PayloadTooLargeError, /^a message of 5011 bytes exceeds this Buffered\.Variable channel's capacity of 4096 bytes; nothing was sent$/],
  ['v8', new Float64Array(600), PayloadTooLargeError, /^a message of \d+ bytes exceeds this Buffered\.Variable channel's capacity of 4096 bytes/],
];
for (const [codec, value, Class, message] of refusals) {
  it(`${codec}: ${Class.name} for ${message.source.slice(1, 60)}…, from sendSync, send and trySend; the channel is unchanged`, async () => {
    const { ch } = channel();
    const values = new CodecChannel(ch, CODECS[codec]);
    values.sendSync(VALUES[codec]()[0]); // something queued, so that "unchanged" means something
    const before = JSON.stringify(ch.stats());
    const e = throws(() => values.sendSync(value), Class, message);
    assert.is(e.code, Class === EncodeError ? 'ERR_SHM_ENCODE' : 'ERR_SHM_PAYLOAD_TOO_LARGE');
    if (Class === EncodeError && codec !== 'json') assert.ok(e.cause instanceof Error, 'cause is the codec\'s error');
    await rejects(values.send(value), Class, message);
    throws(() => values.trySend(value), Class, message);
    assert.is(JSON.stringify(ch.stats()), before, 'nothing was sent');
    assert.equal(values.recvSync(), VALUES[codec]()[0]);
  });
}

it('a user encode() that returns something other than bytes or a string: EncodeError, nothing sent', async () => {
  const { ch } = channel();
  const before = JSON.stringify(ch.stats());
  const bad = new CodecChannel(ch, { encode: () => 42, decode: (b) => b });
  throws(() => bad.sendSync('x'), EncodeError, /^the custom codec's encode\(\) returned 42, not a Uint8Array or a string; nothing was sent$/);
  assert.is(JSON.stringify(ch.stats()), before);
});

// ---- decode failures consume the message ---------------------------------------------

for (const [codec, garbage, cause] of [
  ['json', '{"unterminated', /JSON/],
  ['v8', 'not a v8 serialization', /deserialize|version/i],
  ['custom', 'no separator', /no "\|"/],
]) {
  it(`${codec}: a message the codec cannot decode throws DecodeError (code, bytes, cause); it is consumed and the next one arrives`, async () => {
    const { ch } = channel();
    const values = new CodecChannel(ch, CODECS[codec]);
    const good = VALUES[codec]()[0];
    for (const receive of [() => values.recvSync(), () => values.tryRecv(), () => values.recv()]) {
      ch.sendSync(garbage); // raw bytes, past the codec
      values.sendSync(good);
      let error;
      try {
        await receive();
      } catch (err) {
        error = err;
      }
      assert.instance(error, DecodeError);
      assert.is(error.code, 'ERR_SHM_DECODE');
      assert.match(error.message, new RegExp(`^cannot decode a message of ${Buffer.byteLength(garbage)} bytes from the Buffered\\.Variable channel at offset 0 with the ${codec} codec: .*\\(the message was taken from the channel; err\\.bytes holds it\\)$`));
      assert.is(error.bytes.toString(), garbage);
      assert.match(String(error.cause?.message), cause);
      assert.equal(await values.recv({ timeout: 1000 }), good, 'the next message is the good one');
      assert.is(ch.stats().queued, 0);
    }
  });
}

it('for await over a CodecChannel ends on close, and throws DecodeError on a bad message', async () => {
  const { ch } = channel();
  const values = new CodecChannel(ch, 'json');
  values.sendSync(1);
  values.sendSync(2);
  ch.close();
  const got = [];
  for await (const v of values) got.push(v);
  assert.equal(got, [1, 2]);

  const other = channel();
  const json = new CodecChannel(other.ch, 'json');
  json.sendSync('ok');
  other.ch.sendSync('{');
  const seen = [];
  await rejects(
    (async () => {
      for await (const v of json) seen.push(v);
    })(),
    DecodeError,
  );
  assert.equal(seen, ['ok']);
});

// ---- what a CodecChannel accepts -------------------------------------------------------

it('options pass through (timeout), unknown option keys and bad codecs are refused', async () => {
  const { ch } = channel();
  const values = new CodecChannel(ch, 'v8');
  throws(() => values.recvSync({ timeout: 5 }), TimeoutError);
  await rejects(values.recv({ timeout: 5 }), TimeoutError);
  throws(() => values.recvSync({ encoding: 'utf8' }), InvalidArgumentError, /unknown key "encoding"/);
  throws(() => new CodecChannel(ch, 'yaml'), InvalidArgumentError, /^codec must be 'json', 'v8' or an object with encode\(value\) and decode\(bytes\) methods, got "yaml"$/);
  throws(() => new CodecChannel(ch, { encode() {} }), InvalidArgumentError, /^codec must be/);
  throws(() => new CodecChannel({}, 'json'), InvalidArgumentError, /^a CodecChannel needs a Channel/);
  const fixed = h.keep(new Channel.SingleBuffered.Fixed(h.object(), { width: 8 }));
  throws(() => new CodecChannel(fixed, 'json'), InvalidArgumentError, /^a codec needs a Variable channel \(its messages keep their length\), got a SingleBuffered\.Fixed channel$/);
  assert.is(values.codecName, 'v8');
  assert.is(new CodecChannel(ch, pairCodec).codecName, 'custom');
  assert.is(values.channel, ch);
  assert.is(values.kind, 'Buffered.Variable');
  assert.not.ok(values.closed);
  values.close();
  assert.ok(values.closed);
  values.release();
  values.release(); // idempotent, as the channel's
});

test.run();
