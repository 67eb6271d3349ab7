// Every error class of src/errors.ts, triggered through the public API (never constructed
// here), in one table: class, base class, stable code, a message that says what and why,
// the system-call details of system errors, and proof that the rejected call changed
// nothing (none of the suite's objects appeared in or left /dev/shm, sizes and bytes
// stayed as they were; other programs' objects come and go and are ignored).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, existsSync, openSync, statfsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as api from '../dist/index.js';
import { uniqueName } from './helpers.js';
import { mappingsOf } from './fixtures/common.js';
import { listSuiteObjects, RUN_ID, SUITE_PREFIX, suiteChanges } from './shm-check.js';

const {
  SharedMemory,
  Region,
  Int8Ptr,
  Int32Ptr,
  Int64Ptr,
  MACOS_RULES,
  ShmError,
  ShmSystemError,
  ShmExistsError,
  ShmNotFoundError,
  ShmPermissionError,
  ShmNoSpaceError,
  InvalidArgumentError,
  OutOfRangeError,
  IntDomainError,
  MisalignedError,
  ShmClosedError,
  RegionUnmappedError,
  SizeAlreadySetError,
  SizeInUseError,
  Channel,
  Mutex,
  ClosedWriteError,
  ChannelClosedError,
  LayoutError,
  OverlapError,
  PayloadTooLargeError,
  TimeoutError,
  OwnerDeadError,
  DeadlockError,
  NotOwnerError,
} = api;


/** Resources of one row, released after it. */
class Ctx {
  names = [];
  handles = [];
  name(tag = 'err') {
    const n = uniqueName(tag);
    this.names.push(n);
    return n;
  }
  /** A short name, for MACOS_RULES (31 bytes at most): "/cshm-test-<run>-<8 hex>", 26 bytes. */
  shortName() {
    const n = `/${SUITE_PREFIX}test-${RUN_ID}-${randomBytes(4).toString('hex')}`;
    this.names.push(n);
    return n;
  }
  shm(size = 0, options = { mode: 'excl' }, name = this.name()) {
    const shm = SharedMemory.open(name, 0o600, options);
    this.handles.push(shm);
    if (size > 0) shm.size = size;
    return shm;
  }
  release() {
    for (const h of this.handles) h.close();
    for (const n of this.names) {
      try {
        SharedMemory.delete(n);
      } catch {}
    }
  }
}

// Helpers for rows.
const sizeStays = (shm, size) => () => assert.is(shm.size, size, 'the size is unchanged');
const absent = (name) => () => assert.not.ok(existsSync(`/dev/shm${name}`), `${name} was not created`);
const notMapped = (shm) => () => assert.is(mappingsOf(shm.name).length, 0, 'nothing was mapped');
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const shmCapacity = (() => {
  const st = statfsSync('/dev/shm');
  return st.blocks * st.bsize;
})();

/**
 * One row per way of triggering an error. `act(ctx)` sets up what the call needs and
 * returns `{ call, unchanged }`; `call` must throw; `unchanged` asserts the state after.
 */
