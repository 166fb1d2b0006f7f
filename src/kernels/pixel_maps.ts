/**
 * The per-pixel half of the pixel-map backends ('js' and 'gpujs'): the
 * contract a per-pixel implementation fulfils (PixelMaps, over runs of whole
 * images), the 256-entry tables every map reads, and the split of a batch
 * into runs. The host half (fits, reductions) is pixel_map_backend.ts.
 * Both follow the cpu backend's decisions (native/stain/*_cpu.cc): 256-entry
 * OD tables, tissue rules as per-level score tables, Reinhard as per-level
 * transfer tables, a 3x3 matrix per image for the stain transform.
 */
import { LAB8_GAMMA, LAB8_Y_WEIGHTS, lab8LuminosityBound } from '../color/lab_opencv8.js';
import type { OdParams, RgbBatch, TissueParams } from './types.js';

/** Whole images of a batch that one pixel-map call covers. */
export interface PixelRun {
  /** The run's interleaved RGB values (a view into the batch). */
  rgb: Uint8Array;
  pixels: number;
  pixelsPerImage: number;
  /** Index in the batch of the run's first image. */
  firstImage: number;
  images: number;
}

/**
 * Per-pixel maps over a run. Per-image parameters are packed image after
 * image, in the order each method's doc gives; outputs are written into
 * `out`, a view of the run's part of the result.
 */
export interface PixelMaps {
  /** Pixels per call; the host groups whole images into runs of at most this many (one image may exceed it). */
  readonly maxPixelsPerRun: number;
  /** out[i] = table[rgb[i]] for every channel value. */
  lookup(rgb: Uint8Array, table: Float32Array, out: Float32Array): Promise<void>;
  /** I = clamp(rint(io·exp(−od) − offset), 0, 255). */
  odToRgb(od: Float32Array, p: OdParams, out: Uint8Array): Promise<void>;
  /** stains = max(logTable[rgb]·M, 0), M row-major 3x3 for row vectors. */
  deconvolve(rgb: Uint8Array, logTable: Float32Array, m: Float32Array, out: Float32Array): Promise<void>;
  /** rgb = rint(clip(exp(ln(1e−6)·(stains·M)), 0, 1)·255). */
  reconvolve(stains: Float32Array, m: Float32Array, out: Uint8Array): Promise<void>;
  /** OpenCV 8-bit LAB of every pixel. */
  lab8(rgb: Uint8Array, out: Uint8Array): Promise<void>;
  /** Reinhard: 8-bit LAB → the image's transfer table (3·256 levels per image) → sRGB. */
  reinhard(run: PixelRun, tables: Uint8Array, out: Uint8Array): Promise<void>;
  /** 1 for tissue: score[0][r] + score[1][g] + score[2][b] < below (per image: 3·256 scores, one bound). */
  tissueMask(run: PixelRun, scores: Float32Array, below: Float32Array, out: Uint8Array): Promise<void>;
  /** The pseudo-angle (pseudoAngle) of (od·x, od·y). perImage: x[3], y[3]. */
  angles(run: PixelRun, odTable: Float32Array, perImage: Float64Array, out: Float32Array): Promise<void>;
  /** (c0, c1) = P·od with P the 2x3 pseudo-inverse. perImage: P[6]. */
  concentrations(run: PixelRun, odTable: Float32Array, perImage: Float64Array, out: Float32Array): Promise<void>;
  /**
   * Stain transform: v_j = io·exp(−Σ_c M[j][c]·od_c), v > 255 → overflowValue,
   * truncated to uint8. perImage: M[9], row-major.
   */
  render(run: PixelRun, odTable: Float32Array, perImage: Float32Array, io: number, overflowValue: number, out: Uint8Array): Promise<void>;
}

// ---- tables -----------------------------------------------------------------

/** od(I) = max(−ln((I + offset)/io), minOd) in double, stored as float; with offset 0 a 0 reads as 1. */
export function odTable(p: OdParams): Float32Array {
  const t = new Float32Array(256);
  const io = Math.fround(p.io);
  const offset = Math.fround(p.offset);
  const minOd = Math.fround(p.minOd);
  for (let v = 0; v < 256; v++) {
    let light = v + offset;
    if (offset === 0 && v === 0) light = 1;
    t[v] = Math.max(-Math.log(light / io), minOd);
  }
  return t;
}

/** ln(1e−6): skimage's log adjustment of separate_stains and combine_stains. */
export const LOG_ADJUST = Math.log(1e-6);

