// The Ruby gem's README example, in Node.
//
//   shm = ConcurrentSHM::SharedMemory.open("/foo/bar", 0600, mode: :anon)
//   ch = ConcurrentSHM::Channel::SingleBuffered::Variable.new(shm, capacity: 200)
//   fork do
//     loop { s = ch.recv; puts "received! #{s.inspect}" }
//   end
//   STDIN.each_line { |l| ch.send(l) }
//
// Node cannot fork() itself, so the consumer is a second Node process started with
// shm.fork(), which hands it the object's descriptor: the object is anonymous (its
// name is unlinked at once), so a descriptor is the only way to reach it.
//
// Run:   node examples/producer-consumer/main.js            (a few built-in lines)
//        printf 'one\ntwo\n' | node examples/producer-consumer/main.js
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { Channel, SharedMemory } from '../../dist/index.js';

const shm = SharedMemory.open(null, 0o600, { mode: 'anon' });
const ch = new Channel.SingleBuffered.Variable(shm, { capacity: 200 });

const consumer = shm.fork(new URL('./consumer.js', import.meta.url));

// Lines from standard input, or a few built-in ones when it is a terminal.
async function* lines() {
  if (process.stdin.isTTY) {
    yield* ['hello from the producer', 'shared memory is fast', 'goodbye'];
    return;
  }
  let any = false;
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    any = true;
    yield `${line}\n`;
  }
  if (!any) yield* ['hello from the producer', 'shared memory is fast', 'goodbye'];
}

try {
  for await (const line of lines()) {
    // Lines longer than the channel's capacity are sent in pieces.
    const bytes = Buffer.from(line);
    for (let at = 0; at < bytes.length; at += ch.width) await ch.send(bytes.subarray(at, at + ch.width));
  }
} finally {
  // The consumer drains what is left, then its loop ends.
  ch.close();
  shm.close();
}
const [code] = await once(consumer, 'exit');
process.exitCode = code ?? 1;
