/**
 * native/augment/augment.h in plain TypeScript, in double precision, one op
 * after another over a whole image: the independent reference of the tests
 * and the `js` backend's implementation. Readable before fast.
 *
 * Parameters are float32 in the kernels; the drawn ones already are
 * (params.ts), and the batch's mean and std are rounded here the same way.
 */
import { splitmix64Unit } from '../stain/math.js';
import { RGB_FROM_HED, stainMatrix } from '../color/deconvolution.js';
import type { RgbBatch } from '../kernels/types.js';
import type { AugmentBatchParams, AugmentImageParams } from './params.js';

/** The standard normal of step 5: sqrt(−2·ln(1 − u₁))·cos(2π·u₂), u₁, u₂ from splitmix64(seed, 2i), (seed, 2i + 1). */
export function noiseValue(seed: number | bigint, index: number): number {
  const u1 = splitmix64Unit(seed, 2 * index);
  const u2 = splitmix64Unit(seed, 2 * index + 1);
  return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
}

/**
 * The source position of output pixel (y, x) in the resized crop R, for the
 * output O = fliplr^(d4 & 4)(rot90^(d4 & 3)(R)) with rot90 counter-clockwise
 * (numpy.rot90): undo the flip, then each quarter turn maps (y, x) → (x, n − 1 − y).
 */
export function dihedralSource(d4: number, y: number, x: number, outH: number, outW: number): [number, number] {
  let yy = y;
  let xx = d4 & 4 ? outW - 1 - x : x;
  switch (d4 & 3) {
    case 1:
      [yy, xx] = [xx, outH - 1 - yy];
      break;
    case 2:
      [yy, xx] = [outH - 1 - yy, outW - 1 - xx];
      break;
    case 3:
      [yy, xx] = [outW - 1 - xx, yy];
      break;
  }
  return [yy, xx];
}

/** Bilinear sample position at pixel centres (align_corners = false), clamped to [0, size − 1]. */
export function samplePosition(o: number, crop: number, out: number): [number, number, number] {
  let s = ((o + 0.5) * crop) / out - 0.5;
  s = Math.min(Math.max(s, 0), crop - 1);
  const i0 = Math.floor(s);
  const i1 = Math.min(i0 + 1, crop - 1);
  return [i0, i1, s - i0];
}

/** Step 1: the dihedral view of the crop window resized (to outH x outW, or outW x outH before an odd turn), values in [0, 1]. */
function geometry(src: Uint8Array, width: number, p: AugmentImageParams, b: AugmentBatchParams): Float64Array {
  const img = new Float64Array(b.outH * b.outW * 3);
  // After an odd number of quarter turns the grid before D4 is outW x outH
  // (the API asks for square outputs with D4; the kernels accept any).
  const odd = (p.d4 & 1) !== 0;
  const gridH = odd ? b.outW : b.outH;
  const gridW = odd ? b.outH : b.outW;
  for (let y = 0; y < b.outH; y++) {
    for (let x = 0; x < b.outW; x++) {
      const [ry, rx] = dihedralSource(p.d4, y, x, b.outH, b.outW);
      const [y0, y1, wy] = samplePosition(ry, b.cropH, gridH);
      const [x0, x1, wx] = samplePosition(rx, b.cropW, gridW);
      const at = (yy: number, xx: number, c: number) => src[((p.cropY + yy) * width + p.cropX + xx) * 3 + c]!;
      for (let c = 0; c < 3; c++) {
        const top = at(y0, x0, c) * (1 - wx) + at(y0, x1, c) * wx;
        const bottom = at(y1, x0, c) * (1 - wx) + at(y1, x1, c) * wx;
        img[(y * b.outW + x) * 3 + c] = (top * (1 - wy) + bottom * wy) / 255;
      }
    }
  }
  return img;
}

/** Control points along an axis of n output pixels for spacing σ: floor((n − 1)/σ) + 4. */
export function elasticGridSize(n: number, sigma: number): number {
  return Math.floor((n - 1) / sigma) + 4;
}

/** The first of pixel `pos`'s 4 control points and their cubic B-spline weights (rounded to float32, as augment.h says). */
export function elasticAxis(pos: number, sigma: number): [number, number[]] {
  const t = pos / sigma;
  const j = Math.floor(t);
  const f = t - j;
  const g = 1 - f;
  const w = [g * g * g / 6, (3 * f * f * f - 6 * f * f + 4) / 6, (-3 * f * f * f + 3 * f * f + 3 * f + 1) / 6, (f * f * f) / 6];
  return [j, w.map(Math.fround)];
}

/**
 * The control grids of an image's elastic field, cy then cx (gh x gw each):
 * α·(2u − 1) rounded to float32, u = splitmix64Unit(elasticSeed, 2k + d).
 */
