/**
 * The plain TypeScript backend ('js'): the last fallback, and the "plain
 * TypeScript" baseline of the benchmarks.
 *
 * The host algorithms (Macenko, Vahadane, fixed stains, Reinhard statistics)
 * are written once here over a `PixelMaps` implementation: the per-pixel maps
 * are the only part that differs between 'js' (loops below) and 'gpujs'
 * (gpu.js kernels), and both follow the native CPU reference's decisions
 * (native/stain/*_cpu.cc): 256-entry OD tables, tissue rules as per-level
 * score tables, Reinhard as per-level transfer tables, a 3x3 matrix per image
 * for the stain transform, reductions and percentiles in double on the host.
 */
import {
  eigh3,
  lab8ToSrgb,
  lerpNumpy,
  percentileLinear,
  percentileOrderPair,
  rint,
  splitmix64Unit,
  srgbToLab8,
  stainPinv,
} from '../stain/math.js';
import { LAB8_GAMMA, LAB8_Y_WEIGHTS, lab8LuminosityBound } from '../color/lab_opencv8.js';
import { FitStatus } from './types.js';
import type {
  KernelBackend,
  KernelBackendName,
  LabStats,
  MacenkoParams,
  OdParams,
  RgbBatch,
  StainFit,
  TissueParams,
  VahadaneParams,
} from './types.js';

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

const LOG_ADJUST = Math.log(1e-6);

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

// ---- plain loops --------------------------------------------------------------

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

// ---- host algorithms over any PixelMaps ------------------------------------

/**
 * Strictly increasing in atan2(y, x) over (−π, π], in [−2, 2]: Macenko ranks
 * pixels by it and takes atan2 only of the order statistics (as the CPU
 * reference; GPU atan2 is not trustworthy near the axes either).
 */
const TINY = Math.fround(1e-30);

export function pseudoAngle(x: number, y: number): number {
  const s = Math.max(Math.fround(Math.abs(x) + Math.abs(y)), TINY);
  const v = Math.fround(1 - Math.fround(x / s));
  return y < 0 || Object.is(y, -0) ? -v : v;
}

/** The angle whose pseudoAngle is d. */
export function angleOfPseudo(d: number): number {
  const x = 1 - Math.abs(d);
  const phi = Math.atan2(1 - Math.abs(x), x);
  return d < 0 ? -phi : phi;
}

