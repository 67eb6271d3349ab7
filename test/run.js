#!/usr/bin/env node
// Runs every test/*.test.js file in its own Node process (uvu inside), with a watchdog
// per file, checks that the suite leaves /dev/shm as it found it, and ends with one
// plain line: "N passed, N failed".
import { spawn } from 'node:child_process';
import { readdirSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const WATCHDOG_MS = Number(process.env.TEST_WATCHDOG_MS ?? 180_000);
const only = process.argv.slice(2);
const files = readdirSync(here)
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

const shmDir = '/dev/shm';
const listShm = () => (existsSync(shmDir) ? new Set(readdirSync(shmDir)) : new Set());
const before = listShm();

let passed = 0;
let failed = 0;

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--expose-gc', join(here, file)], {
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

const leaked = [...listShm()].filter((n) => !before.has(n));
if (leaked.length > 0) {
  failed += 1;
  console.log(`FAIL /dev/shm: the suite left ${leaked.length} object(s): ${leaked.join(', ')}`);
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