export function elasticControls(p: AugmentImageParams, h: number, w: number): Float32Array {
  const gh = elasticGridSize(h, p.elasticSigma);
  const gw = elasticGridSize(w, p.elasticSigma);
  const grid = gh * gw;
  const c = new Float32Array(2 * grid);
  for (let k = 0; k < grid; k++) {
    c[k] = p.elasticAlpha * (2 * splitmix64Unit(p.elasticSeed, 2 * k) - 1);
    c[grid + k] = p.elasticAlpha * (2 * splitmix64Unit(p.elasticSeed, 2 * k + 1) - 1);
  }
  return c;
}

/** The elastic displacement (dy, dx) of every pixel of an h x w output, row-major. */
export function elasticField(p: AugmentImageParams, h: number, w: number): { dy: Float64Array; dx: Float64Array } {
  const controls = elasticControls(p, h, w);
  const gw = elasticGridSize(w, p.elasticSigma);
  const grid = elasticGridSize(h, p.elasticSigma) * gw;
  const dy = new Float64Array(h * w);
  const dx = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const [jy, wy] = elasticAxis(y, p.elasticSigma);
    for (let x = 0; x < w; x++) {
      const [jx, wx] = elasticAxis(x, p.elasticSigma);
      let sy = 0;
      let sx = 0;
      for (let a = 0; a < 4; a++) {
        for (let b = 0; b < 4; b++) {
          const k = (jy + a) * gw + jx + b;
          sy += wy[a]! * wx[b]! * controls[k]!;
          sx += wy[a]! * wx[b]! * controls[grid + k]!;
        }
      }
      dy[y * w + x] = sy;
      dx[y * w + x] = sx;
    }
  }
  return { dy, dx };
}

/** OpenCV's BORDER_REFLECT (…cba|abc…xyz|zyx…) of index i into [0, n). */
export function reflectIndex(i: number, n: number): number {
  const period = 2 * n;
  const m = ((i % period) + period) % period;
  return m < n ? m : period - 1 - m;
}

/** Step 1b: the image resampled bilinearly at (y + dy, x + dx), edges mirrored. */
function elastic(img: Float64Array, h: number, w: number, p: AugmentImageParams): Float64Array {
  const { dy, dx } = elasticField(p, h, w);
  const out = new Float64Array(img.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const fy = Math.floor(dy[i]!);
      const fx = Math.floor(dx[i]!);
      const wy = dy[i]! - fy;
      const wx = dx[i]! - fx;
      const y0 = reflectIndex(y + fy, h);
      const y1 = reflectIndex(y + fy + 1, h);
      const x0 = reflectIndex(x + fx, w);
      const x1 = reflectIndex(x + fx + 1, w);
      for (let c = 0; c < 3; c++) {
        const at = (yy: number, xx: number) => img[(yy * w + xx) * 3 + c]!;
        const top = at(y0, x0) * (1 - wx) + at(y0, x1) * wx;
        const bottom = at(y1, x0) * (1 - wx) + at(y1, x1) * wx;
        out[i * 3 + c] = top * (1 - wy) + bottom * wy;
      }
    }
  }
  return out;
}

const { rgbFromStain: RGB_FROM_HED_FLAT, stainFromRgb: HED_FROM_RGB } = stainMatrix(RGB_FROM_HED);
const LOG_ADJUST = Math.log(1e-6);

/** Step 2: Tellez's HED jitter in scikit-image's rgb2hed / combine_stains convention. */
function hedJitter(img: Float64Array, p: AugmentImageParams): void {
  const od = [0, 0, 0];
  const s = [0, 0, 0];
  for (let i = 0; i < img.length; i += 3) {
    for (let c = 0; c < 3; c++) od[c] = Math.log(Math.max(img[i + c]!, 1e-6)) / LOG_ADJUST;
    for (let k = 0; k < 3; k++) {
      const stain = Math.max(od[0]! * HED_FROM_RGB[k]! + od[1]! * HED_FROM_RGB[3 + k]! + od[2]! * HED_FROM_RGB[6 + k]!, 0);
      s[k] = stain * p.hedAlpha[k]! + p.hedBeta[k]!;
    }
    for (let c = 0; c < 3; c++) {
      const v = Math.exp(LOG_ADJUST * (s[0]! * RGB_FROM_HED_FLAT[c]! + s[1]! * RGB_FROM_HED_FLAT[3 + c]! + s[2]! * RGB_FROM_HED_FLAT[6 + c]!));
      img[i + c] = clip01(v);
    }
  }
}

function clip01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

const gray = (img: Float64Array, i: number) => 0.299 * img[i]! + 0.587 * img[i + 1]! + 0.114 * img[i + 2]!;

