// "Works when installed as a dependency": `npm pack` the package, check what the tarball
// holds, install it into an empty project with npm's defaults (koffi comes from the
// registry), then use it there the way a user would: the `concurrent-shm` command
// through npx, an ES module importing the package, a TypeScript file type-checked
// against the installed declarations. Everything happens in a temp dir that is removed.
//
// Needs the npm registry (for koffi). PACKAGE_TEST=0 skips this file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SKIP = process.env.PACKAGE_TEST === '0';
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

let tmp;
let app;
let tarball;
let packed;

/** Runs a command with a deadline; { code, stdout, stderr }. */
function run(cmd, args, { cwd = app, input, timeout = 60_000, env = {} } = {}) {
  const r = spawnSync(cmd, args, { cwd, input, timeout, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r, what) {
  assert.is(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

test.before(() => {
  if (SKIP) return;
  tmp = mkdtempSync(join(tmpdir(), 'cshm-package-'));
  // Pack what is built now (npm test builds first); --ignore-scripts skips prepack's clean
  // rebuild, which would rewrite dist/ under anyone else using this checkout.
  const out = execFileSync(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  packed = JSON.parse(out.slice(out.indexOf('[')))[0];
  tarball = join(tmp, packed.filename);
  app = join(tmp, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }, null, 2));
});

function cleanup() {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
}
test.after(cleanup);
process.on('exit', cleanup); // also when a test throws outside uvu's hooks

test('the tarball holds what a user needs and nothing else', () => {
  if (SKIP) return console.log('  (skipped: PACKAGE_TEST=0)');
  const files = packed.files.map((f) => f.path).sort();
  const allowed = [/^package\.json$/, /^README\.md$/, /^LICENSE$/, /^dist\/.+\.(js|d\.ts)$/, /^docs\/.+\.(md|svg)$/, /^examples\/.+\.(js|md)$/, /^bench\/(ipc\.js|README\.md|lib\/.+\.js|transports\/.+\.(js|md))$/];
  const unexpected = files.filter((f) => !allowed.some((re) => re.test(f)));
  assert.equal(unexpected, [], 'files outside the allowed set');
  for (const f of ['package.json', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/cli/main.js', 'bench/ipc.js', 'bench/lib/report.js', 'bench/lib/svg.js']) {
    assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  for (const f of ['README.md', 'examples/producer-consumer/main.js']) {
    if (existsSync(join(ROOT, f))) assert.ok(files.includes(f), `${f} is in the tarball`);
  }
  assert.not.ok(files.some((f) => f.endsWith('.map')), 'no source maps (their sources are not shipped)');
  assert.not.ok(files.some((f) => /^dist\/cli\/.*\.d\.ts$/.test(f)), 'no declarations of the command');
  // Every built file comes from a current source file (a stale dist/ would ship dead code).
  const stale = files
    .filter((f) => f.startsWith('dist/'))
    .map((f) => f.replace(/^dist\//, 'src/').replace(/\.d\.ts$|\.js$/, '.ts'))
    .filter((src) => !existsSync(join(ROOT, src)));
  assert.equal(stale, [], 'built files without a source (rm -rf dist && npm run build)');
  console.log(`  ${packed.filename}: ${files.length} files, ${(packed.size / 1024).toFixed(1)} kB packed, ${(packed.unpackedSize / 1024).toFixed(1)} kB unpacked`);
});

test('npm install of the tarball into an empty project, with npm defaults', () => {
  if (SKIP) return;
  ok(run(NPM, ['install', tarball, '--no-audit', '--no-fund'], { timeout: 150_000 }), 'npm install');
  const bin = join(app, 'node_modules', '.bin', 'concurrent-shm');
  accessSync(bin, constants.X_OK);
  const installed = join(app, 'node_modules', 'concurrent-shm');
  assert.ok(existsSync(join(installed, 'dist', 'cli', 'main.js')));
  assert.not.ok(existsSync(join(installed, 'src')), 'no sources installed');
  assert.not.ok(existsSync(join(installed, 'test')), 'no tests installed');
});

test('npx concurrent-shm: --help, --version, ls --json, bench --help', () => {
  if (SKIP) return;
  // npm_config_yes=false: npx must use the installed bin, never fetch a package of that name.
  const npx = (args, options = {}) => run(NPX, ['concurrent-shm', ...args], { ...options, env: { npm_config_yes: 'false' } });
  let r = ok(npx(['--help']), 'npx concurrent-shm --help');
  assert.match(r.stdout, /^usage: concurrent-shm <command>/);
  r = ok(npx(['--version']), '--version');
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  r = ok(npx(['ls', '--json']), 'ls --json');
  assert.ok(Array.isArray(JSON.parse(r.stdout)));
  r = ok(npx(['bench', '--help']), 'bench --help');
  assert.match(r.stdout, /^usage: concurrent-shm bench/);
  r = npx(['nope']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown command 'nope'/);
});

test('npx concurrent-shm demo < lines prints received! "..." lines', () => {
  if (SKIP) return;
  if (!existsSync(join(app, 'node_modules', 'concurrent-shm', 'examples', 'producer-consumer', 'main.js'))) {
    return console.log('  (demo check skipped: examples/producer-consumer/main.js is not in the package yet)');
  }
  const r = ok(run(NPX, ['concurrent-shm', 'demo'], { input: 'hello\nfrom the installed package\n', timeout: 30_000, env: { npm_config_yes: 'false' } }), 'demo');
  assert.match(r.stdout, /^received! "hello\\n"$/m);
  assert.match(r.stdout, /^received! "from the installed package\\n"$/m);
});

test('npx concurrent-shm bench runs from the installed package (one transport, --quick) and writes a chart', () => {
  if (SKIP) return;
  const svg = join(tmp, 'chart.svg');
  const r = ok(run(NPX, ['concurrent-shm', 'bench', '--quick', '--only', 'channel-sync', '--svg', svg], { timeout: 60_000, env: { npm_config_yes: 'false' } }), 'bench');
  assert.match(r.stdout, /^IPC benchmark \(--quick\)/);
  assert.match(r.stdout, /channel, sync/);
  assert.match(r.stderr, /\[1\/\d+\] /, 'plain progress lines without a terminal');
  assert.ok(existsSync(svg));
});

test('an ES module importing concurrent-shm maps a region and reads and writes a pointer', () => {
  if (SKIP) return;
  const name = `/cshm-test-pkg-${process.pid}`;
  writeFileSync(
    join(app, 'use.mjs'),
    `import { SharedMemory, Region, UInt32Ptr, Channel } from 'concurrent-shm';
const shm = SharedMemory.open(${JSON.stringify(name)}, 0o600, { mode: 'excl' });
try {
  shm.size = 4096;
  const region = Region.map(shm, 0, 8);
  const ptr = new UInt32Ptr(region, 4);
  ptr.write(0xdeadbeef);
  const again = Region.map(shm, 4, 4).asUIntPtr();
  const ch = new Channel.SingleBuffered.Variable(SharedMemory.open(null, 0o600, { mode: 'anon' }), { capacity: 64 });
  ch.sendSync('through a channel');
  console.log(JSON.stringify({ value: again.read(), bytes: [...region.read()], message: ch.recvSync({ encoding: 'utf8' }) }));
} finally {
  shm.unlink();
  shm.close();
}
`,
  );
  const r = ok(run(process.execPath, ['use.mjs']), 'use.mjs');
  assert.equal(JSON.parse(r.stdout), { value: 0xdeadbeef, bytes: [0, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde], message: 'through a channel' });
  assert.not.ok(existsSync(`/dev/shm${name}`));
});

test('a TypeScript file importing concurrent-shm type-checks against the installed declarations', () => {
  if (SKIP) return;
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          // @types/node from this repository: the app has no devDependencies of its own.
          typeRoots: [join(ROOT, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['main.ts'],
      },
      null,
      2,
    ),
  );
  writeFileSync(
    join(app, 'main.ts'),
    `import { Channel, Region, SharedMemory, UInt32Ptr, ShmNotFoundError, type ChannelStats } from 'concurrent-shm';

const shm: SharedMemory = SharedMemory.open(null, 0o600, { mode: 'anon' });
shm.size = 4096;
const region: Region = Region.map(shm, 0, 8);
const ptr = new UInt32Ptr(region, 4);
ptr.write(42);
const n: number = ptr.read();
const ch: Channel = new Channel.Buffered.Fixed(shm, { depth: 4, width: 8, offset: 256 });
const stats: ChannelStats = ch.stats();
const queued: number = stats.queued;
const message: Promise<string> = ch.recv({ encoding: 'utf8' });
// @ts-expect-error: a capacity is a number (proves the types are real, not any)
new Channel.SingleBuffered.Variable(shm, { capacity: 'big' });
try {
  SharedMemory.delete('/nope');
} catch (err) {
  if (err instanceof ShmNotFoundError) console.log(err.errnoName, err.code);
}
console.log(n, queued, message);
`,
  );
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = run(process.execPath, [tsc, '-p', 'tsconfig.json', '--pretty', 'false'], { timeout: 60_000 });
  assert.is(r.code, 0, `tsc --noEmit failed:\n${r.stdout}${r.stderr}`);
});

test.run();
