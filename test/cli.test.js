// The `concurrent-shm` command (dist/cli/main.js), run in child processes: every command's
// output and exit code, bad arguments, objects that are not the library's, `rm --stale`
// next to a live and a dead object, and `ls --json` for scripts. Only objects this file
// creates are touched (never a bare `rm --stale`, which would look at the whole machine).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Broadcast, Channel, Mutex, Region, SharedMemory } from '../dist/index.js';
import { uniqueName, within } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const LIB = new URL('../dist/index.js', import.meta.url).href;
const PKG = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const DEMO = new URL('../examples/producer-consumer/main.js', import.meta.url);
const EXIT = { OK: 0, FAILED: 1, USAGE: 2, NOT_FOUND: 3 };

/** Runs the command; { code, stdout, stderr }. Killed after 30 s. */
function cli(args, { input = '', env = {} } = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    input,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, CONCURRENT_SHM_DEBUG: '', CONCURRENT_SHM_CLI_READER: '', COLUMNS: '', ...env },
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, no stack trace. */
function oneErrorLine(r, pattern) {
  const lines = r.stderr.trimEnd().split('\n');
  assert.is(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.not.match(r.stderr, /\n\s+at /, 'no stack trace');
  if (pattern) assert.match(lines[0], pattern);
}

// Objects and processes of the current test, released after it whether it passed or not.
const names = [];
const handles = [];
const children = [];
function track(name) {
  names.push(name);
  return name;
}
test.after.each(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const h of handles.splice(0)) {
    try {
      h.close?.();
    } catch {}
  }
  for (const name of names.splice(0)) {
    try {
      SharedMemory.delete(name);
    } catch {}
  }
});

/** A Buffered.Fixed channel (depth 4, width 32) holding two messages; mapped by this process. */
function channelObject(tag = 'cli-ch') {
  const name = track(uniqueName(tag));
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  handles.push(shm);
  const ch = new Channel.Buffered.Fixed(shm, { depth: 4, width: 32 });
  ch.sendSync('one');
  ch.sendSync('two');
  return { name, shm, ch };
}

/** An object of `size` bytes that holds no structure of the library (`fill` written at 0). */
function plainObject(fill = '', size = 4096) {
  const name = track(uniqueName('cli-plain'));
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  shm.size = size;
  if (fill) {
    const r = Region.map(shm, 0, size);
    r.write(fill);
    r.unmap();
  }
  shm.close();
  return name;
}

/** Starts a Node child that runs `code` (an ES module body with `lib` imported) and resolves once it prints "ready". */
function startChild(code) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `import * as lib from ${JSON.stringify(LIB)};\n${code}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stderr.on('data', (d) => (out += d));
  return within(
    15_000,
    new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        if (String(d).includes('ready')) resolve(child);
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before it was ready: ${out}`)));
    }),
    'child start',
  );
}

/** Runs a child that creates a channel in `name` and exits: what a crashed program leaves behind. */
function leaveBehind(name) {
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `import * as lib from ${JSON.stringify(LIB)};
const shm = lib.SharedMemory.open(${JSON.stringify(name)}, 0o600, { mode: 'excl' });
new lib.Channel.SingleBuffered.Variable(shm, { capacity: 200 }).sendSync('left behind');`],
    { encoding: 'utf8', timeout: 15_000 },
  );
  assert.is(r.status, 0, r.stderr);
  return track(name);
}

// ---- top level -------------------------------------------------------------------

test('--help lists the commands and the exit codes', () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = cli(args);
    assert.is(r.code, EXIT.OK, args.join(' '));
    assert.match(r.stdout, /^usage: concurrent-shm <command>/);
    for (const c of ['ls', 'inspect', 'rm', 'bench', 'demo']) assert.match(r.stdout, new RegExp(`\\n  ${c} `));
    assert.match(r.stdout, /exit codes:\n  0  ok\n  1  .*\n  2  usage error.*\n  3  not found/);
    assert.is(r.stderr, '');
  }
});

test('--version prints the package version', () => {
  for (const flag of ['--version', '-V']) {
    const r = cli([flag]);
    assert.is(r.code, EXIT.OK);
    assert.is(r.stdout, `${PKG.version}\n`);
  }
});

test('no command: the usage on stderr, exit code 2', () => {
  const r = cli([]);
  assert.is(r.code, EXIT.USAGE);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /^usage: concurrent-shm/);
});

