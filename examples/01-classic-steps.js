// The classic steps of POSIX shared memory, as the course notes teach them
// (shm_open → ftruncate → mmap → read and write from two processes → munmap → close →
// shm_unlink), done with concurrent-shm. Each step names the C call underneath.
//
//   npm run build && node examples/01-classic-steps.js
//
// This one file plays both parts: run without arguments it is "Process A" (it creates
// the object and starts Process B); started with `b <name>` it is "Process B" (it opens
// the existing object by name). The two processes are not related through the object:
// B finds it by name alone, as any process on the machine could.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Int32Ptr, Region, SharedMemory } from '../dist/index.js';

const SIZE = 1024; // bytes, as in the notes: ftruncate(shmfd, 1024)
const A_TEXT = 0; // Process A writes its text at bytes 0..255
const B_TEXT = 256; // Process B answers at bytes 256..511
const COUNTER = 512; // a 32-bit counter both processes increment atomically
const A_LENGTH = 516; // 32-bit length of A's text
const B_LENGTH = 520; // 32-bit length of B's text

if (process.argv[2] === 'b') processB(process.argv[3]);
else await processA();

async function processA() {
  const name = `/cshm-example-01-${process.pid}`;

  // Step 1, open (create). shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600).
  // mode 'excl' (the default) fails with ShmExistsError if the name is taken, so we never
  // reuse somebody else's object by accident. The notes use O_CREAT alone; that is
  // mode: 'create' here. The permission bits are masked by the process's umask.
  const shm = SharedMemory.open(name, 0o600, { mode: 'excl' });
  console.log(`A: created ${name} (descriptor ${shm.fd}, size ${shm.size})`);

  // From here on the object exists in the system (on Linux as the file /dev/shm/...),
  // so every path out of this function must remove it: try/finally.
  let region;
  try {
    // Step 2, size. ftruncate(fd, 1024). New bytes read as zero. On Linux the library
    // then reserves the memory with posix_fallocate, so a full /dev/shm fails here
    // (ShmNoSpaceError) instead of killing a later write with SIGBUS.
    shm.size = SIZE;
    console.log(`A: size set to ${shm.size} bytes (read back with fstat)`);

    // Step 3, map. mmap(NULL, 1024, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0).
    // MAP_SHARED is what makes writes visible to every process mapping the same bytes.
    region = Region.map(shm, 0, SIZE);

    // Step 4, write. No system call: the region is plain memory in this process.
    const n = region.write('hello from process A', A_TEXT);
    new Int32Ptr(region, A_LENGTH).store(n); // the text's length, for B
    new Int32Ptr(region, COUNTER).add(1); // an atomic add: a lock-prefixed instruction, no syscall

    // Step 5, share. Start Process B and give it only the name. (For an object without a
    // name, mode 'anon', use shm.fork(script) and SharedMemory.inherited() in the child:
    // the descriptor itself is handed over.)
    const child = fork(fileURLToPath(import.meta.url), ['b', name], { stdio: 'inherit' });
    const [code, signal] = await new Promise((resolve) => child.once('exit', (c, s) => resolve([c, s])));
    if (code !== 0) throw new Error(`process B failed (exit code ${code}, signal ${signal})`);

    // Step 6, read what B wrote. B exited, but its writes are in the shared object.
    const length = new Int32Ptr(region, B_LENGTH).load();
    console.log(`A: reads B's answer: "${region.read(B_TEXT, B_TEXT + length).toString('utf8')}"`);
    console.log(`A: the counter, incremented once by each process, is ${new Int32Ptr(region, COUNTER).load()}`);
  } finally {
    // Step 7, unmap. munmap(addr, 1024). Afterwards any use of `region` (or of a pointer
    // into it) throws RegionUnmappedError instead of touching unmapped memory.
    region?.unmap();
    // Step 8, close. close(fd). Mappings would survive a close; the object survives too.
    shm.close();
    // Step 9, unlink. shm_unlink(name). The object is freed once nothing maps it any more.
    // Until then (or a reboot) a POSIX shared memory object stays in the system.
    shm.unlink(); // unlink() works after close(): it needs only the name
    console.log(`A: unmapped, closed and unlinked ${name}`);
  }
}

function processB(name) {
  // Step 1 for B, open the existing object. shm_open(name, O_RDWR, 0). mode 'open'
  // fails with ShmNotFoundError if there is no such object. B does not set the size:
  // A already did (ftruncate is done once, by the creator).
  const shm = SharedMemory.open(name, 0o600, { mode: 'open' });
  try {
    console.log(`B: opened ${name}: ${shm.size} bytes`);

    // Step 3 for B, map the same bytes. B's address for them differs from A's; the
    // memory behind them is the same.
    const region = Region.map(shm, 0, shm.size);

    // Step 4 for B: read A's text, write an answer, increment the shared counter.
    const length = new Int32Ptr(region, A_LENGTH).load();
    console.log(`B: reads A's text: "${region.read(A_TEXT, A_TEXT + length).toString('utf8')}"`);
    const n = region.write(`hello from process B (pid ${process.pid})`, B_TEXT);
    new Int32Ptr(region, B_LENGTH).store(n);
    new Int32Ptr(region, COUNTER).add(1);

    // Steps 7 and 8 for B: unmap and close. B does not unlink: exactly one process
    // should, and here it is the creator.
    region.unmap();
  } finally {
    shm.close();
  }
}
