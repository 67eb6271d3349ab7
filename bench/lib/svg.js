// Self-contained SVG chart of a benchmark run (no dependencies).
// Left panel: round-trip latency per transport (horizontal bars, log ns, p99 whisker).
// Right panel: one-way throughput vs message size (log-log, one line per transport).

import { writeFileSync } from 'node:fs';
import { machineSummary, formatNs, formatGBps, chooseBaseline, runFlags } from './report.js';
import { formatSize } from './transport.js';

const FONT = "'DejaVu Sans', 'Segoe UI', 'Helvetica Neue', Helvetica, Arial, sans-serif";
// Okabe–Ito colour-blind-safe palette (yellow left out: too light on white), then extras.
export const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#332288', '#882255', '#555555'];
const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangle-down', 'hexagon', 'circle', 'square', 'triangle'];

// Stable styles for known transport ids, so a transport keeps its colour from chart to
// chart; other ids get the unused palette entries in table order.
const PREFERRED = {
  'channel-sync': 0,
  'channel-async': 1,
  'process-send-json': 2,
  'process-send-advanced': 3,
  'worker-postmessage': 4,
  'unix-socket': 5,
};

function assignStyles(results) {
  const colorOf = new Map();
  const markerOf = new Map();
  const used = new Set();
  for (const r of results) {
    const k = PREFERRED[r.id];
    if (k !== undefined && !used.has(k)) {
      used.add(k);
      colorOf.set(r.id, COLORS[k]);
      markerOf.set(r.id, MARKERS[k]);
    }
  }
  let next = 0;
  for (const r of results) {
    if (colorOf.has(r.id)) continue;
    while (used.has(next % COLORS.length) && used.size < COLORS.length) next++;
    const k = next % COLORS.length;
    used.add(k);
    colorOf.set(r.id, COLORS[k]);
    markerOf.set(r.id, MARKERS[k]);
  }
  return { colorOf, markerOf };
}

const INK = '#222';
const MUTED = '#666';
const GRID = '#e4e4e4';
const GRID_MINOR = '#f2f2f2';
const AXIS = '#999';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
/** Rough text width for the sans-serif fonts above. */
const textWidth = (s, size) => String(s).length * size * 0.6;
const r1 = (x) => Math.round(x * 10) / 10;

function text(x, y, s, { size = 12, anchor = 'start', fill = INK, weight = 'normal', style = '', baseline = '' } = {}) {
  const attrs = [`x="${r1(x)}"`, `y="${r1(y)}"`, `font-size="${size}"`, `fill="${fill}"`];
  if (anchor !== 'start') attrs.push(`text-anchor="${anchor}"`);
  if (weight !== 'normal') attrs.push(`font-weight="${weight}"`);
  if (style) attrs.push(`font-style="${style}"`);
  if (baseline) attrs.push(`dominant-baseline="${baseline}"`);
  return `<text ${attrs.join(' ')}>${esc(s)}</text>`;
}

function line(x1, y1, x2, y2, stroke, width = 1, extra = '') {
  return `<line x1="${r1(x1)}" y1="${r1(y1)}" x2="${r1(x2)}" y2="${r1(y2)}" stroke="${stroke}" stroke-width="${width}"${extra}/>`;
}

function marker(kind, x, y, color, r = 4.5) {
  const common = `fill="${color}" stroke="#fff" stroke-width="1.2"`;
  switch (kind) {
    case 'square':
      return `<rect x="${r1(x - r * 0.9)}" y="${r1(y - r * 0.9)}" width="${r1(r * 1.8)}" height="${r1(r * 1.8)}" ${common}/>`;
    case 'triangle':
      return `<path d="M${r1(x)},${r1(y - r * 1.15)} L${r1(x + r * 1.05)},${r1(y + r * 0.75)} L${r1(x - r * 1.05)},${r1(y + r * 0.75)} Z" ${common}/>`;
    case 'triangle-down':
      return `<path d="M${r1(x)},${r1(y + r * 1.15)} L${r1(x + r * 1.05)},${r1(y - r * 0.75)} L${r1(x - r * 1.05)},${r1(y - r * 0.75)} Z" ${common}/>`;
    case 'diamond':
      return `<path d="M${r1(x)},${r1(y - r * 1.25)} L${r1(x + r * 1.1)},${r1(y)} L${r1(x)},${r1(y + r * 1.25)} L${r1(x - r * 1.1)},${r1(y)} Z" ${common}/>`;
    case 'hexagon': {
      const pts = [];
      for (let k = 0; k < 6; k++) {
        const a = (Math.PI / 3) * k;
        pts.push(`${r1(x + r * 1.05 * Math.cos(a))},${r1(y + r * 1.05 * Math.sin(a))}`);
      }
      return `<polygon points="${pts.join(' ')}" ${common}/>`;
    }
    default:
      return `<circle cx="${r1(x)}" cy="${r1(y)}" r="${r1(r)}" ${common}/>`;
  }
}