test('an unknown command or top-level option is a usage error on one line', () => {
  let r = cli(['frobnicate']);
  assert.is(r.code, EXIT.USAGE);
  oneErrorLine(r, /^concurrent-shm: unknown command 'frobnicate'; the commands are ls, inspect, rm, bench, demo/);
  r = cli(['--frob']);
  assert.is(r.code, EXIT.USAGE);
  oneErrorLine(r, /unknown option '--frob'/);
  r = cli(['help', 'frob']);
  assert.is(r.code, EXIT.USAGE);
  oneErrorLine(r, /unknown command 'frob'/);
});

test('every command has --help (exit 0, usage on stdout)', () => {
  for (const c of ['ls', 'inspect', 'rm', 'bench', 'demo']) {
    for (const args of [[c, '--help'], [c, '-h'], ['help', c], [c, '--bogus', '--help']]) {
      const r = cli(args);
      assert.is(r.code, EXIT.OK, args.join(' '));
      assert.match(r.stdout, new RegExp(`^usage: concurrent-shm ${c}`), args.join(' '));
      assert.is(r.stderr, '');
    }
  }
  assert.match(cli(['rm', '--help']).stdout, /exit codes:/);
});

test('bad arguments: exit code 2 and one line naming the command', () => {
  const cases = [
    [['ls', '--bogus'], /^concurrent-shm ls: unknown option '--bogus' \(see 'concurrent-shm ls --help'\)$/],
    [['ls', 'extra'], /^concurrent-shm ls: unexpected argument 'extra'/],
    [['ls', '--offset'], /option '--offset' needs a value/],
    [['ls', '--offset', 'x'], /--offset must be a whole number, got 'x'/],
    [['ls', '--offset', '8'], /--offset must be a multiple of 16, got 8/],
    [['ls', '--json=yes'], /option '--json' takes no value/],
    [['inspect'], /^concurrent-shm inspect: missing NAME/],
    [['inspect', 'a', 'b'], /inspect takes one NAME, got 2/],
    [['inspect', 'a/b'], /invalid shared memory name 'a\/b'/],
    [['inspect', '/a/b'], /invalid shared memory name '\/a\/b'/],
    [['inspect', '..'], /invalid shared memory name '\.\.': it may not contain '\.\.'/],
    [['inspect', '/'], /invalid shared memory name '\/': it is empty/],
    [['inspect', 'x', '--interval', '100'], /--interval needs --watch/],
    [['inspect', 'x', '--watch', '--interval', '0'], /--interval must be from 10/],
    [['rm'], /^concurrent-shm rm: missing NAME/],
    [['rm', '../etc/passwd'], /invalid shared memory name '\.\.\/etc\/passwd'/],
    [['rm', 'x', '--yes'], /--yes goes with --stale/],
    [['rm', '--stale', '--offset', '-16'], /option '--offset' needs a value/],
    [['bench', '--bogus'], /^concurrent-shm bench: unknown option '--bogus'/],
    [['bench', '--json'], /option '--json' needs a value/],
    [['demo', '--bogus'], /^concurrent-shm demo: unknown option '--bogus'/],
  ];
  for (const [args, pattern] of cases) {
    const r = cli(args);
    assert.is(r.code, EXIT.USAGE, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '', args.join(' '));
    oneErrorLine(r, pattern);
  }
});

test('CONCURRENT_SHM_DEBUG=1 adds the stack trace', () => {
  const r = cli(['inspect', uniqueName('cli-none')], { env: { CONCURRENT_SHM_DEBUG: '1' } });
  assert.is(r.code, EXIT.NOT_FOUND);
  assert.match(r.stderr, /^concurrent-shm: no shared memory object/);
  assert.match(r.stderr, /\n\s+at /);
});

// ---- ls --------------------------------------------------------------------------

test('ls --json: one parseable array; a channel with its kind, fill and processes; other objects without', () => {
  const { name } = channelObject();
  const plain = plainObject('not a header');
  const r = cli(['ls', '--json']);
  assert.is(r.code, EXIT.OK, r.stderr);
  const list = JSON.parse(r.stdout);
  assert.ok(Array.isArray(list));
  const entry = list.find((e) => e.name === name);
  assert.ok(entry, `${name} listed`);
  assert.is(entry.path, `/dev/shm${name}`);
  assert.is(entry.size, 256 + 4 * 64);
  assert.is(entry.uid, process.getuid());
  assert.is(entry.permissions, 'rw-------');
  assert.is(entry.mode, '600');
  assert.type(entry.owner, 'string');
  assert.ok(entry.ageMs >= 0 && entry.ageMs < 60_000);
  assert.is(entry.note, null);
  const s = entry.structure;
  assert.is(s.type, 'channel');
  assert.is(s.kind, 'Buffered.Fixed');
  assert.is(s.description, 'Buffered.Fixed(depth 4, width 32)');
  assert.is(s.depth, 4);
  assert.is(s.width, 32);
  assert.is(s.sent, 2);
  assert.is(s.received, 0);
  assert.is(s.queued, 2);
  assert.is(s.closed, false);
  assert.is(s.ready, true);
  assert.is(s.initPid, process.pid);
  assert.is(s.initPidAlive, true);
  // This process maps the channel (and holds the object open).
  const me = entry.processes.find((p) => p.pid === process.pid);
  assert.ok(me, `this process (${process.pid}) listed among ${JSON.stringify(entry.processes)}`);
  assert.is(me.mapped, true);
  assert.is(me.open, true);
  assert.is(me.command, 'node');

  const other = list.find((e) => e.name === plain);
  assert.ok(other, `${plain} listed`);
  assert.is(other.structure, null);
  assert.match(other.note, /where the magic number 0x4d485343 \("CSHM"\) should be/);
  assert.equal(other.processes, []);
});