const rows = [
  // ---- system errors -------------------------------------------------------------
  {
    title: "excl on an existing name",
    Class: ShmExistsError,
    message: /^cannot open shared memory '\/cshm-test-[^']+': it already exists \(EEXIST\)$/,
    system: { syscall: 'shm_open', errnoName: 'EEXIST', errno: 17 },
    act(ctx) {
      const name = ctx.name();
      const shm = ctx.shm(123, { mode: 'excl' }, name);
      return { call: () => SharedMemory.open(name, 0o600, { mode: 'excl' }), unchanged: sizeStays(shm, 123), shmName: name };
    },
  },
  {
    title: 'open on a missing name',
    Class: ShmNotFoundError,
    message: /^cannot open shared memory '\/cshm-test-[^']+': it does not exist \(ENOENT\)$/,
    system: { syscall: 'shm_open', errnoName: 'ENOENT', errno: 2 },
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.open(name, 0o600, { mode: 'open' }), unchanged: absent(name), shmName: name };
    },
  },
  {
    title: 'delete of a missing name',
    Class: ShmNotFoundError,
    message: /^cannot delete shared memory '\/cshm-test-[^']+': it does not exist \(ENOENT\)$/,
    system: { syscall: 'shm_unlink', errnoName: 'ENOENT', errno: 2 },
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.delete(name), unchanged: absent(name), shmName: name };
    },
  },
  {
    title: 'open of an object whose permission bits refuse this user',
    Class: ShmPermissionError,
    message: /^cannot open shared memory '\/cshm-test-[^']+': permission denied \(EACCES\)$/,
    system: { syscall: 'shm_open', errnoName: 'EACCES', errno: 13 },
    act(ctx) {
      const name = ctx.name();
      const owner = SharedMemory.open(name, 0o000, { mode: 'excl' });
      ctx.handles.push(owner);
      owner.size = 10;
      // As root the bits are not enforced: act as "nobody" for the call (seteuid keeps the
      // real uid, so root can come back).
      const call = () => {
        if (asRoot) process.seteuid(65534);
        try {
          return SharedMemory.open(name, 0o600, { mode: 'open' });
        } finally {
          if (asRoot) process.seteuid(0);
        }
      };
      return {
        call,
        shmName: name,
        unchanged: () => {
          assert.is(owner.stat().mode & 0o777, 0);
          assert.is(owner.size, 10);
        },
      };
    },
  },
  {
    title: 'growing beyond what /dev/shm can hold (reserve)',
    Class: ShmNoSpaceError,
    message: /^cannot reserve \d+ bytes for shared memory '\/cshm-test-[^']+': no space left for shared memory \(is \/dev\/shm full\?\) \(ENOSPC\)$/,
    system: { syscall: 'posix_fallocate', errnoName: 'ENOSPC', errno: 28 },
    // With no size limit on /dev/shm the reservation would try to take the memory for real.
    skip: shmCapacity === 0 ? '/dev/shm has no size limit' : undefined,
    act(ctx) {
      const shm = ctx.shm(4096);
      return { call: () => shm.setSize(4 * shmCapacity + 4096), unchanged: sizeStays(shm, 4096), shmName: shm.name };
    },
  },
  {
    title: 'map past the end under MACOS_RULES with { unchecked: true }',
    Class: ShmSystemError,
    message: /^cannot map bytes 0\.\.\d+, past the end \(\d+ bytes\) of shared memory '\/cshm-test-[^']+': the system rejected the arguments \(EINVAL\)$/,
    system: { syscall: 'mmap', errnoName: 'EINVAL', errno: 22 },
    act(ctx) {
      const shm = ctx.shm(0, { mode: 'excl', rules: MACOS_RULES }, ctx.shortName());
      shm.size = 1;
      return { call: () => Region.map(shm, 0, shm.size + 1, { unchecked: true }), unchanged: notMapped(shm), shmName: shm.name };
    },
  },
  {
    title: 'fromFd of a closed descriptor',
    Class: ShmSystemError,
    message: /^cannot adopt descriptor 'fd:\d+': the descriptor is not open \(EBADF\)$/,
    system: { syscall: 'fstat', errnoName: 'EBADF', errno: 9 },
    act() {
      const fd = openSync('/dev/null', 'r');
      closeSync(fd);
      return { call: () => SharedMemory.fromFd(fd), unchanged: () => {}, shmName: `fd:${fd}` };
    },
  },

  // ---- argument errors: names (nothing may reach shm_open) ----------------------------
  ...[
    ['', /^invalid shared memory name "": it must start with '\/'/],
    ['noslash', /^invalid shared memory name "noslash": it must start with '\/'/],
    ['/', /^invalid shared memory name "\/": it needs at least one character after '\/'/],
    ['/a/b', /^invalid shared memory name "\/a\/b": it may contain no '\/' after the first character/],
    ['/a\0b', /it may not contain a NUL character/],
    ['/.', /'\.' and '\.\.' are not object names/],
    ['/..', /'\.' and '\.\.' are not object names/],
    [`/${'n'.repeat(256)}`, /it is 257 bytes long and Linux allows at most 256 \(counting the '\/'\)/],
    [`/${'é'.repeat(128)}`, /it is 257 bytes long/],
    [42, /^shared memory name must be a string, got 42$/],
    [null, /^shared memory name must be a string, got null$/],
    [undefined, /^shared memory name must be a string, got undefined$/],
    [{ name: '/x' }, /^shared memory name must be a string, got an object \(Object\)$/],
  ].map(([bad, message]) => ({
    title: `name ${JSON.stringify(bad)}`,
    Class: InvalidArgumentError,
    message,
    act: () => ({ call: () => SharedMemory.open(bad, 0o600, { mode: 'create' }), unchanged: () => {} }),
  })),
  {
    title: 'a name too long for MACOS_RULES (31 bytes)',
    Class: InvalidArgumentError,
    message: /it is 32 bytes long and macOS allows at most 31/,
    act(ctx) {
      const name = `/cshm-test-${'m'.repeat(21)}`;
      ctx.names.push(name);
      return { call: () => SharedMemory.open(name, 0o600, { rules: MACOS_RULES }), unchanged: absent(name) };
    },
  },
  {
    title: 'delete with a bad name',
    Class: InvalidArgumentError,
    message: /^invalid shared memory name "jobs": it must start with '\/'/,
    act: () => ({ call: () => SharedMemory.delete('jobs'), unchanged: () => {} }),
  },

  // ---- argument errors: permissions, modes, options ----------------------------------
  ...[0o1000, -1, 1.5, '0600', null, NaN].map((perms) => ({
    title: `permissions ${String(perms)}`,
    Class: InvalidArgumentError,
    message: /^permissions must be an integer from 0 to 0o777 \(such as 0o600\), got /,
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.open(name, perms, { mode: 'create' }), unchanged: absent(name) };
    },
  })),
  ...['bogus', 'EXCL', 1, ''].map((mode) => ({
    title: `mode ${String(mode)}`,
    Class: InvalidArgumentError,
    message: /^options\.mode must be one of 'excl', 'create', 'open', 'anon', got /,
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.open(name, 0o600, { mode }), unchanged: absent(name) };
    },
  })),
  ...['create', null, [], 7].map((options) => ({
    title: `options ${JSON.stringify(options)}`,
    Class: InvalidArgumentError,
    message: /^options must be an object, got /,
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.open(name, 0o600, options), unchanged: absent(name) };
    },
  })),
  // Unknown option keys are refused (with the valid ones), before any system call.
  {
    title: 'open with a misspelt option key',
    Class: InvalidArgumentError,
    message: /^options has an unknown key "mdoe" \(did you mean 'mode'\?\): the valid keys are 'mode', 'rules'$/,
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.open(name, 0o600, { mdoe: 'anon' }), unchanged: absent(name) };
    },
  },
  {
    title: 'open with an unknown option key',
    Class: InvalidArgumentError,
    message: /^options has an unknown key "size": the valid keys are 'mode', 'rules'$/,
    act(ctx) {
      const name = ctx.name();
      return { call: () => SharedMemory.open(name, 0o600, { mode: 'excl', size: 4096 }), unchanged: absent(name) };
    },
  },
  {
    title: 'fromFd with an option it does not take',
    Class: InvalidArgumentError,
    message: /^options has an unknown key "mode": the valid key is 'rules'$/,
    act(ctx) {
      const shm = ctx.shm(1);
      return { call: () => SharedMemory.fromFd(shm.fd, undefined, { mode: 'open' }), unchanged: () => assert.not.ok(shm.closed) };
    },
  },
  {
    title: 'setSize with a misspelt option key',
    Class: InvalidArgumentError,
    message: /^options has an unknown key "reserved" \(did you mean 'reserve'\?\): the valid key is 'reserve'$/,
    act(ctx) {
      const shm = ctx.shm(100);
      return { call: () => shm.setSize(200, { reserved: false }), unchanged: sizeStays(shm, 100) };
    },
  },
  {
    title: 'Region.map with a misspelt option key',
    Class: InvalidArgumentError,
    message: /^options has an unknown key "Unchecked" \(did you mean 'unchecked'\?\): the valid key is 'unchecked'$/,
    act(ctx) {
      const shm = ctx.shm(100);
      return { call: () => Region.map(shm, 0, 200, { Unchecked: true }), unchanged: notMapped(shm) };
    },
  },
  {
    title: 'fork with a stdio that is neither an array nor one of fork\'s strings',
    Class: InvalidArgumentError,
    message: /^options\.stdio must be an array, 'pipe', 'overlapped', 'inherit' or 'ignore', got "bogus"$/,
    act(ctx) {
      const shm = ctx.shm(1);
      return { call: () => shm.fork(new URL('./fixtures/no-inherit.js', import.meta.url), [], { stdio: 'bogus' }), unchanged: () => {} };
    },
  },
  {
    title: 'fork with options that are not an object',
    Class: InvalidArgumentError,
    message: /^options must be an object, got "pipe"$/,
    act(ctx) {
      const shm = ctx.shm(1);
      return { call: () => shm.fork(new URL('./fixtures/no-inherit.js', import.meta.url), [], 'pipe'), unchanged: () => {} };
    },
  },
  {
    title: 'fork with arguments that are neither an array nor the options',
    Class: InvalidArgumentError,
    message: /^args must be an array of strings or the options, got "child"$/,
    act(ctx) {
      const shm = ctx.shm(1);
      return { call: () => shm.fork(new URL('./fixtures/no-inherit.js', import.meta.url), 'child'), unchanged: () => {} };
    },
  },
  {
    title: 'fromFd of a directory',
    Class: InvalidArgumentError,
    message: /^descriptor \d+ is not a shared memory object and cannot be mapped$/,
    act(ctx) {
      const fd = openSync('/tmp', 'r');
      ctx.handles.push({ close: () => closeSync(fd) });
      return { call: () => SharedMemory.fromFd(fd), unchanged: () => {} };
    },
  },
  {
    title: 'inherited() in a process that inherited nothing',
    Class: InvalidArgumentError,
    message: /^this process inherited no shared memory: start it with shm\.fork\(modulePath\) in the parent$/,
    act: () => ({ call: () => SharedMemory.inherited(), unchanged: () => {} }),
  },

  // ---- sizes -------------------------------------------------------------------------
  ...[
    [1.5, InvalidArgumentError, /^size must be a safe integer, got 1\.5$/],
    [NaN, InvalidArgumentError, /^size must be a safe integer, got NaN$/],
    [2 ** 53, InvalidArgumentError, /^size must be a safe integer, got 9007199254740992$/],
    ['10', InvalidArgumentError, /^size must be a safe integer, got "10"$/],
    [Infinity, InvalidArgumentError, /^size must be a safe integer, got Infinity$/],
    [10n, InvalidArgumentError, /^size must be a safe integer, got 10n$/],
    [-1, OutOfRangeError, /^size must be non-negative, got -1$/],
  ].map(([size, Class, message]) => ({
    title: `size ${String(size)}`,
    Class,
    message,
    act(ctx) {
      const shm = ctx.shm(100);
      return { call: () => shm.setSize(size), unchanged: sizeStays(shm, 100) };
    },
  })),
  {
    title: 'setSize options that are not an object',
    Class: InvalidArgumentError,
    message: /^options must be an object, got "no"$/,
    act(ctx) {
      const shm = ctx.shm(100);
      return { call: () => shm.setSize(200, 'no'), unchanged: sizeStays(shm, 100) };
    },
  },

  // ---- offsets and lengths --------------------------------------------------------------
  ...[
    [[-1, 10], OutOfRangeError, /^offset must be non-negative, got -1$/],
    [[0.5, 10], InvalidArgumentError, /^offset must be a safe integer, got 0\.5$/],
    [['0', 10], InvalidArgumentError, /^offset must be a safe integer, got "0"$/],
    [[0, 0], OutOfRangeError, /^length must be at least 1, got 0$/],
    [[0, -5], OutOfRangeError, /^length must be at least 1, got -5$/],
    [[0, null], InvalidArgumentError, /^length must be a safe integer, got null$/],
    [[2 ** 52, 2 ** 52], OutOfRangeError, /^offset \+ length must be a safe integer/],
    [[0, 4097], OutOfRangeError, /^cannot map bytes 0\.\.4097 of shared memory '[^']+': it is only 4096 bytes long \(set shm\.size first/],
    [[4096, 1], OutOfRangeError, /^cannot map bytes 4096\.\.4097/],
  ].map(([[offset, length], Class, message]) => ({
    title: `Region.map(shm, ${offset}, ${length})`,
    Class,
    message,
    act(ctx) {
      const shm = ctx.shm(4096);
      return { call: () => Region.map(shm, offset, length), unchanged: notMapped(shm) };
    },
  })),
  {
    title: 'Region.map of something that is not a SharedMemory',
    Class: InvalidArgumentError,
    message: /^Region\.map needs a SharedMemory, got an object \(Object\)$/,
    act: () => ({ call: () => Region.map({ fd: 0, size: 10 }, 0, 1), unchanged: () => {} }),
  },
  ...[
    [(r) => r.read(5, 4), OutOfRangeError, /^range 5\.\.4 is outside the region \(length 16\)$/, 'read(5, 4)'],
    [(r) => r.read(0, 17), OutOfRangeError, /^range 0\.\.17 is outside the region \(length 16\)$/, 'read(0, 17)'],
    [(r) => r.read(-1), OutOfRangeError, /^start must be non-negative, got -1$/, 'read(-1)'],
    [(r) => r.slice(8, 20), OutOfRangeError, /^range 8\.\.20 is outside the region/, 'slice(8, 20)'],
    [(r) => r.write('x'.repeat(17)), OutOfRangeError, /^cannot write 17 bytes at 0: the region is 16 bytes long$/, 'write 17 bytes'],
    [(r) => r.write('abc', 14), OutOfRangeError, /^cannot write 3 bytes at 14/, 'write at 14'],
    [(r) => r.write(12345), InvalidArgumentError, /^data must be a string or an ArrayBufferView \(Buffer, Uint8Array, \.\.\.\), got 12345$/, 'write(number)'],
    [(r) => r.write(new ArrayBuffer(2)), InvalidArgumentError, /got an object \(ArrayBuffer\)$/, 'write(ArrayBuffer)'],
    [(r) => r.write('x', 1.5), InvalidArgumentError, /^at must be a safe integer, got 1\.5$/, 'write at 1.5'],
    [(r) => r.asIntPtr(), OutOfRangeError, /^Region length must be 1, 2, 4, or 8 bytes to use as an integer pointer \(it is 16\)$/, 'asIntPtr on 16 bytes'],
    [(r) => r.asUIntPtr(), OutOfRangeError, /^Region length must be 1, 2, 4, or 8 bytes to use as an integer pointer/, 'asUIntPtr on 16 bytes'],
    [(r) => r.asFloatPtr(), OutOfRangeError, /^Region length must be 4 or 8 bytes to use as a float pointer \(it is 16\)$/, 'asFloatPtr on 16 bytes'],
    [(r) => new Int64Ptr(r, 9), OutOfRangeError, /^an Int64 \(8 bytes\) at byte 9 does not fit in a region of 16 bytes$/, 'Int64Ptr at 9'],
    [(r) => new Int32Ptr(r, -4), OutOfRangeError, /^byteOffset must be non-negative, got -4$/, 'Int32Ptr at -4'],
    [(r) => new Int32Ptr(r, '4'), InvalidArgumentError, /^byteOffset must be a safe integer, got "4"$/, "Int32Ptr at '4'"],
    [(r) => new Int32Ptr(r, 0).bit(32), OutOfRangeError, /^bit must be below 32 for an Int32, got 32$/, 'bit(32)'],
    [(r) => new Int64Ptr(r, 0).setBit(64, true), OutOfRangeError, /^bit must be below 64 for an Int64, got 64$/, 'setBit(64)'],
    [(r) => new Int32Ptr(r, 0).write(1.5), InvalidArgumentError, /^an Int32 value must be an integer or a boolean, got 1\.5$/, 'Int32 write 1.5'],
    [(r) => new Int32Ptr(r, 0).write('1'), InvalidArgumentError, /^an Int32 value must be an integer or a boolean, got "1"$/, "Int32 write '1'"],
    [(r) => new Int64Ptr(r, 0).write(2 ** 60), InvalidArgumentError, /is not a safe integer: pass a bigint to an Int64$/, 'Int64 write 2**60'],
    [(r) => new Int64Ptr(r, 0).write(null), InvalidArgumentError, /^an Int64 value must be a bigint, an integer or a boolean, got null$/, 'Int64 write null'],
    [(r) => new api.Float64Ptr(r, 0).write('1'), InvalidArgumentError, /^a Float64 value must be a number, got "1"$/, "Float64 write '1'"],
    [(r) => new Int8Ptr(r, 0).write(128), IntDomainError, /^128 does not fit in an Int8 \(-128\.\.127\)$/, 'Int8 write 128'],
    [(r) => new Int8Ptr(r, 0).write(-129), IntDomainError, /^-129 does not fit in an Int8 \(-128\.\.127\)$/, 'Int8 write -129'],
    [(r) => new api.UInt64Ptr(r, 8).write(2n ** 64n), IntDomainError, /^18446744073709551616n does not fit in a UInt64 \(0\.\.18446744073709551615\)$/, 'UInt64 write 2n**64n'],
    [(r) => new Int32Ptr(r, 1).add(1), MisalignedError, /^atomic operations need an Int32 aligned to 4 bytes; this one is at object offset 1$/, 'Int32Ptr at 1: add'],
    [(r) => new Int64Ptr(r, 4).load(), MisalignedError, /^atomic operations need an Int64 aligned to 8 bytes; this one is at object offset 4$/, 'Int64Ptr at 4: load'],
  ].map(([fn, Class, message, what]) => ({
    title: `region/pointer: ${what}`,
    Class,
    message,
    act(ctx) {
      const shm = ctx.shm(16);
      const r = Region.map(shm, 0, 16);
      r.write(Buffer.from('0123456789abcdef'));
      return {
        call: () => fn(r),
        unchanged: () => {
          assert.is(r.read().toString(), '0123456789abcdef', 'the bytes are unchanged');
          r.unmap();
        },
      };
    },
  })),

  // ---- lifecycle ------------------------------------------------------------------------
  {
    title: 'size of a closed SharedMemory',
    Class: ShmClosedError,
    message: /^cannot stat shared memory '\/cshm-test-[^']+': it is closed$/,
    act(ctx) {
      const shm = ctx.shm(10);
      shm.close();
      return { call: () => shm.size, unchanged: () => assert.ok(shm.closed) };
    },
  },
  {
    title: 'Region.map of a closed SharedMemory',
    Class: ShmClosedError,
    message: /^cannot map shared memory '\/cshm-test-[^']+': it is closed$/,
    act(ctx) {
      const shm = ctx.shm(10);
      shm.close();
      return { call: () => Region.map(shm, 0, 1), unchanged: () => assert.is(mappingsOf(shm.name).length, 0) };
    },
  },
  {
    title: 'read of an unmapped region',
    Class: RegionUnmappedError,
    message: /^region of shared memory '\/cshm-test-[^']+' at offset 8 is unmapped$/,
    act(ctx) {
      const shm = ctx.shm(16);
      const r = Region.map(shm, 8, 8);
      r.unmap();
      return { call: () => r.read(), unchanged: () => assert.not.ok(r.isMapped) };
    },
  },
  {
    title: 'a pointer used after its region was unmapped',
    Class: RegionUnmappedError,
    message: /^pointer at offset 4 of shared memory '\/cshm-test-[^']+' used after its region was unmapped$/,
    act(ctx) {
      const shm = ctx.shm(16);
      const r = Region.map(shm, 0, 16);
      const p = new Int32Ptr(r, 4);
      r.unmap();
      return { call: () => p.write(1), unchanged: () => assert.is(Region.map(shm, 4, 4).asIntPtr().read(), 0) };
    },
  },
  {
    title: 'a second size under MACOS_RULES',
    Class: SizeAlreadySetError,
    message: /^cannot set the size of shared memory '\/cshm-test-[^']+' to 8192: on macOS the size of an object can be set only once, and it is \d+$/,
    act(ctx) {
      const shm = ctx.shm(0, { mode: 'excl', rules: MACOS_RULES }, ctx.shortName());
      shm.size = 1;
      const size = shm.size;
      return { call: () => shm.setSize(8192), unchanged: sizeStays(shm, size) };
    },
  },
  {
    title: 'shrinking below a live mapping',
    Class: SizeInUseError,
    message: /^cannot shrink shared memory '\/cshm-test-[^']+' to 10 bytes: this process has a mapping of bytes 0\.\.100; an access past the new end would crash with SIGBUS$/,
    act(ctx) {
      const shm = ctx.shm(4096);
      const r = Region.map(shm, 50, 50);
      return {
        call: () => shm.setSize(10),
        unchanged: () => {
          assert.is(shm.size, 4096);
          r.unmap();
        },
      };
    },
  },
];

