// The Linux rule from the gem's README, shown safely:
//
//   "Region.map will succeed regardless of the shared memory object's size, but calling
//    Region#read or Region#write will cause a bus error (and crash the program) if the
//    read/write is out of bounds of the shared memory object."
//
// A child process maps two pages of a one-page object with { unchecked: true } (the raw
// OS behaviour) and reads the second page: the kernel kills it with SIGBUS. Then this
// process shows that the default, checked, map refuses the same range with an
// OutOfRangeError, before any mmap happens.
//
//   npm run build && node examples/02-sigbus-past-the-end.js
//
// On macOS there is no crash to show: the unchecked map itself fails with EINVAL.
import { fork } from 'node:child_process';
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OutOfRangeError, Region, SharedMemory, ShmSystemError, pageSize } from '../dist/index.js';

if (process.argv[2] === 'child') child(process.argv[3]);
else await parent();

async function parent() {
  const name = `/cshm-example-02-${process.pid}`;
  const shm = SharedMemory.open(name, 0o600);
  try {
    shm.size = pageSize; // one page: bytes 0 .. pageSize-1 exist, nothing after
    console.log(`object ${name}: ${shm.size} bytes (one page)`);

    // 1. The raw behaviour, in a child process: it may crash, this process must not.
    const child = fork(fileURLToPath(import.meta.url), ['child', name], { stdio: 'inherit' });
    const [code, signal] = await new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    if (signal === 'SIGBUS') console.log('parent: child died of SIGBUS, as the gem\'s README says');
    else if (code === 2) console.log('parent: the unchecked map failed with EINVAL in the child (the macOS rule)');
    else throw new Error(`the child ended unexpectedly (exit code ${code}, signal ${signal})`);

    // 2. The default: the range is checked against the object's size on every OS.
    try {
      Region.map(shm, 0, 2 * pageSize);
      throw new Error('the checked map should have failed');
    } catch (err) {
      if (!(err instanceof OutOfRangeError)) throw err;
      console.log(`parent: the default map refuses instead: ${err.name} (${err.code}): ${err.message}`);
    }
  } finally {
    shm.close();
    shm.unlink();
  }
}

function child(name) {
  // writeSync, not console.log: the output must be out before the process dies.
  const say = (line) => writeSync(1, `child: ${line}\n`);
  const shm = SharedMemory.open(name, 0o600, { mode: 'open' });
  let region;
  try {
    // mmap(NULL, 2 pages, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) on a one-page object.
    region = Region.map(shm, 0, 2 * pageSize, { unchecked: true });
  } catch (err) {
    if (!(err instanceof ShmSystemError && err.errnoName === 'EINVAL')) throw err;
    say(`mmap past the end failed: ${err.message}`);
    process.exit(2);
  }
  say(`mapped ${region.length} bytes of an object of ${shm.size}: the map succeeded`);
  say(`byte 0 (inside the object) reads ${region.read(0, 1)[0]}`);
  say(`reading byte ${pageSize} (past the end)...`);
  const past = region.read(pageSize, pageSize + 1); // the kernel sends SIGBUS here
  say(`read ${past[0]}: no SIGBUS?`);
  process.exit(1);
}