test('ls --wide: every column, with the channel, a closed channel and a locked mutex', () => {
  const { name, ch } = channelObject();
  const closedOne = channelObject('cli-closed');
  closedOne.ch.close();
  const mutexName = track(uniqueName('cli-mtx'));
  const shm = SharedMemory.open(mutexName, 0o600, { mode: 'excl' });
  handles.push(shm);
  shm.size = 4096;
  const mutex = new Mutex(Region.map(shm, 0, 64));
  mutex.lock();
  try {
    const r = cli(['ls', '--wide']);
    assert.is(r.code, EXIT.OK, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^NAME\s+SIZE\s+OWNER\s+MODE\s+AGE\s+KIND\s+DEPTH\s+WIDTH\s+QUEUED\s+STATE\s+PROCESSES$/);
    const row = (n) => lines.find((l) => l.startsWith(`${n} `)) ?? assert.unreachable(`${n} not in:\n${r.stdout}`);
    assert.match(row(name), new RegExp(`512 B\\s+\\S+\\s+600\\s+\\d+s\\s+Buffered\\.Fixed\\s+4\\s+32\\s+2/4\\s+open\\s+.*${process.pid} node`));
    assert.match(row(closedOne.name), /Buffered\.Fixed\s+4\s+32\s+2\/4\s+closed/);
    assert.match(row(mutexName), new RegExp(`Mutex\\s+-\\s+-\\s+-\\s+locked by ${process.pid}\\s`));
    void ch;
  } finally {
    mutex.unlock();
  }
});

test('ls --offset looks for the structure elsewhere', () => {
  const name = track(uniqueName('cli-off'));
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  handles.push(shm);
  new Channel.SingleBuffered.Empty(shm, { offset: 4096 });
  let entry = JSON.parse(cli(['ls', '--json']).stdout).find((e) => e.name === name);
  assert.is(entry.structure, null);
  assert.match(entry.note, /all zero/);
  entry = JSON.parse(cli(['ls', '--json', '--offset', '4096']).stdout).find((e) => e.name === name);
  assert.is(entry.structure.kind, 'SingleBuffered.Empty');
  assert.is(entry.structure.offset, 4096);
});

/** Starts a child that locks the mutex at offset 0 of `name`, and kills it: a holder that died holding it. Resolves with its pid. */
async function lockAndDie(name) {
  const child = await startChild(`
const shm = lib.SharedMemory.open(${JSON.stringify(name)}, 0, { mode: 'open' });
new lib.Mutex(lib.Region.map(shm, 0, 64)).lock();
console.log('ready');
setInterval(() => {}, 1000);`);
  child.kill('SIGKILL');
  await within(10_000, new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve))), 'child exit');
  return child.pid;
}