// Errors of channels and the mutex: not available yet. Rows for them go here, in the
// same shape as above, as those parts land. An empty array is expected for now.
// A channel (SingleBuffered.Variable, capacity 4) on a fresh object, and its counters.
function channel(ctx, options = { capacity: 4 }) {
  const shm = ctx.shm();
  const ch = new Channel.SingleBuffered.Variable(shm, options);
  const stats = () => JSON.stringify(ch.stats());
  return { shm, ch, stats };
}
// A mutex at offset 0 of a fresh object.
function mutex(ctx) {
  const shm = ctx.shm(4096);
  const region = Region.map(shm, 0, Mutex.SIZE);
  return { shm, m: new Mutex(region), region };
}
// A pid that certainly belonged to a process that has exited.
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid;

const CHANNEL_AND_MUTEX_ROWS = [
  {
    title: 'sendSync on a closed channel',
    Class: ClosedWriteError,
    message: /^Write to closed channel \(the SingleBuffered.Variable channel at offset 0 of shared memory '\/cshm-/,
    act(ctx) {
      const { shm, ch, stats } = channel(ctx);
      ch.close();
      const before = stats();
      return { call: () => ch.sendSync('x'), unchanged: () => assert.is(stats(), before), shmName: shm.name };
    },
  },
  {
    title: 'recvSync on a closed, empty channel',
    Class: ChannelClosedError,
    message: /^Channel is closed and empty \(the SingleBuffered.Variable channel at offset 0 of shared memory '\/cshm-/,
    act(ctx) {
      const { shm, ch, stats } = channel(ctx);
      ch.close();
      const before = stats();
      return { call: () => ch.recvSync(), unchanged: () => assert.is(stats(), before), shmName: shm.name };
    },
  },
  {
    title: 'Channel.attach where the bytes are all zero',
    Class: LayoutError,
    message: /^no concurrent-shm structure at offset 0 of shared memory '\/cshm-test-[^']+': the bytes there are all zero \(create it first\)$/,
    act(ctx) {
      const shm = ctx.shm(4096);
      return { call: () => Channel.attach(shm), unchanged: () => assert.is(Region.map(shm, 0, 4096).read().every((b) => b === 0), true), shmName: shm.name };
    },
  },
  {
    title: 'a channel over bytes another channel of this process uses',
    Class: OverlapError,
    message: /^a Buffered\.Fixed\(depth 2, width 8\) at bytes 64\.\.448 of shared memory '[^']+' would overlap a SingleBuffered\.Variable\(capacity 4\) at bytes 0\.\.320$/,
    act(ctx) {
      const { shm, stats } = channel(ctx);
      const size = shm.size;
      const before = stats();
      return {
        call: () => new Channel.Buffered.Fixed(shm, { depth: 2, width: 8, offset: 64 }),
        unchanged: () => {
          assert.is(shm.size, size, 'the object did not grow');
          assert.is(stats(), before);
        },
        shmName: shm.name,
      };
    },
  },
  {
    title: 'a message larger than the capacity',
    Class: PayloadTooLargeError,
    message: /^a message of 5 bytes exceeds this SingleBuffered\.Variable channel's capacity of 4 bytes; nothing was sent$/,
    act(ctx) {
      const { shm, ch, stats } = channel(ctx);
      const before = stats();
      return { call: () => ch.sendSync('hello'), unchanged: () => assert.is(stats(), before), shmName: shm.name };
    },
  },
  {
    title: 'recvSync with a timeout on an empty channel',
    Class: TimeoutError,
    message: /^receive on the SingleBuffered\.Variable channel at offset 0 of shared memory '\/cshm-test-[^']+' timed out$/,
    act(ctx) {
      const { shm, ch, stats } = channel(ctx);
      const before = stats();
      return { call: () => ch.recvSync({ timeout: 20 }), unchanged: () => assert.is(stats(), before), shmName: shm.name };
    },
  },
  {
    title: 'lock() of a mutex whose holder died: the caller now holds it',
    Class: OwnerDeadError,
    message: /^the process holding the mutex \(pid \d+\) died; this thread now holds it: repair the data it protects, then unlock\(\)$/,
    act(ctx) {
      const { shm, m, region } = mutex(ctx);
      new Int32Ptr(region, 48).store(deadPid()); // the lock word names a process that is gone
      return {
        call: () => m.lock(),
        // here the call's effect is the point: the mutex is taken over, and usable
        unchanged: () => {
          assert.is(m.holder, process.pid);
          assert.is(m.deaths, 1);
          m.unlock();
          assert.is(m.holder, 0);
        },
        shmName: shm.name,
      };
    },
  },
  {
    title: 'lock() of a mutex this thread holds',
    Class: DeadlockError,
    message: /^this thread already holds the mutex; locking it again would wait forever$/,
    act(ctx) {
      const { shm, m } = mutex(ctx);
      m.lock();
      return {
        call: () => m.lock(),
        unchanged: () => {
          assert.is(m.holder, process.pid, 'still held, once');
          m.unlock();
        },
        shmName: shm.name,
      };
    },
  },
  {
    title: 'unlock() of a mutex this thread does not hold',
    Class: NotOwnerError,
    message: /^cannot unlock the mutex: this thread does not hold it \(holder: none\)$/,
    act(ctx) {
      const { shm, m } = mutex(ctx);
      return { call: () => m.unlock(), unchanged: () => assert.is(m.holder, 0), shmName: shm.name };
    },
  },
  {
    title: 'a value the json codec cannot encode (a bigint)',
    Class: api.EncodeError,
    message: /^cannot encode an object \(Object\) with the json codec: Do not know how to serialize a BigInt; nothing was sent$/,
    act(ctx) {
      const { shm, ch, stats } = channel(ctx, { capacity: 64 });
      const before = stats();
      return { call: () => new api.CodecChannel(ch, 'json').sendSync({ n: 1n }), unchanged: () => assert.is(stats(), before), shmName: shm.name };
    },
  },
  {
    title: 'a message the json codec cannot decode',
    Class: api.DecodeError,
    message: /^cannot decode a message of 1 bytes from the SingleBuffered\.Variable channel at offset 0 with the json codec: .*\(the message was taken from the channel; err\.bytes holds it\)$/,
    act(ctx) {
      const { shm, ch, stats } = channel(ctx, { capacity: 64 });
      ch.sendSync('{');
      const json = new api.CodecChannel(ch, 'json');
      // the call's effect is the point: the message is consumed
      return { call: () => json.recvSync(), unchanged: () => assert.is(ch.stats().queued, 0), shmName: shm.name };
    },
  },
  {
    title: 'recvSync of a Broadcast subscriber overrun by publishers',
    Class: api.LaggedError,
    message: /^this subscriber of the Broadcast\(depth 2, capacity 8\) at offset 0 of shared memory '\/cshm-test-[^']+' was overrun: it missed 3 messages \(overwritten before it read them\); the next receive continues from the oldest message in the ring$/,
    act(ctx) {
      const shm = ctx.shm();
      const bc = new api.Broadcast(shm, { depth: 2, capacity: 8 });
      const sub = bc.subscribe();
      for (let i = 0; i < 5; i++) bc.publishSync(`m${i}`);
      return {
        call: () => sub.recvSync(),
        // the call's effect is the point: the subscriber moved on to the oldest message
        unchanged: () => {
          assert.is(sub.missed, 3);
          assert.is(sub.recvSync({ encoding: 'utf8' }), 'm3');
          bc.release();
        },
        shmName: shm.name,
      };
    },
  },
  // Heap rows (src/heap/).
  ...(() => {
    const heapOf = (ctx) => {
      const shm = ctx.shm();
      const heap = new api.Heap(shm, { size: 65536 });
      ctx.handles.unshift({ close: () => heap.release() });
      const bytes = () => Buffer.from(new Uint8Array(heap.region.mapping.buffer, heap.region.start, heap.byteLength));
      return { shm, heap, bytes };
    };
    const row = (title, Class, message, act) => ({
      title,
      Class,
      message,
      act(ctx) {
        const { shm, heap, bytes } = heapOf(ctx);
        const call = act(heap);
        const before = bytes();
        return { call, unchanged: () => assert.ok(bytes().equals(before), "the heap's bytes are unchanged"), shmName: shm.name };
      },
    });
    return [
      row('heap.malloc larger than any free block', api.HeapFullError, /^cannot allocate 65536 bytes in the Heap at offset 0 of shared memory '[^']+': the largest free block holds \d+ bytes; nothing changed$/, (heap) => () => heap.malloc(65536)),
      row('heap.free of a block freed already', api.NotABlockError, /^free\(\d+\): not a block of the Heap .*no live block starts there .*; nothing changed$/, (heap) => {
        const o = heap.malloc(10);
        heap.malloc(10);
        heap.free(o);
        return () => heap.free(o);
      }),
      row('heap.named with a size larger than the existing block', api.HeapNameError, /^named\("t", 100\): the block of that name has 16 usable bytes, fewer than the 100 asked for$/, (heap) => {
        heap.named('t', 16);
        return () => heap.named('t', 100);
      }),
      {
        title: 'heap.free of a block in which this process still has a channel',
        Class: api.BlockInUseError,
        message: /^free\(\d+\): the block at offset \d+ of the Heap at offset 0 of shared memory '[^']+' still holds a SingleBuffered\.Fixed\(width 8\) of this process at bytes \d+\.\.\d+; release it first; nothing changed$/,
        act(ctx) {
          const { shm, heap, bytes } = heapOf(ctx);
          const o = heap.malloc(api.Channel.byteLength({ depth: 0, width: 8 }));
          const ch = new api.Channel.SingleBuffered.Fixed(shm, { offset: o, width: 8, autosize: false });
          ctx.handles.unshift({ close: () => ch.release() });
          const before = bytes();
          return { call: () => heap.free(o), unchanged: () => assert.ok(bytes().equals(before), "the heap's bytes are unchanged"), shmName: shm.name };
        },
      },
      row('heap.check of a heap whose memory was overwritten', api.HeapCorruptError, /^the Heap at offset 0 of shared memory '[^']+' is corrupt: .*$/, (heap) => {
        const o = heap.malloc(100);
        // Scribble over the block's header (16 bytes before its data).
        new Int32Array(heap.region.mapping.buffer, heap.region.start + o - 16, 1)[0] = 12345;
        return () => heap.check();
      }),
    ];
  })(),
];

