#!/usr/bin/env node
// The "nine kinds" benchmark: does using every channel kind in one process slow the one
// a program uses most? The nine kinds are classes sharing one set of methods; when the
// methods' call sites see more than a few of them, V8 falls back to slower generic
// (megamorphic) lookups for every channel in the process.
//
//   node bench/kinds.js [--pairs N] [--batches B] [--json]
//
// In one fresh process (so nothing else has run there before):
//  1. before: ns per sendSync + recvIntoSync on a SingleBuffered.Fixed 64 channel (send,
//     then receive the same message: the channel never blocks), median of the batches,
//     after a warm-up;
//  2. every one of the nine kinds is used: for each, sendSync + recvIntoSync and await
//     send + recvInto (Unbuffered, which hands over only to a waiting receiver: a pending
//     recvInto then trySend, and send then recvIntoSync), many times;
//  3. after: the same measurement as 1, on the same channel, with the same function.
// It prints both figures and their ratio. The measuring function and the exercising one
// are different functions, so the only call sites that can see all nine kinds are the
// library's own. A control run (another fresh process) does the same with nine more
// SingleBuffered.Fixed channels in step 2: the same calls, one kind; its ratio shows
// what the steps alone do to the figure (about 1×).

import { parseCommand } from './lib/args.js';
import { fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { Channel, SharedMemory } from '../dist/index.js';

export const KINDS = [
  ['Unbuffered', 'Empty', {}],
  ['Unbuffered', 'Fixed', { width: 64 }],
  ['Unbuffered', 'Variable', { capacity: 64 }],
  ['SingleBuffered', 'Empty', {}],
  ['SingleBuffered', 'Fixed', { width: 64 }],
  ['SingleBuffered', 'Variable', { capacity: 64 }],
  ['Buffered', 'Empty', { depth: 8 }],
  ['Buffered', 'Fixed', { depth: 8, width: 64 }],
  ['Buffered', 'Variable', { depth: 8, capacity: 64 }],
];

const USAGE = `usage: node bench/kinds.js [--pairs N] [--batches B] [--json]

ns per sendSync + recvIntoSync on a SingleBuffered.Fixed 64 channel in one process,
before and after all nine channel kinds have been used in that process (a check
that the hot path does not turn megamorphic), and the ratio.

options:
  --pairs N      send + receive pairs per batch (default 200000)
  --batches B    measured batches, median taken (default 7)
  --json         print the results as JSON
  -h, --help     this text
`;

const MSG = Buffer.alloc(64, 0x78);
const BUF = Buffer.alloc(64);
const align = (n) => Math.ceil(n / 4096) * 4096;

/** ns per pair: `pairs` sendSync + recvIntoSync on `ch`. Only ever called with one channel. */
function timePairs(ch, pairs) {
  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < pairs; i++) {
    ch.sendSync(MSG);
    bytes += ch.recvIntoSync(BUF);
  }
  const ns = ((performance.now() - t0) * 1e6) / pairs;
  if (bytes !== 64 * pairs) throw new Error(`received ${bytes} bytes, expected ${64 * pairs}`);
  return ns;
}

function measure(ch, pairs, batches) {
  for (let i = 0; i < 10; i++) timePairs(ch, Math.max(100, pairs >> 3)); // warm-up
  const means = [];
  for (let b = 0; b < batches; b++) means.push(timePairs(ch, pairs));
  means.sort((a, b) => a - b);
  return { median: means[means.length >> 1], min: means[0], max: means.at(-1) };
}

/** Use one channel of every kind, with the sync and the async calls. */
async function exerciseAll(channels, rounds) {
  for (const { kind, payload, ch } of channels) {
    const data = payload === 'Empty' ? undefined : MSG;
    for (let i = 0; i < rounds; i++) {
      if (kind === 'Unbuffered') {
        const pending = ch.recvInto(BUF, { timeout: 10_000 });
        if (!ch.trySend(data)) throw new Error(`${ch.kind}: trySend found no waiting receiver`);
        await pending;
        const sending = ch.send(data, { timeout: 10_000 });
        ch.recvIntoSync(BUF, { timeout: 10_000 });
        await sending;
      } else {
        ch.sendSync(data);
        ch.recvIntoSync(BUF);
        await ch.send(data);
        await ch.recvInto(BUF);
      }
    }
  }
}