test('ls fits 80 columns (or COLUMNS): columns left out, then long names shortened, with a note; --wide keeps all', async () => {
  const { name: longName } = channelObject('cli-a-rather-long-name-to-see-it-shortened');
  const variable = track(uniqueName('cli-var'));
  const vshm = SharedMemory.open(variable, 0o600, { mode: 'excl' });
  handles.push(vshm);
  new Channel.SingleBuffered.Variable(vshm, { capacity: 200 }); // the longest kind
  const mutexName = track(uniqueName('cli-mtx'));
  const mshm = SharedMemory.open(mutexName, 0o600, { mode: 'excl' });
  handles.push(mshm);
  mshm.size = 64;
  const dead = await lockAndDie(mutexName); // the longest state
  const width = (out) => Math.max(...out.split('\n').map((l) => l.length));

  let r = cli(['ls']);
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.ok(width(r.stdout) <= 80, `at most 80 columns, got ${width(r.stdout)}:\n${r.stdout}`);
  let lines = r.stdout.split('\n');
  assert.match(lines[0], /^NAME\s+KIND\s+STATE\s+PROCESSES$/, 'the columns that always stay');
  assert.ok(lines.some((l) => new RegExp(`Mutex\\s+locked by ${dead} \\(dead\\)`).test(l)), r.stdout);
  const cut = lines.map((l) => l.split(' ')[0]).find((n) => n.includes('…') && n.endsWith(longName.slice(-8)));
  assert.ok(cut, `the long name is shortened in the middle, its end (pid and random part) kept:\n${r.stdout}`);
  assert.ok(cut.length < longName.length && longName.startsWith(cut.slice(0, cut.indexOf('…'))), cut);
  assert.match(r.stderr, /^note: long names are shortened with '…' to fit 80 columns; --wide or --json shows them whole$/m);

  r = cli(['ls'], { env: { COLUMNS: '400' } });
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.match(r.stdout.split('\n')[0], /^NAME\s+SIZE\s+OWNER\s+MODE\s+AGE\s+KIND\s+DEPTH\s+WIDTH\s+QUEUED\s+STATE\s+PROCESSES$/);
  assert.ok(r.stdout.includes(`${longName} `), 'names whole when there is room');
  assert.not.match(r.stderr, /shortened/);

  r = cli(['ls', '--wide']);
  assert.ok(r.stdout.includes(`${longName} `));
  assert.match(r.stdout.split('\n')[0], /DEPTH\s+WIDTH\s+QUEUED/);
  assert.not.match(r.stderr, /shortened/);
});

test('ls says nothing about processes it could not inspect unless it matters: as root, never', async () => {
  const { name } = channelObject();
  const r = cli(['ls']);
  assert.is(r.code, EXIT.OK, r.stderr);
  if (process.getuid?.() === 0) assert.not.match(r.stderr, /could not be inspected/);
  void name;

  // The rule, on reports: only objects of this library that show no process and that
  // other users may open (their own, or mode bits 077) can be in use unseen.
  const { unreadableNote } = await import('../dist/cli/commands/ls.js');
  const me = process.getuid?.() ?? 0;
  const report = (n, { uid = me, mode = '600', structure = {}, processes = [] } = {}) => ({ name: n, uid, mode, structure, processes });
  const scan = { byInode: new Map(), unreadable: [1] };
  assert.is(unreadableNote([report('/mine')], { ...scan, unreadable: [] }), null, 'every process was read');
  assert.is(unreadableNote([report('/mine'), report('/used', { mode: '666', processes: [{ pid: 5 }] }), report('/plain', { mode: '666', structure: null })], scan), null, 'nothing another user could have open unseen');
  assert.is(
    unreadableNote([report('/mine'), report('/open', { mode: '660' }), report('/theirs', { uid: me + 1 })], scan),
    '/open, /theirs show no processes, but other users may open them, and process 1 could not be inspected (permission denied; root sees all)',
  );
  assert.match(unreadableNote(['/a', '/b', '/c', '/d'].map((n) => report(n, { mode: '644' })), { ...scan, unreadable: [1, 2, 3, 4, 5, 6] }), /^4 objects show no processes, .* and 6 processes could not be inspected/);
});

test('ls as another user (run as root): one note when a shared object of this library may be used unseen', async () => {
  if (process.getuid?.() !== 0) return console.log('  (skipped: needs root to run the command as nobody)');
  const readable = spawnSync(process.execPath, ['-e', 'require("fs").accessSync(process.argv[1])', CLI], { uid: 65534, gid: 65534, timeout: 30_000 });
  if (readable.status !== 0) return console.log('  (skipped: nobody cannot read this checkout, e.g. one cloned into a private temporary folder)');
  const { shm } = channelObject(); // mapped by this (root) process, which nobody cannot inspect
  const { fchmodSync } = await import('node:fs');
  fchmodSync(shm.fd, 0o644); // readable by others: one of their processes could use it
  const r = spawnSync(process.execPath, [CLI, 'ls'], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 30_000, env: { ...process.env, COLUMNS: '' } });
  assert.is(r.status, EXIT.OK, r.stderr);
  const notes = r.stderr.split('\n').filter((l) => l.includes('could not be inspected'));
  assert.is(notes.length, 1, `one note:\n${r.stderr}`);
  assert.match(notes[0], /^note: .* shows? no processes, but other users may open (it|them), and .* could not be inspected \(permission denied; root sees all\)$/);
});

