#!/usr/bin/env node
// Messages larger than a slot: one 64 MiB message from this process to a child, through
// Buffered.Variable channels (depth 8) in one run:
//   - capacity 64 KiB, maxMessage 64 MiB (1,024 chunks per message),
//   - capacity 1 MiB, maxMessage 64 MiB (64 chunks),
//   - capacity 64 MiB (one slot per message, no chunks: 8 × 64 MiB of memory),
// each round timed from sendSync() to the child's acknowledgement that the message is
// whole in its buffer (recvIntoSync into a buffer it reuses). The configurations take
// turns, round after round, so that noise spreads over all of them. Prints the median
// throughput of each and the ratios; the aim is 64 KiB ≥ 0.5 × 1 MiB.
//
//   npm run build && node bench/chunked.js          (64 MiB, 7 rounds each; about 15 s)
//   node bench/chunked.js --quick                   (16 MiB, 3 rounds; a smoke run)
//   node bench/chunked.js --size 256 --rounds 5     (MiB per message, rounds)
//
// The object is anonymous (no name in /dev/shm): nothing is left behind even if killed.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { cpus, loadavg } from 'node:os';
import { Channel, SharedMemory } from '../dist/index.js';
import { parseCommand } from './lib/args.js';

const USAGE = `usage: node bench/chunked.js [--quick] [--size MiB] [--rounds N] [--json]
  --quick      16 MiB messages, 3 rounds (a smoke run)
  --size MiB   bytes of each message, in MiB (default 64)
  --rounds N   rounds of each configuration (default 7)
  --depth N    slots of each channel (default 8)
  --json       print the figures as JSON
`;
const MiB = 1024 * 1024;
const ACK_AT = 0; // a SingleBuffered.Empty channel the child acknowledges each message on

/** The configurations, in the order they take turns; `capacity: null` means one slot holds the whole message. */
const CONFIGS = [
  { name: 'capacity 64 KiB, chunked', capacity: 64 * 1024 },
  { name: 'capacity 1 MiB, chunked', capacity: MiB },
  { name: 'one slot per message (no chunks)', capacity: null },
];

let DEPTH = 8;

function layout(size) {
  let at = 4096;
  return CONFIGS.map((c) => {
    const capacity = c.capacity ?? size;
    const options = { depth: DEPTH, capacity, offset: at, ...(capacity < size ? { maxMessage: size } : {}) };
    // slots of capacity + 12 bytes rounded to 64, after a 256-byte header, 16-aligned
    at += 256 + DEPTH * Math.ceil((capacity + 12) / 64) * 64;
    at = Math.ceil(at / 4096) * 4096;
    return { ...c, options };
  });
}