/**
 * Steps 1–3 in this process. `control`: step 2 uses nine SingleBuffered.Fixed channels
 * instead of the nine kinds.
 */
export async function runKinds({ pairs = 200_000, batches = 7, rounds = 2000, control = false } = {}) {
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
  try {
    const hot = new Channel.SingleBuffered.Fixed(shm, { width: 64, offset: 0 });
    const before = measure(hot, pairs, batches);

    let offset = align(hot.byteLength);
    const channels = [];
    for (const [kind, payload, options] of control ? KINDS.map(() => KINDS[4]) : KINDS) {
      const ch = new Channel[kind][payload](shm, { ...options, offset });
      offset += align(ch.byteLength);
      channels.push({ kind, payload, ch });
    }
    const t0 = performance.now();
    await exerciseAll(channels, rounds);
    const exerciseMs = performance.now() - t0;

    const after = measure(hot, pairs, batches);
    for (const { ch } of channels) ch.release();
    hot.release();
    return { control, node: process.version, pairs, batches, rounds, before, after, ratio: after.median / before.median, exerciseMs };
  } finally {
    shm.close();
  }
}

export async function main(argv) {
  const args = parseCommand(argv, {
    pairs: { type: 'string', default: '200000' },
    batches: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
    role: { type: 'string' },
  }, USAGE);
  if (typeof args === 'number') return args;
  const pairs = Number(args.pairs);
  const batches = Number(args.batches);
  if (!Number.isSafeInteger(pairs) || pairs < 1000 || !Number.isSafeInteger(batches) || batches < 1 || batches > 101) {
    process.stderr.write('--pairs must be a whole number ≥ 1000, --batches from 1 to 101\n');
    return 2;
  }
  if (args.role) {
    process.send(await runKinds({ pairs, batches, control: args.role === 'control' }));
    return 0;
  }
  const nine = await inChild('nine', pairs, batches);
  const control = await inChild('control', pairs, batches);
  if (args.json) {
    process.stdout.write(JSON.stringify({ nine, control }, null, 2) + '\n');
    return 0;
  }
  const f = (x) => `${x.median.toFixed(0)} ns (batches ${x.min.toFixed(0)}–${x.max.toFixed(0)})`;
  process.stdout.write(`sendSync + recvIntoSync, SingleBuffered.Fixed 64, one process, Node ${process.version}\n`);
  process.stdout.write(`median of ${batches} batches of ${pairs.toLocaleString('en')} pairs, each run in a fresh process\n\n`);
  process.stdout.write(`before the other kinds are used:  ${f(nine.before)}\n`);
  process.stdout.write(`after all nine kinds were used:   ${f(nine.after)}\n`);
  process.stdout.write(`ratio after / before:             ${nine.ratio.toFixed(2)}×\n\n`);
  process.stdout.write(`control (the same steps with nine more SingleBuffered.Fixed channels instead of the nine kinds):\n`);
  process.stdout.write(`  before ${f(control.before)}, after ${f(control.after)}, ratio ${control.ratio.toFixed(2)}×\n`);
  return 0;
}

/** runKinds in a fresh process (this script with --role). */
function inChild(role, pairs, batches) {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--role', role, '--pairs', String(pairs), '--batches', String(batches)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('message', (m) => { result = m; });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (result) resolve(result);
      else reject(new Error(`the ${role} run exited (code ${code}, signal ${signal}) without a result`));
    });
  });
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench/kinds.js: ${err.message}\n`);
    process.exitCode = 1;
  }
  if (process.argv.includes('--role')) process.disconnect();
}
