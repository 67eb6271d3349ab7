/**
 * `concurrent-shm bench`: the IPC benchmark of bench/ipc.js (shipped in the package),
 * with a progress bar on a terminal and plain lines otherwise.
 * @internal
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseInteger, parseOrUsage } from '../args.js';
import { type Command } from '../command.js';
import { CliError, EXIT, UsageError } from '../exit.js';
import { packageFile } from '../paths.js';

const help = `usage: concurrent-shm bench [--quick] [--load N] [--json FILE] [--svg FILE]
                            [--only ID,ID]

Measures message passing between two processes on this machine: the round trip
of a 64-byte message and one-way throughput at 64 B, 4 KiB, 64 KiB and 1 MiB,
for the channels of concurrent-shm, the floor (a bare flag in shared memory,
which no channel can beat) and what you would use instead (process.send with
JSON and advanced serialization, worker postMessage, a Unix socket). Every round
trip is also given as a multiple of the floor and against process.send (json),
from the same run. A full run takes about a minute; --quick about 10 s.

Progress goes to stderr (a bar on a terminal, one line per step otherwise), the
tables to stdout.

options:
  --quick          shorter measurements, for a first look
  --load N         run N busy loops (separate node processes) during the
                   measurement, to see what a busy host does to each transport
                   (one per core is a typical server); they are stopped after
  --json FILE      also write the results and machine description as JSON
  --svg FILE       also write a chart (SVG)
  --only ID,ID     run only these transports; keep bare-flag and
                   process-send-json for the ratios. The ids:
                     bare-flag              the floor: a flag in shared memory
                     channel-sync           channel, sendSync/recvIntoSync
                     channel-buffered       the same, 8 slots (1 above)
                     channel-async          channel, send/recvInto, 1 slot
                     process-send-json      process.send, json
                     process-send-advanced  process.send, advanced
                     worker-postmessage     a worker thread, postMessage
                     unix-socket            a Unix domain socket
                     memcpy                 throughput reference: one process copying
  -h, --help       this text

exit codes:
  0  ok
  1  a transport failed (its row shows '–', the error is printed under the
     table), or the benchmark could not run
  2  usage error (unknown option, unknown transport id, bad --load)
`;

/** What the command uses of bench/ipc.js. */
interface BenchModule {
  runBenchmark(options: { quick?: boolean; only?: string; load?: number; onProgress?: (ev: unknown) => void }): Promise<{ results: { error?: unknown }[] }>;
  createProgress(options?: object): { update(ev: unknown): void; clear(): void };
  formatReport(run: unknown): string;
  writeJson(file: string, run: unknown): void;
  writeSvg(file: string, run: unknown): void;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseOrUsage('bench', () =>
    parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        json: { type: 'string' },
        svg: { type: 'string' },
        only: { type: 'string' },
        load: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }),
  );
  const load = values.load === undefined ? 0 : parseInteger('--load', values.load, 'bench', { max: 256 });
  const entry = packageFile('bench/ipc.js');
  if (!existsSync(entry)) throw new CliError(`the benchmark is not installed: ${fileURLToPath(entry)} is missing`, EXIT.FAILED);
  const bench = (await import(entry.href)) as BenchModule;
  const { cleanupAll } = (await import(packageFile('bench/lib/transport.js').href)) as { cleanupAll(): void };

  const onSignal = (signal: NodeJS.Signals): void => {
    cleanupAll();
    process.stderr.write(`\ninterrupted (${signal})\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const progress = bench.createProgress();
  let result: { results: { error?: unknown }[] };
  try {
    result = await bench.runBenchmark({ quick: !!values.quick, ...(values.only ? { only: values.only } : {}), load, onProgress: (ev) => progress.update(ev) });
  } catch (err) {
    progress.clear();
    const message = (err as Error).message;
    // runBenchmark rejects up front only for bad options, such as an unknown transport id.
    if (/unknown transport/.test(message)) throw new UsageError(message, 'bench');
    throw new CliError(message, EXIT.FAILED);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  process.stdout.write(`${bench.formatReport(result)}\n`);
  try {
    if (values.json) {
      bench.writeJson(values.json, result);
      process.stderr.write(`wrote ${values.json}\n`);
    }
    if (values.svg) {
      bench.writeSvg(values.svg, result);
      process.stderr.write(`wrote ${values.svg}\n`);
    }
  } catch (err) {
    throw new CliError(`cannot write the results: ${(err as Error).message}`, EXIT.FAILED);
  }
  return result.results.some((r) => r.error) ? EXIT.FAILED : EXIT.OK;
}

export const bench: Command = { summary: 'compare channels with process.send, worker postMessage and a Unix socket', help, run };
