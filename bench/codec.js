#!/usr/bin/env node
// Objects between two processes: the round trip of a small object through a channel with
// a codec ('v8', and 'json' for comparison), beside process.send with
// serialization: 'advanced' (the same structured clone, over the IPC pipe). The other
// side decodes each object and sends it back, encoding it again, on both transports.
//
//   node bench/codec.js [--rounds N]
//
// Prints the median round trip of 5 batches for each, and the ratio to process.send. A
// row of the same bytes without a codec shows what the codec itself costs.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { deserialize, serialize } from 'node:v8';
import { Channel, CodecChannel, SharedMemory } from '../dist/index.js';

const self = fileURLToPath(import.meta.url);
const OBJECT = () => ({ id: 42, at: new Date(1_700_000_000_000), tags: ['urgent', 'io'], ratio: 0.75, done: false });
const CAPACITY = 1024;
const BATCHES = 5;

const role = process.argv[2];
if (role === 'channel-echo') {
  // child: receive on channel 0, send back on channel 1, decoding and encoding each object
  const shm = SharedMemory.inherited();
  const codec = process.argv[3];
  const wrap = (ch) => (codec === 'bytes' ? ch : new CodecChannel(ch, codec));
  const ping = wrap(Channel.attach(shm, { offset: 0 }));
  const pong = wrap(Channel.attach(shm, { offset: 8192 }));
  for (;;) {
    let value;
    try {
      value = ping.recvSync();
    } catch {
      break; // closed and drained
    }
    pong.sendSync(value);
  }
  process.exit(0);
} else if (role === 'ipc-echo') {
  process.on('message', (m) => process.send(m));
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Times `rounds` calls of `roundTrip`; returns the mean in µs. */
async function batch(rounds, roundTrip) {
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) await roundTrip();
  return ((performance.now() - t0) * 1000) / rounds;
}

/** A channel pair and an echoing child; `roundTrip` sends a value and waits for it back. */
function channelTransport(codec, mode) {
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  // 'bytes': no codec, the object's v8 serialization sent as is (the floor of the codec rows)
  const wrap = (ch) => (codec === 'bytes' ? ch : new CodecChannel(ch, codec));
  const ping = wrap(new Channel.SingleBuffered.Variable(shm, { capacity: CAPACITY, offset: 0 }));
  const pong = wrap(new Channel.SingleBuffered.Variable(shm, { capacity: CAPACITY, offset: 8192 }));
  const child = shm.fork(self, ['channel-echo', codec]);
  const exited = once(child, 'exit');
  const value = codec === 'bytes' ? serialize(OBJECT()) : OBJECT();
  return {
    roundTrip:
      mode === 'sync'
        ? () => {
            ping.sendSync(value);
            pong.recvSync();
          }
        : async () => {
            await ping.send(value);
            await pong.recv();
          },
    async stop() {
      ping.close();
      await exited;
      shm.close();
    },
  };
}

async function ipcTransport() {
  const child = fork(self, ['ipc-echo'], { serialization: 'advanced' });
  await once(child, 'spawn');
  const value = OBJECT();
  let resolve;
  child.on('message', () => resolve());
  return {
    roundTrip() {
      const answered = new Promise((r) => (resolve = r));
      child.send(value);
      return answered;
    },
    async stop() {
      const exited = once(child, 'exit');
      child.disconnect();
      await exited;
    },
  };
}

async function main() {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20000' } } });
  const rounds = Number(values.rounds);
  const [load1] = loadavg();
  console.log(`${cpus().length} CPUs, load average ${load1.toFixed(1)}, Node ${process.version}`);
  console.log(`round trip of a small object (${Buffer.byteLength(JSON.stringify(OBJECT()))} bytes as JSON; ${serialize(OBJECT()).length} with v8.serialize)`);
  console.log(`median of ${BATCHES} batches; the rows' batches take turns, so a change of load meanwhile hits every row alike`);
  const rows = [
    { what: "channel + 'v8' codec, sync (sendSync / recvSync)", rounds, t: channelTransport('v8', 'sync') },
    { what: "channel + 'v8' codec, async (send / recv)", rounds: Math.ceil(rounds / 4), t: channelTransport('v8', 'async') },
    { what: "channel + 'json' codec, sync", rounds, t: channelTransport('json', 'sync') },
    { what: 'channel, the same bytes without a codec, sync', rounds, t: channelTransport('bytes', 'sync') },
    { what: "process.send, serialization: 'advanced'", rounds: Math.ceil(rounds / 20), t: await ipcTransport() },
  ];
  for (const row of rows) {
    row.batches = [];
    for (let i = 0; i < Math.min(row.rounds, 500); i++) await row.t.roundTrip(); // warm-up
  }
  for (let b = 0; b < BATCHES; b++) for (const row of rows) row.batches.push(await batch(row.rounds, row.t.roundTrip));
  for (const row of rows) await row.t.stop();
  const base = median(rows.at(-1).batches);
  for (const row of rows) {
    const us = median(row.batches);
    const ratio = row === rows.at(-1) ? 'baseline' : base >= us ? `${(base / us).toFixed(1)}× faster` : `${(us / base).toFixed(1)}× slower`;
    console.log(`${row.what.padEnd(52)} ${us.toFixed(2).padStart(9)} µs   ${ratio}`);
  }
  // what encoding and decoding alone cost in this process
  const value = OBJECT();
  const n = 100_000;
  let t0 = performance.now();
  for (let i = 0; i < n; i++) deserialize(serialize(value));
  const v8us = ((performance.now() - t0) * 1000) / n;
  t0 = performance.now();
  for (let i = 0; i < n; i++) JSON.parse(JSON.stringify(value));
  const jsonUs = ((performance.now() - t0) * 1000) / n;
  console.log(`encode + decode alone, in one process: v8 ${v8us.toFixed(2)} µs, json ${jsonUs.toFixed(2)} µs (twice per round trip)`);
}
