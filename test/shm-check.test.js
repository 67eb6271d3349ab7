// The suite's leak check (shm-check.js, used by test/run.js and errors.test.js) judges
// only the suite's own objects: while another process creates and removes objects in
// /dev/shm, the check ignores them, and still catches an object of the suite left behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fork, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SharedMemory } from '../dist/index.js';
import { uniqueName, within } from './helpers.js';
import { isSuiteObject, listSuiteObjects, RUN_ID, SHM_DIR, suiteChanges, suiteObjects } from './shm-check.js';

const RUN = fileURLToPath(new URL('./run.js', import.meta.url));
const LEAK_SUITE = fileURLToPath(new URL('./fixtures/leak-suite', import.meta.url));
const hasDir = existsSync(SHM_DIR);

// Names this file creates, removed after each test whatever happened.
const names = [];
const track = (n) => (names.push(n), n);
const children = [];
test.after.each(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((resolve) => c.once('exit', resolve));
      c.kill('SIGKILL');
      await exited;
    }
    // A churn process killed before it could clean up leaves up to a few objects.
    if (existsSync(SHM_DIR)) {
      for (const e of readdirSync(SHM_DIR)) if (e.startsWith(`foreign-app-${c.pid}-`)) names.push(`/${e}`);
    }
  }
  for (const n of names.splice(0)) {
    try {
      SharedMemory.delete(n);
    } catch {}
  }
});

/** Starts the foreign churn (test/fixtures/foreign-churn.js); resolves once it runs. */
async function startChurn() {
  const child = fork(new URL('./fixtures/foreign-churn.js', import.meta.url), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  await within(15_000, new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`the churn process exited (${code}) before it was ready`)));
  }), 'churn start');
  return {
    child,
    /** Stops it; resolves with { created, removed }. */
    stop: () => within(15_000, new Promise((resolve) => {
      child.once('message', resolve);
      child.send('stop');
    }), 'churn stop'),
  };
}

test('on fake listings: objects of other programs are ignored both ways, the suite\'s own are seen', () => {
  const before = ['pulse-shm-1', 'cshm-test-a-1-00', 'sem.app', 'cshm-example-01-7'];
  // another program removed one object and created two; the suite changed nothing
  assert.equal(suiteChanges(before, ['cshm-example-01-7', 'cshm-test-a-1-00', 'pulse-shm-2', 'wayland.x']), { added: [], removed: [] });
  // the suite left one object behind (and other programs churned meanwhile)
  assert.equal(suiteChanges(before, ['cshm-test-a-1-00', 'cshm-example-01-7', 'cshm-test-b-1-ff', 'chrome.1']), { added: ['cshm-test-b-1-ff'], removed: [] });
  // the suite removed an object that was there before
  assert.equal(suiteChanges(before, ['pulse-shm-1', 'sem.app', 'cshm-example-01-7']), { added: [], removed: ['cshm-test-a-1-00'] });
  // names with or without the slash; the prefix must start the name
  assert.ok(isSuiteObject('/cshm-anon-1-ab'));
  assert.ok(isSuiteObject('cshm-docs-shm-1'));
  assert.not.ok(isSuiteObject('/my-cshm-test'));
  assert.not.ok(isSuiteObject('Cshm-test'));
  assert.equal(suiteObjects(['b', 'cshm-z', 'cshm-a']), ['cshm-a', 'cshm-z']);
  // the suite's own names carry the prefix
  assert.ok(isSuiteObject(uniqueName('x')));
});

test("on fake listings: another run of the suite on the same machine is ignored; names without a run id count", () => {
  const other = RUN_ID === 'abc123' ? 'def456' : 'abc123';
  const before = [`cshm-test-${other}-cli-1-00`, `cshm-test-${RUN_ID}-cli-2-00`];
  const after = [`cshm-test-${other}-mtx-3-00`, `cshm-test-${RUN_ID}-cli-2-00`, `cshm-test-${RUN_ID}-err-2-01`, 'cshm-example-01-4', 'cshm-anon-5-ff'];
  assert.equal(suiteChanges(before, after), { added: ['cshm-anon-5-ff', 'cshm-example-01-4', `cshm-test-${RUN_ID}-err-2-01`], removed: [] });
  assert.equal(suiteChanges(before, after, other), { added: ['cshm-anon-5-ff', 'cshm-example-01-4', `cshm-test-${other}-mtx-3-00`], removed: [`cshm-test-${other}-cli-1-00`] }, 'as the other run sees it');
  assert.ok(uniqueName('t').startsWith(`/cshm-test-${RUN_ID}-t-${process.pid}-`));
  assert.is(process.env.CSHM_TEST_RUN, RUN_ID, 'children of this process share the id');
});