function* runsOf(batch: RgbBatch, maxPixels: number): Generator<PixelRun> {
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

function outputArray<T extends Float32Array | Uint8Array>(out: T | undefined, length: number, make: (n: number) => T, name: string): T {
  if (out === undefined) return make(length);
  if (out.length !== length) throw new RangeError(`Expected ${name} of length ${length} but received length ${out.length}`);
  return out;
}

function emptyFit(tissuePixels = 0, status = FitStatus.Ok): StainFit {
  return { he: [0, 0, 0, 0, 0, 0], maxC: [0, 0], tissuePixels, status };
}

/** Tissue mask of every pixel of a run. */
async function tissueOf(maps: PixelMaps, run: PixelRun, tissue: TissueParams, od: OdParams): Promise<Uint8Array> {
  const scores = new Float32Array(run.images * 768);
  const below = new Float32Array(run.images);
  const values = run.pixelsPerImage * 3;
  for (let img = 0; img < run.images; img++) {
    below[img] = tissueTable(run.rgb.subarray(img * values, (img + 1) * values), tissue, od, scores.subarray(img * 768, (img + 1) * 768));
  }
  const mask = new Uint8Array(run.pixels);
  await maps.tissueMask(run, scores, below, mask);
  return mask;
}

/** For fits still Ok: max_c = 99th percentile of the least-squares concentrations over all the image's pixels. */
async function fitMaxC(maps: PixelMaps, run: PixelRun, odTab: Float32Array, fits: StainFit[]): Promise<void> {
  const pinvs = new Float64Array(run.images * 6);
  const active: boolean[] = [];
  for (let img = 0; img < run.images; img++) {
    const fit = fits[run.firstImage + img]!;
    if (fit.status !== FitStatus.Ok) {
      active.push(false);
      continue;
    }
    const pinv = run.pixelsPerImage > 0 ? stainPinv(Float32Array.from(fit.he)) : null;
    if (!pinv) {
      fit.status = FitStatus.Degenerate;
      fit.maxC = [0, 0];
    } else {
      pinvs.set(pinv, img * 6);
    }
    active.push(pinv !== null);
  }
  if (!active.some(Boolean)) return;
  const conc = new Float32Array(run.pixels * 2);
  await maps.concentrations(run, odTab, pinvs, conc);
  const ppi = run.pixelsPerImage;
  const column = new Float32Array(ppi);
  for (let img = 0; img < run.images; img++) {
    if (!active[img]) continue;
    const fit = fits[run.firstImage + img]!;
    for (let s = 0; s < 2; s++) {
      for (let k = 0; k < ppi; k++) column[k] = conc[(img * ppi + k) * 2 + s]!;
      fit.maxC[s] = Math.fround(percentileLinear(column, 99));
    }
    if (!(fit.maxC[0]! > 0 && fit.maxC[1]! > 0 && Number.isFinite(fit.maxC[0]) && Number.isFinite(fit.maxC[1]))) {
      fit.status = FitStatus.Degenerate;
    }
  }
}

/** A KernelBackend whose per-pixel work runs on `maps` and whose reductions run here. */
export function pixelMapBackend(name: KernelBackendName, maps: PixelMaps): KernelBackend {
  const runs = (batch: RgbBatch) => runsOf(batch, maps.maxPixelsPerRun);

  async function labStats(batch: RgbBatch): Promise<LabStats[]> {
    const stats: LabStats[] = [];
    const ppi = batch.height * batch.width;
    for (const run of runs(batch)) {
      const lab = new Uint8Array(run.pixels * 3);
      await maps.lab8(run.rgb, lab);
      for (let img = 0; img < run.images; img++) {
        // The 8-bit channels take 256 values: a histogram gives exact double sums.
        const hist = new Float64Array(3 * 256);
        for (let i = img * ppi * 3; i < (img + 1) * ppi * 3; i += 3) {
          hist[lab[i]!]++;
          hist[256 + lab[i + 1]!]++;
          hist[512 + lab[i + 2]!]++;
        }
        const mean = [0, 0, 0];
        const std = [0, 0, 0];
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          let sq = 0;
          for (let v = 0; v < 256; v++) {
            const x = c === 0 ? v / 2.55 : v - 128;
            sum += hist[c * 256 + v]! * x;
            sq += hist[c * 256 + v]! * x * x;
          }
          // An empty image keeps the neutral statistics (mean 0, std 1).
          mean[c] = ppi > 0 ? sum / ppi : 0;
          std[c] = ppi > 0 ? Math.sqrt(Math.max(sq / ppi - mean[c]! * mean[c]!, 0)) : 1;
        }
        stats.push({ mean, std, pixels: ppi });
      }
    }
    return stats;
  }

  async function macenkoRun(run: PixelRun, p: MacenkoParams, odTab: Float32Array, fits: StainFit[]): Promise<void> {
    const ppi = run.pixelsPerImage;
    const mask = await tissueOf(maps, run, p.tissue, p.od);
    const basis = new Float64Array(run.images * 6);
    const counts: number[] = [];
    for (let img = 0; img < run.images; img++) {
      // Covariance of the tissue ODs (np.cov: centred, ddof 1), in double.
      const s = new Float64Array(9);
      let count = 0;
      for (let k = img * ppi; k < (img + 1) * ppi; k++) {
        if (!mask[k]) continue;
        const r = odTab[run.rgb[k * 3]!]!;
        const g = odTab[run.rgb[k * 3 + 1]!]!;
        const b = odTab[run.rgb[k * 3 + 2]!]!;
        count++;
        s[0] += r;
        s[1] += g;
        s[2] += b;
        s[3] += r * r;
        s[4] += r * g;
        s[5] += r * b;
        s[6] += g * g;
        s[7] += g * b;
        s[8] += b * b;
      }
      counts.push(count);
      const fit = emptyFit(count);
      fits[run.firstImage + img] = fit;
      if (count < 2) {
        fit.status = FitStatus.TooFewTissuePixels;
        continue;
      }
      const m = [s[0]! / count, s[1]! / count, s[2]! / count];
      const c = (i: number, j: number, sij: number) => (sij - count * m[i]! * m[j]!) / (count - 1);
      const cxy = [c(0, 0, s[3]!), c(0, 1, s[4]!), c(0, 2, s[5]!), c(1, 1, s[6]!), c(1, 2, s[7]!), c(2, 2, s[8]!)];
      const { vectors } = eigh3([cxy[0]!, cxy[1]!, cxy[2]!, cxy[1]!, cxy[3]!, cxy[4]!, cxy[2]!, cxy[4]!, cxy[5]!]);
      // φ = atan2(od·e1, od·e2) as HEnorm_python, e1 the principal axis turned so tissue projects positively.
      const e1 = [vectors[2]!, vectors[5]!, vectors[8]!];
      const e2 = [vectors[1]!, vectors[4]!, vectors[7]!];
      const flip = e1[0]! * m[0]! + e1[1]! * m[1]! + e1[2]! * m[2]! < 0 ? -1 : 1;
      for (let k = 0; k < 3; k++) {
        basis[img * 6 + k] = e2[k]!;
        basis[img * 6 + 3 + k] = flip * e1[k]!;
      }
    }
    if (!fits.slice(run.firstImage, run.firstImage + run.images).some((f) => f.status === FitStatus.Ok)) return;
    const phi = new Float32Array(run.pixels);
    await maps.angles(run, odTab, basis, phi);
    for (let img = 0; img < run.images; img++) {
      const fit = fits[run.firstImage + img]!;
      if (fit.status !== FitStatus.Ok) continue;
      const tissuePhi = new Float64Array(counts[img]!);
      let n = 0;
      for (let k = img * ppi; k < (img + 1) * ppi; k++) if (mask[k]) tissuePhi[n++] = phi[k]!;
      const angle = (percent: number) => {
        const { lo, hi, frac } = percentileOrderPair(tissuePhi, percent);
        return lerpNumpy(angleOfPseudo(lo), angleOfPseudo(hi), frac);
      };
      const minPhi = angle(p.alpha);
      const maxPhi = angle(100 - p.alpha);
      const e = basis.subarray(img * 6, img * 6 + 6);
      const v1 = [0, 1, 2].map((k) => e[k]! * Math.cos(minPhi) + e[3 + k]! * Math.sin(minPhi));
      const v2 = [0, 1, 2].map((k) => e[k]! * Math.cos(maxPhi) + e[3 + k]! * Math.sin(maxPhi));
      // Hematoxylin is the vector with the larger red OD.
      const [h, eo] = v1[0]! > v2[0]! ? [v1, v2] : [v2, v1];
      const hNorm = p.unitRows ? Math.sqrt(h[0]! * h[0]! + h[1]! * h[1]! + h[2]! * h[2]!) : 1;
      const eNorm = p.unitRows ? Math.sqrt(eo[0]! * eo[0]! + eo[1]! * eo[1]! + eo[2]! * eo[2]!) : 1;
      if (!(hNorm > 0 && eNorm > 0)) {
        fit.status = FitStatus.Degenerate;
        continue;
      }
      fit.he = [...h.map((x) => Math.fround(x / hNorm)), ...eo.map((x) => Math.fround(x / eNorm))];
    }
    await fitMaxC(maps, run, odTab, fits);
  }

  async function vahadaneRun(run: PixelRun, p: VahadaneParams, odTab: Float32Array, fits: StainFit[]): Promise<void> {
    const ppi = run.pixelsPerImage;
    const mask = await tissueOf(maps, run, p.tissue, p.od);
    const u = splitmix64Unit(BigInt(p.seed), 0);
    for (let img = 0; img < run.images; img++) {
      const tissue: number[] = [];
      for (let k = img * ppi; k < (img + 1) * ppi; k++) if (mask[k]) tissue.push(k);
      const fit = emptyFit(tissue.length);
      fits[run.firstImage + img] = fit;
      if (tissue.length < 2) {
        fit.status = FitStatus.TooFewTissuePixels;
        continue;
      }
      let chosen = tissue;
      if (p.maxPixels > 0 && tissue.length > p.maxPixels) {
        const step = tissue.length / p.maxPixels;
        chosen = Array.from({ length: p.maxPixels }, (_, k) => tissue[Math.min(Math.floor((k + u) * step), tissue.length - 1)]!);
      }
      const od = new Float64Array(chosen.length * 3);
      chosen.forEach((k, j) => {
        for (let c = 0; c < 3; c++) od[j * 3 + c] = odTab[run.rgb[k * 3 + c]!]!;
      });
      const w = vahadaneFactorize(od, p.lambda, p.iterations);
      if (!w) {
        fit.status = FitStatus.Degenerate;
        continue;
      }
      fit.he = Array.from(w, (x) => Math.fround(x));
    }
    await fitMaxC(maps, run, odTab, fits);
  }

  return {
    name,

    async rgbToOd(batch, p, out) {
      const result = outputArray(out, batch.data.length, (n) => new Float32Array(n), 'out');
      const table = odTable(p);
      for (const run of runs(batch)) {
        const at = run.firstImage * run.pixelsPerImage * 3;
        await maps.lookup(run.rgb, table, result.subarray(at, at + run.rgb.length));
      }
      return result;
    },

    async odToRgb(od, pixels, p, out) {
      if (od.length !== pixels * 3) throw new RangeError(`Expected od of length ${pixels * 3} but received length ${od.length}`);
      const result = outputArray(out, pixels * 3, (n) => new Uint8Array(n), 'out');
      for (let at = 0; at < pixels * 3; at += maps.maxPixelsPerRun * 3) {
        const end = Math.min(at + maps.maxPixelsPerRun * 3, pixels * 3);
        await maps.odToRgb(od.subarray(at, end), p, result.subarray(at, end));
      }
      return result;
    },

    async deconvolve(batch, stainFromRgb, out) {
      const result = outputArray(out, batch.data.length, (n) => new Float32Array(n), 'out');
      const table = deconvolutionLogTable();
      const m = Float32Array.from(stainFromRgb);
      for (const run of runs(batch)) {
        const at = run.firstImage * run.pixelsPerImage * 3;
        await maps.deconvolve(run.rgb, table, m, result.subarray(at, at + run.rgb.length));
      }
      return result;
    },

    async reconvolve(stains, pixels, rgbFromStain, out) {
      if (stains.length !== pixels * 3) throw new RangeError(`Expected stains of length ${pixels * 3} but received length ${stains.length}`);
      const result = outputArray(out, pixels * 3, (n) => new Uint8Array(n), 'out');
      const m = Float32Array.from(rgbFromStain);
      for (let at = 0; at < pixels * 3; at += maps.maxPixelsPerRun * 3) {
        const end = Math.min(at + maps.maxPixelsPerRun * 3, pixels * 3);
        await maps.reconvolve(stains.subarray(at, end), m, result.subarray(at, end));
      }
      return result;
    },

    reinhardFit: labStats,

    async reinhardTransform(batch, target, out) {
      const result = outputArray(out, batch.data.length, (n) => new Uint8Array(n), 'out');
      const own = await labStats(batch);
      for (const run of runs(batch)) {
        // Per image and channel, the transfer of every 8-bit level, in double:
        // y = (x − μ)·σt/σ + μt back to 8-bit scaling, clipped, truncated (astype uint8).
        const tables = new Uint8Array(run.images * 768);
        for (let img = 0; img < run.images; img++) {
          const s = own[run.firstImage + img]!;
          for (let c = 0; c < 3; c++) {
            // A flat channel is shifted only, never divided by ~0.
            const gain = s.std[c]! < 1e-6 ? 1 : target.std[c]! / s.std[c]!;
            for (let v = 0; v < 256; v++) {
              const y = ((c === 0 ? v / 2.55 : v - 128) - s.mean[c]!) * gain + target.mean[c]!;
              const scaled = c === 0 ? y * 2.55 : y + 128;
              tables[img * 768 + c * 256 + v] = Math.min(Math.max(scaled, 0), 255);
            }
          }
        }
        const at = run.firstImage * run.pixelsPerImage * 3;
        await maps.reinhard(run, tables, result.subarray(at, at + run.rgb.length));
      }
      return result;
    },

    async macenkoFit(batch, p) {
      const fits: StainFit[] = [];
      const table = odTable(p.od);
      for (const run of runs(batch)) await macenkoRun(run, p, table, fits);
      return fits;
    },

    async vahadaneFit(batch, p) {
      const fits: StainFit[] = [];
      const table = odTable(p.od);
      for (const run of runs(batch)) await vahadaneRun(run, p, table, fits);
      return fits;
    },

    async stainFitFixed(batch, he, od) {
      const ppi = batch.height * batch.width;
      const fits: StainFit[] = Array.from({ length: batch.n }, () => ({ ...emptyFit(ppi), he: Array.from(Float32Array.from(he)) }));
      if (batch.n > 0 && ppi === 0) fits.forEach((f) => (f.status = FitStatus.Degenerate));
      const table = odTable(od);
      for (const run of runs(batch)) await fitMaxC(maps, run, table, fits);
      return fits;
    },

    async stainTransform(batch, fits, p, out, hOnly, eOnly) {
      if (fits.length !== batch.n) throw new RangeError(`Expected ${batch.n} fits but received ${fits.length}`);
      const length = batch.data.length;
      const result = outputArray(out, length, (n) => new Uint8Array(n), 'out');
      outputArray(hOnly, length, (n) => new Uint8Array(n), 'hOnly');
      outputArray(eOnly, length, (n) => new Uint8Array(n), 'eOnly');
      const table = odTable(p.od);
      const targets: [Uint8Array | undefined, boolean, boolean][] = [
        [result, true, true],
        [hOnly, true, false],
        [eOnly, false, true],
      ];
      for (const run of runs(batch)) {
        const at = run.firstImage * run.pixelsPerImage * 3;
        const values = run.pixelsPerImage * 3;
        const pinvs: (Float64Array | null)[] = [];
        for (let img = 0; img < run.images; img++) {
          const fit = fits[run.firstImage + img]!;
          const ok = fit.status === FitStatus.Ok && fit.maxC[0]! > 0 && fit.maxC[1]! > 0;
          pinvs.push(ok ? stainPinv(Float32Array.from(fit.he)) : null);
        }
        for (const [target, useH, useE] of targets) {
          if (!target) continue;
          const view = target.subarray(at, at + run.rgb.length);
          // Per image M = HE_targetᵀ·diag(max_c target / max_c)·pinv: concentrations, scaling and re-rendering in one matrix.
          const matrices = new Float32Array(run.images * 9);
          pinvs.forEach((pinv, img) => {
            if (!pinv) return;
            const fit = fits[run.firstImage + img]!;
            const scale = [Math.fround(p.targetMaxC[0]!) / Math.fround(fit.maxC[0]!), Math.fround(p.targetMaxC[1]!) / Math.fround(fit.maxC[1]!)];
            for (let j = 0; j < 3; j++) {
              for (let c = 0; c < 3; c++) {
                let v = 0;
                if (useH) v += Math.fround(p.targetHe[j]!) * scale[0]! * pinv[c]!;
                if (useE) v += Math.fround(p.targetHe[3 + j]!) * scale[1]! * pinv[3 + c]!;
                matrices[img * 9 + j * 3 + c] = v;
              }
            }
          });
          if (pinvs.some((x) => x !== null)) await maps.render(run, table, matrices, Math.fround(p.od.io), p.overflowValue, view);
          // Refused fits leave the image (and its single-stain views) as it was.
          pinvs.forEach((pinv, img) => {
            if (!pinv) view.set(run.rgb.subarray(img * values, (img + 1) * values), img * values);
          });
        }
      }
      return result;
    },

    async stainConcentrations(batch, fits, od, out) {
      if (fits.length !== batch.n) throw new RangeError(`Expected ${batch.n} fits but received ${fits.length}`);
      const result = outputArray(out, batch.n * batch.height * batch.width * 2, (n) => new Float32Array(n), 'out');
      const table = odTable(od);
      for (const run of runs(batch)) {
        const pinvs = new Float64Array(run.images * 6);
        for (let img = 0; img < run.images; img++) {
          // Any non-singular matrix is usable here, whatever the fit status; a singular one gives zeros.
          const pinv = stainPinv(Float32Array.from(fits[run.firstImage + img]!.he));
          if (pinv) pinvs.set(pinv, img * 6);
        }
        const at = run.firstImage * run.pixelsPerImage * 2;
        await maps.concentrations(run, table, pinvs, result.subarray(at, at + run.pixels * 2));
      }
      return result;
    },
  };
}

