// SharedMemory: open modes, permissions, sizes, OS rules, close/unlink, descriptors.
// These tests pin down POSIX (and Linux) semantics as the library exposes them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import {
  SharedMemory,
  Region,
  MACOS_RULES,
  LINUX_RULES,
  currentRules,
  pageSize,
  InvalidArgumentError,
  OutOfRangeError,
  ShmClosedError,
  ShmExistsError,
  ShmNotFoundError,
  ShmSystemError,
  SizeAlreadySetError,
  SizeInUseError,
} from '../dist/index.js';
import { runFixture, uniqueName } from './helpers.js';
import { collectGarbage, currentUmask, expectThrows, fdTarget, mappingsOf } from './fixtures/common.js';

// Every name a test creates is recorded here and removed after the test, pass or fail.
const names = new Set();
const handles = new Set();
function track(name) {
  names.add(name);
  return name;
}
function open(name, perms = 0o600, options = { mode: 'excl' }) {
  const shm = SharedMemory.open(name, perms, options);
  handles.add(shm);
  return shm;
}
test.after.each(() => {
  for (const shm of handles) shm.close();
  handles.clear();
  for (const name of names) {
    try {
      SharedMemory.delete(name);
    } catch {}
  }
  names.clear();
});

const inDevShm = (name) => existsSync(`/dev/shm${name}`);
/** A name short enough for macOS's 31-byte limit. */
const shortName = () => track(`/cshm-test-${randomBytes(6).toString('hex')}`);

test('excl creates a new object and fails with ShmExistsError on an existing name (create twice fails)', () => {
  const name = track(uniqueName('excl'));
  const a = open(name);
  assert.ok(inDevShm(name), 'the name exists in /dev/shm');
  assert.is(a.name, name);
  assert.is(a.anonymous, false);
  assert.is(a.size, 0, 'a new object is empty');
  a.size = 64;
  Region.map(a, 0, 64).write('first');
  const err = expectThrows(() => open(name), ShmExistsError, /already exists/);
  assert.is(err.errnoName, 'EEXIST');
  // the default mode is excl
  expectThrows(() => open(name, 0o600, undefined), ShmExistsError);
  assert.is(a.size, 64, 'the existing object is untouched');
  assert.is(Region.map(a, 0, 5).read().toString(), 'first');
});

test('create opens an existing object (same bytes) or creates a missing one', () => {
  const name = track(uniqueName('create'));
  assert.not.ok(inDevShm(name));
  const a = open(name, 0o600, { mode: 'create' });
  assert.ok(inDevShm(name), 'create made the object');
  a.size = 4096;
  Region.map(a, 0, 4096).write('shared bytes', 100);
  const b = open(name, 0o600, { mode: 'create' });
  assert.is(b.size, 4096, 'create opened the same object');
  assert.is(Region.map(b, 100, 12).read().toString(), 'shared bytes');
  assert.is(b.key, a.key, 'both handles reach the same inode');
});

test('open fails with ShmNotFoundError on a missing name and creates nothing', () => {
  const name = track(uniqueName('open'));
  const err = expectThrows(() => open(name, 0o600, { mode: 'open' }), ShmNotFoundError, /does not exist/);
  assert.is(err.shmName, name);
  assert.not.ok(inDevShm(name), 'open did not create the object');
  const a = open(name);
  a.size = 10;
  const b = open(name, 0o600, { mode: 'open' });
  assert.is(b.size, 10, 'open finds an existing object');
});

