/**
 * The gpu.js backend ('gpujs'): the per-pixel maps of js_pixel_maps.ts as gpu.js
 * kernels — WebGL through headless-gl where a GL context can be made (a
 * display, e.g. xvfb-run), gpu.js's CPU mode otherwise — and the same host
 * reductions (covariance, percentiles, eigen, Vahadane's solves), shared with
 * the js backend through `pixelMapBackend`.
 *
 * GPU arithmetic is fp32 and GLSL division is not correctly rounded, so
 * kernels return floats and every integer output (grey levels, masks) is
 * quantized on the host; integer index arithmetic is corrected after each
 * division (`hfDivFloor`). Runs stay under 2²² pixels so every index is exact
 * in fp32.
 */
import { LAB8_CBRT, LAB8_GAMMA, linearToSrgb8 } from '../color/lab_opencv8.js';
import { rint } from '../stain/math.js';
import { pixelMapBackend } from './pixel_map_backend.js';
import type { PixelMaps, PixelRun } from './pixel_maps.js';
import type { KernelBackend, OdParams } from './types.js';
import { loadGpu, type GpuConstructor, type GpuInstance, type GpuKernel } from './gpujs_loader.js';


export type GpujsMode = 'gpu' | 'headlessgl' | 'cpu' | 'webgl' | 'webgl2';



// ---- kernels (gpu.js translates these functions to GLSL, or runs them as JS in CPU mode) ----

/** What gpu.js binds to `this` inside a kernel. */
interface KernelThis {
  thread: { x: number };
}

/** floor(a / b) for non-negative integers held in floats, exact despite approximate division. */
function hfDivFloor(a: number, b: number): number {
  let q = Math.floor((a + 0.5) / b);
  if (q * b > a) q = q - 1;
  if ((q + 1) * b <= a) q = q + 1;
  return q;
}

/** OpenCV's descale(v, n) = (v + 2ⁿ⁻¹) >> n; v an integer in fp32 range, the scale an exact power of two. */
function hfDescale(v: number, half: number, scale: number): number {
  return Math.floor((v + half) * scale);
}

/** The cube-root table entry at descale(sum, 12), index clamped to the table (3072 entries). */
function hfCbrtAt(cbrt: number[], sum: number): number {
  const i = Math.min(Math.max(hfDescale(sum, 2048, 0.000244140625), 0), 3071);
  return cbrt[i]!;
}

/**
 * OpenCV's fixed-point 8-bit LAB channel `c` (0 L, 1 a, 2 b) of an sRGB pixel
 * (src/color/lab_opencv8.ts). Integer arithmetic in floats: every
 * intermediate is an integer below 2²⁴, or an even one below 2²⁵, so exact in fp32.
 */
function hfLab8(gamma: number[], cbrt: number[], r: number, g: number, b: number, c: number): number {
  const R = gamma[r]!;
  const G = gamma[g]!;
  const B = gamma[b]!;
  const fy = hfCbrtAt(cbrt, 871 * R + 2929 * G + 296 * B);
  let v = 0;
  if (c === 0) {
    v = hfDescale(296 * fy - 1336934, 16384, 0.000030517578125);
  } else if (c === 1) {
    const fx = hfCbrtAt(cbrt, 1777 * R + 1541 * G + 778 * B);
    v = hfDescale(500 * (fx - fy) + 4194304, 16384, 0.000030517578125);
  } else {
    const fz = hfCbrtAt(cbrt, 73 * R + 448 * G + 3575 * B);
    v = hfDescale(200 * (fy - fz) + 4194304, 16384, 0.000030517578125);
  }
  return Math.min(Math.max(v, 0), 255);
}

function hfLabFInverse(f: number): number {
  if (f <= 0.20689303442) return (f - 16 / 116) / 7.787;
  return f * f * f;
}

/** Linear sRGB channel `c` of an 8-bit LAB pixel (OpenCV's float formula, unclamped); the host maps it to a level. */
function hfLab8ToLinear(l8: number, a8: number, b8: number, c: number): number {
  const L = l8 * 0.39215686274509803;
  let y = 0;
  let fy = 0;
  if (L <= 0.008856 * 903.3) {
    y = L / 903.3;
    fy = 7.787 * y + 16 / 116;
  } else {
    fy = (L + 16) / 116;
    y = fy * fy * fy;
  }
  const x = hfLabFInverse((a8 - 128) / 500 + fy) * 0.950456;
  const z = hfLabFInverse(fy - (b8 - 128) / 200) * 1.088754;
  let lin = 0;
  if (c === 0) lin = 3.240479 * x - 1.53715 * y - 0.498535 * z;
  else if (c === 1) lin = -0.969256 * x + 1.875991 * y + 0.041556 * z;
  else lin = 0.055648 * x - 0.204043 * y + 1.057311 * z;
  return lin;
}

