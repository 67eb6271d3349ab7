#!/usr/bin/env node
// Runs every test/*.test.js file in its own Node process (uvu inside), with a watchdog
// per file, checks that the suite leaves none of its own objects in /dev/shm (objects of
// other programs come and go meanwhile and are ignored: see shm-check.js), and ends with
// one plain line: "N passed, N failed".
import { spawn } from 'node:child_process';
import { readdirSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { listSuiteObjects, SHM_DIR, suiteChanges } from './shm-check.js';

const here = dirname(fileURLToPath(import.meta.url));
// TEST_DIR: run the *.test.js files of another directory (the suite's test of its own
// leak check runs a small fixture suite this way).
const testDir = process.env.TEST_DIR ? resolve(process.env.TEST_DIR) : here;
const WATCHDOG_MS = Number(process.env.TEST_WATCHDOG_MS ?? 180_000);
const only = process.argv.slice(2);
const files = readdirSync(testDir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();

// Coverage: every Node process of the suite (test files and the children they start)
// writes V8 coverage here; c8 turns it into a report at the end.
const coverageDir = join(here, '..', 'coverage', 'tmp');
const withCoverage = process.env.COVERAGE !== '0';
if (withCoverage) {
  rmSync(coverageDir, { recursive: true, force: true });
  mkdirSync(coverageDir, { recursive: true });
  process.env.NODE_V8_COVERAGE = coverageDir;
}

// Objects with the suite's prefix before the run (left by an earlier run that was killed,
// or made by another run going on now) are not this run's leaks; they are named so that
// they can be removed.
const before = listSuiteObjects();
if (before.length > 0) {
  console.log(`note: ${SHM_DIR} already holds ${before.length} object(s) with the suite's prefix, not counted: ${before.join(', ')}`);
}

let passed = 0;
let failed = 0;

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--expose-gc', join(testDir, file)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      out += `\nWATCHDOG: ${file} still running after ${WATCHDOG_MS} ms: killed\n`;
      child.kill('SIGKILL');
    }, WATCHDOG_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // uvu prints "  Total:     N" / "  Passed:    N" / "  Skipped:   N"
      const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? NaN);
      const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? NaN);
      let p = 0;
      let f = 0;
      if (Number.isFinite(total) && Number.isFinite(ok)) {
        p = ok;
        f = total - ok;
      }
      if ((code !== 0 || signal) && f === 0) f = 1; // crashed, killed or failed outside a test
      passed += p;
      failed += f;
      const ms = Date.now() - started;
      const status = f === 0 ? 'ok  ' : 'FAIL';
      console.log(`${status} ${file} (${p} passed, ${f} failed, ${ms} ms)`);
      if (f !== 0 || process.env.TEST_VERBOSE) console.log(out.replace(/^/gm, '     | '));
      resolve();
    });
  });
}

for (const file of files) await runFile(file);

const leaked = suiteChanges(before, listSuiteObjects()).added;
if (leaked.length > 0) {
  failed += 1;
  console.log(`FAIL ${SHM_DIR}: the suite left ${leaked.length} of its object(s): ${leaked.join(', ')}`);
}
if (withCoverage) {
  const c8 = createRequire(import.meta.url).resolve('c8/bin/c8.js');
  await new Promise((resolve) => {
    const report = spawn(process.execPath, [c8, 'report', '--temp-directory', coverageDir, '--reporter=text-summary', '--reporter=lcov', '--src', 'src', '--include', 'dist/**', '--exclude', 'dist/cli/**', '--report-dir', join(here, '..', 'coverage')], { stdio: 'inherit', cwd: join(here, '..') });
    report.on('close', resolve);
  });
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