/** Log10 scale helper over [lo, hi] mapped to [a, b]. */
function logScale(lo, hi, a, b) {
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  return (v) => a + ((Math.log10(v) - l0) / (l1 - l0)) * (b - a);
}

/** Decade-aligned domain around the values, at least `minDecades` wide. */
function decadeDomain(values, minDecades = 1) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  if (!finite.length) return [1, 10];
  let lo = Math.floor(Math.log10(Math.min(...finite)));
  let hi = Math.ceil(Math.log10(Math.max(...finite)));
  if (hi === lo) hi++;
  while (hi - lo < minDecades) hi++;
  return [10 ** lo, 10 ** hi];
}

/** Domain padded by `pad` decades on both sides, widened to at least `minDecades`. */
function paddedDomain(values, pad, minDecades) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  if (!finite.length) return [0.01, 10];
  let l0 = Math.log10(Math.min(...finite)) - pad;
  let l1 = Math.log10(Math.max(...finite)) + pad;
  if (l1 - l0 < minDecades) {
    const mid = (l0 + l1) / 2;
    l0 = mid - minDecades / 2;
    l1 = mid + minDecades / 2;
  }
  return [10 ** l0, 10 ** l1];
}

/** Relative luminance (0 black … 1 white) of a #rrggbb colour. */
function luminance(hex) {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
  return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
}

/** Tick values in [lo, hi]: decades, plus 2 and 5 when a decade is wide enough. */
function logTicks(lo, hi, decadePx, minorLabelPx) {
  const ticks = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (let m = 1; m <= 9; m++) {
      const v = m * 10 ** e;
      if (v < lo * 0.999 || v > hi * 1.001) continue;
      const major = m === 1;
      const labelled = major || ((m === 2 || m === 5) && decadePx >= minorLabelPx);
      ticks.push({ v, major, labelled });
    }
  }
  return ticks;
}

function nsTickLabel(ns) {
  if (ns < 1e3) return `${+ns.toPrecision(3)} ns`;
  if (ns < 1e6) return `${+(ns / 1e3).toPrecision(3)} µs`;
  if (ns < 1e9) return `${+(ns / 1e6).toPrecision(3)} ms`;
  return `${+(ns / 1e9).toPrecision(3)} s`;
}

function gbTickLabel(v) {
  return String(+v.toPrecision(3));
}

/**
 * Render a benchmark run as an SVG string.
 * @param {{ results: import('./measure.js').TransportResult[], machine: object, quick?: boolean, sizes?: number[] }} run
 * @param {{ baseline?: string, title?: string }} [options]
 */
