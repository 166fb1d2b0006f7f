/**
 * Per-image augmentation parameters, drawn on the host from a counter-based
 * generator, so that what image i gets depends only on (seed, epoch, i): not
 * on the backend, the thread count or how a dataset is cut into batches.
 *
 * The scheme (splitmix64 of src/stain/math.ts, the twin of native/core/random.h):
 *   key    = splitmix64(seed, epoch)
 *   stream = key XOR (index · 0x9e3779b97f4a7c15 mod 2⁶⁴)
 *   u[k]   = splitmix64Unit(stream, k)      uniform in [0, 1), 53 bits
 * Each parameter owns a fixed slot k, whether its op is on or not, so turning
 * one op on or off never changes what the others draw:
 *   0 d4 = ⌊8u⌋                  1, 2 crop y, x = ⌊u·(H − cropH + 1)⌋, ⌊u·(W − cropW + 1)⌋
 *   3–5 HED alpha = 1 + σ(2u − 1)  6–8 HED beta = σ(2u − 1)
 *   9 brightness, 10 contrast, 11 saturation = lo + (hi − lo)u, [lo, hi] = [max(0, 1 − r), 1 + r]
 *   12 hue = r(2u − 1) turns
 *   13 blur applied when u < p    14 blur σ = min + (max − min)u
 *   15 noise applied when u < p   16 noise seed = splitmix64(stream, 16) >> 11 (53 bits: exact as a JS number)
 *   17 elastic applied when u < p  18 elastic seed = splitmix64(stream, 18) >> 11
 * Every float is rounded to float32 here (Math.fround), so the numbers
 * reported are exactly the ones every backend computes with.
 */
import type { AugmentBatchParams, AugmentImageParams } from '../../bindings/contract.js';
import { checkInteger, invalidRange, invalidType } from '../errors.js';
import { splitmix64, splitmix64Unit } from '../stain/math.js';
import { RGB2HED_OD_SCALE, type AugmentPipeline, type AugmentShape } from './pipeline.js';

export type { AugmentBatchParams, AugmentImageParams } from '../../bindings/contract.js';

/** The parameters of an image that no op touches (the identity). */
export function identityParams(): AugmentImageParams {
  return {
    d4: 0,
    cropY: 0,
    cropX: 0,
    hedEnabled: false,
    hedAlpha: [1, 1, 1],
    hedBeta: [0, 0, 0],
    brightness: 1,
    contrast: 1,
    saturation: 1,
    hue: 0,
    blurSigma: 0,
    noiseSigma: 0,
    noiseSeed: 0,
    elasticAlpha: 0,
    elasticSigma: 1,
    elasticSeed: 0,
  };
}

const PHI = 0x9e3779b97f4a7c15n;
const MASK64 = (1n << 64n) - 1n;

/** The generator key of one (seed, epoch). */
export function augmentKey(seed: number, epoch: number): bigint {
  checkInteger('seed', seed, 0, Number.MAX_SAFE_INTEGER);
  checkInteger('epoch', epoch, 0, Number.MAX_SAFE_INTEGER);
  return splitmix64(seed, epoch);
}

/** The stream of image `index` under `key`. */
export function imageStream(key: bigint, index: number): bigint {
  return key ^ ((BigInt(index) * PHI) & MASK64);
}

export function batchParams(pipeline: AugmentPipeline, shape: AugmentShape): AugmentBatchParams {
  return {
    cropH: shape.cropHeight,
    cropW: shape.cropWidth,
    outH: shape.height,
    outW: shape.width,
    mean: pipeline.normalize ? [...pipeline.normalize.mean] : [0, 0, 0],
    std: pipeline.normalize ? [...pipeline.normalize.std] : [1, 1, 1],
  };
}

/** A factor in [max(0, 1 − r), 1 + r]; exactly 1 when r is 0. */
function factor(r: number, u: number): number {
  if (r === 0) return 1;
  const lo = Math.max(0, 1 - r);
  return Math.fround(lo + (1 + r - lo) * u);
}

/** A shift in [−r, r]; exactly 0 (not −0) when r is 0. */
function shift(r: number, u: number): number {
  return r === 0 ? 0 : Math.fround(r * (2 * u - 1));
}

function centreOffset(source: number, crop: number): number {
  return (source - crop) >> 1;
}

/**
 * The parameters of image `index` (its index in the dataset, not in the
 * batch) for source images of height x width.
 */
