/**
 * The churn report as a self-contained SVG (two plots: rate and connect
 * latency over time, one line per round, traced against untraced), or as an
 * HTML page holding that SVG and the summary table. No browser needed.
 */
import { RoundResult, TraceMode } from './churn';

const COLORS: Record<TraceMode, string> = { off: '#4c78a8', aggregate: '#e45756', stream: '#f58518' };
const LABELS: Record<TraceMode, string> = { off: 'untraced', aggregate: 'nettrace (aggregate)', stream: 'nettrace (stream)' };
const W = 760;
const H = 260;
const M = { left: 70, right: 20, top: 30, bottom: 40 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A round number of the order of `max / 5`, for gridlines. */
function step(max: number): number {
  const raw = max / 5 || 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

function fmt(v: number): string {
  return v >= 10000 ? `${Math.round(v / 1000)}k` : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : String(Math.round(v * 10) / 10);
}

interface Line {
  mode: TraceMode;
  points: [number, number][];
  dashed: boolean;
}

function plot(title: string, unit: string, lines: Line[], y0: number): string {
  const maxX = Math.max(1, ...lines.flatMap((l) => l.points.map((p) => p[0])));
  const maxY = Math.max(1, ...lines.flatMap((l) => l.points.map((p) => p[1]))) * 1.05;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (v: number): number => M.left + (v / maxX) * pw;
  const y = (v: number): number => y0 + M.top + ph - (v / maxY) * ph;
  const out: string[] = [`<text x="${M.left}" y="${y0 + 18}" font-weight="bold">${esc(title)}</text>`];
  const ys = step(maxY);
  for (let v = 0; v <= maxY; v += ys) {
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 6}" y="${y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  const xs = step(maxX);
  for (let v = 0; v <= maxX; v += xs) {
    out.push(`<text x="${x(v)}" y="${y0 + H - M.bottom + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  out.push(`<text x="${W - M.right}" y="${y0 + H - 6}" text-anchor="end">seconds</text>`);
  out.push(`<text x="12" y="${y0 + M.top + ph / 2}" transform="rotate(-90 12 ${y0 + M.top + ph / 2})" text-anchor="middle">${esc(unit)}</text>`);
  out.push(`<rect x="${M.left}" y="${y0 + M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  for (const l of lines) {
    if (!l.points.length) continue;
    const d = l.points.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join('');
    out.push(`<path d="${d}" fill="none" stroke="${COLORS[l.mode]}" stroke-width="1.5"${l.dashed ? ' stroke-dasharray="4 3"' : ''} opacity="0.85"/>`);
  }
  return out.join('\n');
}

export function reportSvg(rounds: RoundResult[][], title: string): string {
  const all = rounds.flat();
  const modes = [...new Set(all.map((r) => r.mode))];
  const rate: Line[] = all.map((r) => ({ mode: r.mode, dashed: false, points: r.series.map((p) => [p.t, p.rate]) }));
  const latency: Line[] = all.flatMap((r) => [
    { mode: r.mode, dashed: false, points: r.series.map((p): [number, number] => [p.t, p.p50Us]) },
    { mode: r.mode, dashed: true, points: r.series.map((p): [number, number] => [p.t, p.p99Us]) },
  ]);
  const legend = modes
    .map((m, i) => `<rect x="${M.left + i * 190}" y="${2 * H + 52}" width="14" height="4" fill="${COLORS[m]}"/>` +
      `<text x="${M.left + i * 190 + 20}" y="${2 * H + 58}">${LABELS[m]}</text>`)
    .join('\n');
  const height = 2 * H + 70;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    plot('Connections per second (one line per round)', 'conns/s', rate, 20),
    plot('Connect latency: p50 solid, p99 dashed', 'µs', latency, H + 20),
    legend,
    '</svg>',
  ].join('\n');
}

export function reportHtml(rounds: RoundResult[][], title: string, tableText: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body style="font-family:sans-serif">
<h1 style="font-size:18px">${esc(title)}</h1>
${reportSvg(rounds, title)}
<pre>${esc(tableText)}</pre>
</body></html>
`;
}
