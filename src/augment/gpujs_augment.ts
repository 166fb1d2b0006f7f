/**
 * The gpu.js runner of `augment`: native/augment/augment.h's per-output-pixel
 * work as gpu.js kernels (WebGL through headless-gl where a GL context can be
 * made, e.g. under xvfb-run; gpu.js's CPU mode otherwise), matching the
 * TypeScript reference (js_augment.ts) within 1e-3 on every output float.
 *
 * Passes, each one float of the N x outH x outW x 3 output per thread:
 *  1. geometry + HED jitter: D4 on output coordinates, bilinear sampling of
 *     the crop window (the sample rows / columns and weights computed on the
 *     host in double and uploaded, so the integer source indices are exact and
 *     a same-size crop is an exact copy), then Tellez's HED jitter.
 *  1b. elastic deformation (only when an image of the chunk has one; pass 1
 *     then leaves HED jitter to it): each pixel's displacement from its
 *     image's control grid (drawn on the host, elasticControls) and B-spline
 *     axis tables (host, float32), four bilinear taps of pass 1's output with
 *     mirrored edges, then HED jitter.
 *  2. colour: brightness, contrast, saturation, hue, each clipped. The
 *     contrast's per-image mean grey (after pass 1) is a host reduction.
 *  3. blur (only when an image of the chunk has one): two separable passes,
 *     weights computed on the host as in js_augment.ts, edges replicated.
 *  4. noise + clip, then normalize. The normals are js_augment.ts's
 *     noiseValue, computed on the host and uploaded as a Float32Array.
 *
 * fp32 caveats: GLSL division is not correctly rounded, so every integer
 * index is recovered with augDivFloor (corrected after the division), and a
 * chunk holds at most 2²² output pixels and 2²² crop pixels so every index
 * (≤ 3·2²²) is exact in fp32. An image larger than that on its own runs
 * through js_augment.ts instead. Kernels are created per shape and cached.
 */
import { RGB_FROM_HED, stainMatrix } from '../color/deconvolution.js';
import type { RgbBatch } from '../kernels/types.js';
import type { AugmentBatchParams, AugmentImageParams } from './params.js';
import { augmentJs, blurWeights, elasticAxis, elasticControls, elasticGridSize, noiseValue, samplePosition } from './js_augment.js';
import { loadGpu, type GpuConstructor, type GpuInstance, type GpuKernel } from '../kernels/gpujs_loader.js';


export type GpujsAugmentMode = 'headlessgl' | 'cpu' | 'gpu' | 'webgl' | 'webgl2';


// ---- per-image parameters, one row of PARAM_STRIDE floats per image ----------------

const PARAM_STRIDE = 16;
const P_D4 = 0;
const P_HED = 1; // 1 when enabled; alpha at 2..4, beta at 5..7
const P_BRIGHTNESS = 8;
const P_CONTRAST = 9;
const P_SATURATION = 10;
const P_HUE = 11;
const P_MEAN_GRAY = 12;
const P_BLUR_RADIUS = 13;
const P_NOISE_SIGMA = 14;
const P_ELASTIC = 15; // 1 when the image is elastically deformed

// ---- kernels (gpu.js translates these functions to GLSL, or runs them as JS in CPU mode) ----
// Literal offsets into the parameter rows: gpu.js cannot see module constants.

interface KernelThis {
  thread: { x: number };
}

/** floor(a / b) for non-negative integers held in floats, exact despite approximate division. */
function augDivFloor(a: number, b: number): number {
  let q = Math.floor((a + 0.5) / b);
  if (q * b > a) q = q - 1;
  if ((q + 1) * b <= a) q = q + 1;
  return q;
}

function augClip01(v: number): number {
  return Math.min(Math.max(v, 0), 1);
}

/** Bilinear sample of channel c of the crop window at base (rows y0, y1, columns x0, x1), in [0, 1]. */
function augSample(src: number[], base: number, cropW: number, y0: number, y1: number, wy: number, x0: number, x1: number, wx: number, c: number): number {
  const top = src[base + (y0 * cropW + x0) * 3 + c]! * (1 - wx) + src[base + (y0 * cropW + x1) * 3 + c]! * wx;
  const bottom = src[base + (y1 * cropW + x0) * 3 + c]! * (1 - wx) + src[base + (y1 * cropW + x1) * 3 + c]! * wx;
  return (top * (1 - wy) + bottom * wy) / 255;
}

