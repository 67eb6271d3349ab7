// A configuration value written by one process and watched by three others, through a
// Watch (the latest value; docs/api/watch.md).
//
// The parent (the writer) publishes a JSON config a few times. Three watcher processes
// follow it, each with a different way of waiting:
//   - "sync":     waitSync() in a loop (blocks its thread; fine in a worker or a CLI tool);
//   - "onChange": a subscription (never blocks the event loop);
//   - "for await": an async loop over the changes.
// Each prints the versions it saw. A watcher may skip a version written while it was busy:
// a Watch gives the newest value, not every value (use a Channel for that). All of them
// see the last one, which says `final: true`, and exit.
//
//   npm run build && node examples/watch-config.js
import { fileURLToPath } from 'node:url';
import { SharedMemory, Watch } from '../dist/index.js';

const CAPACITY = 512;

if (process.argv[2] === 'watcher') {
  const how = process.argv[3];
  const config = Watch.attach(SharedMemory.inherited());
  const seen = [];
  const see = ({ value, version }) => {
    const c = JSON.parse(value.toString());
    seen.push(version);
    return c.final === true;
  };
  // Each says it is ready once it follows the value: it then sees every change after it.
  const ready = () => process.send({ type: 'ready' });
  if (how === 'sync') {
    let version = config.version;
    ready();
    for (;;) {
      version = config.waitSync(version, { timeout: 10_000 });
      if (see(config.read())) break;
    }
  } else if (how === 'onChange') {
    await new Promise((resolve) => {
      const unsubscribe = config.onChange((change) => {
        if (see(change)) {
          unsubscribe();
          resolve();
        }
      });
      ready();
    });
  } else {
    ready(); // the loop starts with the current value, whenever it starts
    for await (const change of config) {
      if (change.version !== 0 && see(change)) break;
    }
  }
  console.log(`watcher ${how.padEnd(9)} (pid ${process.pid}) saw versions ${seen.join(', ')}`);
  config.release();
  process.exit(0);
}

// ---- the writer ------------------------------------------------------------------------
const shm = SharedMemory.open(null, 0o600, { mode: 'anon' }); // no name: nothing to clean up
const config = new Watch(shm, { capacity: CAPACITY });
try {
  const watchers = ['sync', 'onChange', 'for await'].map((how) =>
    shm.fork(fileURLToPath(import.meta.url), ['watcher', how], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const exited = watchers.map((w) => new Promise((resolve) => w.once('exit', (code) => resolve(code))));
  await Promise.all(watchers.map((w) => new Promise((resolve) => w.once('message', resolve))));

  const settings = [
    { level: 'info', sampleRate: 0.1 },
    { level: 'debug', sampleRate: 0.5 },
    { level: 'debug', sampleRate: 1, features: ['tracing'] },
    { level: 'warn', sampleRate: 0.1, final: true },
  ];
  for (const s of settings) {
    const version = config.write(JSON.stringify(s));
    console.log(`writer published version ${version}: ${JSON.stringify(s)}`);
    await new Promise((resolve) => setTimeout(resolve, 30)); // a config changes now and then
  }
  const codes = await Promise.all(exited);
  console.log(codes.every((c) => c === 0) ? `all three watchers saw the final config (version ${config.version})` : `a watcher failed: exit codes ${codes}`);
  if (!codes.every((c) => c === 0)) process.exitCode = 1;
} finally {
  config.release();
  shm.close();
}
