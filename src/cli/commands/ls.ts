/**
 * `concurrent-shm ls`: the shared memory objects of this machine.
 * @internal
 */
import { parseArgs } from 'node:util';
import { parseInteger, parseOrUsage } from '../args.js';
import { EXIT_CODES_HELP, type Command } from '../command.js';
import { osName } from '../objects.js';
import { CliError, EXIT } from '../exit.js';
import { formatAge, formatBytes, table } from '../format.js';
import { listNames, namespaceDir, reportObjectSafely, type ObjectReport } from '../objects.js';
import { describeUnreadable, scanUsage } from '../processes.js';
import type { Structure } from '../probe.js';

const help = `usage: concurrent-shm ls [--json] [--offset N]

Lists the shared memory objects of this machine (Linux: the files in /dev/shm):
name, size, owner, permissions and age. For an object that holds a channel or a
mutex of concurrent-shm at offset 0 (or N), also its kind, depth, width
(capacity for Variable channels), how full it is (QUEUED: messages in it / depth),
its state (open, closed; a mutex: free or locked by a process), and which live
processes map it or hold it open (Linux: from /proc/*/maps and /proc/*/fd).

Objects are only read (opened read-only), never changed.

options:
  --json        print one JSON array, one entry per object, for scripts
  --offset N    look for the structure at byte N of each object (a multiple of 16; default 0)
  -h, --help    this text

${EXIT_CODES_HELP}`;

async function run(argv: string[]): Promise<number> {
  const { values } = parseOrUsage('ls', () =>
    parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, offset: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }),
  );
  const offset = values.offset === undefined ? 0 : parseInteger('--offset', values.offset, 'ls', { multipleOf: 16 });
  const dir = namespaceDir();
  if (dir === null) {
    throw new CliError(`listing shared memory objects is not possible on ${osName()}: the OS has no directory of them; use 'concurrent-shm inspect NAME'`, EXIT.FAILED);
  }
  let names: string[];
  try {
    names = listNames(dir);
  } catch (err) {
    throw new CliError(`cannot list ${dir}: ${(err as Error).message}`, EXIT.FAILED);
  }
  const scan = scanUsage(dir);
  const reports: ObjectReport[] = [];
  for (const name of names) {
    const r = await reportObjectSafely(name, offset, scan);
    if (r !== null) reports.push(r);
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
    return EXIT.OK;
  }
  if (reports.length === 0) {
    process.stdout.write(`no shared memory objects in ${dir}\n`);
    return EXIT.OK;
  }
  const rows = reports.map((r) => {
    const s = r.structure;
    return [
      r.name,
      formatBytes(r.size),
      r.owner,
      r.permissions,
      formatAge(r.ageMs),
      s?.kind ?? (r.note?.startsWith('cannot read') ? '?' : '-'),
      s?.type === 'channel' ? String(s.depth) : '-',
      s?.type === 'channel' ? String(s.width) : '-',
      s?.type === 'channel' && s.queued !== undefined ? `${s.queued}/${s.depth}` : '-',
      s === null ? '-' : stateOf(s),
      r.processes === null ? 'unknown' : r.processes.length === 0 ? '-' : r.processes.map((u) => `${u.pid} ${u.command ?? '?'}`).join(', '),
    ];
  });
  process.stdout.write(`${table(['NAME', 'SIZE', 'OWNER', 'MODE', 'AGE', 'KIND', 'DEPTH', 'WIDTH', 'QUEUED', 'STATE', 'PROCESSES'], rows, [1, 6, 7, 8])}\n`);
  if (scan.unreadable.length > 0) {
    process.stderr.write(`note: ${describeUnreadable(scan.unreadable)} could not be inspected (permission denied): PROCESSES may miss them\n`);
  }
  return EXIT.OK;
}

/** "open", "closed", "initialising", "free", "locked by 123", "locked by 123 (dead)". */
export function stateOf(s: Structure): string {
  if (!s.ready) return s.initPidAlive ? 'initialising' : 'broken (initialiser died)';
  if (s.type === 'mutex') {
    if (!s.lockHolder) return 'free';
    return `locked by ${s.lockHolder}${s.lockHolderAlive ? '' : ' (dead)'}`;
  }
  return s.closed ? 'closed' : 'open';
}

export const ls: Command = { summary: 'list shared memory objects, with the channels and mutexes in them', help, run };