export function renderSvg(run, options = {}) {
  const results = run.results;
  const baselineId = chooseBaseline(results, options.baseline ?? run.baseline);
  const W = 1200;
  const M = 28;
  const out = [];
  const n = Math.max(1, results.length);
  const { colorOf, markerOf } = assignStyles(results);

  // ---- layout ----
  const titleY = 38;
  const subtitleY = 62;
  const panelTitleY = 104;
  const panelSubY = 122;
  const plotTop = 140;
  const rowH = 44;
  const plotH = Math.max(270, n * rowH);
  const plotBottom = plotTop + plotH;
  const axisTitleY = plotBottom + 44;

  // Left panel: names | bars
  const leftX0 = M;
  const leftX1 = 566;
  const nameW = Math.min(230, Math.max(110, Math.max(...results.map((r) => textWidth(r.name, 13))) + 14));
  const bx0 = leftX0 + nameW;
  const bx1 = leftX1 - 10;

  // Right panel
  const rightX0 = 628;
  const px0 = rightX0 + 52;
  const px1 = W - M - 58; // room for end labels
  const py0 = plotTop;
  const py1 = plotBottom;

  // Legend (wrapping rows, centred)
  const legendTop = axisTitleY + 30;
  const legendName = (r) => r.name + (r.id === baselineId ? ' (baseline)' : r.error ? ' (failed)' : '');
  const legendItems = results.map((r) => ({ r, w: 34 + textWidth(legendName(r), 13) + 26 }));
  const legendRows = [];
  {
    let row = [];
    let w = 0;
    for (const it of legendItems) {
      if (row.length && w + it.w > W - 2 * M) {
        legendRows.push({ items: row, w });
        row = [];
        w = 0;
      }
      row.push(it);
      w += it.w;
    }
    if (row.length) legendRows.push({ items: row, w });
  }
  const legendRowH = 24;
  const H = legendTop + legendRows.length * legendRowH + 16;

  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${esc(FONT)}">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);

  // ---- title ----
  const title = options.title ?? 'Inter-process message passing: round trip and throughput';
  out.push(text(W / 2, titleY, title, { size: 21, anchor: 'middle', weight: 'bold' }));
  const subtitle = machineSummary(run.machine) + runFlags(run);
  out.push(text(W / 2, subtitleY, subtitle, { size: 13, anchor: 'middle', fill: MUTED }));
  out.push(line(M, 80, W - M, 80, GRID, 1));

  // ---- left panel: round-trip latency ----
  out.push(text(leftX0, panelTitleY, 'Round-trip latency, 64 B message', { size: 15, weight: 'bold' }));
  out.push(text(leftX0, panelSubY, 'median (bar) and p99 (whisker) · log scale · lower is better', { size: 12, fill: MUTED }));
  {
    const vals = results.flatMap((r) => (r.roundTripNs ? [r.roundTripNs.median, r.roundTripNs.p99 ?? r.roundTripNs.median] : []));
    const medians = results.flatMap((r) => (r.roundTripNs ? [r.roundTripNs.median] : []));
    let [lo, hi] = decadeDomain(vals, 2);
    // Leave at least ~1/3 decade of bar below the shortest median.
    if (medians.length && Math.log10(Math.min(...medians)) - Math.log10(lo) < 0.3) lo /= 10;
    // Widen the domain until every "p99 …" label fits right of its whisker.
    const fits = (scale) => results.every((r) => {
      if (!r.roundTripNs) return true;
      const { median: med, p99 } = r.roundTripNs;
      const end = scale(Math.max(med, p99 ?? med));
      const label = p99 ? `p99 ${formatNs(p99)}` : formatNs(med);
      return end + 6 + textWidth(label, 11) <= leftX1 + 4;
    });
    for (let k = 0; k < 12 && !fits(logScale(lo, hi, bx0, bx1)); k++) hi *= 10 ** 0.25;
    const x = logScale(lo, hi, bx0, bx1);
    const decadePx = (bx1 - bx0) / Math.log10(hi / lo);
    for (const t of logTicks(lo, hi, decadePx, 150)) {
      out.push(line(x(t.v), plotTop, x(t.v), plotBottom, t.major ? GRID : GRID_MINOR, 1));
      if (t.labelled) {
        out.push(text(x(t.v), plotBottom + 18, nsTickLabel(t.v), { size: 11.5, anchor: 'middle', fill: t.major ? INK : MUTED }));
      }
    }
    out.push(line(bx0, plotTop, bx0, plotBottom, AXIS, 1));
    out.push(line(bx0, plotBottom, bx1, plotBottom, AXIS, 1));
    out.push(text((bx0 + bx1) / 2, axisTitleY, 'time per round trip (log scale)', { size: 12.5, anchor: 'middle', fill: MUTED }));

    const slot = plotH / n;
    const barH = Math.min(26, slot * 0.6);
    results.forEach((r, i) => {
      const cy = plotTop + slot * (i + 0.5);
      const color = colorOf.get(r.id);
      const isBase = r.id === baselineId;
      out.push(text(bx0 - 10, cy, r.name, { size: 13, anchor: 'end', baseline: 'central', weight: isBase ? 'bold' : 'normal' }));
      if (!r.roundTripNs) {
        out.push(text(bx0 + 8, cy, r.error ? 'failed' : 'no round trip (one process)', { size: 12, baseline: 'central', fill: r.error ? '#b00020' : MUTED, style: 'italic' }));
        return;
      }
      const med = r.roundTripNs.median;
      const p99 = r.roundTripNs.p99;
      const xe = x(med);
      const tip = `${r.name}: median ${formatNs(med)}${p99 ? `, p99 ${formatNs(p99)}` : ''}`;
      out.push(`<g><title>${esc(tip)}</title>`);
      out.push(`<rect x="${r1(bx0)}" y="${r1(cy - barH / 2)}" width="${r1(Math.max(1, xe - bx0))}" height="${r1(barH)}" rx="2" fill="${color}"/>`);
      let afterX = xe;
      if (p99 && p99 > med) {
        const xp = Math.min(x(p99), bx1);
        out.push(line(xe, cy, xp, cy, color, 1.6));
        out.push(line(xp, cy - barH * 0.3, xp, cy + barH * 0.3, color, 1.6));
        afterX = xp;
      }
      const label = formatNs(med);
      const lw = textWidth(label, 12);
      if (xe - bx0 >= lw + 14) {
        const onBar = luminance(color) > 0.28 ? INK : '#fff';
        out.push(text(xe - 7, cy, label, { size: 12, anchor: 'end', baseline: 'central', fill: onBar, weight: 'bold' }));
        const p99Label = p99 ? `p99 ${formatNs(p99)}` : '';
        if (p99Label && afterX + 6 + textWidth(p99Label, 11) <= leftX1 + 4) {
          out.push(text(afterX + 6, cy, p99Label, { size: 11, baseline: 'central', fill: MUTED }));
        }
      } else if (afterX + 6 + lw <= leftX1 + 4) {
        out.push(text(afterX + 6, cy, label, { size: 12, baseline: 'central', weight: 'bold' }));
      }
      out.push('</g>');
    });
  }

  // ---- right panel: throughput vs size ----
  out.push(text(rightX0, panelTitleY, 'One-way throughput vs message size', { size: 15, weight: 'bold' }));
  out.push(text(rightX0, panelSubY, 'GB/s (10⁹ payload bytes per second) · log–log · higher is better', { size: 12, fill: MUTED }));
  {
    const sizes = [...new Set(results.flatMap((r) => r.throughput.map((t) => t.size)))].sort((a, b) => a - b);
    const sizeLo = sizes.length ? sizes[0] : 64;
    const sizeHi = sizes.length ? sizes[sizes.length - 1] : 1 << 20;
    const l2lo = Math.log2(sizeLo) - 0.7;
    const l2hi = Math.log2(sizeHi) + 0.7;
    const x = (s) => px0 + ((Math.log2(s) - l2lo) / (l2hi - l2lo)) * (px1 - px0);
    const vals = results.flatMap((r) => r.throughput.map((t) => t.bytesPerSec / 1e9));
    const [lo, hi] = paddedDomain(vals, 0.2, 1.5);
    const y = logScale(lo, hi, py1, py0);
    const decadePx = (py1 - py0) / Math.log10(hi / lo);
    for (const t of logTicks(lo, hi, decadePx, 80)) {
      out.push(line(px0, y(t.v), px1, y(t.v), t.major ? GRID : GRID_MINOR, 1));
      if (t.labelled) {
        out.push(text(px0 - 8, y(t.v), gbTickLabel(t.v), { size: 11.5, anchor: 'end', baseline: 'central', fill: t.major ? INK : MUTED }));
      }
    }
    // x ticks: powers of 4 from the smallest to the largest size; measured sizes in dark ink.
    const measured = new Set(sizes);
    for (let e = Math.ceil(Math.log2(sizeLo)); e <= Math.floor(Math.log2(sizeHi)); e++) {
      const s = 2 ** e;
      const isMeasured = measured.has(s);
      if (!isMeasured && (e - Math.log2(sizeLo)) % 2 !== 0) continue;
      out.push(line(x(s), py0, x(s), py1, isMeasured ? GRID : GRID_MINOR, 1));
      out.push(text(x(s), py1 + 18, formatSize(s), { size: 11.5, anchor: 'middle', fill: isMeasured ? INK : MUTED, weight: isMeasured ? 'bold' : 'normal' }));
    }
    out.push(line(px0, py0, px0, py1, AXIS, 1));
    out.push(line(px0, py1, px1, py1, AXIS, 1));
    out.push(text((px0 + px1) / 2, axisTitleY, 'message size (log scale)', { size: 12.5, anchor: 'middle', fill: MUTED }));
    const yMid = (py0 + py1) / 2;
    out.push(`<text x="${r1(rightX0 + 6)}" y="${r1(yMid)}" font-size="12.5" fill="${MUTED}" text-anchor="middle" transform="rotate(-90 ${r1(rightX0 + 6)} ${r1(yMid)})">GB/s (log scale)</text>`);

    const endLabels = [];
    results.forEach((r) => {
      const color = colorOf.get(r.id);
      const pts = r.throughput.filter((t) => t.bytesPerSec > 0).map((t) => ({ t, px: x(t.size), py: y(t.bytesPerSec / 1e9) }));
      if (!pts.length) return;
      out.push(`<g><title>${esc(`${r.name}: ${r.throughput.map((t) => `${formatSize(t.size)} ${formatGBps(t.bytesPerSec)} GB/s`).join(', ')}`)}</title>`);
      out.push(`<polyline points="${pts.map((p) => `${r1(p.px)},${r1(p.py)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2.4" stroke-linejoin="round" stroke-linecap="round"/>`);
      for (const p of pts) {
        out.push(`<g><title>${esc(`${r.name}, ${formatSize(p.t.size)}: ${formatGBps(p.t.bytesPerSec)} GB/s`)}</title>${marker(markerOf.get(r.id), p.px, p.py, color)}</g>`);
      }
      out.push('</g>');
      const last = pts[pts.length - 1];
      if (last.t.size === sizeHi) endLabels.push({ y: last.py, x: last.px, text: formatGBps(last.t.bytesPerSec), color });
    });
    // End-of-line value labels at the largest size, pushed apart so they never overlap.
    endLabels.sort((a, b) => a.y - b.y);
    const gap = 15;
    endLabels.forEach((l, i) => { l.ly = i === 0 ? l.y : Math.max(l.y, endLabels[i - 1].ly + gap); });
    const overflow = endLabels.length ? endLabels[endLabels.length - 1].ly - (py1 - 6) : 0;
    if (overflow > 0) {
      for (let i = endLabels.length - 1; i >= 0; i--) {
        const limit = i === endLabels.length - 1 ? py1 - 6 : endLabels[i + 1].ly - gap;
        endLabels[i].ly = Math.min(endLabels[i].ly, limit);
      }
    }
    for (const l of endLabels) {
      const lx = l.x + 12;
      if (Math.abs(l.ly - l.y) > 3) out.push(line(l.x + 6, l.y, lx - 2, l.ly, l.color, 1, ' stroke-opacity="0.6"'));
      out.push(text(lx, l.ly, l.text, { size: 12, baseline: 'central', fill: l.color, weight: 'bold' }));
    }
  }

  // ---- legend ----
  legendRows.forEach((row, ri) => {
    let lx = (W - row.w) / 2;
    const ly = legendTop + ri * legendRowH;
    for (const it of row.items) {
      const color = colorOf.get(it.r.id);
      out.push(line(lx, ly, lx + 26, ly, color, 2.4));
      out.push(marker(markerOf.get(it.r.id), lx + 13, ly, color));
      out.push(text(lx + 34, ly, legendName(it.r), { size: 13, baseline: 'central' }));
      lx += it.w;
    }
  });

  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Write the chart to a file. */
export function writeSvg(file, run, options = {}) {
  writeFileSync(file, renderSvg(run, options));
}
