#!/usr/bin/env node
// Idle CPU: what a receiver blocked on an empty channel costs the machine. A child process
// waits in recvIntoSync (sync) or await recvInto (async) on an empty SingleBuffered.Fixed
// 64 channel for --seconds (default 5); this process reads the child's CPU time (utime +
// stime of all its threads, /proc/<pid>/stat) before and after, and the voluntary context
// switches of its threads (/proc/<pid>/task/*/status: how often it woke up). Then it sends
// one message, checks that the receiver gets it, and stops the child. Another row does the
// same with --many async receives in one process, on as many channels, started spread
// over one sleep bound (50 ms), as a server waiting on many peers would. A reference row
// does the same with a Node process that only waits for a process.send message.
//
//   node bench/idle-cpu.js [--seconds S] [--many N] [--load N] [--json]
//
// With --load N, N busy loops (separate processes) run during the measurement: a waiting
// receiver must not take CPU from the work around it, busy host or not. Linux only.

import { parseCommand } from './lib/args.js';
import { execFileSync, fork } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLoad, startLoad, stopLoad } from './lib/load.js';

/** Bytes between two channels of one object (a SingleBuffered.Fixed 64 takes less). */
const CHANNEL_SPACING = 4096;

const roles = (many) => [
  { id: 'sync', name: 'channel, recvIntoSync (sync)', channels: 1 },
  { id: 'async', name: 'channel, await recvInto (async)', channels: 1 },
  { id: 'async-many', name: `${many} channels, await recvInto on each`, channels: many },
  { id: 'ipc', name: "reference: process.on('message')", channels: 0 },
];

const USAGE = `usage: node bench/idle-cpu.js [--seconds S] [--many N] [--load N] [--json]

CPU used by a receiver waiting on an empty channel (sync and async), and by one
process waiting on N channels at once, from /proc/<pid>/stat, over S seconds
(default 5); with --load N busy loops running.

options:
  --seconds S   how long each receiver waits (default 5)
  --many N      channels of the one-process-many-receives row (default 10)
  --load N      run N busy loops (separate node processes) meanwhile
  --json        print the results as JSON
  -h, --help    this text
`;

function clockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** utime + stime of the whole process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
  return Number(fields[14 - 3]) + Number(fields[15 - 3]);
}

/** Voluntary context switches summed over the process's threads. */
function wakeups(pid) {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
      if (m) n += Number(m[1]);
    } catch { /* thread gone */ }
  }
  return n;
}

/** The receiver (a child process): waits for 'go', then receives one message on each of its channels. */
async function receiver(role, channels) {
  const buf = Buffer.alloc(64);
  if (role === 'ipc') {
    process.on('message', (m) => {
      if (m === 'go') return;
      process.send({ got: 64 });
      process.disconnect();
    });
    process.send('ready');
    return;
  }
  const { Channel, SharedMemory } = await import('../dist/index.js');
  const shm = SharedMemory.inherited();
  const chs = Array.from({ length: channels }, (_, i) => Channel.attach(shm, { offset: i * CHANNEL_SPACING }));
  process.on('disconnect', () => process.exit(0));
  process.once('message', async (m) => {
    if (m !== 'go') return;
    let got = 0;
    if (role === 'sync') got = chs[0].recvIntoSync(buf);
    else {
      const receives = [];
      for (const ch of chs) {
        receives.push(ch.recvInto(Buffer.alloc(64)));
        if (chs.length > 1) await new Promise((r) => setTimeout(r, 50 / chs.length));
      }
      for (const n of await Promise.all(receives)) got += n;
    }
    process.send({ got });
    for (const ch of chs) ch.release();
    shm.close();
    process.disconnect();
  });
  process.send('ready');
}

