/**
 * `concurrent-shm rm`: removes objects by name (`shm_unlink`, through the library's
 * `SharedMemory.delete`), or the library's stale objects.
 * @internal
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parseInteger, parseOrUsage } from '../args.js';
import { EXIT_CODES_HELP, objectError, type Command } from '../command.js';
import { osName } from '../objects.js';
import { CliError, EXIT, UsageError } from '../exit.js';
import { formatAge, formatBytes } from '../format.js';
import { toShmName } from '../names.js';
import { listNames, namespaceDir, reportObjectSafely, staleness, type ObjectReport } from '../objects.js';
import { scanUsage, type UsageScan } from '../processes.js';

const help = `usage: concurrent-shm rm NAME...
       concurrent-shm rm --stale [NAME...] [--yes] [--offset N]

Removes shared memory objects by name (shm_unlink). NAME is '/jobs' or 'jobs'; nothing
outside the shared memory namespace can be named (no other '/', no '..').
Processes that have an object mapped keep it until they let go; the name is gone at once.

With --stale, removes only the objects that hold a channel or mutex of concurrent-shm
at offset 0 (or N) and that no live process maps or holds open (Linux: from /proc):
leftovers of crashed programs. Without NAMEs it considers every object of the machine.
It lists them and asks before removing, unless --yes. Without a terminal to ask on,
it refuses (exit code 2) unless --yes is given.

options:
  --stale          remove only stale objects of this library (see above)
  -y, --yes        do not ask for confirmation (--stale)
  --offset N       where --stale looks for the structure (a multiple of 16; default 0)
  -h, --help       this text

${EXIT_CODES_HELP}`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOrUsage('rm', () =>
    parseArgs({
      args: argv,
      options: {
        stale: { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        offset: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }),
  );
  const names = positionals.map((p) => toShmName(p, 'rm'));
  if (!values.stale) {
    if (names.length === 0) throw new UsageError('missing NAME: which objects to remove (or --stale)', 'rm');
    if (values.yes) throw new UsageError('--yes goes with --stale', 'rm');
    if (values.offset !== undefined) throw new UsageError('--offset goes with --stale', 'rm');
    return removeNames(names);
  }
  const offset = values.offset === undefined ? 0 : parseInteger('--offset', values.offset, 'rm', { multipleOf: 16 });
  return removeStale(names, offset, !!values.yes);
}

async function deleteObject(name: string): Promise<void> {
  const { SharedMemory } = await import('../../index.js');
  SharedMemory.delete(name);
}

/** Removes every name; goes on after a failure and reports the worst exit code. */
async function removeNames(names: string[]): Promise<number> {
  let code: number = EXIT.OK;
  for (const name of names) {
    try {
      await deleteObject(name);
      process.stdout.write(`removed ${name}\n`);
    } catch (err) {
      const e = objectError(name, err);
      process.stderr.write(`concurrent-shm rm: ${e.message.replace(/^cannot read/, 'cannot remove')}\n`);
      code = Math.max(code, e.exitCode === EXIT.NOT_FOUND ? EXIT.NOT_FOUND : EXIT.FAILED);
    }
  }
  return code;
}

async function findStale(names: string[], offset: number, dir: string, scan: UsageScan): Promise<{ stale: ObjectReport[]; missing: string[] }> {
  const all = names.length > 0 ? names : listNames(dir);
  const stale: ObjectReport[] = [];
  const missing: string[] = [];
  for (const name of all) {
    const r = await reportObjectSafely(name, offset, scan);
    if (r === null) {
      missing.push(name);
      continue;
    }
    const verdict = staleness(r, scan);
    if (verdict.stale) stale.push(r);
    else if (names.length > 0) process.stdout.write(`keeping ${name}: ${verdict.why}\n`);
  }
  return { stale, missing };
}

async function removeStale(names: string[], offset: number, yes: boolean): Promise<number> {
  const dir = namespaceDir();
  if (dir === null) {
    throw new CliError(`rm --stale is not possible on ${osName()}: the OS does not tell which processes use an object`, EXIT.FAILED);
  }
  const { stale, missing } = await findStale(names, offset, dir, scanUsage(dir));
  for (const name of missing) process.stderr.write(`concurrent-shm rm: no shared memory object '${name}'\n`);
  const missingCode = missing.length > 0 ? EXIT.NOT_FOUND : EXIT.OK;
  if (stale.length === 0) {
    process.stdout.write('no stale objects\n');
    return missingCode;
  }
  process.stdout.write(`stale objects of concurrent-shm (no live process maps or holds them):\n`);
  for (const r of stale) {
    const s = r.structure!;
    const init = s.initPid ? `, initialised by ${s.initPid} (${s.initPidAlive ? 'alive' : 'gone'})` : '';
    process.stdout.write(`  ${r.name}  ${s.description}, ${formatBytes(r.size)}, owner ${r.owner}, age ${formatAge(r.ageMs)}${init}\n`);
  }
  if (!yes) {
    if (!process.stdin.isTTY) {
      throw new UsageError(`refusing to remove ${stale.length} object(s) without confirmation: standard input is not a terminal (pass --yes)`, 'rm', false);
    }
    if (!(await confirm(`Remove ${stale.length === 1 ? 'this object' : `these ${stale.length} objects`}? [y/N] `))) {
      process.stdout.write('nothing removed\n');
      return EXIT.OK;
    }
  }
  // Look again right before removing: a process may have attached while we asked.
  const scan = scanUsage(dir);
  let code: number = missingCode;
  for (const before of stale) {
    const now = await reportObjectSafely(before.name, offset, scan);
    if (now === null) continue; // removed by someone else meanwhile
    const verdict = staleness(now, scan);
    if (now.inode !== before.inode || !verdict.stale) {
      process.stdout.write(`keeping ${before.name}: ${now.inode !== before.inode ? 'it was replaced meanwhile' : verdict.why}\n`);
      continue;
    }
    try {
      await deleteObject(before.name);
      process.stdout.write(`removed ${before.name}\n`);
    } catch (err) {
      const e = objectError(before.name, err);
      if (e.exitCode === EXIT.NOT_FOUND) continue;
      process.stderr.write(`concurrent-shm rm: ${e.message.replace(/^cannot read/, 'cannot remove')}\n`);
      code = EXIT.FAILED;
    }
  }
  return code;
}

/** Asks a yes/no question on the terminal; `true` for an answer starting with y. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolve) => {
      rl.question(question, resolve);
      rl.once('close', () => resolve(''));
    });
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export const rm: Command = { summary: "remove objects by name, or the library's stale ones (--stale)", help, run };
