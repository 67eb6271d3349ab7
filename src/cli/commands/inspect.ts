/**
 * `concurrent-shm inspect NAME`: a channel's or mutex's header and counters, once or
 * refreshed in place (`--watch`).
 * @internal
 */
import { parseArgs } from 'node:util';
import { parseInteger, parseOrUsage } from '../args.js';
import { EXIT_CODES_HELP, objectError, type Command } from '../command.js';
import { CliError, EXIT, UsageError } from '../exit.js';
import { formatAge, formatBytes } from '../format.js';
import { toShmName } from '../names.js';
import { namespaceDir, reportObject, type ObjectReport } from '../objects.js';
import { formatUses, scanUsage } from '../processes.js';
import type { Structure } from '../probe.js';
import { stateOf } from './ls.js';

const help = `usage: concurrent-shm inspect NAME [--offset N] [--watch] [--interval MS] [--json]

Shows the header and counters of the channel or mutex of concurrent-shm at offset 0
(or N) of shared memory object NAME ('/jobs' or 'jobs').
  channel: kind, depth, width, messages sent, received and queued, whether it is
           closed, processes waiting to send or to receive, slots being written or
           read right now and by which process (alive or dead)
  mutex:   free or locked, by which process and whether it is alive; processes
           waiting; holders that died holding it (counted when the next locker
           takes over: until then a dead holder still holds it)
  both:    the process that initialised it, the processes that map the object

The object is only read, never changed. An object that holds no structure of this
library at that offset is reported with exit code 3.

options:
  --offset N       byte offset of the structure (a multiple of 16; default 0)
  --watch          refresh in place until Ctrl-C (on a terminal; otherwise print a
                   new block each time)
  --interval MS    refresh period of --watch in milliseconds (default 1000)
  --json           print a JSON object (with --watch: one JSON line per refresh)
  -h, --help       this text

${EXIT_CODES_HELP}`;

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseOrUsage('inspect', () =>
    parseArgs({
      args: argv,
      options: {
        offset: { type: 'string' },
        watch: { type: 'boolean' },
        interval: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: true,
    }),
  );
  if (positionals.length === 0) throw new UsageError('missing NAME: which object to inspect', 'inspect');
  if (positionals.length > 1) throw new UsageError(`inspect takes one NAME, got ${positionals.length}`, 'inspect');
  const name = toShmName(positionals[0]!, 'inspect');
  const offset = values.offset === undefined ? 0 : parseInteger('--offset', values.offset, 'inspect', { multipleOf: 16 });
  if (values.interval !== undefined && !values.watch) throw new UsageError('--interval needs --watch', 'inspect');
  const interval = values.interval === undefined ? 1000 : parseInteger('--interval', values.interval, 'inspect', { min: 10 });

  if (!values.watch) {
    const r = await read(name, offset);
    process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : `${render(r, null, 0)}\n`);
    return EXIT.OK;
  }
  return watch(name, offset, interval, !!values.json);
}

/** The report on `name`, or a CliError: not found / not a structure → 3, unreadable → 1. */
async function read(name: string, offset: number): Promise<ObjectReport> {
  const dir = namespaceDir();
  let r: ObjectReport;
  try {
    r = await reportObject(name, offset, dir === null ? null : scanUsage(dir));
  } catch (err) {
    throw objectError(name, err);
  }
  if (r.structure === null) {
    throw new CliError(`'${name}' holds no concurrent-shm structure at offset ${offset} (${r.note})`, EXIT.NOT_FOUND);
  }
  return r;
}

