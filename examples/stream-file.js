// Streams a file from one process to another through a channel, with Node streams on
// both sides:
//
//   parent:  await pipeline(fs.createReadStream(source), ch.writable())
//   child:   await pipeline(ch.readable(), fs.createWriteStream(target))
//
// The writable sends each chunk of the file as a message (the read stream's 64 KiB chunks
// fit the channel's capacity; a larger chunk would go as several messages) and waits
// while the channel is full; the readable receives only while its buffer has room. So
// memory stays bounded on both sides whatever the file's size. When the file is sent,
// the writable closes the channel; the child's readable ends once it has drained it.
// Both sides hash what they moved, and the parent checks the copy.
//
// Run:   node examples/stream-file.js                 (a 32 MiB file of random bytes)
//        node examples/stream-file.js some/big/file   (any file; the copy goes to a temp dir)
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Channel, SharedMemory } from '../dist/index.js';

async function sha256(path) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

if (process.argv[2] === 'child') {
  // The child: attach to the parent's channel (inherited descriptor, offset 0) and write
  // every message it receives to the target file.
  const target = process.argv[3];
  const ch = Channel.attach(SharedMemory.inherited());
  await pipeline(ch.readable(), createWriteStream(target));
  process.send({ written: true }); // the copy is on disk: the parent stops its clock
  process.send({ sha256: await sha256(target) });
} else {
  const dir = mkdtempSync(join(tmpdir(), 'cshm-stream-file-'));
  const shm = SharedMemory.open(null, 0o600, { mode: 'anon' }); // no name left in /dev/shm
  try {
    let source = process.argv[2];
    if (source === undefined) {
      source = join(dir, 'source.bin');
      writeFileSync(source, randomBytes(32 * 1024 * 1024));
    }
    const size = statSync(source).size;
    const target = join(dir, 'copy.bin');

    // 8 slots of 64 KiB: 512 KiB of shared memory carry a file of any size.
    const ch = new Channel.Buffered.Variable(shm, { depth: 8, capacity: 65536 });
    const child = shm.fork(fileURLToPath(import.meta.url), ['child', target]);
    const answer = (key) =>
      new Promise((resolve, reject) => {
        const onMessage = (m) => {
          if (key in m) resolve(m[key]);
        };
        child.on('message', onMessage);
        child.once('exit', (code) => reject(new Error(`the child exited with code ${code} before answering`)));
      });
    const written = answer('written');
    const hashed = answer('sha256');

    const t0 = performance.now();
    await pipeline(createReadStream(source), ch.writable()); // closes the channel at the end
    await written;
    const seconds = (performance.now() - t0) / 1000;
    const copied = await hashed;

    const original = await sha256(source);
    console.log(`sent ${size} bytes in ${seconds.toFixed(2)} s (${(size / 1048576 / seconds).toFixed(0)} MiB/s)`);
    console.log(`sha256 of the source: ${original}`);
    console.log(`sha256 of the copy:   ${copied}`);
    console.log(copied === original ? 'the copy is equal' : 'THE COPY DIFFERS');
    if (copied !== original) process.exitCode = 1;
  } finally {
    shm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