function once(child, what, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    child.once('message', (m) => { clearTimeout(timer); resolve(m); });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${what}: receiver exited (code ${code}, signal ${signal})`)); });
  });
}

async function measureRole(role, seconds, ticksPerSec) {
  const script = fileURLToPath(import.meta.url);
  let shm = null;
  const chs = [];
  let child;
  if (role.id === 'ipc') {
    child = fork(script, ['--role', role.id], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  } else {
    const { Channel, SharedMemory } = await import('../dist/index.js');
    shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
    for (let i = 0; i < role.channels; i++) chs.push(new Channel.SingleBuffered.Fixed(shm, { width: 64, offset: i * CHANNEL_SPACING }));
    child = shm.fork(script, ['--role', role.id, '--channels', String(role.channels)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }
  try {
    await once(child, `${role.name}: start`, 30_000);
    const ticks0 = cpuTicks(child.pid);
    const wake0 = wakeups(child.pid);
    const t0 = performance.now();
    child.send('go');
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const ticks1 = cpuTicks(child.pid);
    const wake1 = wakeups(child.pid);
    const wallS = (performance.now() - t0) / 1000;
    // Wake it: the receiver must still work after its long wait.
    const reply = once(child, `${role.name}: the message after the wait`, 30_000);
    const t1 = performance.now();
    for (const ch of chs) ch.sendSync(Buffer.alloc(64, 0x78));
    if (role.id === 'ipc') child.send('msg');
    const { got } = await reply;
    const wakeMs = performance.now() - t1;
    const expected = 64 * Math.max(1, chs.length);
    if (got !== expected) throw new Error(`${role.name}: received ${got} bytes, expected ${expected}`);
    const cpuS = (ticks1 - ticks0) / ticksPerSec;
    return { id: role.id, name: role.name, seconds: wallS, cpuSeconds: cpuS, cpuPercent: (100 * cpuS) / wallS, wakeupsPerSec: (wake1 - wake0) / wallS, wakeMs };
  } catch (err) {
    return { id: role.id, name: role.name, error: err.message };
  } finally {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
    for (const ch of chs) ch.release();
    shm?.close();
  }
}

export async function main(argv) {
  const args = parseCommand(argv, {
    seconds: { type: 'string', default: '5' },
    many: { type: 'string', default: '10' },
    load: { type: 'string' },
    role: { type: 'string' },
    channels: { type: 'string', default: '1' },
    json: { type: 'boolean', default: false },
  }, USAGE);
  if (typeof args === 'number') return args;
  if (args.role) {
    await receiver(args.role, Number(args.channels));
    return 0;
  }
  if (process.platform !== 'linux') {
    process.stderr.write('bench/idle-cpu.js reads /proc: Linux only\n');
    return 1;
  }
  const seconds = Number(args.seconds);
  const many = Number(args.many);
  let load;
  try {
    if (!(seconds > 0 && seconds <= 600)) throw new Error('--seconds must be a number from 0 to 600');
    if (!(Number.isInteger(many) && many >= 2 && many <= 1000)) throw new Error('--many must be an integer from 2 to 1000');
    load = parseLoad(args.load);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
  const onSignal = (signal) => {
    process.stderr.write(`\ninterrupted (${signal})\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143); // the exit hook of lib/load.js kills the loops
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const ticksPerSec = clockTicks();
  const results = [];
  try {
    if (load > 0) await startLoad(load);
    for (const role of roles(many)) {
      process.stderr.write(`${role.name}: waiting ${seconds} s ...\n`);
      results.push(await measureRole(role, seconds, ticksPerSec));
    }
  } finally {
    await stopLoad();
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ node: process.version, cores: os.cpus().length, load, seconds, many, results }, null, 2) + '\n');
  } else {
    process.stdout.write(`Idle receiver, ${seconds} s on an empty channel, ${load ? `--load ${load}` : 'no load started'}, ${os.cpus().length} CPUs, Node ${process.version}\n\n`);
    const header = ['receiver', 'CPU %', 'CPU time', 'wake-ups/s', 'then a message: ms'];
    const rows = results.map((r) => r.error
      ? [r.name, '–', '–', '–', r.error]
      : [r.name, r.cpuPercent.toFixed(2), `${(r.cpuSeconds * 1000).toFixed(0)} ms`, r.wakeupsPerSec.toFixed(1), r.wakeMs.toFixed(2)]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (c) => c.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ').trimEnd();
    process.stdout.write([fmt(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n') + '\n\n');
    process.stdout.write(`CPU %: utime + stime of the receiver process (all threads) ÷ wall time; resolution 1/${ticksPerSec} s.\n`);
    process.stdout.write('wake-ups/s: voluntary context switches of its threads. then a message: time until the receiver reported it.\n');
  }
  return results.some((r) => r.error) ? 1 : 0;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  process.exitCode = await main(process.argv.slice(2));
}