/** scikit-image separate_stains: ln(max(I/255, 1e−6)) / ln(1e−6). */
export function deconvolutionLogTable(): Float32Array {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = Math.log(Math.max(v / 255, 1e-6)) / LOG_ADJUST;
  return t;
}

/** numpy.percentile (linear, numpy's _lerp) of an 8-bit sample given as its 256-bin histogram. */
function bytePercentile(hist: Float64Array, total: number, percent: number): number {
  const valueAt = (rank: number): number => {
    let seen = 0;
    for (let v = 0; v < 256; v++) {
      seen += hist[v]!;
      if (seen > rank) return v;
    }
    return 255;
  };
  const pos = (percent / 100) * (total - 1);
  const k = Math.min(Math.max(Math.floor(pos), 0), total - 1);
  const frac = Math.min(Math.max(pos - k, 0), 1);
  const lo = valueAt(k);
  const hi = k + 1 < total ? valueAt(k + 1) : lo;
  const diff = hi - lo;
  return frac >= 0.5 ? hi - diff * (1 - frac) : lo + diff * frac;
}

/** An infinite bound travels as a large finite float (texture uploads); scores sum to at most 3 or about 2²³. */
const NO_BOUND = 3e38;

/**
 * A tissue rule as native/stain/stain_tables_cpu.cc states it: a pixel is
 * tissue when score[0][r] + score[1][g] + score[2][b] < below (float sums).
 * 'od': the score is 1 for a level whose OD (double) is below beta, bound 0.5.
 * 'luminosity' (tiatoolbox): each level through the image's 2–98 % contrast
 * stretch (skimage rescale_intensity, astype uint8), then OpenCV's fixed-point
 * gamma table weighted by the integer Y row (src/color/lab_opencv8.ts); the
 * bound is the smallest weighted sum whose 8-bit L fails L/255 < threshold
 * (L8 is monotone in that sum).
 */
export function tissueTable(rgb: Uint8Array, tissue: TissueParams, od: OdParams, scores: Float32Array): number {
  if (tissue.rule === 'od') {
    const offset = Math.fround(od.offset);
    const io = Math.fround(od.io);
    const beta = Math.fround(tissue.beta);
    for (let v = 0; v < 256; v++) {
      let light = v + offset;
      if (offset === 0 && v === 0) light = 1;
      const fails = Math.max(-Math.log(light / io), Math.fround(od.minOd)) >= beta ? 0 : 1;
      for (let c = 0; c < 3; c++) scores[c * 256 + v] = fails;
    }
    return 0.5;
  }
  const hist = new Float64Array(256);
  for (let i = 0; i < rgb.length; i++) hist[rgb[i]!]++;
  let low = bytePercentile(hist, rgb.length, 2);
  let high = bytePercentile(hist, rgb.length, 98);
  if (low >= high) {
    let lo = 0;
    let hi = 255;
    while (lo < 255 && hist[lo] === 0) lo++;
    while (hi > 0 && hist[hi] === 0) hi--;
    low = lo;
    high = hi;
  }
  for (let v = 0; v < 256; v++) {
    let x = v;
    if (high > low) x = Math.trunc(((Math.min(Math.max(x, low), high) - low) / (high - low)) * 255);
    // Integers below 2²⁴: exact float sums on every backend.
    const gamma = LAB8_GAMMA[x]!;
    for (let c = 0; c < 3; c++) scores[c * 256 + v] = LAB8_Y_WEIGHTS[c]! * gamma;
  }
  // The smallest weighted sum whose L8 fails L8/255 < threshold.
  const bound = lab8LuminosityBound(tissue.luminosityThreshold);
  return bound === Infinity ? NO_BOUND : bound;
}

/** The batch in runs of whole images, at most `maxPixels` pixels each (at least one image). */
export function* runsOf(batch: RgbBatch, maxPixels: number): Generator<PixelRun> {
  const ppi = batch.height * batch.width;
  const perRun = Math.max(1, Math.floor(maxPixels / Math.max(ppi, 1)));
  for (let first = 0; first < batch.n; first += perRun) {
    const images = Math.min(perRun, batch.n - first);
    yield {
      rgb: batch.data.subarray(first * ppi * 3, (first + images) * ppi * 3),
      pixels: images * ppi,
      pixelsPerImage: ppi,
      firstImage: first,
      images,
    };
  }
}