// ---- child: receive each message whole into a reused buffer, acknowledge it -----------------
async function child(size) {
  const shm = SharedMemory.inherited();
  const ack = Channel.attach(shm, { offset: ACK_AT });
  const chans = layout(size).map((c) => Channel.attach(shm, { offset: c.options.offset }));
  const target = Buffer.alloc(size);
  target.fill(1); // touch every page once, before timing
  process.send({ type: 'ready' });
  for (;;) {
    const m = await new Promise((resolve) => process.once('message', resolve));
    if (m.type === 'stop') break;
    const n = chans[m.config].recvIntoSync(target);
    if (n !== size || target[size - 1] !== (m.round & 255)) throw new Error(`got ${n} bytes ending in ${target[size - 1]}`);
    ack.sendSync();
  }
  process.exit(0);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export async function main(argv) {
  const args = parseCommand(argv, {
    quick: { type: 'boolean', default: false },
    size: { type: 'string' },
    rounds: { type: 'string' },
    depth: { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
    child: { type: 'string' },
  }, USAGE);
  if (typeof args === 'number') return args;
  const size = Number(args.size ?? (args.quick ? 16 : 64)) * MiB;
  const rounds = Number(args.rounds ?? (args.quick ? 3 : 7));
  if (!Number.isSafeInteger(size) || size < MiB || size > 1024 * MiB || !Number.isSafeInteger(rounds) || rounds < 1 || rounds > 101) {
    process.stderr.write(`--size must be a whole number of MiB from 1 to 1024, --rounds from 1 to 101\n\n${USAGE}`);
    return 2;
  }
  DEPTH = Number(args.depth);
  if (!Number.isSafeInteger(DEPTH) || DEPTH < 2 || DEPTH > 64) {
    process.stderr.write(`--depth must be from 2 to 64\n\n${USAGE}`);
    return 2;
  }
  if (args.child !== undefined) {
    await child(size);
    return 0;
  }
  const configs = layout(size);
  const last = configs[configs.length - 1];
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  try {
    shm.size = last.options.offset + 256 + DEPTH * Math.ceil((size + 12) / 64) * 64;
    const ack = new Channel.SingleBuffered.Empty(shm, { offset: ACK_AT });
    const chans = configs.map((c) => new Channel.Buffered.Variable(shm, c.options));
    const message = Buffer.alloc(size, 7);
    const peer = shm.fork(fileURLToPath(import.meta.url), ['--child', '1', '--size', String(size / MiB), '--depth', String(DEPTH)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const watchdog = setTimeout(() => peer.kill('SIGKILL'), 600_000);
    const exited = new Promise((resolve) => peer.once('exit', resolve));
    await new Promise((resolve, reject) => {
      peer.once('message', resolve);
      peer.once('exit', (code) => reject(new Error(`the child exited (code ${code}) before it was ready`)));
    });
    const times = configs.map(() => []);
    // a warm-up round of each (first touch of the pages, compilation), not counted
    for (let round = -1; round < rounds; round++) {
      for (const [i, ch] of chans.entries()) {
        message[size - 1] = round & 255;
        peer.send({ type: 'go', config: i, round });
        const t0 = performance.now();
        ch.sendSync(message);
        ack.recvSync();
        if (round >= 0) times[i].push(performance.now() - t0);
      }
    }
    peer.send({ type: 'stop' });
    await exited;
    clearTimeout(watchdog);
    const results = configs.map((c, i) => {
      const ms = median(times[i]);
      return { name: c.name, capacity: c.capacity ?? size, chunks: c.capacity === null ? 1 : 1 + Math.ceil((size - (c.capacity - 8)) / c.capacity), ms, mibPerS: size / MiB / (ms / 1000), range: [Math.min(...times[i]), Math.max(...times[i])] };
    });
    const ratio = results[0].mibPerS / results[1].mibPerS;
    if (args.json) {
      process.stdout.write(JSON.stringify({ node: process.version, cpus: cpus().length, size, rounds, results, ratio64KiBTo1MiB: ratio }, null, 2) + '\n');
      return 0;
    }
    process.stdout.write(`one ${size / MiB} MiB message, Buffered.Variable depth ${DEPTH}, sendSync → recvIntoSync in a child; Node ${process.version}, ${cpus().length} CPUs, load ${loadavg()[0].toFixed(2)}\n`);
    process.stdout.write(`median of ${rounds} rounds (each configuration in turn)\n\n`);
    for (const r of results) {
      process.stdout.write(`${r.name.padEnd(34)} ${String(r.chunks).padStart(5)} chunks  ${r.ms.toFixed(1).padStart(7)} ms  ${r.mibPerS.toFixed(0).padStart(6)} MiB/s  (rounds ${r.range[0].toFixed(1)}–${r.range[1].toFixed(1)} ms)\n`);
    }
    process.stdout.write(`\n64 KiB / 1 MiB capacity:        ${ratio.toFixed(2)}× (aim ≥ 0.5)\n`);
    process.stdout.write(`64 KiB / one slot per message:   ${(results[0].mibPerS / results[2].mibPerS).toFixed(2)}×\n`);
    for (const ch of chans) ch.release();
    ack.release();
    return 0;
  } finally {
    shm.close();
  }
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench/chunked.js: ${err.message}\n`);
    process.exitCode = 1;
  }
}
