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
import { serialize } from 'node:v8';
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

/** Median over BATCHES of the mean round trip (µs) of `rounds` calls of `roundTrip`. */
async function measure(rounds, roundTrip) {
  for (let i = 0; i < Math.min(rounds, 200); i++) await roundTrip(); // warm-up
  const batches = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) await roundTrip();
    batches.push(((performance.now() - t0) * 1000) / rounds);
  }
  return median(batches);
}

async function channelRow(codec, mode, rounds) {
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  try {
    // 'bytes': no codec, the object's v8 serialization sent as is (the floor of the codec rows)
    const wrap = (ch) => (codec === 'bytes' ? ch : new CodecChannel(ch, codec));
    const ping = wrap(new Channel.SingleBuffered.Variable(shm, { capacity: CAPACITY, offset: 0 }));
    const pong = wrap(new Channel.SingleBuffered.Variable(shm, { capacity: CAPACITY, offset: 8192 }));
    const child = shm.fork(self, ['channel-echo', codec]);
    const exited = once(child, 'exit');
    const value = codec === 'bytes' ? serialize(OBJECT()) : OBJECT();
    const us =
      mode === 'sync'
        ? await measure(rounds, () => {
            ping.sendSync(value);
            pong.recvSync();
          })
        : await measure(rounds, async () => {
            await ping.send(value);
            await pong.recv();
          });
    ping.close();
    await exited;
    return us;
  } finally {
    shm.close();
  }
}

async function ipcRow(rounds) {
  const child = fork(self, ['ipc-echo'], { serialization: 'advanced' });
  await once(child, 'spawn');
  const value = OBJECT();
  let resolve;
  child.on('message', () => resolve());
  const us = await measure(rounds, () => {
    const answered = new Promise((r) => (resolve = r));
    child.send(value);
    return answered;
  });
  const exited = once(child, 'exit');
  child.disconnect();
  await exited;
  return us;
}

async function main() {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '20000' } } });
  const rounds = Number(values.rounds);
  const [load1] = loadavg();
  console.log(`${cpus().length} CPUs, load average ${load1.toFixed(1)} (figures on a loaded machine vary a lot: compare rows of the same run), Node ${process.version}`);
  console.log(`round trip of a small object (${Buffer.byteLength(JSON.stringify(OBJECT()))} bytes as JSON; ${serialize(OBJECT()).length} with v8.serialize), median of ${BATCHES} batches`);
  const rows = [
    ["channel + 'v8' codec, sync (sendSync / recvSync)", await channelRow('v8', 'sync', rounds)],
    ["channel + 'v8' codec, async (send / recv)", await channelRow('v8', 'async', Math.ceil(rounds / 4))],
    ["channel + 'json' codec, sync", await channelRow('json', 'sync', rounds)],
    ['channel, the same bytes without a codec, sync', await channelRow('bytes', 'sync', rounds)],
    ["process.send, serialization: 'advanced'", await ipcRow(Math.ceil(rounds / 20))],
  ];
  const base = rows.at(-1)[1];
  for (const [what, us] of rows) {
    const ratio = what.startsWith('process.send') ? 'baseline' : base >= us ? `${(base / us).toFixed(1)}× faster` : `${(us / base).toFixed(1)}× slower`;
    console.log(`${what.padEnd(52)} ${us.toFixed(2).padStart(9)} µs   ${ratio}`);
  }
}