const helpers = [hfDivFloor, hfDescale, hfCbrtAt, hfLab8, hfLabFInverse, hfLab8ToLinear];

function lookupKernel(this: KernelThis, rgb: number[], table: number[]): number {
  return table[rgb[this.thread.x]!]!;
}

function odToRgbKernel(this: KernelThis, od: number[], io: number, offset: number): number {
  return io * Math.exp(-od[this.thread.x]!) - offset;
}

function deconvolveKernel(this: KernelThis, rgb: number[], logTable: number[], m: number[]): number {
  const x = this.thread.x;
  const p = hfDivFloor(x, 3);
  const k = x - 3 * p;
  const v =
    logTable[rgb[3 * p]!]! * m[k]! + logTable[rgb[3 * p + 1]!]! * m[3 + k]! + logTable[rgb[3 * p + 2]!]! * m[6 + k]!;
  return Math.max(v, 0);
}

/** Returns clip(exp(·), 0, 1)·255; the host rounds. */
function reconvolveKernel(this: KernelThis, stains: number[], m: number[]): number {
  const x = this.thread.x;
  const p = hfDivFloor(x, 3);
  const k = x - 3 * p;
  const s = stains[3 * p]! * m[k]! + stains[3 * p + 1]! * m[3 + k]! + stains[3 * p + 2]! * m[6 + k]!;
  return Math.min(Math.max(Math.exp(-13.815510557964274 * s), 0), 1) * 255;
}

/** gamma: LAB8_GAMMA (256), cbrt: LAB8_CBRT (3072), both as exact float integers. */
function lab8Kernel(this: KernelThis, rgb: number[], gamma: number[], cbrt: number[]): number {
  const x = this.thread.x;
  const p = hfDivFloor(x, 3);
  return hfLab8(gamma, cbrt, rgb[3 * p]!, rgb[3 * p + 1]!, rgb[3 * p + 2]!, x - 3 * p);
}

/** lab8: exact 8-bit LAB levels; tables: per image 3·256 transferred levels. Returns linear sRGB; the host maps it to levels. */
function reinhardKernel(this: KernelThis, lab8: number[], ppi: number, tables: number[]): number {
  const x = this.thread.x;
  const p = hfDivFloor(x, 3);
  const t = 768 * hfDivFloor(p, ppi);
  return hfLab8ToLinear(tables[t + lab8[3 * p]!]!, tables[t + 256 + lab8[3 * p + 1]!]!, tables[t + 512 + lab8[3 * p + 2]!]!, x - 3 * p);
}

/** scores: per image 3·256; below: per image. The same float sums as the cpu backend. */
function tissueKernel(this: KernelThis, rgb: number[], ppi: number, scores: number[], below: number[]): number {
  const p = this.thread.x;
  const img = hfDivFloor(p, ppi);
  const t = 768 * img;
  const sum = scores[t + rgb[3 * p]!]! + scores[t + 256 + rgb[3 * p + 1]!]! + scores[t + 512 + rgb[3 * p + 2]!]!;
  if (sum < below[img]!) return 1;
  return 0;
}

/** perImage: x[3], y[3]. */
function anglesKernel(this: KernelThis, rgb: number[], ppi: number, odTable: number[], perImage: number[]): number {
  const p = this.thread.x;
  const b = 6 * hfDivFloor(p, ppi);
  const r = odTable[rgb[3 * p]!]!;
  const g = odTable[rgb[3 * p + 1]!]!;
  const bl = odTable[rgb[3 * p + 2]!]!;
  const p0 = r * perImage[b]! + g * perImage[b + 1]! + bl * perImage[b + 2]!;
  const p1 = r * perImage[b + 3]! + g * perImage[b + 4]! + bl * perImage[b + 5]!;
  // pseudoAngle of src/stain/math.ts; −0 counts as positive here, a measure-zero difference.
  const s = Math.max(Math.abs(p0) + Math.abs(p1), 1e-30);
  const v = 1 - p0 / s;
  if (p1 < 0) return -v;
  return v;
}

/** perImage: P[6]; output (c0, c1) per pixel. */
function concentrationsKernel(this: KernelThis, rgb: number[], ppi: number, odTable: number[], perImage: number[]): number {
  const x = this.thread.x;
  const p = hfDivFloor(x, 2);
  const s = x - 2 * p;
  const b = 6 * hfDivFloor(p, ppi) + 3 * s;
  return (
    perImage[b]! * odTable[rgb[3 * p]!]! + perImage[b + 1]! * odTable[rgb[3 * p + 1]!]! + perImage[b + 2]! * odTable[rgb[3 * p + 2]!]!
  );
}

