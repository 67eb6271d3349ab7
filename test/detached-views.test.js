// Views whose buffer is transferred (detached) around a send, a receive or a copy. In
// Node 20, optimized code that has seen views of resizable buffers can read the old
// `length` of a view whose buffer was transferred; `byteLength` reads 0. Each case runs
// in a process of its own (test/fixtures/detached-views.js): what the compilers saw
// decides whether the stale read happens.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFixture } from './helpers.js';

for (const [role, title] of [
  ['send', 'send(): a message whose buffer is transferred while the send waits is refused, and nothing is sent'],
  ['recvInto', 'recvInto(): a target whose buffer is transferred while the receive waits gets InvalidArgumentError, never a length for bytes not written, and the message stays'],
  ['rendezvous', 'Unbuffered recvInto(): a target transferred while it waits takes nothing, so the sender waits on and the next receive gets the message'],
  ['copy', 'a copy from a reused view whose buffer was transferred writes nothing into the mapped memory'],
  ['watchEmpty', 'Watch.readInto() of an empty value into a Float64Array whose buffer was transferred returns length 0'],
]) {
  test(title, async () => {
    const r = await runFixture('detached-views', [role], { timeoutMs: 60_000 });
    assert.is(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
    assert.ok(out.ok, out.what);
  });
}

test.run();