/** OpenCV's BORDER_REFLECT of integer i into [0, n) (js_augment.ts's reflectIndex). */
function augReflect(i: number, n: number): number {
  const period = 2 * n;
  const m = i - period * augDivFloor(i, period);
  let out = m;
  if (m >= n) out = period - 1 - m;
  return out;
}

/** Bilinear blend of channel c of an interleaved outW-wide image at base (rows y0, y1, columns x0, x1). */
function augBlend(v: number[], base: number, outW: number, y0: number, y1: number, wy: number, x0: number, x1: number, wx: number, c: number): number {
  const top = v[base + (y0 * outW + x0) * 3 + c]! * (1 - wx) + v[base + (y0 * outW + x1) * 3 + c]! * wx;
  const bottom = v[base + (y1 * outW + x0) * 3 + c]! * (1 - wx) + v[base + (y1 * outW + x1) * 3 + c]! * wx;
  return top * (1 - wy) + bottom * wy;
}

/** Optical density of one channel: log(max(v, 1e-6)) / log(1e-6). */
function augOd(v: number): number {
  return Math.log(Math.max(v, 0.000001)) / -13.815510557964274;
}

/** Channel c after HED jitter of (r, g, b); hed: HED_FROM_RGB (9) then RGB_FROM_HED (9); prm row at row. */
function augHed(prm: number[], row: number, hed: number[], r: number, g: number, b: number, c: number): number {
  const o0 = augOd(r);
  const o1 = augOd(g);
  const o2 = augOd(b);
  const s0 = Math.max(o0 * hed[0]! + o1 * hed[3]! + o2 * hed[6]!, 0) * prm[row + 2]! + prm[row + 5]!;
  const s1 = Math.max(o0 * hed[1]! + o1 * hed[4]! + o2 * hed[7]!, 0) * prm[row + 3]! + prm[row + 6]!;
  const s2 = Math.max(o0 * hed[2]! + o1 * hed[5]! + o2 * hed[8]!, 0) * prm[row + 4]! + prm[row + 7]!;
  return augClip01(Math.exp(-13.815510557964274 * (s0 * hed[9 + c]! + s1 * hed[12 + c]! + s2 * hed[15 + c]!)));
}

/** Channel c of (r, g, b) with its HSV hue rotated by `turns` (js_augment.ts's rotateHue), unclipped. */
function augHue(r: number, g: number, b: number, turns: number, c: number): number {
  const mx = Math.max(Math.max(r, g), b);
  const mn = Math.min(Math.min(r, g), b);
  const delta = mx - mn;
  let self = b;
  if (c === 0) self = r;
  if (c === 1) self = g;
  if (delta === 0) return self;
  let h = 0;
  if (mx === r) {
    h = (g - b) / delta / 6;
  } else if (mx === g) {
    h = ((b - r) / delta + 2) / 6;
  } else {
    h = ((r - g) / delta + 4) / 6;
  }
  h = h + turns;
  h = h - Math.floor(h);
  const s = delta / mx;
  const v = mx;
  const h6 = h * 6;
  const sector = Math.min(Math.floor(h6), 5);
  const f = h6 - sector;
  const pp = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  // Rows [v,t,p], [q,v,p], [p,v,t], [p,q,v], [t,p,v], [v,p,q] for sectors 0..5.
  let out = v;
  if (c === 0) {
    if (sector === 1) out = q;
    if (sector === 2 || sector === 3) out = pp;
    if (sector === 4) out = t;
  } else if (c === 1) {
    out = pp;
    if (sector === 0) out = t;
    if (sector === 1 || sector === 2) out = v;
    if (sector === 3) out = q;
  } else {
    out = v;
    if (sector === 0 || sector === 1) out = pp;
    if (sector === 2) out = t;
    if (sector === 5) out = q;
  }
  return out;
}

/**
 * Pass 1. src: the chunk's crop windows (cropH x cropW x 3 uint8 each); tabs:
 * the host's sample tables (i0, i1, w per position: rows for a grid of outH,
 * rows for outW, columns for outW, columns for outH); k: outH, outW, cropH,
 * cropW, outH·outW, cropH·cropW·3.
 */
