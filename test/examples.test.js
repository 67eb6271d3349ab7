// The teaching examples run as documented and show what they say they show.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function run(script, input) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdin.end(input ?? '');
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

const cases = [
  ['examples/01-classic-steps.js', /reads B's answer: "hello from process B[\s\S]*counter, incremented once by each process, is 2[\s\S]*unmapped, closed and unlinked/],
  ['examples/02-sigbus-past-the-end.js', /child died of SIGBUS[\s\S]*default map refuses instead: OutOfRangeError/],
  ['examples/03-pointer-after-gc.js', /value\.read\(\) = 42[\s\S]*throws RegionUnmappedError/],
  ['examples/04-macos-rules.js', /EINVAL[\s\S]*SizeAlreadySetError/],
];

for (const [script, expected] of cases) {
  test(`${script} runs and shows what it says`, async () => {
    const r = await run(script);
    assert.is(r.code, 0, r.out);
    assert.match(r.out, expected);
  });
}

test('examples/producer-consumer: each line of standard input is received by the child', async () => {
  const r = await run('examples/producer-consumer/main.js', 'one\ntwo "quoted"\n');
  assert.is(r.code, 0, r.out);
  assert.equal(r.out.trim().split('\n'), ['received! "one\\n"', 'received! "two \\"quoted\\"\\n"']);
});

test('examples/producer-consumer: with empty input it sends its built-in lines', async () => {
  const r = await run('examples/producer-consumer/main.js', '');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /^received! "hello from the producer"$/m);
});

test('examples/broadcast-feed.js: every subscriber accounts for every quote (received + missed), the slow one lags', async () => {
  const r = await run('examples/broadcast-feed.js');
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /every subscriber accounted for every quote/);
  for (const how of ['fast', 'async', 'slow']) assert.match(r.out, new RegExp(`^${how}\\s.*received \\+ missed = 5000; in order: true$`, 'm'));
  assert.match(r.out, /^slow .*missed [1-9]\d* in/m);
});

test.run();
