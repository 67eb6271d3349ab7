// Progress display on stderr: a bar when stderr is a terminal, otherwise one plain
// line per step ("[3/20] Unix socket: throughput 64 KiB ...").

/**
 * @typedef {object} ProgressEvent
 * @property {'step' | 'error' | 'done'} type
 * @property {number} step        1-based index of the step starting now (for 'step'); steps done so far otherwise
 * @property {number} total       total number of steps
 * @property {string} [id]        transport id
 * @property {string} [name]      transport name
 * @property {string} [label]     what is measured ("round trip", "throughput 64 KiB")
 * @property {boolean} [skipped]  the step is skipped because the transport failed
 * @property {string} [error]     error message (for 'error')
 */

/**
 * Create a progress reporter; pass `progress.update` as `onProgress` to runBenchmark.
 * @param {{ stream?: NodeJS.WriteStream, tty?: boolean }} [options]
 */
export function createProgress(options = {}) {
  const stream = options.stream ?? process.stderr;
  const tty = options.tty ?? !!stream.isTTY;
  const started = Date.now();
  let lastLine = '';

  const clear = () => {
    if (tty && lastLine) {
      stream.write('\r\x1b[K');
      lastLine = '';
    }
  };

  const render = (ev) => {
    const width = Math.max(40, (stream.columns || 80) - 1);
    const barWidth = 24;
    const doneSteps = Math.max(0, ev.step - 1);
    const filled = Math.round((barWidth * doneSteps) / Math.max(1, ev.total));
    const bar = '█'.repeat(filled) + '░'.repeat(barWidth - filled);
    const secs = ((Date.now() - started) / 1000).toFixed(0);
    let line = `${bar} ${ev.step}/${ev.total} ${secs}s  ${ev.name}: ${ev.label}`;
    if (line.length > width) line = line.slice(0, width - 1) + '…';
    stream.write(`\r\x1b[K${line}`);
    lastLine = line;
  };

  return {
    /** @param {ProgressEvent} ev */
    update(ev) {
      if (ev.type === 'step') {
        if (ev.skipped) return;
        if (tty) render(ev);
        else stream.write(`[${ev.step}/${ev.total}] ${ev.name}: ${ev.label} ...\n`);
      } else if (ev.type === 'error') {
        clear();
        stream.write(`error: ${ev.error}\n`);
      } else if (ev.type === 'done') {
        clear();
        if (!tty) stream.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
      }
    },
    /** Remove the bar (call before printing other output). */
    clear,
  };
}