test('anon leaves no name in /dev/shm, generates a name when none is given, and still works', () => {
  const a = open(undefined, 0o600, { mode: 'anon' });
  const b = open(null, 0o600, { mode: 'anon' });
  assert.ok(a.anonymous);
  assert.match(a.name, /^\/[^/]+$/, 'a generated name is a valid POSIX name');
  assert.ok(Buffer.byteLength(a.name) <= 31, 'the generated name fits macOS limit');
  assert.is.not(a.name, b.name, 'generated names are unique');
  assert.not.ok(inDevShm(a.name), 'the generated name was unlinked at once');
  assert.not.ok(inDevShm(b.name));
  a.size = 4096;
  b.size = 4096;
  Region.map(a, 0, 4096).write('a');
  Region.map(b, 0, 4096).write('b');
  assert.is(Region.map(a, 0, 1).read().toString(), 'a', 'two anonymous objects are distinct');
  a.unlink(); // no name to remove: does nothing
  assert.is(a.size, 4096);

  const given = track(uniqueName('anon'));
  const c = open(given, 0o600, { mode: 'anon' });
  assert.is(c.name, given);
  assert.ok(c.anonymous);
  assert.not.ok(inDevShm(given), 'a given name is unlinked at once too');
  // the name is free again
  open(given).close();
});

test('permission bits are applied, less the umask', () => {
  const umask = currentUmask();
  for (const perms of [0o600, 0o640, 0o644, 0o666, 0o400, 0o000]) {
    const name = track(uniqueName('perm'));
    const shm = open(name, perms);
    assert.is(shm.stat().mode & 0o777, perms & ~umask, `perms 0o${perms.toString(8)}, umask 0o${umask.toString(8)}`);
  }
  // the default is 0o600
  const name = track(uniqueName('perm'));
  const shm = SharedMemory.open(name);
  handles.add(shm);
  assert.is(shm.stat().mode & 0o777, 0o600 & ~umask);
  // opening an existing object with other bits does not change them
  open(name, 0o666, { mode: 'create' });
  assert.is(shm.stat().mode & 0o777, 0o600 & ~umask);
});

test('size: exact on Linux, can be set again, shrinks and grows, new bytes read zero', () => {
  const name = track(uniqueName('size'));
  const shm = open(name);
  assert.is(shm.size, 0);
  shm.size = 100;
  assert.is(shm.size, 100, 'no rounding to the page size');
  shm.setSize(5000);
  assert.is(shm.size, 5000, 'set again');
  const r = Region.map(shm, 0, 5000);
  r.write(Buffer.alloc(5000, 0xab));
  r.unmap();
  shm.setSize(10);
  assert.is(shm.size, 10, 'shrunk');
  shm.setSize(3 * pageSize + 7);
  assert.is(shm.size, 3 * pageSize + 7, 'grown');
  const whole = Region.map(shm, 0, shm.size);
  const all = whole.read();
  whole.unmap();
  assert.equal([...all.subarray(0, 10)], new Array(10).fill(0xab), 'bytes below the shrink point are kept');
  assert.ok(all.subarray(10).every((b) => b === 0), 'bytes past the old end read zero after growing');
  // another handle sees the size (size reads fstat every time)
  const other = open(name, 0o600, { mode: 'open' });
  other.size = 42;
  assert.is(shm.size, 42);
  shm.setSize(0);
  assert.is(shm.size, 0);
});

test('reserve: growing allocates the memory at once; { reserve: false } leaves the object sparse', () => {
  const MiB = 1 << 20;
  const a = open(track(uniqueName('rsv')));
  a.size = MiB;
  assert.ok(a.stat().blocks * 512 >= MiB, `reserved: ${a.stat().blocks * 512} bytes allocated for ${MiB}`);
  a.setSize(3 * MiB);
  assert.ok(a.stat().blocks * 512 >= 3 * MiB, 'growing again reserves the new part');

  const b = open(track(uniqueName('sparse')));
  b.setSize(MiB, { reserve: false });
  assert.is(b.size, MiB);
  assert.is(b.stat().blocks, 0, 'nothing allocated');
  Region.map(b, 0, 1).write('x');
  const used = b.stat().blocks * 512;
  assert.ok(used > 0 && used < MiB, `one written page allocated (${used} bytes)`);
});

