/**
 * Line charts as PNG: an SVG drawn here, rasterised by sharp (librsvg, which
 * sharp's libvips carries). Used for training curves, ROC curves and the like.
 * Text needs a font that fontconfig finds (Debian: fonts-dejavu-core, in
 * .ci/run's apt list); without one the lines and axes still render.
 *
 *   await writeLineChart('curves.png', {
 *     title: 'loss', xLabel: 'epoch', yLabel: 'loss',
 *     series: [{ name: 'train', x: [1, 2, 3], y: [0.7, 0.5, 0.4] }, …],
 *   });
 */
import sharp from 'sharp';

import { writeFileAtomic } from '../image.js';

export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  /** CSS colour (default: from a colour-blind-safe palette, in order). */
  color?: string;
  dashed?: boolean;
}

export interface LineChart {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: Series[];
  /** Axis ranges (default: the data's, y padded by 5%). */
  xRange?: [number, number];
  yRange?: [number, number];
  /** Pixel size (default 640 x 400). */
  width?: number;
  height?: number;
  /** Draw the y = x diagonal (ROC charts). */
  diagonal?: boolean;
}

/** Okabe–Ito: distinguishable with every common colour-vision deficiency. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** About five round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function range(values: number[], pad: number): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (lo === hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  const p = (hi - lo) * pad;
  return [lo - p, hi + p];
}

function formatTick(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(4)));
}

export function lineChartSvg(chart: LineChart): string {
  const W = chart.width ?? 640, H = chart.height ?? 400;
  // The legend is one row above the plot area, so it never hides a curve.
  const m = { left: 64, right: 16, top: (chart.title ? 36 : 16) + 18, bottom: 48 };
  const pw = W - m.left - m.right, ph = H - m.top - m.bottom;
  const xs = chart.series.flatMap((s) => Array.from(s.x)), ys = chart.series.flatMap((s) => Array.from(s.y));
  const [x0, x1] = chart.xRange ?? range(xs, 0);
  const [y0, y1] = chart.yRange ?? range(ys, 0.05);
  const px = (x: number) => m.left + ((x - x0) / (x1 - x0 || 1)) * pw;
  const py = (y: number) => m.top + ph - ((y - y0) / (y1 - y0 || 1)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Liberation Sans, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${py(t).toFixed(1)}" y2="${py(t).toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 6}" y="${(py(t) + 4).toFixed(1)}" text-anchor="end" fill="#333">${formatTick(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    out.push(`<line y1="${m.top}" y2="${m.top + ph}" x1="${px(t).toFixed(1)}" x2="${px(t).toFixed(1)}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${px(t).toFixed(1)}" y="${m.top + ph + 16}" text-anchor="middle" fill="#333">${formatTick(t)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  if (chart.diagonal) out.push(`<line x1="${px(x0)}" y1="${py(y0)}" x2="${px(x1)}" y2="${py(y1)}" stroke="#999" stroke-dasharray="4 4"/>`);
  chart.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const pts: string[] = [];
    for (let i = 0; i < Math.min(s.x.length, s.y.length); i++) {
      if (Number.isFinite(s.x[i]) && Number.isFinite(s.y[i])) pts.push(`${px(s.x[i]!).toFixed(1)},${py(s.y[i]!).toFixed(1)}`);
    }
    if (pts.length === 1) out.push(`<circle cx="${pts[0]!.split(',')[0]}" cy="${pts[0]!.split(',')[1]}" r="3" fill="${color}"/>`);
    else if (pts.length > 1) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    const lx = m.left + k * 130, ly = m.top - 8;
    out.push(`<line x1="${lx}" x2="${lx + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 26}" y="${ly}" fill="#333">${escapeXml(s.name)}</text>`);
  });
  if (chart.title) out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" fill="#111">${escapeXml(chart.title)}</text>`);
  if (chart.xLabel) out.push(`<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle" fill="#111">${escapeXml(chart.xLabel)}</text>`);
  if (chart.yLabel) out.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" fill="#111">${escapeXml(chart.yLabel)}</text>`);
  out.push('</svg>');
  return out.join('\n');
}

/** Rasterises an SVG string to PNG bytes. */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  return new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer());
}

export async function lineChartPng(chart: LineChart): Promise<Uint8Array> {
  return svgToPng(lineChartSvg(chart));
}

/** Writes a line chart PNG atomically. */
export async function writeLineChart(path: string, chart: LineChart): Promise<void> {
  await writeFileAtomic(path, await lineChartPng(chart));
}
