/**
 * The per-pixel maps of the 'js' backend as straightforward loops: the last
 * fallback, and the "plain TypeScript" baseline of the benchmarks.
 */
import { lab8ToSrgb, pseudoAngle, rint, srgbToLab8 } from '../stain/math.js';
import { LOG_ADJUST, type PixelMaps } from './pixel_maps.js';

/** The per-pixel maps as straightforward loops. */
export const jsPixelMaps: PixelMaps = {
  maxPixelsPerRun: 1 << 22,

  async lookup(rgb, table, out) {
    for (let i = 0; i < rgb.length; i++) out[i] = table[rgb[i]!]!;
  },

  async odToRgb(od, p, out) {
    const io = Math.fround(p.io);
    const offset = Math.fround(p.offset);
    for (let i = 0; i < od.length; i++) {
      const v = rint(Math.fround(io * Math.exp(-od[i]!) - offset));
      out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  },

  async deconvolve(rgb, logTable, m, out) {
    for (let i = 0; i < rgb.length; i += 3) {
      const r = logTable[rgb[i]!]!;
      const g = logTable[rgb[i + 1]!]!;
      const b = logTable[rgb[i + 2]!]!;
      for (let k = 0; k < 3; k++) out[i + k] = Math.max(r * m[k]! + g * m[3 + k]! + b * m[6 + k]!, 0);
    }
  },

  async reconvolve(stains, m, out) {
    for (let i = 0; i < out.length; i += 3) {
      const s0 = stains[i]!;
      const s1 = stains[i + 1]!;
      const s2 = stains[i + 2]!;
      for (let k = 0; k < 3; k++) {
        const rgb = Math.exp(LOG_ADJUST * (s0 * m[k]! + s1 * m[3 + k]! + s2 * m[6 + k]!));
        out[i + k] = rint(Math.fround(Math.min(Math.max(rgb, 0), 1) * 255));
      }
    }
  },

  async lab8(rgb, out) {
    const lab = [0, 0, 0];
    for (let i = 0; i < rgb.length; i += 3) {
      srgbToLab8(rgb[i]!, rgb[i + 1]!, rgb[i + 2]!, lab);
      out[i] = lab[0]!;
      out[i + 1] = lab[1]!;
      out[i + 2] = lab[2]!;
    }
  },

  async reinhard(run, tables, out) {
    const lab = [0, 0, 0];
    const rgb = [0, 0, 0];
    for (let k = 0; k < run.pixels; k++) {
      const t = Math.floor(k / run.pixelsPerImage) * 768;
      const i = k * 3;
      srgbToLab8(run.rgb[i]!, run.rgb[i + 1]!, run.rgb[i + 2]!, lab);
      lab8ToSrgb(tables[t + lab[0]!]!, tables[t + 256 + lab[1]!]!, tables[t + 512 + lab[2]!]!, rgb);
      out[i] = rgb[0]!;
      out[i + 1] = rgb[1]!;
      out[i + 2] = rgb[2]!;
    }
  },

  async tissueMask(run, scores, below, out) {
    for (let k = 0; k < run.pixels; k++) {
      const img = Math.floor(k / run.pixelsPerImage);
      const t = img * 768;
      const i = k * 3;
      const sum = Math.fround(Math.fround(scores[t + run.rgb[i]!]! + scores[t + 256 + run.rgb[i + 1]!]!) + scores[t + 512 + run.rgb[i + 2]!]!);
      out[k] = sum < below[img]! ? 1 : 0;
    }
  },

  async angles(run, odTab, perImage, out) {
    for (let k = 0; k < run.pixels; k++) {
      const b = Math.floor(k / run.pixelsPerImage) * 6;
      const r = odTab[run.rgb[k * 3]!]!;
      const g = odTab[run.rgb[k * 3 + 1]!]!;
      const bl = odTab[run.rgb[k * 3 + 2]!]!;
      const p0 = r * perImage[b]! + g * perImage[b + 1]! + bl * perImage[b + 2]!;
      const p1 = r * perImage[b + 3]! + g * perImage[b + 4]! + bl * perImage[b + 5]!;
      out[k] = pseudoAngle(Math.fround(p0), Math.fround(p1));
    }
  },

  async concentrations(run, odTab, perImage, out) {
    for (let k = 0; k < run.pixels; k++) {
      const b = Math.floor(k / run.pixelsPerImage) * 6;
      const r = odTab[run.rgb[k * 3]!]!;
      const g = odTab[run.rgb[k * 3 + 1]!]!;
      const bl = odTab[run.rgb[k * 3 + 2]!]!;
      out[k * 2] = perImage[b]! * r + perImage[b + 1]! * g + perImage[b + 2]! * bl;
      out[k * 2 + 1] = perImage[b + 3]! * r + perImage[b + 4]! * g + perImage[b + 5]! * bl;
    }
  },

  async render(run, odTab, perImage, io, overflowValue, out) {
    const overflow = Math.fround(overflowValue);
    for (let k = 0; k < run.pixels; k++) {
      const m = Math.floor(k / run.pixelsPerImage) * 9;
      const r = odTab[run.rgb[k * 3]!]!;
      const g = odTab[run.rgb[k * 3 + 1]!]!;
      const b = odTab[run.rgb[k * 3 + 2]!]!;
      for (let j = 0; j < 3; j++) {
        const v = Math.fround(io * Math.exp(-(perImage[m + j * 3]! * r + perImage[m + j * 3 + 1]! * g + perImage[m + j * 3 + 2]! * b)));
        // Uint8Array stores truncate, as numpy's astype(uint8).
        out[k * 3 + j] = v > 255 ? overflow : v;
      }
    }
  },
};
