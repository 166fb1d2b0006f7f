/**
 * overlay.png: the slide thumbnail with the probability map blended in
 * viridis where the map has data, and a colour bar with ticks 0, 0.5 and 1 to
 * its right. The tick labels are drawn from a built-in 5x7 bitmap font, so the
 * image is the same on every machine, fonts installed or not.
 */
import type { RgbBatch } from '../image.js';
import { viridis, VIRIDIS } from './colormap.js';
import type { ProbabilityMap } from './probability_map.js';

/** Weight of the map's colour over the thumbnail. */
export const OVERLAY_ALPHA = 0.55;

/**
 * Blends the map into a copy of the thumbnail: thumbnail pixel (x, y) shows
 * the cell under its centre, ((x + ½)·d, (y + ½)·d) in level-0 px, with
 * d the thumbnail's downsample and cells cellSize0 level-0 px wide.
 */
export function blendMap(thumbnail: RgbBatch, downsample: number, map: ProbabilityMap, cellSize0: number): RgbBatch {
  const { width, height } = thumbnail;
  const data = thumbnail.data.slice(0, width * height * 3);
  const col = Int32Array.from({ length: width }, (_, x) => Math.floor(((x + 0.5) * downsample) / cellSize0));
  for (let y = 0; y < height; y++) {
    const i = Math.floor(((y + 0.5) * downsample) / cellSize0);
    if (i >= map.height) continue;
    for (let x = 0; x < width; x++) {
      const j = col[x]!;
      if (j >= map.width) continue;
      const p = map.data[i * map.width + j]!;
      if (Number.isNaN(p)) continue;
      const c = viridis(p), o = (y * width + x) * 3;
      for (let k = 0; k < 3; k++) data[o + k] = Math.round((1 - OVERLAY_ALPHA) * data[o + k]! + OVERLAY_ALPHA * c[k]!);
    }
  }
  return { data, n: 1, height, width };
}

// 5x7 glyphs, one 5-bit row per entry, most significant bit on the left.
const GLYPHS: Record<string, number[]> = {
  '0': [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
  '1': [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
  '5': [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
  '.': [0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100],
};

/** Draws text (characters of GLYPHS) in black with its top-left at (x, y), each font pixel scale x scale. */
function drawText(image: RgbBatch, text: string, x: number, y: number, scale: number): void {
  for (const [n, ch] of [...text].entries()) {
    const rows = GLYPHS[ch]!;
    rows.forEach((bits, r) => {
      for (let c = 0; c < 5; c++) {
        if (!(bits & (1 << (4 - c)))) continue;
        fillRect(image, x + (n * 6 + c) * scale, y + r * scale, scale, scale, [0, 0, 0]);
      }
    });
  }
}

function fillRect(image: RgbBatch, x: number, y: number, w: number, h: number, rgb: readonly number[]): void {
  for (let yy = Math.max(0, y); yy < Math.min(image.height, y + h); yy++) {
    for (let xx = Math.max(0, x); xx < Math.min(image.width, x + w); xx++) {
      image.data.set(rgb, (yy * image.width + xx) * 3);
    }
  }
}

/**
 * The image on a white canvas with a vertical colour bar to its right: 1 at
 * the top, 0 at the bottom, ticks and labels at 0, 0.5 and 1.
 */
export function withColourBar(image: RgbBatch): RgbBatch {
  const scale = image.height >= 160 ? 2 : 1;
  const pad = 8 * scale, barWidth = 10 * scale, tick = 4 * scale, labelWidth = 3 * 6 * scale;
  const height = Math.max(image.height, 40 * scale);
  const width = image.width + pad + barWidth + tick + 2 * scale + labelWidth + pad;
  const out: RgbBatch = { data: new Uint8Array(width * height * 3).fill(255), n: 1, height, width };
  for (let y = 0; y < image.height; y++) {
    out.data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), y * width * 3);
  }
  const x0 = image.width + pad, top = pad, bottom = height - pad - 1;
  for (let y = top; y <= bottom; y++) {
    const k = Math.round((255 * (bottom - y)) / (bottom - top)) * 3;
    fillRect(out, x0, y, barWidth, 1, [VIRIDIS[k]!, VIRIDIS[k + 1]!, VIRIDIS[k + 2]!]);
  }
  for (const [value, label] of [[1, '1'], [0.5, '0.5'], [0, '0']] as const) {
    const y = Math.round(bottom - value * (bottom - top));
    fillRect(out, x0 + barWidth, y - (scale >> 1), tick, scale, [0, 0, 0]);
    const ty = Math.min(Math.max(0, y - Math.floor((7 * scale) / 2)), height - 7 * scale);
    drawText(out, label, x0 + barWidth + tick + 2 * scale, ty, scale);
  }
  return out;
}