test('while another process creates and removes objects: the check ignores them and catches an own leak', async () => {
  if (!hasDir) return console.log(`  (skipped: no ${SHM_DIR} on this OS)`);
  const churn = await startChurn();
  const foreign = (entries) => entries.filter((e) => e.startsWith(`foreign-app-${churn.child.pid}-`));
  const before = readdirSync(SHM_DIR);
  const own = track(uniqueName('leak'));
  SharedMemory.open(own, 0o600, { mode: 'excl' }).close();
  let sawForeignChange = false;
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const now = readdirSync(SHM_DIR);
    const f0 = foreign(before);
    const f1 = foreign(now);
    if (f1.some((n) => !f0.includes(n)) && f0.some((n) => !f1.includes(n))) sawForeignChange = true;
    assert.equal(suiteChanges(before, now), { added: [own.slice(1)], removed: [] }, 'exactly the own leak, whatever the other process did');
  }
  SharedMemory.delete(own);
  assert.equal(suiteChanges(before, readdirSync(SHM_DIR)), { added: [], removed: [] }, 'nothing once it is removed');
  const { created, removed } = await churn.stop();
  assert.ok(sawForeignChange, 'the other process created and removed objects between the listings');
  assert.ok(created > 20 && removed === created, `the other process created ${created} objects and removed ${removed}`);
});

/** Runs test/run.js on the fixture suite in test/fixtures/leak-suite. */
function runLeakSuite(env) {
  const r = spawnSync(process.execPath, [RUN], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, TEST_DIR: LEAK_SUITE, COVERAGE: '0', TEST_VERBOSE: '', ...env },
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('test/run.js, with another process churning: foreign objects never fail a run; an own leak does', async () => {
  if (!hasDir) return console.log(`  (skipped: no ${SHM_DIR} on this OS)`);
  const churn = await startChurn();
  const foreignNew = track(`/foreign-app-${process.pid}-new`);
  const foreignOld = track(`/foreign-app-${process.pid}-old`);
  const earlier = track(uniqueName('earlier'));
  SharedMemory.open(earlier, 0o600, { mode: 'excl' }).close();

  // A run during which objects of other programs appear and disappear: it passes.
  SharedMemory.open(foreignOld, 0o600, { mode: 'excl' }).close();
  let r = runLeakSuite({ FOREIGN_NEW: foreignNew, FOREIGN_OLD: foreignOld });
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /^0 passed, 0 failed$/m);
  assert.ok(existsSync(`${SHM_DIR}${foreignNew}`) && !existsSync(`${SHM_DIR}${foreignOld}`), 'the foreign objects did change during the run');
  // An own object already there before the run is named, not counted.
  assert.match(r.out, new RegExp(`^note: .*with the suite's prefix, not counted: .*${earlier.slice(1)}`, 'm'));

  // The same, with a test that leaves an object of the suite behind: the run fails, naming it only.
  SharedMemory.delete(foreignNew);
  SharedMemory.open(foreignOld, 0o600, { mode: 'excl' }).close();
  const leak = track(uniqueName('leaked'));
  r = runLeakSuite({ FOREIGN_NEW: foreignNew, FOREIGN_OLD: foreignOld, LEAK_NAME: leak });
  assert.is(r.code, 1, r.out);
  assert.match(r.out, new RegExp(`^FAIL ${SHM_DIR}: the suite left 1 of its object\\(s\\): ${leak.slice(1)}$`, 'm'));
  assert.match(r.out, /^0 passed, 1 failed$/m);
  assert.not.match(r.out, /foreign-app-/, 'no object of another program is mentioned');
  await churn.stop();
  assert.equal(listSuiteObjects().filter((n) => n.includes(`-${process.pid}-`) && !names.includes(`/${n}`)), [], 'no other object of this file is left');
});

test.run();