/** perImage: M[9]. Returns io·exp(−M·od); the host quantizes. */
function renderKernel(this: KernelThis, rgb: number[], ppi: number, odTable: number[], perImage: number[], io: number): number {
  const x = this.thread.x;
  const p = hfDivFloor(x, 3);
  const m = 9 * hfDivFloor(p, ppi) + 3 * (x - 3 * p);
  const od = perImage[m]! * odTable[rgb[3 * p]!]! + perImage[m + 1]! * odTable[rgb[3 * p + 1]!]! + perImage[m + 2]! * odTable[rgb[3 * p + 2]!]!;
  return io * Math.exp(-od);
}

// ---- the backend ---------------------------------------------------------------

/** OpenCV's fixed-point LAB tables as kernel inputs (integers below 2²⁴: exact in fp32 textures). */
const GAMMA_TABLE = Float32Array.from(LAB8_GAMMA);
const CBRT_TABLE = Float32Array.from(LAB8_CBRT);

/** Runs of at most 2²² pixels keep every index (≤ 3·2²²) exact in fp32. */
const MAX_PIXELS_PER_RUN = 1 << 22;

class GpujsMaps implements PixelMaps {
  readonly maxPixelsPerRun = MAX_PIXELS_PER_RUN;
  private readonly kernels = new Map<string, GpuKernel>();

  constructor(private readonly gpu: GpuInstance) {}

  /** One kernel per (function, output length, argument lengths), created on first use. */
  private run(fn: (...args: never[]) => number, length: number, args: unknown[]): Float32Array {
    if (length === 0) return new Float32Array(0);
    const shape = args.map((a) => (typeof a === 'number' ? 's' : (a as ArrayLike<number>).length)).join(',');
    const key = `${fn.name}:${length}:${shape}`;
    let kernel = this.kernels.get(key);
    if (!kernel) {
      kernel = this.gpu
        .createKernel(fn, { precision: 'single', tactic: 'precision' })
        .setOutput([length])
        .setPipeline(false);
      this.kernels.set(key, kernel);
    }
    return kernel(...args);
  }

  /** A single image larger than a run is cut into sub-runs; its per-image parameters stay at index 0. */
  private *pieces(run: PixelRun): Generator<{ rgb: Uint8Array; start: number; pixels: number; ppi: number }> {
    if (run.pixels <= MAX_PIXELS_PER_RUN) {
      yield { rgb: run.rgb, start: 0, pixels: run.pixels, ppi: run.pixelsPerImage };
      return;
    }
    for (let start = 0; start < run.pixels; start += MAX_PIXELS_PER_RUN) {
      const pixels = Math.min(MAX_PIXELS_PER_RUN, run.pixels - start);
      yield { rgb: run.rgb.subarray(start * 3, (start + pixels) * 3), start, pixels, ppi: MAX_PIXELS_PER_RUN + 1 };
    }
  }

  async lookup(rgb: Uint8Array, table: Float32Array, out: Float32Array): Promise<void> {
    out.set(this.run(lookupKernel, rgb.length, [rgb, table]));
  }

  async odToRgb(od: Float32Array, p: OdParams, out: Uint8Array): Promise<void> {
    const v = this.run(odToRgbKernel, od.length, [od, p.io, p.offset]);
    for (let i = 0; i < v.length; i++) {
      const r = rint(v[i]!);
      out[i] = r < 0 ? 0 : r > 255 ? 255 : r;
    }
  }

  async deconvolve(rgb: Uint8Array, logTable: Float32Array, m: Float32Array, out: Float32Array): Promise<void> {
    out.set(this.run(deconvolveKernel, rgb.length, [rgb, logTable, m]));
  }

  async reconvolve(stains: Float32Array, m: Float32Array, out: Uint8Array): Promise<void> {
    const v = this.run(reconvolveKernel, stains.length, [stains, m]);
    for (let i = 0; i < v.length; i++) out[i] = rint(v[i]!);
  }

  /** OpenCV's fixed-point 8-bit LAB: integer arithmetic, exact in fp32, so the levels equal the cpu backend's. */
  async lab8(rgb: Uint8Array, out: Uint8Array): Promise<void> {
    // In runs of at most MAX_PIXELS_PER_RUN pixels, so every index stays exact (a single image may be larger).
    const step = MAX_PIXELS_PER_RUN * 3;
    for (let at = 0; at < rgb.length; at += step) {
      const end = Math.min(at + step, rgb.length);
      out.set(this.run(lab8Kernel, end - at, [rgb.subarray(at, end), GAMMA_TABLE, CBRT_TABLE]), at);
    }
  }

  /** The kernel's linear values through the cpu backend's level table (native/color/lab8_to_srgb.h's Srgb8Levels). */
  async reinhard(run: PixelRun, tables: Uint8Array, out: Uint8Array): Promise<void> {
    const lab = new Uint8Array(run.rgb.length);
    await this.lab8(run.rgb, lab);
    for (const piece of this.pieces(run)) {
      const levels = lab.subarray(piece.start * 3, (piece.start + piece.pixels) * 3);
      const v = this.run(reinhardKernel, piece.pixels * 3, [levels, piece.ppi, tables]);
      for (let i = 0; i < v.length; i++) out[piece.start * 3 + i] = linearToSrgb8(v[i]!);
    }
  }

