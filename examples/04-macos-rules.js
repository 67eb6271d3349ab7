// The macOS rules of POSIX shared memory, on any OS.
//
// The per-OS behaviour lives in one place, as data (src/os-rules.ts): LINUX_RULES and
// MACOS_RULES. SharedMemory.open accepts { rules } to apply another OS's rules where the
// library can enforce them, so the macOS behaviour can be seen (and tested) on Linux:
//
//   - names: at most 31 bytes counting the '/' (PSHMNAMLEN);
//   - size=: only once per object, rounded up to a multiple of the page size;
//   - Region.map past the end: fails with EINVAL instead of succeeding.
//
//   npm run build && node examples/04-macos-rules.js
import {
  Channel,
  currentRules,
  InvalidArgumentError,
  LINUX_RULES,
  MACOS_RULES,
  OutOfRangeError,
  pageSize,
  Region,
  SharedMemory,
  ShmSystemError,
  SizeAlreadySetError,
} from '../dist/index.js';

console.log(`this OS follows the ${currentRules.os} rules`);
console.table({ Linux: LINUX_RULES, macOS: MACOS_RULES });

/** Runs `fn` and prints the error it throws, which must be an instance of `Class`. */
function expect(what, Class, fn) {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof Class)) throw err;
    console.log(`${what}: ${err.name} (${err.code}): ${err.message}`);
    return;
  }
  throw new Error(`${what}: expected ${Class.name}`);
}

// 1. Names. 40 bytes is fine on Linux (up to 255 after the '/'), too long on macOS.
const longName = `/cshm-example-04-a-rather-long-name-${String(process.pid).padStart(7, '0')}`.slice(0, 40);
expect('a 40-byte name', InvalidArgumentError, () => SharedMemory.open(longName, 0o600, { rules: MACOS_RULES }));

const names = [];
try {
  // 2. size= rounds up to the page size and works only once.
  const name = `/cshm-ex04-${process.pid}`; // 31 bytes at most
  names.push(name);
  const shm = SharedMemory.open(name, 0o600, { rules: MACOS_RULES });
  shm.size = 100;
  console.log(`size = 100 → shm.size is ${shm.size} (rounded up to the page size, ${pageSize})`);
  expect('size = 200 afterwards', SizeAlreadySetError, () => {
    shm.size = 200;
  });

  // 3. Mapping past the end. Checked (the default, on every OS): OutOfRangeError before
  // any mmap. Unchecked: the OS's own answer, which on macOS is EINVAL (on Linux the map
  // would succeed and an access past the end would kill the process: example 02).
  expect('map 2 pages, checked', OutOfRangeError, () => Region.map(shm, 0, 2 * shm.size));
  expect('map 2 pages, unchecked', ShmSystemError, () => Region.map(shm, 0, 2 * shm.size, { unchecked: true }));

  // 4. What this means for channels: autosize sets the size, so on macOS it works on a
  // fresh object only. Put every structure in one object sized once, or use one object
  // per channel.
  const fresh = `/cshm-ex04b-${process.pid}`;
  names.push(fresh);
  const shm2 = SharedMemory.open(fresh, 0o600, { rules: MACOS_RULES });
  const ch = new Channel.SingleBuffered.Variable(shm2, { capacity: 200 });
  console.log(`a ${ch.kind} channel of ${ch.byteLength} bytes on a fresh object: shm.size is ${shm2.size}`);
  expect('a second channel after it (autosize)', SizeAlreadySetError, () => new Channel.SingleBuffered.Empty(shm2, { offset: shm2.size }));
  ch.release();
  shm.close();
  shm2.close();
} finally {
  for (const n of names) {
    try {
      SharedMemory.delete(n);
    } catch {
      // not created
    }
  }
}
