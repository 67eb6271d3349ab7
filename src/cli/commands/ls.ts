/**
 * `concurrent-shm ls`: the shared memory objects of this machine.
 * @internal
 */
import { parseArgs } from 'node:util';
import { parseInteger, parseOrUsage } from '../args.js';
import { EXIT_CODES_HELP, type Command } from '../command.js';
import { CliError, EXIT } from '../exit.js';
import { fitTable, formatAge, formatBytes, outputWidth, type Column } from '../format.js';
import { listNames, namespaceDir, osName, reportObjectSafely, sharedWithOthers, type ObjectReport } from '../objects.js';
import { describeUnreadable, scanUsage, type UsageScan } from '../processes.js';
import type { Structure } from '../probe.js';

const help = `usage: concurrent-shm ls [--json] [--wide] [--offset N]

Lists the shared memory objects of this machine (Linux: the files in /dev/shm):
name, size, owner, permissions and age. For an object that holds a channel or a
mutex of concurrent-shm at offset 0 (or N), also its kind, depth, width
(capacity for Variable channels), how full it is (QUEUED: messages in it / depth),
its state (open, closed; a mutex: free or locked by a process), and which live
processes map it or hold it open (Linux: from /proc/*/maps and /proc/*/fd).

The table fits the terminal (when not one: $COLUMNS, else 80 columns). As far as
needed, it leaves out DEPTH, WIDTH, MODE, OWNER and AGE, shortens PROCESSES with
'…', leaves out QUEUED and SIZE, and shortens long names in the middle with '…'
(a note then says so). --wide prints everything.

Objects are only read (opened read-only), never changed.

options:
  --json        print one JSON array, one entry per object, for scripts
  --wide        every column in full, however wide
  --offset N    look for the structure at byte N of each object (a multiple of 16; default 0)
  -h, --help    this text

${EXIT_CODES_HELP}`;

/** The table's columns, in order; `give` says what goes first when the table is too wide (see the help). */
const COLUMNS: readonly Column[] = [
  { header: 'NAME', give: { order: 9, how: 'middle', min: 14 } },
  { header: 'SIZE', right: true, give: { order: 8, how: 'drop' } },
  { header: 'OWNER', give: { order: 4, how: 'drop' } },
  { header: 'MODE', give: { order: 3, how: 'drop' } },
  { header: 'AGE', give: { order: 5, how: 'drop' } },
  { header: 'KIND' },
  { header: 'DEPTH', right: true, give: { order: 1, how: 'drop' } },
  { header: 'WIDTH', right: true, give: { order: 2, how: 'drop' } },
  { header: 'QUEUED', right: true, give: { order: 7, how: 'drop' } },
  { header: 'STATE' },
  { header: 'PROCESSES', give: { order: 6, how: 'end', min: 10 } },
];

async function run(argv: string[]): Promise<number> {
  const { values } = parseOrUsage('ls', () =>
    parseArgs({
      args: argv,
      options: { json: { type: 'boolean' }, wide: { type: 'boolean' }, offset: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
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
      r.mode,
      formatAge(r.ageMs),
      s?.kind ?? (r.note?.startsWith('cannot read') ? '?' : '-'),
      s?.type === 'channel' || s?.type === 'broadcast' ? String(s.depth) : '-',
      s?.type === 'channel' || s?.type === 'broadcast' ? String(s.width) : '-',
      s?.type === 'channel' && s.queued !== undefined ? `${s.queued}/${s.depth}` : '-',
      s === null ? '-' : stateOf(s),
      r.processes === null ? 'unknown' : r.processes.length === 0 ? '-' : r.processes.map((u) => `${u.pid} ${u.command ?? '?'}`).join(', '),
    ];
  });
  const limit = values.wide ? Infinity : outputWidth(process.stdout);
  const table = fitTable(COLUMNS, rows, limit);
  process.stdout.write(`${table.text}\n`);
  if (table.cut.includes('NAME')) {
    process.stderr.write(`note: long names are shortened with '…' to fit ${limit} columns; --wide or --json shows them whole\n`);
  }
  const note = unreadableNote(reports, scan);
  if (note !== null) process.stderr.write(`note: ${note}\n`);
  return EXIT.OK;
}

/**
 * The one line to say about processes that could not be inspected (other users', without
 * root), or `null` when it does not matter: only objects that hold a structure of this
 * library, show no process, and that other users may open (the rule of `rm --stale`)
 * could be in use unseen.
 */
export function unreadableNote(reports: readonly ObjectReport[], scan: UsageScan): string | null {
  if (scan.unreadable.length === 0) return null;
  const unseen = reports.filter((r) => r.structure !== null && r.processes !== null && r.processes.length === 0 && sharedWithOthers(r));
  if (unseen.length === 0) return null;
  const which = unseen.length <= 3 ? `${unseen.map((r) => r.name).join(', ')} show${unseen.length === 1 ? 's' : ''}` : `${unseen.length} objects show`;
  const them = unseen.length === 1 ? 'it' : 'them';
  return `${which} no processes, but other users may open ${them}, and ${describeUnreadable(scan.unreadable)} could not be inspected (permission denied; root sees all)`;
}

/** "open", "closed", "initialising", "free", "locked by 123", "locked by 123 (dead)". */
export function stateOf(s: Structure): string {
  if (!s.ready) return s.initPidAlive ? 'initialising' : 'broken (initialiser died)';
  if (s.type === 'mutex') {
    if (!s.lockHolder) return 'free';
    return `locked by ${s.lockHolder}${s.lockHolderAlive ? '' : ' (dead)'}`;
  }
  if (s.type === 'heap' && s.heap) return `${s.heap.used}/${s.heap.size} bytes used, ${s.heap.blocks} blocks (${s.heap.named} named), largest free ${s.heap.largest}`;
  return s.closed ? 'closed' : 'open';
}

export const ls: Command = { summary: 'list shared memory objects, with the structures in them', help, run };
