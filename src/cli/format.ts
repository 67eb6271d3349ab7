/**
 * Plain-text formatting: tables (fitted to a width), byte sizes, ages.
 * @internal
 */

/** "512 B", "4.0 KiB", "1.5 MiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u++;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(1)} ${units[u]}`;
}

/** "42s", "5m", "3h", "2d". */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/**
 * How wide output to `stream` may be: the terminal's width when it is one, else the
 * COLUMNS environment variable when set, else 80.
 */
export function outputWidth(stream: NodeJS.WriteStream): number {
  if (stream.isTTY && stream.columns > 0) return stream.columns;
  const env = Number(process.env.COLUMNS);
  return Number.isInteger(env) && env > 0 ? env : 80;
}

/** A column of {@link fitTable}. */
export interface Column {
  header: string;
  /** Right-aligned (numbers). */
  right?: boolean;
  /**
   * How the column gives way when the table is too wide, and when: columns give way in
   * increasing `order`, each by being left out (`'drop'`) or by having its cells cut to
   * `min` characters or more, with '…' at the end or in the middle. Columns without it
   * always stay whole.
   */
  give?: { order: number; how: 'drop' | 'end' | 'middle'; min?: number };
}

/** What {@link fitTable} did to fit. */
export interface FittedTable {
  text: string;
  /** Headers of the columns left out. */
  dropped: string[];
  /** Headers of the columns whose cells were cut. */
  cut: string[];
}

/** Shortens `text` to `width` characters with '…' at the end or in the middle. */
export function cutText(text: string, width: number, where: 'end' | 'middle'): string {
  if (text.length <= width) return text;
  if (width <= 1) return '…'.slice(0, width);
  if (where === 'end') return `${text.slice(0, width - 1)}…`;
  const tail = Math.floor((width - 1) / 2);
  return `${text.slice(0, width - 1 - tail)}…${text.slice(text.length - tail)}`;
}

/**
 * A table no wider than `limit` characters (no limit with `Infinity`): columns give way
 * in the order their `give` says until the table fits. A table that still does not fit
 * is printed anyway.
 */
export function fitTable(columns: readonly Column[], rows: readonly (readonly string[])[], limit: number): FittedTable {
  let keep = columns.map((_, i) => i);
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => r[i]!.length)));
  const total = (): number => keep.reduce((sum, i) => sum + widths[i]!, 0) + 2 * (keep.length - 1);
  const dropped: string[] = [];
  const cut: string[] = [];
  const giving = columns
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.give !== undefined)
    .sort((a, b) => a.c.give!.order - b.c.give!.order);
  for (const { c, i } of giving) {
    const excess = total() - limit;
    if (excess <= 0) break;
    if (c.give!.how === 'drop') {
      keep = keep.filter((k) => k !== i);
      dropped.push(c.header);
      continue;
    }
    const to = Math.max(c.header.length, c.give!.min ?? 1, widths[i]! - excess);
    if (to < widths[i]!) {
      widths[i] = to;
      cut.push(c.header);
    }
  }
  const line = (cells: readonly string[]): string =>
    keep
      .map((i) => {
        const c = columns[i]!;
        const cell = cutText(cells[i]!, widths[i]!, c.give?.how === 'middle' ? 'middle' : 'end');
        return c.right ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return { text: [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n'), dropped, cut };
}