test('shrinking below a live mapping throws SizeInUseError and changes nothing', () => {
  const name = track(uniqueName('inuse'));
  const shm = open(name);
  shm.size = 4 * pageSize;
  const r = Region.map(shm, pageSize + 10, 100); // holds bytes up to pageSize + 110
  r.write('kept');
  const err = expectThrows(() => shm.setSize(pageSize + 109), SizeInUseError, /cannot shrink .* SIGBUS/);
  assert.is(err.code, 'ERR_SHM_SIZE_IN_USE');
  assert.is(shm.size, 4 * pageSize, 'size unchanged');
  // through another handle on the same object: same answer
  const other = open(name, 0o600, { mode: 'open' });
  expectThrows(() => other.setSize(0), SizeInUseError);
  assert.is(shm.size, 4 * pageSize);
  assert.is(r.read(0, 4).toString(), 'kept');
  // down to the end of the mapping is allowed
  shm.setSize(pageSize + 110);
  assert.is(shm.size, pageSize + 110);
  // a slice holds the mapping as well; once unmapped, shrinking is free
  const s = r.slice(50, 60);
  expectThrows(() => shm.setSize(pageSize), SizeInUseError);
  s.unmap();
  shm.setSize(0);
  assert.is(shm.size, 0);
});

test('MACOS_RULES injected: size rounds up to the page, a second set throws before any change, mapping past the end is EINVAL', () => {
  const name = shortName();
  const shm = open(name, 0o600, { mode: 'excl', rules: MACOS_RULES });
  assert.is(shm.rules, MACOS_RULES);
  shm.size = 100;
  assert.is(shm.size, pageSize, 'rounded up to the page size');
  const err = expectThrows(() => (shm.size = 3 * pageSize), SizeAlreadySetError, /only once/);
  assert.is(err.code, 'ERR_SHM_SIZE_ALREADY_SET');
  assert.is(shm.size, pageSize, 'the second set changed nothing');
  expectThrows(() => shm.setSize(pageSize), SizeAlreadySetError, undefined, 'even to the same size');
  // another handle with the macOS rules on an object that already has a size
  const other = open(name, 0o600, { mode: 'open', rules: MACOS_RULES });
  expectThrows(() => other.setSize(2 * pageSize), SizeAlreadySetError);
  assert.is(shm.size, pageSize);

  const before = mappingsOf(name).length;
  expectThrows(() => Region.map(shm, 0, pageSize + 1), OutOfRangeError, /only \d+ bytes long/);
  const einval = expectThrows(() => Region.map(shm, 0, 2 * pageSize, { unchecked: true }), ShmSystemError, /EINVAL/);
  assert.is(einval.errnoName, 'EINVAL');
  assert.is(einval.errno, 22);
  assert.is(einval.syscall, 'mmap');
  assert.is(einval.shmName, name);
  assert.is(mappingsOf(name).length, before, 'nothing was mapped');
  // within the rounded size, mapping works
  const r = Region.map(shm, 0, pageSize);
  r.write('ok', pageSize - 2);
  assert.is(r.read(pageSize - 2).toString(), 'ok');

  // macOS names are at most 31 bytes, counting the slash
  expectThrows(() => SharedMemory.open(track(`/${'a'.repeat(31)}`), 0o600, { rules: MACOS_RULES }), InvalidArgumentError, /31/);
  // the size can be set to its first value once even through setSize(0) first
  const z = open(shortName(), 0o600, { mode: 'excl', rules: MACOS_RULES });
  z.setSize(0);
  expectThrows(() => z.setSize(10), SizeAlreadySetError);
});

test('LINUX_RULES are the rules of this machine', () => {
  assert.is(currentRules, LINUX_RULES);
  assert.ok(pageSize >= 4096 && (pageSize & (pageSize - 1)) === 0, `page size ${pageSize} is a power of two`);
  const shm = open(track(uniqueName('rules')));
  assert.is(shm.rules, LINUX_RULES);
});