test('ls and inspect never modify what they read', () => {
  const { name } = channelObject();
  const plain = plainObject('some bytes that are not a header');
  const snapshot = (n) => {
    const st = statSync(`/dev/shm${n}`);
    return { bytes: readFileSync(`/dev/shm${n}`), times: [st.mtimeMs, st.ctimeMs, st.size, st.mode] };
  };
  const before = [snapshot(name), snapshot(plain)];
  assert.is(cli(['ls', '--json']).code, EXIT.OK);
  assert.is(cli(['inspect', name]).code, EXIT.OK);
  assert.is(cli(['inspect', plain]).code, EXIT.NOT_FOUND);
  const after = [snapshot(name), snapshot(plain)];
  for (const i of [0, 1]) {
    assert.ok(after[i].bytes.equals(before[i].bytes), 'same bytes');
    assert.equal(after[i].times, before[i].times, 'same times, size and mode');
  }
});

// ---- inspect ---------------------------------------------------------------------

test('inspect: a channel header and counters', () => {
  const { name, ch } = channelObject();
  ch.recvSync();
  const r = cli(['inspect', name.slice(1)]); // 'name' without the slash works too
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.is(r.stderr, '');
  const field = (k) => new RegExp(`^${k}\\s+(.*)$`, 'm').exec(r.stdout)?.[1] ?? assert.unreachable(`no '${k}' in:\n${r.stdout}`);
  assert.match(field('object'), new RegExp(`^${name}, 512 B \\(512 bytes\\), owner \\S+, rw-------, age \\d+s$`));
  assert.is(field('structure'), 'Buffered.Fixed(depth 4, width 32) at offset 0, 512 bytes');
  assert.is(field('state'), 'open');
  assert.is(field('depth'), '4');
  assert.is(field('width'), '32 bytes');
  assert.is(field('sent'), '2');
  assert.is(field('received'), '1');
  assert.is(field('queued'), '1 of 4');
  assert.is(field('waiting'), '0 to send, 0 to receive');
  assert.is(field('in progress'), 'none');
  assert.is(field('initialised by'), `${process.pid} (alive)`);
  assert.match(field('processes'), new RegExp(`${process.pid} \\(node\\)`));
});