function geometryHedKernel(this: KernelThis, src: number[], tabs: number[], prm: number[], hed: number[], k: number[]): number {
  const outH = k[0]!;
  const outW = k[1]!;
  const x = this.thread.x;
  const p = augDivFloor(x, 3);
  const c = x - 3 * p;
  const img = augDivFloor(p, k[4]!);
  const q = p - img * k[4]!;
  const y = augDivFloor(q, outW);
  const xo = q - y * outW;
  const row = img * 16;
  let d4 = prm[row]!;
  let yy = y;
  let xx = xo;
  if (d4 >= 4) {
    xx = outW - 1 - xo;
    d4 = d4 - 4;
  }
  let ny = yy;
  let nx = xx;
  if (d4 === 1) {
    ny = xx;
    nx = outH - 1 - yy;
  } else if (d4 === 2) {
    ny = outH - 1 - yy;
    nx = outW - 1 - xx;
  } else if (d4 === 3) {
    ny = outW - 1 - xx;
    nx = yy;
  }
  let rowBase = 0;
  let colBase = 3 * (outH + outW);
  if (d4 === 1 || d4 === 3) {
    rowBase = 3 * outH;
    colBase = 3 * (outH + 2 * outW);
  }
  const y0 = tabs[rowBase + 3 * ny]!;
  const y1 = tabs[rowBase + 3 * ny + 1]!;
  const wy = tabs[rowBase + 3 * ny + 2]!;
  const x0 = tabs[colBase + 3 * nx]!;
  const x1 = tabs[colBase + 3 * nx + 1]!;
  const wx = tabs[colBase + 3 * nx + 2]!;
  const base = img * k[5]!;
  const cropW = k[3]!;
  if (prm[row + 1]! > 0.5 && k[6]! < 0.5) {
    const r = augSample(src, base, cropW, y0, y1, wy, x0, x1, wx, 0);
    const g = augSample(src, base, cropW, y0, y1, wy, x0, x1, wx, 1);
    const b = augSample(src, base, cropW, y0, y1, wy, x0, x1, wx, 2);
    return augHed(prm, row, hed, r, g, b, c);
  }
  return augSample(src, base, cropW, y0, y1, wy, x0, x1, wx, c);
}

/**
 * Pass 1b: elastic warp of pass 1's output, then HED jitter. ax: per image
 * (stride k[2]) gh, gw, then (j, w0..w3) for each row, then for each column;
 * ctl: per image (stride k[3]) the cy grid then the cx grid (gh x gw each).
 * k: outH, outW, ax stride, ctl stride, outH·outW.
 */
function elasticHedKernel(this: KernelThis, v: number[], ax: number[], ctl: number[], prm: number[], hed: number[], k: number[]): number {
  const outH = k[0]!;
  const outW = k[1]!;
  const x = this.thread.x;
  const p = augDivFloor(x, 3);
  const c = x - 3 * p;
  const img = augDivFloor(p, k[4]!);
  const q = p - img * k[4]!;
  const y = augDivFloor(q, outW);
  const xo = q - y * outW;
  const row = img * 16;
  let r = v[3 * p]!;
  let g = v[3 * p + 1]!;
  let b = v[3 * p + 2]!;
  if (prm[row + 15]! > 0.5) {
    const a = img * k[2]!;
    const gh = ax[a]!;
    const gw = ax[a + 1]!;
    const ty = a + 2 + 5 * y;
    const tx = a + 2 + 5 * outH + 5 * xo;
    const jy = ax[ty]!;
    const jx = ax[tx]!;
    const cb = img * k[3]!;
    let dy = 0;
    let dx = 0;
    for (let j = 0; j < 4; j++) {
      let ry = 0;
      let rx = 0;
      for (let i = 0; i < 4; i++) {
        const kk = cb + (jy + i) * gw + jx + j;
        ry += ax[ty + 1 + i]! * ctl[kk]!;
        rx += ax[ty + 1 + i]! * ctl[kk + gh * gw]!;
      }
      dy += ax[tx + 1 + j]! * ry;
      dx += ax[tx + 1 + j]! * rx;
    }
    const fy = Math.floor(dy);
    const fx = Math.floor(dx);
    const wy = dy - fy;
    const wx = dx - fx;
    const y0 = augReflect(y + fy, outH);
    const y1 = augReflect(y + fy + 1, outH);
    const x0 = augReflect(xo + fx, outW);
    const x1 = augReflect(xo + fx + 1, outW);
    const base = 3 * img * k[4]!;
    r = augBlend(v, base, outW, y0, y1, wy, x0, x1, wx, 0);
    g = augBlend(v, base, outW, y0, y1, wy, x0, x1, wx, 1);
    b = augBlend(v, base, outW, y0, y1, wy, x0, x1, wx, 2);
  }
  if (prm[row + 1]! > 0.5) return augHed(prm, row, hed, r, g, b, c);
  let out = b;
  if (c === 0) out = r;
  if (c === 1) out = g;
  return out;
}