test('close is idempotent; use after close throws ShmClosedError; mappings stay valid after close', () => {
  const name = track(uniqueName('close'));
  const shm = open(name);
  shm.size = 4096;
  const r = Region.map(shm, 0, 4096);
  const fd = shm.fd;
  assert.not.ok(shm.closed);
  shm.close();
  assert.ok(shm.closed);
  shm.close(); // harmless
  assert.is(fdTarget(fd), null, 'the descriptor is closed');
  for (const [what, fn] of [
    ['size', () => shm.size],
    ['fd', () => shm.fd],
    ['setSize', () => shm.setSize(10)],
    ['size =', () => (shm.size = 10)],
    ['stat', () => shm.stat()],
    ['Region.map', () => Region.map(shm, 0, 1)],
    ['fork', () => shm.fork(new URL('./fixtures/no-inherit.js', import.meta.url))],
  ]) {
    const err = expectThrows(fn, ShmClosedError, /closed/, what);
    assert.is(err.code, 'ERR_SHM_CLOSED');
    assert.ok(err.message.includes(name), `${what}: the message names the object`);
  }
  // the mapping made before close still reaches the object
  r.write('after close', 10);
  const again = open(name, 0o600, { mode: 'open' });
  assert.is(Region.map(again, 10, 11).read().toString(), 'after close');
  Region.map(again, 0, 5).write('hello');
  assert.is(r.read(0, 5).toString(), 'hello');
  // name and unlink still work on a closed handle
  assert.is(shm.name, name);
  shm.unlink();
  assert.not.ok(inDevShm(name));
});

test('unlink and SharedMemory.delete remove the name; reopen after unlink fails; open handles keep the object', () => {
  const name = track(uniqueName('unlink'));
  const shm = open(name);
  shm.size = 4096;
  const r = Region.map(shm, 0, 4096);
  shm.unlink();
  assert.not.ok(inDevShm(name), 'the name is gone');
  expectThrows(() => open(name, 0o600, { mode: 'open' }), ShmNotFoundError, undefined, 'reopen after unlink');
  expectThrows(() => shm.unlink(), ShmNotFoundError, /does not exist/, 'unlink twice');
  // the object lives on through the open descriptor and the mapping
  assert.is(shm.size, 4096);
  r.write('still here');
  assert.is(Region.map(shm, 0, 10).read().toString(), 'still here');
  // the name is free for a new, different object
  const fresh = open(name);
  assert.is(fresh.size, 0);
  assert.is.not(fresh.key, shm.key);
  SharedMemory.delete(name);
  assert.not.ok(inDevShm(name));
  const err = expectThrows(() => SharedMemory.delete(name), ShmNotFoundError);
  assert.is(err.syscall, 'shm_unlink');
  expectThrows(() => SharedMemory.delete('bad'), InvalidArgumentError);
});

test('fromFd adopts a descriptor of the object; closing it leaves the original open', () => {
  const name = track(uniqueName('fromfd'));
  const shm = open(name);
  shm.size = 8192;
  Region.map(shm, 0, 8192).write('through the original', 4000);
  const fd = openSync(`/dev/shm${name}`, 'r+');
  const adopted = SharedMemory.fromFd(fd, name);
  handles.add(adopted);
  assert.is(adopted.fd, fd);
  assert.is(adopted.name, name);
  assert.is(adopted.anonymous, false);
  assert.is(adopted.size, 8192);
  assert.is(adopted.key, shm.key);
  assert.is(Region.map(adopted, 4000, 20).read().toString(), 'through the original');
  Region.map(adopted, 0, 3).write('abc');
  assert.is(Region.map(shm, 0, 3).read().toString(), 'abc');
  adopted.close();
  assert.is(fdTarget(fd), null, 'the adopted descriptor is owned: close() closed it');
  assert.is(shm.size, 8192, 'the original descriptor is still open');

  const fd2 = openSync(`/dev/shm${name}`, 'r+');
  const nameless = SharedMemory.fromFd(fd2);
  handles.add(nameless);
  assert.is(nameless.name, `fd:${fd2}`);
  assert.ok(nameless.anonymous, 'adopted without a name: treated as anonymous');
  nameless.unlink(); // nothing to unlink
  assert.ok(inDevShm(name));
});

