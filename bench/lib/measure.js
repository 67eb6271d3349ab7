// Runs one transport through the round-trip and throughput measurements.

import { guard } from './watchdog.js';
import { cleanupAll, formatSize } from './transport.js';

export const ROUND_TRIP_SIZE = 64;
export const SIZES = [64, 4 << 10, 64 << 10, 1 << 20];

/** Measurement plans. Times are nanoseconds. */
export const PLANS = {
  full: {
    roundTrip: { warmupNs: 0.15e9, batchNs: 0.2e9, batches: 5 },
    throughput: { warmupNs: 0.1e9, batchNs: 0.4e9, batches: 3 },
    timeoutMs: 60_000,
  },
  quick: {
    roundTrip: { warmupNs: 0.05e9, batchNs: 0.04e9, batches: 5 },
    throughput: { warmupNs: 0.03e9, batchNs: 0.1e9, batches: 3 },
    timeoutMs: 60_000,
  },
};

const MAX_ROUND_TRIPS = 2_000_000;
const MAX_MESSAGES = 20_000_000;

/**
 * @typedef {object} RoundTripResult
 * @property {number} median      median over batches of the mean ns per round trip
 * @property {number} [p99]       99th percentile of single round trips of one extra batch timed per round trip (ns), if the transport records samples
 * @property {number} [p50]       median of single round trips of that batch (ns), if recorded
 * @property {number} iterations  round trips per run; a batch repeats runs until it lasts the plan's batchNs
 * @property {number[]} batchMeans  mean ns per round trip of each batch
 */

/**
 * @typedef {object} ThroughputResult
 * @property {number} size         payload bytes per message
 * @property {number} bytesPerSec  median over batches of payload bytes per second
 * @property {number} messagesPerSec
 * @property {number} count        messages per batch
 * @property {number[]} batchBytesPerSec
 */