/** HSV hue rotation of one pixel by `turns`. */
function rotateHue(rgb: number[], turns: number): void {
  const [r, g, b] = rgb as [number, number, number];
  const max = Math.max(r, g, b);
  const min = Math.min(r, g, b);
  const delta = max - min;
  if (delta === 0) return; // grey: no hue
  let h: number;
  if (max === r) h = ((g - b) / delta) / 6;
  else if (max === g) h = ((b - r) / delta + 2) / 6;
  else h = ((r - g) / delta + 4) / 6;
  h += turns;
  h -= Math.floor(h);
  const s = delta / max;
  const v = max;
  const h6 = h * 6;
  const sector = Math.min(Math.floor(h6), 5);
  const f = h6 - sector;
  const pp = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const out = [
    [v, t, pp],
    [q, v, pp],
    [pp, v, t],
    [pp, q, v],
    [t, pp, v],
    [v, pp, q],
  ][sector]!;
  rgb[0] = out[0]!;
  rgb[1] = out[1]!;
  rgb[2] = out[2]!;
}

/** Step 3: brightness, contrast (about the mean grey after steps 1–2), saturation, hue; each clipped. */
function colour(img: Float64Array, p: AugmentImageParams): void {
  let meanGray = 0;
  if (p.contrast !== 1) {
    for (let i = 0; i < img.length; i += 3) meanGray += gray(img, i);
    meanGray /= img.length / 3;
  }
  const rgb = [0, 0, 0];
  for (let i = 0; i < img.length; i += 3) {
    if (p.brightness !== 1) for (let c = 0; c < 3; c++) img[i + c] = clip01(img[i + c]! * p.brightness);
    if (p.contrast !== 1) for (let c = 0; c < 3; c++) img[i + c] = clip01((img[i + c]! - meanGray) * p.contrast + meanGray);
    if (p.saturation !== 1) {
      const g = gray(img, i);
      for (let c = 0; c < 3; c++) img[i + c] = clip01(g + (img[i + c]! - g) * p.saturation);
    }
    if (p.hue !== 0) {
      for (let c = 0; c < 3; c++) rgb[c] = img[i + c]!;
      rotateHue(rgb, p.hue);
      for (let c = 0; c < 3; c++) img[i + c] = clip01(rgb[c]!);
    }
  }
}

/** The normalized gaussian weights of radius ceil(3σ), from −radius to radius. */
export function blurWeights(sigma: number): number[] {
  const radius = Math.ceil(3 * sigma);
  const weights: number[] = [];
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const v = Math.exp(-(i * i) / (2 * sigma * sigma));
    weights.push(v);
    sum += v;
  }
  for (let i = 0; i < weights.length; i++) weights[i] = weights[i]! / sum;
  return weights;
}

/** Step 4: separable gaussian of radius ceil(3σ), normalized weights, edges replicated. */
function blur(img: Float64Array, h: number, w: number, sigma: number): void {
  const radius = Math.ceil(3 * sigma);
  const weights = blurWeights(sigma);
  const tmp = new Float64Array(img.length);
  const clampIdx = (v: number, n: number) => (v < 0 ? 0 : v >= n ? n - 1 : v);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let i = -radius; i <= radius; i++) acc += weights[i + radius]! * img[(y * w + clampIdx(x + i, w)) * 3 + c]!;
        tmp[(y * w + x) * 3 + c] = acc;
      }
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let i = -radius; i <= radius; i++) acc += weights[i + radius]! * tmp[(clampIdx(y + i, h) * w + x) * 3 + c]!;
        img[(y * w + x) * 3 + c] = acc;
      }
    }
  }
}

/**
 * Augments every image of `batch` with its params into `out` (N x outH x
 * outW x 3 float32, NHWC). `out` must already have the right length.
 */
export function augmentJs(
  batch: RgbBatch,
  params: readonly AugmentImageParams[],
  b: AugmentBatchParams,
  out: Float32Array,
): void {
  const srcSize = batch.height * batch.width * 3;
  const outSize = b.outH * b.outW * 3;
  const mean = b.mean.map(Math.fround);
  const std = b.std.map(Math.fround);
  for (let n = 0; n < batch.n; n++) {
    const p = params[n]!;
    let img = geometry(batch.data.subarray(n * srcSize, (n + 1) * srcSize), batch.width, p, b);
    if (p.elasticAlpha > 0) img = elastic(img, b.outH, b.outW, p);
    if (p.hedEnabled) hedJitter(img, p);
    colour(img, p);
    if (p.blurSigma > 0) blur(img, b.outH, b.outW, p.blurSigma);
    if (p.noiseSigma > 0) {
      for (let i = 0; i < img.length; i++) img[i] = clip01(img[i]! + p.noiseSigma * noiseValue(p.noiseSeed, i));
    }
    const o = n * outSize;
    for (let i = 0; i < img.length; i++) out[o + i] = (img[i]! - mean[i % 3]!) / std[i % 3]!;
  }
}