/** Pass 2: brightness, contrast (about prm's mean grey), saturation, hue; each clipped, identities skipped. k[4]: outH·outW. */
function colourKernel(this: KernelThis, v: number[], prm: number[], k: number[]): number {
  const x = this.thread.x;
  const p = augDivFloor(x, 3);
  const c = x - 3 * p;
  const row = augDivFloor(p, k[4]!) * 16;
  let r = v[3 * p]!;
  let g = v[3 * p + 1]!;
  let b = v[3 * p + 2]!;
  const brightness = prm[row + 8]!;
  const contrast = prm[row + 9]!;
  const saturation = prm[row + 10]!;
  const hue = prm[row + 11]!;
  if (brightness !== 1) {
    r = augClip01(r * brightness);
    g = augClip01(g * brightness);
    b = augClip01(b * brightness);
  }
  if (contrast !== 1) {
    const m = prm[row + 12]!;
    r = augClip01((r - m) * contrast + m);
    g = augClip01((g - m) * contrast + m);
    b = augClip01((b - m) * contrast + m);
  }
  if (saturation !== 1) {
    const gray = 0.299 * r + 0.587 * g + 0.114 * b;
    r = augClip01(gray + (r - gray) * saturation);
    g = augClip01(gray + (g - gray) * saturation);
    b = augClip01(gray + (b - gray) * saturation);
  }
  let out = b;
  if (c === 0) out = r;
  if (c === 1) out = g;
  if (hue !== 0) out = augClip01(augHue(r, g, b, hue, c));
  return out;
}

/** Pass 3a: horizontal blur. weights: k[5] per image, centred; radius in prm. k: outH, outW, -, -, outH·outW, stride. */
function blurRowsKernel(this: KernelThis, v: number[], prm: number[], weights: number[], k: number[]): number {
  const outW = k[1]!;
  const x = this.thread.x;
  const p = augDivFloor(x, 3);
  const c = x - 3 * p;
  const img = augDivFloor(p, k[4]!);
  const q = p - img * k[4]!;
  const y = augDivFloor(q, outW);
  const xo = q - y * outW;
  const radius = prm[img * 16 + 13]!;
  if (radius < 0.5) return v[x]!;
  const wBase = img * k[5]!;
  const rowBase = 3 * (img * k[4]! + y * outW) + c;
  let acc = 0;
  for (let i = 0; i < 2 * radius + 1; i++) {
    const xs = Math.min(Math.max(xo + i - radius, 0), outW - 1);
    acc += weights[wBase + i]! * v[rowBase + 3 * xs]!;
  }
  return acc;
}

/** Pass 3b: vertical blur, as blurRowsKernel. */
function blurColumnsKernel(this: KernelThis, v: number[], prm: number[], weights: number[], k: number[]): number {
  const outH = k[0]!;
  const outW = k[1]!;
  const x = this.thread.x;
  const p = augDivFloor(x, 3);
  const c = x - 3 * p;
  const img = augDivFloor(p, k[4]!);
  const q = p - img * k[4]!;
  const y = augDivFloor(q, outW);
  const xo = q - y * outW;
  const radius = prm[img * 16 + 13]!;
  if (radius < 0.5) return v[x]!;
  const wBase = img * k[5]!;
  const colBase = 3 * (img * k[4]! + xo) + c;
  let acc = 0;
  for (let i = 0; i < 2 * radius + 1; i++) {
    const ys = Math.min(Math.max(y + i - radius, 0), outH - 1);
    acc += weights[wBase + i]! * v[colBase + 3 * outW * ys]!;
  }
  return acc;
}

/** Pass 4: noise (the host's normals) and clip, then (v − mean[c]) / std[c]. norm: mean (3), std (3); k[4]: outH·outW. */
function finishKernel(this: KernelThis, v: number[], noise: number[], prm: number[], norm: number[], k: number[]): number {
  const x = this.thread.x;
  const p = augDivFloor(x, 3);
  const c = x - 3 * p;
  const sigma = prm[augDivFloor(p, k[4]!) * 16 + 14]!;
  let value = v[x]!;
  if (sigma > 0) value = augClip01(value + sigma * noise[x]!);
  return (value - norm[c]!) / norm[3 + c]!;
}

