// Every ```js block of README.md and docs/**/*.md runs as written: each is saved as an ES
// module in a temp dir where `concurrent-shm` resolves to this repository (a symlink in
// node_modules, as after `npm install`), run in a fresh Node process, and must exit with
// code 0, print nothing on stderr, and leave none of the suite's objects in /dev/shm.
//
// A block that cannot run alone is marked ```js no-run, followed by the reason on the
// same line (```js no-run: needs a C peer). Use that sparingly: a block that needs a peer
// process can usually start it itself (shm.fork(import.meta.url)), as the docs' examples do.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listSuiteObjects, suiteChanges } from './shm-check.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TIMEOUT_MS = 30_000;

/** README.md and every .md file under docs/, as paths relative to the repository. */
function pages() {
  const found = ['README.md'];
  const walk = (dir) => {
    for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(path);
      else if (e.name.endsWith('.md')) found.push(path);
    }
  };
  walk('docs');
  return found.sort();
}

/**
 * The fenced blocks of a page whose info string starts with the word `js`:
 * { line, code, skip } with `skip` the reason given after `no-run`, or null.
 */
export function jsBlocks(text) {
  const blocks = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*js(?:\s+(.*))?$/.exec(lines[i]);
    if (open === null) continue;
    const [, indent, fence, rest = ''] = open;
    const body = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j].trim().startsWith(fence) && lines[j].trim().replace(/[`~]/g, '') === '')) {
      body.push(indent && lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j]);
      j++;
    }
    const noRun = /^no-run\b[:\s-]*(.*)$/.exec(rest.trim());
    blocks.push({ line: i + 1, code: `${body.join('\n')}\n`, skip: noRun ? noRun[1] || 'no reason given' : null });
    i = j;
  }
  return blocks;
}

let tmp;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cshm-docs-'));
  mkdirSync(join(tmp, 'node_modules'));
  symlinkSync(ROOT, join(tmp, 'node_modules', 'concurrent-shm'), 'dir');
  writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'docs-snippets', private: true, type: 'module' }));
});
test.after(() => rmSync(tmp, { recursive: true, force: true }));

function runModule(file) {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.CONCURRENT_SHM_INHERITED; // a fresh process, as a user would start it
    const child = spawn(process.execPath, [file], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test('the block finder sees js blocks, their lines and no-run marks, and nothing else', () => {
  const page = ['# t', '```js', 'a();', '```', '```ts', 'b();', '```', '```js no-run: needs a C peer', 'c();', '```', '  ```js', '  d();', '  ```', '````js', '```', '````'].join('\n');
  assert.equal(jsBlocks(page), [
    { line: 2, code: 'a();\n', skip: null },
    { line: 8, code: 'c();\n', skip: 'needs a C peer' },
    { line: 11, code: 'd();\n', skip: null },
    { line: 14, code: '```\n', skip: null },
  ]);
});

const all = pages().flatMap((page) => jsBlocks(readFileSync(join(ROOT, page), 'utf8')).map((b) => ({ page, ...b })));

test('README.md and the docs hold js blocks to run', () => {
  assert.ok(all.length >= 5, `found ${all.length}`);
  assert.ok(all.some((b) => b.page === 'README.md'), 'the README quick start is among them');
});

for (const [i, block] of all.entries()) {
  test(`${block.page}:${block.line} runs as written`, async () => {
    if (block.skip) return console.log(`  ${block.page}:${block.line} not run: ${block.skip}`);
    const file = join(tmp, `${relative('.', block.page).replace(/[/.]/g, '_')}-${block.line}-${i}.mjs`);
    writeFileSync(file, block.code);
    const before = listSuiteObjects();
    const r = await runModule(file);
    const where = `${block.page}:${block.line}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
    assert.is(r.signal, null, `killed by ${r.signal}: ${where}`);
    assert.is(r.code, 0, `exit code ${r.code}: ${where}`);
    assert.is(r.stderr, '', `nothing on stderr: ${where}`);
    assert.equal(suiteChanges(before, listSuiteObjects()).added, [], `no object left in /dev/shm: ${where}`);
  });
}

test.run();