// Error classes no synchronous call here can trigger: AbortError comes only from async
// calls (test/channel-async.test.js covers it), UnsupportedError only on platforms this
// suite does not run on.
const NOT_YET_TRIGGERABLE = ['AbortError', 'UnsupportedError'];

// Stable codes, one per class (the public contract programs test against).
const CODES = {
  ShmSystemError: 'ERR_SHM_SYSTEM',
  ShmExistsError: 'ERR_SHM_EXISTS',
  ShmNotFoundError: 'ERR_SHM_NOT_FOUND',
  ShmPermissionError: 'ERR_SHM_PERMISSION',
  ShmNoSpaceError: 'ERR_SHM_NO_SPACE',
  InvalidArgumentError: 'ERR_SHM_INVALID_ARGUMENT',
  OutOfRangeError: 'ERR_SHM_OUT_OF_RANGE',
  IntDomainError: 'ERR_SHM_INT_DOMAIN',
  MisalignedError: 'ERR_SHM_MISALIGNED',
  PayloadTooLargeError: 'ERR_SHM_PAYLOAD_TOO_LARGE',
  ShmClosedError: 'ERR_SHM_CLOSED',
  RegionUnmappedError: 'ERR_SHM_UNMAPPED',
  SizeAlreadySetError: 'ERR_SHM_SIZE_ALREADY_SET',
  SizeInUseError: 'ERR_SHM_SIZE_IN_USE',
  UnsupportedError: 'ERR_SHM_UNSUPPORTED',
  ClosedWriteError: 'ERR_SHM_CHANNEL_CLOSED_WRITE',
  ChannelClosedError: 'ERR_SHM_CHANNEL_CLOSED',
  LayoutError: 'ERR_SHM_BAD_LAYOUT',
  OverlapError: 'ERR_SHM_OVERLAP',
  TimeoutError: 'ERR_SHM_TIMEOUT',
  OwnerDeadError: 'ERR_SHM_OWNER_DEAD',
  DeadlockError: 'ERR_SHM_DEADLOCK',
  NotOwnerError: 'ERR_SHM_NOT_OWNER',
  AbortError: 'ABORT_ERR',
  EncodeError: 'ERR_SHM_ENCODE',
  DecodeError: 'ERR_SHM_DECODE',
  LaggedError: 'ERR_SHM_LAGGED',
  HeapFullError: 'ERR_SHM_HEAP_FULL',
  NotABlockError: 'ERR_SHM_HEAP_NOT_A_BLOCK',
  HeapNameError: 'ERR_SHM_HEAP_NAME',
  HeapCorruptError: 'ERR_SHM_HEAP_CORRUPT',
  BlockInUseError: 'ERR_SHM_HEAP_BLOCK_IN_USE',
};