const helpers = [augDivFloor, augClip01, augSample, augReflect, augBlend, augOd, augHed, augHue];

// ---- the host side ---------------------------------------------------------------

/** HED_FROM_RGB then RGB_FROM_HED, row-major (the inverse of color/deconvolution.ts, as js_augment.ts uses). */
const HED_MATRICES = (() => {
  const m = stainMatrix(RGB_FROM_HED);
  return Float32Array.from([...m.stainFromRgb, ...m.rgbFromStain]);
})();

/** Chunks hold at most this many output pixels and crop pixels, so every index (≤ 3·2²²) is exact in fp32. */
const MAX_PIXELS_PER_RUN = 1 << 22;

/** js_augment.ts's samplePosition for every output position o of a grid of `out` over `crop`: (i0, i1, w) each. */
function sampleTable(crop: number, out: number): number[] {
  const t: number[] = [];
  for (let o = 0; o < out; o++) t.push(...samplePosition(o, crop, out));
  return t;
}

/** The smallest power of two ≥ v (1 for v ≤ 1): few distinct kernel argument sizes. */
function ceilPow2(v: number): number {
  let p = 1;
  while (p < v) p *= 2;
  return p;
}

/** Per-chunk strides of the elastic pass's arrays (0 when no image has elastic deformation). */
function elasticStrides(params: readonly AugmentImageParams[], b: AugmentBatchParams): { ax: number; ctl: number } {
  let controls = 0;
  for (const p of params) {
    if (p.elasticAlpha > 0) controls = Math.max(controls, 2 * elasticGridSize(b.outH, p.elasticSigma) * elasticGridSize(b.outW, p.elasticSigma));
  }
  return controls === 0 ? { ax: 0, ctl: 0 } : { ax: 2 + 5 * (b.outH + b.outW), ctl: ceilPow2(controls) };
}

export interface GpujsAugmentRunner {
  /** The gpu.js mode that runs: 'headlessgl' (WebGL) or 'cpu'. */
  mode: string;
  run(batch: RgbBatch, params: readonly AugmentImageParams[], b: AugmentBatchParams, out: Float32Array): Promise<void>;
}

class Runner implements GpujsAugmentRunner {
  private readonly kernels = new Map<string, GpuKernel>();

  constructor(
    private readonly gpu: GpuInstance,
    readonly mode: string,
    private readonly maxPixelsPerRun: number,
  ) {}