export function drawImageParams(
  pipeline: AugmentPipeline,
  shape: AugmentShape,
  height: number,
  width: number,
  key: bigint,
  index: number,
): AugmentImageParams {
  const stream = imageStream(key, index);
  const u = (k: number) => splitmix64Unit(stream, k);
  const p = identityParams();
  if (pipeline.d4) p.d4 = Math.min(Math.floor(u(0) * 8), 7);
  if (pipeline.crop) {
    if (pipeline.crop.mode === 'random') {
      p.cropY = Math.floor(u(1) * (height - shape.cropHeight + 1));
      p.cropX = Math.floor(u(2) * (width - shape.cropWidth + 1));
    } else {
      p.cropY = centreOffset(height, shape.cropHeight);
      p.cropX = centreOffset(width, shape.cropWidth);
    }
  }
  if (pipeline.hed && pipeline.hed.sigma > 0) {
    const s = pipeline.hed.sigma;
    p.hedEnabled = true;
    p.hedAlpha = [0, 1, 2].map((k) => Math.fround(1 + s * (2 * u(3 + k) - 1))) as [number, number, number];
    // The kernels add beta to rgb2hed values; an OD-unit beta is scaled into them.
    const betaScale = pipeline.hed.units === 'od' ? 1 / RGB2HED_OD_SCALE : 1;
    p.hedBeta = [0, 1, 2].map((k) => Math.fround(s * betaScale * (2 * u(6 + k) - 1))) as [number, number, number];
  }
  if (pipeline.hsv) {
    p.brightness = factor(pipeline.hsv.brightness, u(9));
    p.contrast = factor(pipeline.hsv.contrast, u(10));
    p.saturation = factor(pipeline.hsv.saturation, u(11));
    p.hue = shift(pipeline.hsv.hue, u(12));
  }
  if (pipeline.blur && u(13) < pipeline.blur.p) {
    const [lo, hi] = pipeline.blur.sigma;
    p.blurSigma = Math.fround(lo + (hi - lo) * u(14));
  }
  if (pipeline.noise && pipeline.noise.sigma > 0 && u(15) < pipeline.noise.p) {
    p.noiseSigma = Math.fround(pipeline.noise.sigma);
    p.noiseSeed = Number(splitmix64(stream, 16) >> 11n);
  }
  if (pipeline.elastic && pipeline.elastic.alpha > 0 && u(17) < pipeline.elastic.p) {
    p.elasticAlpha = Math.fround(pipeline.elastic.alpha);
    p.elasticSigma = Math.fround(pipeline.elastic.sigma);
    p.elasticSeed = Number(splitmix64(stream, 18) >> 11n);
  }
  return p;
}

/** The parameters of images startIndex … startIndex + n − 1. */
export function drawBatchParams(
  pipeline: AugmentPipeline,
  shape: AugmentShape,
  height: number,
  width: number,
  n: number,
  seed: number,
  epoch: number,
  startIndex: number,
): AugmentImageParams[] {
  return drawIndexedParams(pipeline, shape, height, width, Array.from({ length: n }, (_, i) => startIndex + i), seed, epoch);
}

/** The parameters of the images at dataset indices `indices` (any order, e.g. a shuffled batch). */
export function drawIndexedParams(
  pipeline: AugmentPipeline,
  shape: AugmentShape,
  height: number,
  width: number,
  indices: ArrayLike<number>,
  seed: number,
  epoch: number,
): AugmentImageParams[] {
  const key = augmentKey(seed, epoch);
  return Array.from(indices, (index) => drawImageParams(pipeline, shape, height, width, key, index));
}

/**
 * Test-time augmentation: none (false), each image's 8 dihedral views at the
 * centred crop window (true), or those 8 views at each of the crop windows of
 * ttaWindows ('crops': a model trained on random crops seen where training
 * placed them).
 */
export type Tta = boolean | 'crops';

/** A tta option: true, false or 'crops' (a TypeError / RangeError naming `name` otherwise). */
export function checkTta(name: string, value: unknown): Tta {
  if (value === true || value === false || value === 'crops') return value;
  if (typeof value === 'string') throw invalidRange(name, "true, false or 'crops'", value);
  throw invalidType(name, "true, false or 'crops'", value);
}

/**
 * The crop windows (top-left [y, x]) test-time augmentation averages over:
 * the centred one, and with 'crops' on a pipeline that crops a smaller window
 * also the four corners, as torchvision's FiveCrop (the extremes of what a
 * random crop drew in training; distinct windows only). A pipeline without a
 * crop has the one window of the whole image.
 */
export function ttaWindows(pipeline: AugmentPipeline, shape: AugmentShape, height: number, width: number, tta: Tta): Array<[number, number]> {
  if (!pipeline.crop) return [[0, 0]];
  const windows: Array<[number, number]> = [[centreOffset(height, shape.cropHeight), centreOffset(width, shape.cropWidth)]];
  if (tta !== 'crops') return windows;
  const bottom = height - shape.cropHeight;
  const right = width - shape.cropWidth;
  for (const [y, x] of [[0, 0], [0, right], [bottom, 0], [bottom, right]] as const) {
    if (!windows.some(([wy, wx]) => wy === y && wx === x)) windows.push([y, x]);
  }
  return windows;
}

/**
 * Test-time augmentation's views: for each of n images, its 8 dihedral views
 * (d4 = 0..7) at each window of ttaWindows in turn, image after image, every
 * random op at identity. Resize and normalize still apply.
 */
export function ttaParams(pipeline: AugmentPipeline, shape: AugmentShape, height: number, width: number, n: number, tta: Tta = true): AugmentImageParams[] {
  const out: AugmentImageParams[] = [];
  const windows = ttaWindows(pipeline, shape, height, width, tta);
  for (let i = 0; i < n; i++) {
    for (const [cropY, cropX] of windows) {
      for (let d4 = 0; d4 < 8; d4++) out.push({ ...identityParams(), d4, cropY, cropX });
    }
  }
  return out;
}