/** The built-in base an error class must extend: argument errors TypeError / RangeError, AbortError Error, the rest ShmError. */
function baseOf(Class) {
  if (Class === InvalidArgumentError || Class.prototype instanceof InvalidArgumentError) return TypeError;
  if (Class === OutOfRangeError || Class.prototype instanceof OutOfRangeError) return RangeError;
  if (Class.name === 'AbortError') return Error;
  return ShmError;
}

test('every error, triggered through the public API: class, base, code, message, system details, and no change', () => {
  const failures = [];
  const seen = new Set();
  for (const row of [...rows, ...CHANNEL_AND_MUTEX_ROWS]) {
    const label = `${row.Class.name} (${row.title})`;
    if (row.skip) {
      console.log(`  skipped ${label}: ${row.skip}`);
      continue;
    }
    const ctx = new Ctx();
    try {
      const { call, unchanged, shmName } = row.act(ctx);
      const before = listSuiteObjects();
      let error;
      try {
        call();
      } catch (err) {
        error = err;
      }
      if (error === undefined) throw new Error('nothing was thrown');
      if (error.constructor !== row.Class) throw new Error(`threw ${error.constructor?.name}: ${error.message}`);
      seen.add(row.Class);
      const base = baseOf(row.Class);
      assert.ok(error instanceof base, `extends ${base.name}`);
      assert.ok(error instanceof Error);
      if (base === ShmError) assert.not.ok(error instanceof TypeError || error instanceof RangeError, 'not an argument error');
      else assert.not.ok(error instanceof ShmError, 'argument errors do not extend ShmError');
      assert.is(error.code, CODES[row.Class.name], 'code');
      assert.is(error.name, row.Class.name, 'name');
      assert.match(error.message, row.message, `message ${JSON.stringify(error.message)} vs ${row.message}`);
      assert.ok(String(error).startsWith(`${row.Class.name}: `), 'toString starts with the class name');
      if (row.system) {
        assert.ok(error instanceof ShmSystemError, 'a system error');
        assert.is(error.syscall, row.system.syscall, 'syscall');
        assert.is(error.errnoName, row.system.errnoName, 'errnoName');
        assert.is(error.errno, row.system.errno, 'errno');
        assert.is(error.shmName, shmName, 'shmName');
        assert.ok(error.message.includes(`(${row.system.errnoName})`), 'the message ends with the errno name');
      } else {
        assert.not.ok(error instanceof ShmSystemError, 'not a system error');
      }
      const { added, removed } = suiteChanges(before, listSuiteObjects());
      assert.equal({ added, removed }, { added: [], removed: [] }, "the suite's objects in /dev/shm are unchanged by the rejected call");
      unchanged();
    } catch (err) {
      failures.push(`${label}: ${err.message}`);
    } finally {
      ctx.release();
    }
  }
  assert.is(failures.length, 0, `\n${failures.join('\n')}`);
  // each foundation class was seen at least once
  for (const Class of [
    ShmSystemError,
    ShmExistsError,
    ShmNotFoundError,
    ShmPermissionError,
    ShmNoSpaceError,
    InvalidArgumentError,
    OutOfRangeError,
    IntDomainError,
    MisalignedError,
    ShmClosedError,
    RegionUnmappedError,
    SizeAlreadySetError,
    SizeInUseError,
    ClosedWriteError,
    ChannelClosedError,
    LayoutError,
    OverlapError,
    PayloadTooLargeError,
    TimeoutError,
    OwnerDeadError,
    DeadlockError,
    NotOwnerError,
  ]) {
    if (Class === ShmNoSpaceError && shmCapacity === 0) continue;
    assert.ok(seen.has(Class), `${Class.name} was triggered by a row`);
  }
});

test('every exported error class has a row (or is listed as not yet triggerable)', () => {
  const errorClasses = Object.entries(api).filter(
    ([, v]) => typeof v === 'function' && (v === Error || v.prototype instanceof Error),
  );
  const covered = new Set([...rows, ...CHANNEL_AND_MUTEX_ROWS].map((r) => r.Class.name));
  const missing = errorClasses
    .map(([name]) => name)
    .filter((name) => name !== 'ShmError' && !covered.has(name) && !NOT_YET_TRIGGERABLE.includes(name));
  assert.equal(missing, [], `exported error classes with no row in the table: ${missing.join(', ')}`);
  for (const [name, Class] of errorClasses) {
    if (name === 'ShmError') continue;
    assert.ok(name in CODES, `${name} has a known code`);
    assert.is(Class.name, name, `${name} is exported under its own name`);
    assert.ok(Class.prototype instanceof baseOf(Class), `${name} extends ${baseOf(Class).name}`);
  }
  // the base class itself
  assert.ok(ShmSystemError.prototype instanceof ShmError);
  assert.is(new Set(Object.values(CODES)).size, Object.keys(CODES).length, 'codes are unique');
});

test.run();