test('fromFd rejects a non-integer, a closed descriptor and a directory, and changes nothing', () => {
  for (const bad of [1.5, NaN, '3', null, undefined, 2 ** 53]) {
    expectThrows(() => SharedMemory.fromFd(bad), InvalidArgumentError, /fd must be a safe integer/, String(bad));
  }
  expectThrows(() => SharedMemory.fromFd(-1), OutOfRangeError, /non-negative/);
  const closed = openSync('/dev/null', 'r');
  closeSync(closed);
  const err = expectThrows(() => SharedMemory.fromFd(closed), ShmSystemError, /EBADF/);
  assert.is(err.errnoName, 'EBADF');
  const dir = openSync('/tmp', 'r');
  try {
    expectThrows(() => SharedMemory.fromFd(dir), InvalidArgumentError, /not a shared memory object/);
    assert.ok(fstatSync(dir).isDirectory(), 'a rejected descriptor is left open: the caller still owns it');
  } finally {
    closeSync(dir);
  }
});

test('fromFd rejects a descriptor that is not a file (an epoll anon inode), instead of adopting it', async () => {
  // Run in a child: if the library adopts libuv's own epoll descriptor, closing it (or a
  // garbage collection) would break that process's event loop.
  const res = await runFixture('fromfd-anon-inode', [], { timeoutMs: 20_000 });
  assert.is(res.code, 0, res.stderr);
  const out = JSON.parse(res.stdout.trim().split('\n').pop());
  assert.ok(out.fd >= 0, 'the child found an anon inode descriptor');
  assert.is(out.adopted, false, `fromFd(${out.fd} -> ${out.target}) adopted it (size ${out.size}) instead of throwing`);
  assert.is(out.error, 'InvalidArgumentError');
});

test('Symbol.dispose closes the descriptor', () => {
  const shm = open(track(uniqueName('dispose')));
  const fd = shm.fd;
  assert.type(shm[Symbol.dispose], 'function');
  shm[Symbol.dispose]();
  assert.ok(shm.closed);
  assert.is(fdTarget(fd), null);
  shm[Symbol.dispose]();
});

test('a SharedMemory that is garbage collected closes its descriptor', async () => {
  const name = track(uniqueName('gc'));
  let fd = -1;
  (() => {
    const shm = SharedMemory.open(name, 0o600);
    fd = shm.fd;
  })();
  assert.ok(fdTarget(fd)?.endsWith(name), 'open before collection');
  await collectGarbage();
  const target = fdTarget(fd);
  assert.ok(target === null || !target.endsWith(name), `descriptor ${fd} still open after GC: ${target}`);
  assert.throws(() => fstatSync(fd), (e) => e.code === 'EBADF');
  // close() unregisters: a later collection does not close the number again, which by
  // then may belong to another file
  let n = -1;
  (() => {
    const shm = SharedMemory.open(track(uniqueName('gc2')), 0o600);
    n = shm.fd;
    shm.close();
  })();
  const reused = openSync('/dev/null', 'r');
  try {
    assert.is(reused, n, 'the lowest free descriptor number is reused');
    await collectGarbage();
    assert.is(fdTarget(reused), '/dev/null', 'the reused descriptor was left alone');
  } finally {
    closeSync(reused);
  }
});

test('names: up to 255 bytes after the slash, counted in bytes, on Linux', () => {
  const long = track(`/cshm-test-${'x'.repeat(255 - 10)}`);
  assert.is(Buffer.byteLength(long), 256);
  const shm = open(long);
  assert.ok(inDevShm(long));
  shm.close();
  expectThrows(() => open(`${long}y`), InvalidArgumentError, /257 bytes long .* at most 256/);
  // 129 characters but 257 bytes
  expectThrows(() => open(`/${'é'.repeat(128)}`), InvalidArgumentError, /257 bytes/);
});

test.run();