  /** One kernel per (function, output length, argument lengths), created on first use. */
  private kernel(fn: (...args: never[]) => number, length: number, args: ArrayLike<number>[]): Float32Array {
    const key = `${fn.name}:${length}:${args.map((a) => a.length).join(',')}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu
        .createKernel(fn, { precision: 'single', tactic: 'precision', loopMaxIterations: 4096 })
        .setOutput([length])
        .setPipeline(false);
      this.kernels.set(key, kernel);
    }
    return kernel(...args);
  }

  async run(batch: RgbBatch, params: readonly AugmentImageParams[], b: AugmentBatchParams, out: Float32Array): Promise<void> {
    const ppo = b.outH * b.outW;
    const cropPixels = b.cropH * b.cropW;
    // The elastic arrays' per-image strides count too (a third of them, as
    // pixels count three floats): every index stays below 3·2²², fp32-exact.
    const strides = elasticStrides(params, b);
    const perChunk = Math.floor(this.maxPixelsPerRun / Math.max(ppo, cropPixels, Math.ceil(strides.ax / 3), Math.ceil(strides.ctl / 3), 1));
    if (perChunk < 1) {
      // One image alone is past fp32's exact indices: js_augment.ts runs it.
      augmentJs(batch, params, b, out);
      return;
    }
    const tabs = Float32Array.from([
      ...sampleTable(b.cropH, b.outH),
      ...sampleTable(b.cropH, b.outW),
      ...sampleTable(b.cropW, b.outW),
      ...sampleTable(b.cropW, b.outH),
    ]);
    const norm = Float32Array.from([...b.mean, ...b.std]);
    for (let first = 0; first < batch.n; first += perChunk) {
      const count = Math.min(perChunk, batch.n - first);
      const o = out.subarray(first * ppo * 3, (first + count) * ppo * 3);
      this.chunk(batch, params, b, first, count, tabs, norm, strides, o);
    }
  }

  private chunk(
    batch: RgbBatch,
    params: readonly AugmentImageParams[],
    b: AugmentBatchParams,
    first: number,
    count: number,
    tabs: Float32Array,
    norm: Float32Array,
    strides: { ax: number; ctl: number },
    out: Float32Array,
  ): void {
    const ppo = b.outH * b.outW;
    const cropSize = b.cropH * b.cropW * 3;
    const length = count * ppo * 3;
    // The crop windows, packed.
    const src = new Uint8Array(count * cropSize);
    const srcSize = batch.height * batch.width * 3;
    const rowBytes = b.cropW * 3;
    for (let i = 0; i < count; i++) {
      const p = params[first + i]!;
      const image = (first + i) * srcSize;
      for (let y = 0; y < b.cropH; y++) {
        const from = image + ((p.cropY + y) * batch.width + p.cropX) * 3;
        src.set(batch.data.subarray(from, from + rowBytes), i * cropSize + y * rowBytes);
      }
    }
    const prm = new Float32Array(count * PARAM_STRIDE);
    let maxRadius = 0;
    let anyContrast = false;
    let anyNoise = false;
    let anyElastic = false;
    for (let i = 0; i < count; i++) {
      const p = params[first + i]!;
      const r = i * PARAM_STRIDE;
      prm[r + P_D4] = p.d4;
      prm[r + P_HED] = p.hedEnabled ? 1 : 0;
      prm.set(p.hedAlpha, r + P_HED + 1);
      prm.set(p.hedBeta, r + P_HED + 4);
      prm[r + P_BRIGHTNESS] = p.brightness;
      prm[r + P_CONTRAST] = p.contrast;
      prm[r + P_SATURATION] = p.saturation;
      prm[r + P_HUE] = p.hue;
      prm[r + P_BLUR_RADIUS] = p.blurSigma > 0 ? Math.ceil(3 * p.blurSigma) : 0;
      prm[r + P_NOISE_SIGMA] = p.noiseSigma;
      prm[r + P_ELASTIC] = p.elasticAlpha > 0 ? 1 : 0;
      if (p.elasticAlpha > 0) anyElastic = true;
      if (p.blurSigma > 0) maxRadius = Math.max(maxRadius, Math.ceil(3 * p.blurSigma));
      if (p.contrast !== 1) anyContrast = true;
      if (p.noiseSigma > 0) anyNoise = true;
    }
    // With an elastic image in the chunk, pass 1 leaves HED jitter to pass 1b.
    const k = Float32Array.from([b.outH, b.outW, b.cropH, b.cropW, ppo, cropSize, anyElastic ? 1 : 0]);
    let v = this.kernel(geometryHedKernel, length, [src, tabs, prm, HED_MATRICES, k]);
    if (anyElastic) {
      const ax = new Float32Array(count * strides.ax);
      const ctl = new Float32Array(count * strides.ctl);
      for (let i = 0; i < count; i++) {
        const p = params[first + i]!;
        if (!(p.elasticAlpha > 0)) continue;
        const a = i * strides.ax;
        ax[a] = elasticGridSize(b.outH, p.elasticSigma);
        ax[a + 1] = elasticGridSize(b.outW, p.elasticSigma);
        for (let t = 0; t < b.outH + b.outW; t++) {
          const [j, w] = elasticAxis(t < b.outH ? t : t - b.outH, p.elasticSigma);
          ax[a + 2 + 5 * t] = j;
          ax.set(w, a + 3 + 5 * t);
        }
        ctl.set(elasticControls(p, b.outH, b.outW), i * strides.ctl);
      }
      const ke = Float32Array.from([b.outH, b.outW, strides.ax, strides.ctl, ppo]);
      v = this.kernel(elasticHedKernel, length, [v, ax, ctl, prm, HED_MATRICES, ke]);
    }
    if (anyContrast) {
      // The per-image mean grey after steps 1–2: a host reduction.
      for (let i = 0; i < count; i++) {
        const p = params[first + i]!;
        if (p.contrast === 1) continue;
        let sum = 0;
        const end = (i + 1) * ppo * 3;
        for (let j = i * ppo * 3; j < end; j += 3) sum += 0.299 * v[j]! + 0.587 * v[j + 1]! + 0.114 * v[j + 2]!;
        prm[i * PARAM_STRIDE + P_MEAN_GRAY] = sum / ppo;
      }
    }
    v = this.kernel(colourKernel, length, [v, prm, k]);
    if (maxRadius > 0) {
      const stride = 2 * maxRadius + 1;
      const weights = new Float32Array(count * stride);
      for (let i = 0; i < count; i++) {
        const p = params[first + i]!;
        if (p.blurSigma > 0) weights.set(blurWeights(p.blurSigma), i * stride);
      }
      const kb = Float32Array.from([b.outH, b.outW, b.cropH, b.cropW, ppo, stride]);
      v = this.kernel(blurRowsKernel, length, [v, prm, weights, kb]);
      v = this.kernel(blurColumnsKernel, length, [v, prm, weights, kb]);
    }
    const noise = new Float32Array(anyNoise ? length : 1);
    if (anyNoise) {
      for (let i = 0; i < count; i++) {
        const p = params[first + i]!;
        if (!(p.noiseSigma > 0)) continue;
        const at = i * ppo * 3;
        for (let j = 0; j < ppo * 3; j++) noise[at + j] = noiseValue(p.noiseSeed, j);
      }
    }
    out.set(this.kernel(finishKernel, length, [v, noise, prm, norm, k]));
  }
}

function newGpu(GPU: GpuConstructor, mode: string): GpuInstance {
  const gpu = new GPU({ mode });
  for (const fn of helpers) gpu.addFunction(fn);
  return gpu;
}

/** A tiny augment through every pass against js_augment.ts: throws when the mode cannot compile or run. */
async function probe(runner: Runner): Promise<void> {
  const batch: RgbBatch = { data: Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => (i * 37) % 256), n: 1, height: 2, width: 3 };
  const params: AugmentImageParams[] = [
    {
      d4: 5,
      cropY: 0,
      cropX: 1,
      hedEnabled: true,
      hedAlpha: [1.1, 0.9, 1],
      hedBeta: [0.01, -0.02, 0],
      brightness: 1.1,
      contrast: 0.9,
      saturation: 1.2,
      hue: 0.1,
      blurSigma: 0.5,
      noiseSigma: 0.05,
      noiseSeed: 7,
      elasticAlpha: 1.5,
      elasticSigma: 1.25,
      elasticSeed: 3,
    },
  ];
  const b: AugmentBatchParams = { cropH: 2, cropW: 2, outH: 3, outW: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const got = new Float32Array(27);
  const want = new Float32Array(27);
  await runner.run(batch, params, b, got);
  augmentJs(batch, params, b, want);
  for (let i = 0; i < 27; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= 1e-3)) throw new Error(`gpu.js ${runner.mode} mode computed wrong values`);
  }
}

async function create(GPU: GpuConstructor, mode: string, maxPixelsPerRun: number): Promise<Runner> {
  const gpu = newGpu(GPU, mode);
  try {
    const runner = new Runner(gpu, mode, maxPixelsPerRun);
    await probe(runner);
    return runner;
  } catch (e) {
    gpu.destroy();
    throw e;
  }
}

export interface GpujsAugmentOptions {
  /** gpu.js mode; default headless-gl when a GL context works, else 'cpu'. */
  mode?: GpujsAugmentMode;
  /** Output (and crop) pixels per kernel run, at most and by default 2²² (fp32-exact indices); smaller values are for tests. */
  maxPixelsPerRun?: number;
}

/**
 * The gpu.js augment runner. Without `mode`, headless-gl when a GL context
 * works, else gpu.js's CPU mode; `mode` says which.
 */
export async function createGpujsAugment(options: GpujsAugmentOptions = {}): Promise<GpujsAugmentRunner> {
  const limit = options.maxPixelsPerRun ?? MAX_PIXELS_PER_RUN;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PIXELS_PER_RUN) {
    throw new RangeError(`Expected an integer in [1, ${MAX_PIXELS_PER_RUN}] for maxPixelsPerRun, got ${String(limit)}`);
  }
  const GPU = await loadGpu();
  if (options.mode) {
    try {
      return await create(GPU, options.mode, limit);
    } catch (e) {
      throw new Error(`gpu.js cannot run in ${options.mode} mode here: ${(e as Error).message} (WebGL needs a display, e.g. xvfb-run)`);
    }
  }
  if (GPU.isHeadlessGLSupported) {
    try {
      return await create(GPU, 'headlessgl', limit);
    } catch {
      // No GL context (no display): CPU mode below.
    }
  }
  return create(GPU, 'cpu', limit);
}