async function watch(name: string, offset: number, interval: number, json: boolean): Promise<number> {
  const tty = !json && process.stdout.isTTY === true;
  let stop = false;
  let wake: (() => void) | null = null;
  const onSignal = (): void => {
    stop = true;
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let shownLines = 0;
  let previous: { sent: number; received: number; at: number } | null = null;
  try {
    while (!stop) {
      let r: ObjectReport;
      try {
        r = await read(name, offset);
      } catch (err) {
        if (err instanceof CliError && err.exitCode === EXIT.NOT_FOUND && shownLines > 0 && tty) process.stdout.write('\n');
        throw err;
      }
      const now = performance.now();
      if (json) {
        process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...r })}\n`);
      } else {
        const rates = previous === null ? null : rateOf(r, previous, now);
        let text = `${render(r, rates, interval)}\n`;
        // Lines wider than the terminal would wrap and spoil the in-place redraw.
        if (tty && process.stdout.columns) text = text.replace(/^.*$/gm, (l) => (l.length < process.stdout.columns ? l : `${l.slice(0, process.stdout.columns - 2)}…`));
        if (tty && shownLines > 0) process.stdout.write(`\x1b[${shownLines}A\r\x1b[J`);
        process.stdout.write(tty ? text : `${text}\n`);
        shownLines = text.split('\n').length - 1;
      }
      const s = r.structure!;
      previous = { sent: s.sent ?? 0, received: s.received ?? 0, at: now };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return EXIT.OK;
}

interface Rates {
  sent: number;
  received: number;
}

function rateOf(r: ObjectReport, prev: { sent: number; received: number; at: number }, now: number): Rates | null {
  const s = r.structure!;
  const secs = (now - prev.at) / 1000;
  if (s.sent === undefined || s.received === undefined || secs <= 0) return null;
  return { sent: ((s.sent - prev.sent) >>> 0) / secs, received: ((s.received - prev.received) >>> 0) / secs };
}

/** "123 (alive)" / "123 (dead)": the library's own check (dead only when provably gone; a zombie is dead). */
function alive(pid: number, isAlive: boolean | null | undefined): string {
  return `${pid} (${isAlive ? 'alive' : 'dead'})`;
}

/**
 * A mutex's state and deaths, told as one story: a holder that died still holds the lock
 * until the next locker takes it over (its lock() throws OwnerDeadError, and it holds the
 * mutex); only then is the death counted.
 */
function mutexLines(s: Structure): [string, string][] {
  const holder = s.lockHolder ?? 0;
  if (holder === 0) {
    return [
      ['state', 'free'],
      ['deaths', `${s.deaths} (holders that died holding it, counted at takeover)`],
    ];
  }
  if (s.lockHolderAlive) {
    return [
      ['state', `locked by ${alive(holder, true)}`],
      ['deaths', `${s.deaths} (holders that died holding it, counted at takeover)`],
    ];
  }
  return [
    ['state', `locked by ${holder} (dead; the next locker takes it over)`],
    ['deaths', `${s.deaths}, not yet counting ${holder} (a death is counted at takeover)`],
  ];
}

/** The text block of one report. */
export function render(r: ObjectReport, rates: Rates | null, interval: number): string {
  const s = r.structure!;
  const lines: [string, string][] = [];
  lines.push(['object', `${r.name}, ${formatBytes(r.size)} (${r.size} bytes), owner ${r.owner}, ${r.permissions}, age ${formatAge(r.ageMs)}`]);
  lines.push(['structure', `${s.description} at offset ${s.offset}, ${s.byteLength} bytes`]);
  if (s.type === 'mutex' && s.ready) {
    const [state, deaths] = mutexLines(s);
    lines.push(state!);
    lines.push(['waiting', `${s.waiting!.lock} for the lock`]);
    lines.push(deaths!);
  } else {
    lines.push(['state', s.type === 'heap' && s.ready ? 'ready' : stateOf(s)]);
  }
  if (s.type === 'channel') {
    const rate = (n: number | undefined): string => (rates === null || n === undefined ? '' : ` (${Math.round(n)}/s)`);
    lines.push(['depth', String(s.depth)]);
    lines.push([s.kind.endsWith('Variable') ? 'capacity' : 'width', `${s.width} bytes`]);
    if (s.ready) {
      lines.push(['sent', `${s.sent}${rate(rates?.sent)}`]);
      lines.push(['received', `${s.received}${rate(rates?.received)}`]);
      lines.push(['queued', `${s.queued} of ${s.depth}`]);
      lines.push(['waiting', `${s.waiting!.senders} to send, ${s.waiting!.receivers} to receive`]);
      const busy = s.busy!.map((b) => `slot ${b.slot} ${b.phase} by ${alive(b.pid, b.alive)}`);
      lines.push(['in progress', busy.length === 0 ? 'none' : busy.join(', ')]);
    }
  }
  if (s.type === 'broadcast') {
    lines.push(['depth', String(s.depth)]);
    lines.push(['capacity', `${s.width} bytes`]);
    if (s.ready) {
      lines.push(['published', `${s.published}${s.abandoned ? ` (${s.abandoned} abandoned by publishers that died)` : ''}`]);
      lines.push(['back-pressure', s.backpressure ? 'yes (publishers wait for the slowest live subscriber)' : 'no (a slow subscriber is overrun)']);
      const subs = s.subscribers!.map((x) => `${alive(x.pid, x.alive)} at ${x.cursor} (${x.behind} behind)`);
      lines.push(['subscribers', `${subs.length} of ${s.maxSubscribers}${subs.length ? `: ${subs.join(', ')}` : ''}`]);
      lines.push(['waiting', `${s.waiting!.senders} to publish, ${s.waiting!.receivers} to receive`]);
    }
  }
  if (s.type === 'heap' && s.heap) {
    const h = s.heap;
    lines.push(['size', `${h.size} bytes`]);
    lines.push(['used', `${h.used} bytes in ${h.blocks} block${h.blocks === 1 ? '' : 's'} (${h.named} named)`]);
    lines.push(['free', `${h.free} bytes in ${h.freeBlocks} block${h.freeBlocks === 1 ? '' : 's'}, the largest malloc that fits: ${h.largest} bytes`]);
    lines.push(['lock', s.lockHolder ? `held by ${alive(s.lockHolder, s.lockHolderAlive)}` : 'free']);
    lines.push(['repairs', `${h.repairs} (operations of dead processes rolled back)${h.pendingRepair ? '; one pending, done by the next process to take the lock' : ''}`]);
  }
  lines.push(['initialised by', s.initPid ? alive(s.initPid, s.initPidAlive) : 'unknown']);
  lines.push(['processes', r.processes === null ? 'unknown on this OS' : r.processes.length === 0 ? 'none' : formatUses(r.processes)]);
  if (interval > 0) lines.push(['updated', `${new Date().toTimeString().slice(0, 8)} (every ${interval} ms; Ctrl-C to stop)`]);
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

export const inspect: Command = { summary: "show a structure's header and counters (--watch to follow)", help, run };