  async tissueMask(run: PixelRun, scores: Float32Array, below: Float32Array, out: Uint8Array): Promise<void> {
    for (const piece of this.pieces(run)) {
      out.set(this.run(tissueKernel, piece.pixels, [piece.rgb, piece.ppi, scores, below]), piece.start);
    }
  }

  async angles(run: PixelRun, odTable: Float32Array, perImage: Float64Array, out: Float32Array): Promise<void> {
    const params = Float32Array.from(perImage);
    for (const piece of this.pieces(run)) {
      out.set(this.run(anglesKernel, piece.pixels, [piece.rgb, piece.ppi, odTable, params]), piece.start);
    }
  }

  async concentrations(run: PixelRun, odTable: Float32Array, perImage: Float64Array, out: Float32Array): Promise<void> {
    const params = Float32Array.from(perImage);
    for (const piece of this.pieces(run)) {
      out.set(this.run(concentrationsKernel, piece.pixels * 2, [piece.rgb, piece.ppi, odTable, params]), piece.start * 2);
    }
  }

  async render(
    run: PixelRun,
    odTable: Float32Array,
    perImage: Float32Array,
    io: number,
    overflowValue: number,
    out: Uint8Array,
  ): Promise<void> {
    const overflow = Math.fround(overflowValue);
    for (const piece of this.pieces(run)) {
      const v = this.run(renderKernel, piece.pixels * 3, [piece.rgb, piece.ppi, odTable, perImage, io]);
      // Values above 255 become the overflow value; Uint8Array stores truncate (numpy astype(uint8)).
      for (let i = 0; i < v.length; i++) out[piece.start * 3 + i] = v[i]! > 255 ? overflow : v[i]!;
    }
  }
}

function newGpu(GPU: GpuConstructor, mode: GpujsMode | undefined): GpuInstance {
  const gpu = new GPU(mode ? { mode } : {});
  for (const fn of helpers) gpu.addFunction(fn);
  return gpu;
}

/** A tiny kernel through the helpers: throws when the mode cannot compile or run. */
function probe(gpu: GpuInstance): void {
  const kernel = gpu
    .createKernel(deconvolveKernel, { precision: 'single', tactic: 'precision' })
    .setOutput([6])
    .setPipeline(false);
  const out = kernel(new Uint8Array([255, 128, 0, 10, 20, 30]), Float32Array.from({ length: 256 }, (_, v) => v), new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1]));
  if (out.length !== 6 || out[0] !== 255 || out[5] !== 30) throw new Error(`gpu.js ${gpu.mode} mode computed wrong values`);
}

function resolvedMode(GPU: GpuConstructor, gpu: GpuInstance): string {
  // gpu.js reports 'gpu' for its automatic choice; under Node that is headless-gl.
  return gpu.mode === 'gpu' ? (GPU.isHeadlessGLSupported ? 'headlessgl' : 'gpu') : gpu.mode;
}

/**
 * The gpujs backend. Without `mode`, headless-gl when a GL context works,
 * else gpu.js's CPU mode; `mode` reports which.
 */
export async function createGpujsBackend(options: { mode?: GpujsMode } = {}): Promise<KernelBackend & { mode: string }> {
  const GPU = await loadGpu();
  let gpu: GpuInstance;
  if (options.mode) {
    try {
      gpu = newGpu(GPU, options.mode);
      probe(gpu);
    } catch (e) {
      throw new Error(`gpu.js cannot run in ${options.mode} mode here: ${(e as Error).message} (WebGL needs a display, e.g. xvfb-run)`);
    }
  } else {
    try {
      gpu = newGpu(GPU, GPU.isHeadlessGLSupported ? 'headlessgl' : 'cpu');
      probe(gpu);
    } catch {
      gpu = newGpu(GPU, 'cpu');
      probe(gpu);
    }
  }
  const backend = pixelMapBackend('gpujs', new GpujsMaps(gpu));
  return { ...backend, mode: resolvedMode(GPU, gpu) };
}

/** The gpu.js modes that compile and run a kernel on this machine (for `histoflow info`). */
export async function gpujsModes(): Promise<string[]> {
  const GPU = await loadGpu();
  const modes: string[] = [];
  for (const mode of ['headlessgl', 'cpu'] as const) {
    try {
      const gpu = newGpu(GPU, mode);
      probe(gpu);
      gpu.destroy();
      modes.push(mode);
    } catch {
      // Not available here: headless-gl without a display, for one.
    }
  }
  return modes;
}