test('inspect --json: the same report as ls --json, for one object', () => {
  const { name, ch } = channelObject();
  ch.close();
  const r = cli(['inspect', name, '--json']);
  assert.is(r.code, EXIT.OK, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.is(report.name, name);
  assert.is(report.structure.closed, true);
  assert.is(report.structure.queued, 2);
});

test('inspect: a mutex tells one story: free, locked by a live or a dead holder, and deaths counted at takeover', async () => {
  const name = track(uniqueName('cli-mtx'));
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  handles.push(shm);
  shm.size = 64;
  const mutex = new Mutex(Region.map(shm, 0, 64));
  let r = cli(['inspect', name]);
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.match(r.stdout, /^structure\s+Mutex at offset 0, 64 bytes$/m);
  assert.match(r.stdout, /^state\s+free$/m);
  assert.match(r.stdout, /^waiting\s+0 for the lock$/m);
  assert.match(r.stdout, /^deaths\s+0 \(holders that died holding it, counted at takeover\)$/m);
  mutex.lock();
  r = cli(['inspect', name]);
  mutex.unlock();
  assert.match(r.stdout, new RegExp(`^state\\s+locked by ${process.pid} \\(alive\\)$`, 'm'));
  assert.not.match(r.stdout, /^holder/m, 'the holder is told once, in the state');

  // A holder that died holding it: it still holds the lock, and its death is counted
  // when the next locker takes over.
  const dead = await lockAndDie(name);
  r = cli(['inspect', name, '--json']);
  const s = JSON.parse(r.stdout).structure;
  assert.is(s.type, 'mutex');
  assert.is(s.lockHolder, dead);
  assert.is(s.lockHolderAlive, false);
  assert.is(s.deaths, 0);
  r = cli(['inspect', name]);
  assert.match(r.stdout, new RegExp(`^state\\s+locked by ${dead} \\(dead; the next locker takes it over\\)$`, 'm'));
  assert.match(r.stdout, new RegExp(`^deaths\\s+0, not yet counting ${dead} \\(a death is counted at takeover\\)$`, 'm'));
  for (const line of r.stdout.split('\n').filter((l) => /^(state|waiting|deaths) /.test(l))) assert.ok(line.length <= 80, `fits 80 columns: ${line}`);
  assert.not.match(r.stdout, /gone/);
  const ls = cli(['ls', '--wide']).stdout.split('\n').find((l) => l.startsWith(`${name} `));
  assert.match(ls, new RegExp(`Mutex\\s.*\\slocked by ${dead} \\(dead\\)`));

  assert.throws(() => mutex.lock(), (err) => err.code === 'ERR_SHM_OWNER_DEAD');
  mutex.unlock();
  r = cli(['inspect', name]);
  assert.match(r.stdout, /^state\s+free$/m);
  assert.match(r.stdout, /^deaths\s+1 \(holders that died holding it, counted at takeover\)$/m);
});

test("inspect of an object that is not the library's: exit code 3 and one clear line", () => {
  const garbage = plainObject('GARBAGE!');
  let r = cli(['inspect', garbage]);
  assert.is(r.code, EXIT.NOT_FOUND);
  assert.is(r.stdout, '');
  oneErrorLine(r, new RegExp(`^concurrent-shm: '${garbage}' holds no concurrent-shm structure at offset 0 \\(found 0x[0-9a-f]{8} where the magic number`));

  const zeros = plainObject();
  r = cli(['inspect', zeros]);
  assert.is(r.code, EXIT.NOT_FOUND);
  oneErrorLine(r, new RegExp(`'${zeros}' holds no concurrent-shm structure at offset 0 \\(its header bytes are all zero\\)`));

  const tiny = plainObject('', 10);
  r = cli(['inspect', tiny]);
  assert.is(r.code, EXIT.NOT_FOUND);
  oneErrorLine(r, /the object is 10 bytes long, too short for a 64-byte header/);

  const { name } = channelObject();
  r = cli(['inspect', name, '--offset', '16']);
  assert.is(r.code, EXIT.NOT_FOUND);
  oneErrorLine(r, new RegExp(`'${name}' holds no concurrent-shm structure at offset 16`));
});

test('inspect of a missing object: exit code 3', () => {
  const name = uniqueName('cli-missing');
  const r = cli(['inspect', name]);
  assert.is(r.code, EXIT.NOT_FOUND);
  oneErrorLine(r, new RegExp(`^concurrent-shm: no shared memory object '${name}'$`));
});

test('inspect --watch refreshes until SIGINT, then exits 0', async () => {
  const { name, ch } = channelObject();
  const child = spawn(process.execPath, [CLI, 'inspect', name, '--watch', '--interval', '50'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const blocks = () => out.split('\n\n').filter((b) => b.includes('structure'));
  await within(15_000, (async () => { while (blocks().length < 2) await new Promise((r) => setTimeout(r, 10)); })(), 'two refreshes');
  ch.sendSync('three');
  await within(15_000, (async () => { while (!/^sent\s+3 \(\d+\/s\)$/m.test(out)) await new Promise((r) => setTimeout(r, 10)); })(), 'the new count');
  assert.match(out, /^updated\s+\d\d:\d\d:\d\d \(every 50 ms; Ctrl-C to stop\)$/m);
  child.kill('SIGINT');
  const code = await within(10_000, new Promise((resolve) => child.once('exit', (c) => resolve(c))), 'exit after SIGINT');
  assert.is(code, EXIT.OK, err);
  assert.is(err, '');
});

test('inspect --watch --json: one JSON line per refresh; the object removed ends it with code 3', async () => {
  const { name } = channelObject();
  const child = spawn(process.execPath, [CLI, 'inspect', name, '--watch', '--json', '--interval', '20'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  await within(15_000, (async () => { while (out.split('\n').length < 3) await new Promise((r) => setTimeout(r, 10)); })(), 'two lines');
  const first = JSON.parse(out.split('\n')[0]);
  assert.is(first.name, name);
  assert.type(first.time, 'string');
  SharedMemory.delete(name);
  const code = await within(10_000, new Promise((resolve) => child.once('exit', (c) => resolve(c))), 'exit after removal');
  assert.is(code, EXIT.NOT_FOUND);
  assert.match(err, new RegExp(`no shared memory object '${name}'`));
});

test('inspect through the library (the path of OSes without /dev/shm): same report; ls says it cannot list', () => {
  const { name } = channelObject();
  const env = { CONCURRENT_SHM_CLI_READER: 'map' };
  let r = cli(['inspect', name, '--json'], { env });
  assert.is(r.code, EXIT.OK, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.is(report.path, null);
  assert.is(report.structure.kind, 'Buffered.Fixed');
  assert.is(report.structure.queued, 2);
  assert.is(report.processes, null);
  assert.match(cli(['inspect', name], { env }).stdout, /^processes\s+unknown on this OS$/m);
  r = cli(['inspect', plainObject('xyz')], { env });
  assert.is(r.code, EXIT.NOT_FOUND);
  r = cli(['inspect', uniqueName('cli-missing')], { env });
  assert.is(r.code, EXIT.NOT_FOUND);
  oneErrorLine(r, /no shared memory object/);
  r = cli(['ls'], { env });
  assert.is(r.code, EXIT.FAILED);
  oneErrorLine(r, /listing shared memory objects is not possible on /);
  r = cli(['rm', '--stale', name, '--yes'], { env });
  assert.is(r.code, EXIT.FAILED);
  assert.ok(existsSync(`/dev/shm${name}`));
});

// ---- rm --------------------------------------------------------------------------

test('rm removes objects by name; a missing one is reported with exit code 3, the others still removed', () => {
  const a = plainObject();
  const b = plainObject();
  const missing = uniqueName('cli-missing');
  let r = cli(['rm', a]);
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.is(r.stdout, `removed ${a}\n`);
  assert.not.ok(existsSync(`/dev/shm${a}`));
  r = cli(['rm', missing, b.slice(1)]);
  assert.is(r.code, EXIT.NOT_FOUND);
  assert.is(r.stdout, `removed ${b}\n`);
  oneErrorLine(r, new RegExp(`^concurrent-shm rm: no shared memory object '${missing}'$`));
  assert.not.ok(existsSync(`/dev/shm${b}`));
});

test('rm --stale removes a dead object, keeps one a live process maps, and never touches other objects', async () => {
  const dead = leaveBehind(uniqueName('cli-dead'));
  const live = track(uniqueName('cli-live'));
  const child = await startChild(`
const shm = lib.SharedMemory.open(${JSON.stringify(live)}, 0o600, { mode: 'excl' });
const ch = new lib.Channel.Buffered.Variable(shm, { depth: 2, capacity: 16 });
shm.close(); // only the mapping is left
console.log('ready');
setInterval(() => {}, 1000);`);
  const plain = plainObject();

  // Without a terminal and without --yes: refused, nothing removed.
  let r = cli(['rm', '--stale', dead, live, plain]);
  assert.is(r.code, EXIT.USAGE);
  oneErrorLine(r, /^concurrent-shm rm: refusing to remove 1 object\(s\) without confirmation: standard input is not a terminal \(pass --yes\)$/);
  assert.match(r.stdout, new RegExp(`^  ${dead}  SingleBuffered\\.Variable\\(capacity 200\\)`, 'm'));
  assert.ok(existsSync(`/dev/shm${dead}`));

  r = cli(['rm', '--stale', '--yes', dead, live, plain]);
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.match(r.stdout, new RegExp(`^removed ${dead}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^keeping ${live}: in use by ${child.pid}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^keeping ${plain}: not a structure of this library`, 'm'));
  assert.not.ok(existsSync(`/dev/shm${dead}`), 'the dead object is gone');
  assert.ok(existsSync(`/dev/shm${live}`), 'the live object stays');
  assert.ok(existsSync(`/dev/shm${plain}`), 'the foreign object stays');

  // Once its process is gone, the live one is stale too.
  child.kill('SIGKILL');
  await within(10_000, new Promise((resolve) => child.once('exit', resolve)), 'child exit');
  r = cli(['rm', '--stale', '-y', live]);
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.match(r.stdout, new RegExp(`^removed ${live}$`, 'm'));
  assert.not.ok(existsSync(`/dev/shm${live}`));

  r = cli(['rm', '--stale', '-y', plain]);
  assert.is(r.code, EXIT.OK);
  assert.match(r.stdout, /no stale objects/);
  r = cli(['rm', '--stale', '-y', uniqueName('cli-missing')]);
  assert.is(r.code, EXIT.NOT_FOUND);
});

test('rm --stale keeps an object this process holds open without mapping it', () => {
  const name = leaveBehind(uniqueName('cli-open'));
  const shm = SharedMemory.open(name, 0, { mode: 'open' });
  handles.push(shm);
  const r = cli(['rm', '--stale', '--yes', name]);
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.match(r.stdout, new RegExp(`^keeping ${name}: in use by ${process.pid}$`, 'm'));
  assert.ok(existsSync(`/dev/shm${name}`));
});

// ---- bench, demo -----------------------------------------------------------------

test('bench --help lists every transport id; an unknown transport or a bad --load is a usage error of bench', async () => {
  const { TRANSPORT_FILES } = await import('../bench/lib/transports.js');
  const r = cli(['bench', '--help']);
  assert.is(r.code, EXIT.OK);
  assert.match(r.stdout, /--quick/);
  assert.match(r.stdout, /--svg FILE/);
  assert.match(r.stdout, /--load N/);
  for (const file of TRANSPORT_FILES) {
    const id = file.replace(/\.js$/, '');
    assert.match(r.stdout, new RegExp(`^ +${id} `, 'm'), `--help lists ${id}`);
  }
  const bad = cli(['bench', '--only', 'no-such-transport']);
  assert.is(bad.code, EXIT.USAGE);
  oneErrorLine(bad, /^concurrent-shm bench: unknown transport id\(s\): no-such-transport \(known: bare-flag, /);
  for (const load of ['x', '1.5', '1000']) {
    const r2 = cli(['bench', '--load', load, '--only', 'bare-flag']);
    assert.is(r2.code, EXIT.USAGE, `--load ${load}`);
    oneErrorLine(r2, /^concurrent-shm bench: --load must be/);
  }
});

/** Pids of the busy loops of `bench --load` started by process `parent`. */
function loadLoops(parent) {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    const at = argv.indexOf('concurrent-shm-bench-load');
    if (at >= 0 && argv[at + 1] === String(parent)) pids.push(Number(entry));
  }
  return pids;
}

test('bench --load 1 measures the floor under load and stops the busy loop after the run', () => {
  if (process.platform !== 'linux') return console.log('  (skipped: needs /proc)');
  const child = spawnSync(process.execPath, [CLI, 'bench', '--quick', '--only', 'bare-flag', '--load', '1'], { encoding: 'utf8', timeout: 60_000 });
  assert.is(child.status, EXIT.OK, child.stderr);
  assert.match(child.stdout, /^IPC benchmark \(--quick, --load 1\)/);
  assert.match(child.stdout, /^load: 1 busy loop /m);
  assert.match(child.stdout, /^bare flag \(floor\) +\d.* floor /m);
  assert.match(child.stdout, /ratios need process-send-json in the same run/);
  assert.equal(loadLoops(child.pid), [], 'no busy loop left');
});

test('bench --load: the busy loops end when the command is killed', async () => {
  if (process.platform !== 'linux') return console.log('  (skipped: needs /proc)');
  const child = spawn(process.execPath, [CLI, 'bench', '--quick', '--only', 'bare-flag,process-send-json', '--load', '2'], { stdio: 'ignore' });
  children.push(child);
  const poll = async (done, what) => {
    await within(15_000, (async () => {
      while (!done()) await new Promise((r) => setTimeout(r, 20));
    })(), what);
  };
  await poll(() => loadLoops(child.pid).length === 2, 'two busy loops running');
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  await poll(() => loadLoops(child.pid).length === 0, 'the busy loops ending after their parent was killed');
});

test('demo runs the producer/consumer example with the lines on stdin', () => {
  if (!existsSync(DEMO)) {
    console.log('  (skipped: examples/producer-consumer/main.js does not exist yet)');
    return;
  }
  const r = cli(['demo'], { input: 'first line\nsecond "line"\n' });
  assert.is(r.code, EXIT.OK, r.stderr);
  assert.match(r.stdout, /^received! "first line\\n"$/m);
  assert.match(r.stdout, /^received! "second \\"line\\"\\n"$/m);
});

test('inspect and ls: a Broadcast with its depth, capacity, published count and subscribers', () => {
  const name = track(uniqueName('cli-bc'));
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  handles.push(shm);
  const bc = new Broadcast(shm, { depth: 8, capacity: 100, maxSubscribers: 8, backpressure: true });
  const a = bc.subscribe();
  bc.publishSync('one');
  bc.publishSync('two');
  a.recvSync();
  bc.subscribe();
  const r = cli(['inspect', name]);
  assert.is(r.code, EXIT.OK, r.stderr);
  const field = (k) => new RegExp(`^${k}\\s+(.*)$`, 'm').exec(r.stdout)?.[1] ?? assert.unreachable(`no '${k}' in:\n${r.stdout}`);
  assert.is(field('structure'), `Broadcast(depth 8, capacity 100) at offset 0, ${Broadcast.byteLength({ depth: 8, capacity: 100, maxSubscribers: 8 })} bytes`);
  assert.is(field('state'), 'open');
  assert.is(field('depth'), '8');
  assert.is(field('capacity'), '100 bytes');
  assert.is(field('published'), '2');
  assert.match(field('back-pressure'), /^yes/);
  assert.is(field('subscribers'), `2 of 8: ${process.pid} (alive) at 1 (1 behind), ${process.pid} (alive) at 2 (0 behind)`);
  assert.is(field('waiting'), '0 to publish, 0 to receive');
  const j = cli(['inspect', name, '--json']);
  const s = JSON.parse(j.stdout).structure;
  assert.equal([s.type, s.kind, s.depth, s.width, s.published, s.abandoned, s.backpressure, s.maxSubscribers], ['broadcast', 'Broadcast', 8, 100, 2, 0, true, 8]);
  assert.equal(s.subscribers.map((x) => x.cursor), [1, 2]);
  const ls = JSON.parse(cli(['ls', '--json']).stdout).find((o) => o.name === name);
  assert.is(ls.structure.type, 'broadcast');
  assert.is(ls.structure.subscribers.length, 2);
  bc.close();
  assert.match(cli(['inspect', name]).stdout, /^state\s+closed$/m);
  bc.release();
});

test.run();