/**
 * @typedef {object} TransportResult
 * @property {string} id
 * @property {string} name
 * @property {'channel' | 'reference' | 'alternative'} kind
 * @property {RoundTripResult | null} roundTripNs
 * @property {ThroughputResult[]} throughput
 * @property {string | null} error  first error (the transport's remaining steps are skipped)
 * @property {number} wallMs
 */

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile of a sorted array. */
function percentileSorted(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * Run `run(n)` (returns ns) with growing n until one run lasts at least `minNs`.
 * Serves as warm-up and yields an estimate of ns per operation.
 */
async function calibrate(run, initial, minNs, max) {
  let n = initial;
  for (;;) {
    const ns = await run(n);
    if (ns >= minNs || n >= max) return Math.max(ns, 1) / n;
    const factor = ns > 0 ? Math.min(10, Math.max(2, (1.2 * minNs) / ns)) : 10;
    n = Math.min(max, Math.ceil(n * factor));
  }
}

async function measureRoundTrip(session, plan) {
  const perOp = await calibrate((n) => session.roundTrip(n), 20, plan.warmupNs, MAX_ROUND_TRIPS);
  // A batch is runs of round trips until it lasts batchNs, whatever a stall during the
  // warm-up made perOp look like (a stall of milliseconds, common on a busy machine,
  // would otherwise size batches of a few round trips, and each batch's mean would be
  // that stall or none). A run shorter than a quarter batch doubles the next one, so the
  // start of a run (the peer waking up to a command) weighs little.
  let iterations = Math.max(20, Math.min(MAX_ROUND_TRIPS, Math.round(plan.batchNs / perOp / 4)));
  const batchMeans = [];
  for (let b = 0; b < plan.batches; b++) {
    let ns = 0;
    let n = 0;
    while (ns < plan.batchNs) {
      const t = await session.roundTrip(iterations);
      if (!(t > 0)) throw new Error(`roundTrip returned ${t}`);
      ns += t;
      n += iterations;
      if (t < plan.batchNs / 4) iterations = Math.min(MAX_ROUND_TRIPS, iterations * 2);
    }
    batchMeans.push(ns / n);
  }
  /** @type {RoundTripResult} */
  const result = { median: median(batchMeans), iterations, batchMeans };
  const samples = new Float64Array(iterations).fill(NaN);
  const ns = await session.roundTrip(iterations, samples);
  if (!(ns > 0)) throw new Error(`roundTrip returned ${ns}`);
  if (!samples.some(Number.isNaN)) {
    samples.sort();
    result.p50 = percentileSorted(samples, 50);
    result.p99 = percentileSorted(samples, 99);
  }
  return result;
}

async function measureThroughput(session, size, plan, roundTripNs) {
  // The first run sends 256 KiB (at most 1024 messages), or fewer messages when a round
  // trip is slow (a spinning transport on a busy machine can take milliseconds per
  // hand-over): a message cannot cost much less than a round trip on a one-slot
  // transport, so this keeps the first run near the warm-up time instead of letting it
  // run into the watchdog.
  const bySlowness = roundTripNs > 0 ? Math.ceil(plan.warmupNs / roundTripNs) : Infinity;
  const initial = Math.max(4, Math.min(Math.ceil((256 << 10) / size), bySlowness, 1024));
  const perMsg = await calibrate((n) => session.throughput(size, n), initial, plan.warmupNs, MAX_MESSAGES);
  const count = Math.max(4, Math.min(MAX_MESSAGES, Math.round(plan.batchNs / perMsg)));
  const batchBytesPerSec = [];
  for (let b = 0; b < plan.batches; b++) {
    const ns = await session.throughput(size, count);
    if (!(ns > 0)) throw new Error(`throughput returned ${ns}`);
    batchBytesPerSec.push((size * count * 1e9) / ns);
  }
  const bytesPerSec = median(batchBytesPerSec);
  return { size, bytesPerSec, messagesPerSec: bytesPerSec / size, count, batchBytesPerSec };
}

/**
 * Measure one transport: open, round trip, throughput for each size, close.
 * Every step runs under the watchdog; on the first error or timeout the session is
 * killed, the error recorded and the remaining steps skipped (reported via onStep
 * with `skipped: true` so progress counts stay right).
 *
 * @param {import('./transport.js').Transport & { loadError?: Error }} transport
 * @param {{ quick?: boolean, sizes?: number[], timeoutMs?: number,
 *           onStep?: (step: { label: string, skipped?: boolean }) => void,
 *           onError?: (label: string, error: Error) => void }} [options]
 * @returns {Promise<TransportResult>}
 */
export async function measureTransport(transport, options = {}) {
  const plan = options.quick ? PLANS.quick : PLANS.full;
  const sizes = options.sizes ?? SIZES;
  const timeoutMs = options.timeoutMs ?? plan.timeoutMs;
  const onStep = options.onStep ?? (() => {});
  const started = Date.now();
  /** @type {TransportResult} */
  const result = {
    id: transport.id,
    name: transport.name,
    kind: transport.kind ?? 'alternative',
    roundTripNs: null,
    throughput: [],
    error: null,
    wallMs: 0,
  };

  const steps = ['round trip', ...sizes.map((s) => `throughput ${formatSize(s)}`)];
  let stepIndex = 0;
  /** @type {import('./transport.js').Session | null} */
  let session = null;
  const kill = () => {
    try { session?.kill?.(); } catch { /* ignore */ }
    cleanupAll();
  };
  let label = `${transport.name}: open`;
  try {
    if (transport.loadError) throw transport.loadError;
    session = await guard(label, timeoutMs, () => transport.open({
      roundTripSize: ROUND_TRIP_SIZE, sizes: [...sizes], quick: !!options.quick,
    }), kill);

    label = `${transport.name}: round trip`;
    if (session.roundTrip) {
      onStep({ label: steps[stepIndex++] });
      result.roundTripNs = await guard(label, timeoutMs, () => measureRoundTrip(session, plan.roundTrip), kill);
    } else onStep({ label: steps[stepIndex++], skipped: true }); // a throughput reference (memcpy)

    for (const size of sizes) {
      onStep({ label: steps[stepIndex++] });
      label = `${transport.name}: throughput ${formatSize(size)}`;
      result.throughput.push(await guard(label, timeoutMs, () => measureThroughput(session, size, plan.throughput, result.roundTripNs?.median), kill));
    }

    label = `${transport.name}: close`;
    const s = session;
    session = null;
    await guard(label, Math.min(timeoutMs, 10_000), () => s.close(), () => { try { s.kill?.(); } catch { /* ignore */ } cleanupAll(); });
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    result.error = error.message.startsWith(transport.name) ? error.message : `${label}: ${error.message}`;
    options.onError?.(label, error);
    kill();
    while (stepIndex < steps.length) onStep({ label: steps[stepIndex++], skipped: true });
  }
  result.wallMs = Date.now() - started;
  return result;
}