/**
 * Vahadane's alternating minimization, exactly as native/stain/vahadane.h
 * step 3-5 specify, in double. od: pixels·3. Returns W (rows H, E) or null
 * when it degenerates.
 */
export function vahadaneFactorize(od: Float64Array, lambda: number, iterations: number): Float64Array | null {
  const w = new Float64Array([0.65, 0.7, 0.29, 0.07, 0.99, 0.11]);
  for (let r = 0; r < 2; r++) {
    const n = Math.sqrt(w[r * 3]! * w[r * 3]! + w[r * 3 + 1]! * w[r * 3 + 1]! + w[r * 3 + 2]! * w[r * 3 + 2]!);
    for (let k = 0; k < 3; k++) w[r * 3 + k] = w[r * 3 + k]! / n;
  }
  const pixels = od.length / 3;
  for (let it = 0; it < iterations; it++) {
    const g00 = w[0]! * w[0]! + w[1]! * w[1]! + w[2]! * w[2]!;
    const g11 = w[3]! * w[3]! + w[4]! * w[4]! + w[5]! * w[5]!;
    const g01 = w[0]! * w[3]! + w[1]! * w[4]! + w[2]! * w[5]!;
    const detG = g00 * g11 - g01 * g01;
    if (!(detG > 1e-12 * (g00 + g11) * (g00 + g11))) return null;
    let a00 = 0;
    let a01 = 0;
    let a11 = 0;
    const cod = new Float64Array(6);
    for (let j = 0; j < pixels; j++) {
      const o0 = od[j * 3]!;
      const o1 = od[j * 3 + 1]!;
      const o2 = od[j * 3 + 2]!;
      const b0 = w[0]! * o0 + w[1]! * o1 + w[2]! * o2;
      const b1 = w[3]! * o0 + w[4]! * o1 + w[5]! * o2;
      // Exact minimizer of ½‖od − c·W‖² + λ(c0 + c1) over c ≥ 0.
      let c0 = (g11 * (b0 - lambda) - g01 * (b1 - lambda)) / detG;
      let c1 = (g00 * (b1 - lambda) - g01 * (b0 - lambda)) / detG;
      if (!(c0 >= 0 && c1 >= 0)) {
        const ca = Math.max(0, (b0 - lambda) / g00);
        const cb = Math.max(0, (b1 - lambda) / g11);
        // Objectives without the common ½‖od‖² term.
        const fa = 0.5 * ca * ca * g00 - ca * b0 + lambda * ca;
        const fb = 0.5 * cb * cb * g11 - cb * b1 + lambda * cb;
        if (fa <= fb) {
          c0 = ca;
          c1 = 0;
        } else {
          c0 = 0;
          c1 = cb;
        }
      }
      a00 += c0 * c0;
      a01 += c0 * c1;
      a11 += c1 * c1;
      cod[0] += c0 * o0;
      cod[1] += c0 * o1;
      cod[2] += c0 * o2;
      cod[3] += c1 * o0;
      cod[4] += c1 * o1;
      cod[5] += c1 * o2;
    }
    // Dictionary update of Mairal et al. 2010 (SPAMS, scikit-learn) with
    // A = CᵀC, B = CᵀOD: each row in turn, using the rows already updated,
    // clipped at 0 and scaled into the unit ball.
    const a = [a00, a01, a01, a11];
    for (let j = 0; j < 2; j++) {
      const ajj = a[j * 2 + j]!;
      if (!(ajj > 1e-12)) continue;
      for (let k = 0; k < 3; k++) {
        const aw = a[j * 2]! * w[k]! + a[j * 2 + 1]! * w[3 + k]!;
        w[j * 3 + k] = Math.max(0, w[j * 3 + k]! + (cod[j * 3 + k]! - aw) / ajj);
      }
      const n = Math.sqrt(w[j * 3]! * w[j * 3]! + w[j * 3 + 1]! * w[j * 3 + 1]! + w[j * 3 + 2]! * w[j * 3 + 2]!);
      const scale = Math.max(n, 1);
      for (let k = 0; k < 3; k++) w[j * 3 + k] = w[j * 3 + k]! / scale;
    }
  }
  // Unit rows; a zero row or collinear rows are degenerate.
  for (let r = 0; r < 2; r++) {
    const n = Math.sqrt(w[r * 3]! * w[r * 3]! + w[r * 3 + 1]! * w[r * 3 + 1]! + w[r * 3 + 2]! * w[r * 3 + 2]!);
    if (!(n > 0) || !Number.isFinite(n)) return null;
    for (let k = 0; k < 3; k++) w[r * 3 + k] = w[r * 3 + k]! / n;
  }
  if (Math.abs(w[0]! * w[3]! + w[1]! * w[4]! + w[2]! * w[5]!) > 1 - 1e-6) return null;
  if (w[3]! > w[0]!) {
    for (let k = 0; k < 3; k++) {
      const t = w[k]!;
      w[k] = w[3 + k]!;
      w[3 + k] = t;
    }
  }
  return w;
}

export const jsBackend: KernelBackend = pixelMapBackend('js', jsPixelMaps);
