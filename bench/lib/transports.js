// The transports the IPC benchmark runs, in table order.
//
// To add a transport: put `my-transport.js` in bench/transports/ (default export: a
// Transport, see bench/lib/transport.js and bench/transports/README.md) and add its
// file name to TRANSPORT_FILES below. The floor (bare-flag, kind 'reference') goes
// first, then the channel transports of concurrent-shm, then the alternatives.

export const TRANSPORT_FILES = [
  'bare-flag.js',
  'channel-sync.js',
  'channel-buffered.js',
  'channel-async.js',
  'process-send-json.js',
  'process-send-advanced.js',
  'worker-postmessage.js',
  'unix-socket.js',
  'memcpy.js',
];

/**
 * Import the listed transports. A module that fails to import (for example a channel
 * transport whose library build is missing) is returned as a stub with `loadError`,
 * so it shows up as a failed row instead of aborting the whole run.
 * @returns {Promise<Array<import('./transport.js').Transport & { loadError?: Error }>>}
 */
export async function loadTransports(files = TRANSPORT_FILES) {
  const out = [];
  for (const file of files) {
    const id = file.replace(/\.js$/, '');
    try {
      const mod = await import(new URL(`../transports/${file}`, import.meta.url).href);
      const t = mod.default;
      if (!t || typeof t.open !== 'function' || !t.id || !t.name) {
        throw new Error(`bench/transports/${file}: default export is not a Transport (needs id, name, open)`);
      }
      out.push(t);
    } catch (err) {
      out.push({
        id,
        name: id,
        kind: id.startsWith('channel') ? 'channel' : id === 'bare-flag' ? 'reference' : 'alternative',
        open: () => Promise.reject(err),
        loadError: err,
      });
    }
  }
  return out;
}
