// The gem's second warning, and what this library does about it.
//
// In Ruby (from the gem's README):
//
//   shm = ConcurrentSHM::SharedMemory.open("/foo/bar", 0600, mode: :anon)
//   value = ConcurrentSHM::Region.map(shm, 0, 1).as_intptr
//   GC.start
//   value.read # => memory fault
//
// A pointer does not keep its region alive; when the region is collected it is unmapped,
// and the pointer reads unmapped memory. Here the pointer still does not keep the region
// alive, but the read throws RegionUnmappedError instead of crashing.
//
//   npm run build && node examples/03-pointer-after-gc.js
//
// It needs global.gc(), so it restarts itself with --expose-gc when that is missing.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, Region, RegionUnmappedError, SharedMemory } from '../dist/index.js';

if (typeof globalThis.gc !== 'function') {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

// The README's name, "/foo/bar", is not a valid name on Linux (one slash only, at the
// start), so this library refuses it before calling shm_open.
try {
  SharedMemory.open('/foo/bar', 0o600, { mode: 'anon' });
} catch (err) {
  if (!(err instanceof InvalidArgumentError)) throw err;
  console.log(`"/foo/bar" is refused: ${err.message}`);
}

// mode 'anon' with no name: a unique name is generated and unlinked at once, so nothing
// is left in /dev/shm whatever happens; close() releases the descriptor.
const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
try {
  shm.size = 1;

  // The README's line: the region is a temporary, only the pointer is kept.
  const value = Region.map(shm, 0, 1).asIntPtr();
  value.write(42);
  console.log(`value.read() = ${value.read()} while the region is alive (${value.constructor.name})`);

  // GC.start. FinalizationRegistry callbacks (which unmap collected regions) run after a
  // collection, on a later turn of the event loop, so collect and yield a few times.
  for (let round = 0; round < 20 && value.isValid; round++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  console.log(`after GC: value.isValid = ${value.isValid}`);

  try {
    console.log(`value.read() = ${value.read()} (the region was not collected yet; try again)`);
  } catch (err) {
    if (!(err instanceof RegionUnmappedError)) throw err;
    console.log(`value.read() throws ${err.name} (${err.code}): ${err.message}`);
  }
  // To keep a pointer usable, keep its region reachable:
  //   const region = Region.map(shm, 0, 1); const value = region.asIntPtr();
} finally {
  shm.close();
}
