/**
 * An augmentation pipeline: one plain, validated, JSON-serializable object, so
 * that a training run can record exactly what it used and replay it
 * (`checkPipeline(JSON.parse(JSON.stringify(p)))` gives `p` back).
 *
 * Written by a user, e.g.
 *   { d4: true, hed: 'light', hsv: { brightness: 0.1, hue: 0.02 }, blur: { sigma: [0.1, 1.5], p: 0.3 },
 *     crop: 96, normalize: 'imagenet' }
 * and made canonical by `checkPipeline`: every op present, disabled ops null,
 * presets resolved to numbers, sizes as [height, width].
 *
 * The ops always run in the order of native/augment/augment.h, whatever the
 * key order: stain normalization (when asked) → geometry (crop window,
 * resize, D4) → elastic deformation → HED jitter → brightness,
 * contrast, saturation, hue → blur → noise → normalize.
 */
import {
  checkBoolean,
  checkInteger,
  checkKnownKeys,
  checkNumber,
  checkNumberArray,
  checkObject,
  checkOneOf,
  invalidRange,
  invalidType,
} from '../errors.js';
import { STAIN_METHODS, checkStainTarget, type StainMethod, type StainTarget } from '../stain/normalize.js';
import { STAIN_PRESETS, type StainPreset } from '../stain/presets.js';

/** Tellez et al. 2018's HED-light and HED-strong σ. */
export const HED_PRESETS = { light: 0.05, strong: 0.2 } as const;
export type HedPreset = keyof typeof HED_PRESETS;
export const HED_UNITS = ['od', 'rgb2hed'] as const;
export type HedUnits = (typeof HED_UNITS)[number];
/** rgb2hed's values are optical density divided by this: −ln(10⁻⁶). */
export const RGB2HED_OD_SCALE = Math.log(1e6);

/** torchvision's ImageNet statistics. */
export const IMAGENET_NORMALIZE = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;

export const CROP_MODES = ['random', 'center'] as const;
export type CropMode = (typeof CROP_MODES)[number];

/** The largest blur σ accepted: the kernel's radius is ceil(3σ). */
export const MAX_BLUR_SIGMA = 32;
/** The largest output or crop side accepted (also the largest elastic α and σ). */
export const MAX_SIDE = 65536;

/** The canonical pipeline (what `checkPipeline` returns). */
export interface AugmentPipeline {
  /**
   * Stain normalization before everything else (src/stain/normalize.ts): each
   * image mapped to `target` (a fitted StainTarget; Macenko, Vahadane and
   * Ruifrok default to the canonical reference, Reinhard needs one).
   */
  stain: { method: StainMethod; preset: StainPreset; target: StainTarget | null } | null;
  /** A random one of the 8 flips/rotations per image (square outputs only). */
  d4: boolean;
  /** The crop window, [height, width]; 'random' draws its position per image, 'center' centres it. */
  crop: { size: [number, number]; mode: CropMode } | null;
  /** Bilinear resize of the crop window (or whole image) to [height, width]. */
  resize: [number, number] | null;
  /**
   * Elastic deformation after the geometry, applied with probability p: a
   * smooth random displacement of at most `alpha` output pixels per axis
   * (RMS about 0.28·alpha), varying over about `sigma` pixels (the spacing of
   * its control grid, ≥ 1); bilinear sampling, mirrored edges.
   */
  elastic: { alpha: number; sigma: number; p: number } | null;
  /**
   * HED jitter (Tellez et al.): per stain, alpha in [1 − σ, 1 + σ] and an
   * additive beta in [−σ, σ]. `units` says what beta is measured in:
   * 'od' (default) natural-log optical density, −ln(I/I0), the space Tellez
   * et al. define the light (0.05) and strong (0.2) presets in; 'rgb2hed'
   * scikit-image's rgb2hed values, which are OD / ln(10⁶), so the same σ is
   * 13.8 times stronger there (the widespread HEDJitter code does this; on
   * H&E its "light" setting already turns tiles green and yellow).
   */
  hed: { sigma: number; units: HedUnits } | null;
  /**
   * Jitter ranges: brightness, contrast and saturation factors in [max(0, 1 − r), 1 + r];
   * hue shift in [−r, r] turns. 0 leaves that property alone.
   */
  hsv: { brightness: number; contrast: number; saturation: number; hue: number } | null;
  /** Gaussian blur with σ uniform in [min, max], applied with probability p. */
  blur: { sigma: [number, number]; p: number } | null;
  /** Additive gaussian noise of std σ (on [0, 1] values), applied with probability p. */
  noise: { sigma: number; p: number } | null;
  /** (v − mean[c]) / std[c], last. null leaves values in [0, 1]. */
  normalize: { mean: [number, number, number]; std: [number, number, number] } | null;
}

/** What a user may write: the canonical form, or its shorthands. */
export interface AugmentPipelineInput {
  stain?: { method: StainMethod; preset?: StainPreset; target?: StainTarget | null } | null;
  d4?: boolean;
  crop?: number | [number, number] | { size: number | [number, number]; mode?: CropMode } | null;
  resize?: number | [number, number] | null;
  elastic?: { alpha?: number; sigma?: number; p?: number } | null;
  hed?: HedPreset | { sigma: number; units?: HedUnits } | null;
  hsv?: { brightness?: number; contrast?: number; saturation?: number; hue?: number } | null;
  blur?: { sigma?: number | [number, number]; p?: number } | null;
  noise?: { sigma?: number; p?: number } | null;
  normalize?: 'imagenet' | { mean: ArrayLike<number>; std: ArrayLike<number> } | null;
}

export const PIPELINE_OPS = ['stain', 'd4', 'crop', 'resize', 'elastic', 'hed', 'hsv', 'blur', 'noise', 'normalize'] as const;

/** Defaults of the ops whose fields may be left out. */
export const BLUR_DEFAULTS = { sigma: [0.1, 2] as [number, number], p: 0.5 };
export const NOISE_DEFAULTS = { sigma: 0.03, p: 0.5 };
export const ELASTIC_DEFAULTS = { alpha: 6, sigma: 16, p: 0.5 };

const isOff = (v: unknown) => v === undefined || v === null || v === false;

function checkSize(name: string, value: unknown): [number, number] {
  if (typeof value === 'number') {
    const s = checkInteger(name, value, 1, MAX_SIDE);
    return [s, s];
  }
  if (Array.isArray(value)) {
    if (value.length !== 2) throw invalidRange(name, 'a size or [height, width]', value);
    return [checkInteger(`${name}[0]`, value[0], 1, MAX_SIDE), checkInteger(`${name}[1]`, value[1], 1, MAX_SIDE)];
  }
  throw invalidType(name, 'a size or [height, width]', value);
}

function checkCrop(value: unknown): AugmentPipeline['crop'] {
  if (isOff(value)) return null;
  if (typeof value === 'number' || Array.isArray(value)) return { size: checkSize('pipeline.crop', value), mode: 'random' };
  const o = checkObject('pipeline.crop', value);
  checkKnownKeys('pipeline.crop', o, ['size', 'mode']);
  return {
    size: checkSize('pipeline.crop.size', o.size),
    mode: o.mode === undefined ? 'random' : checkOneOf('pipeline.crop.mode', o.mode, CROP_MODES),
  };
}

function checkStain(value: unknown): AugmentPipeline['stain'] {
  if (isOff(value)) return null;
  const o = checkObject('pipeline.stain', value);
  checkKnownKeys('pipeline.stain', o, ['method', 'preset', 'target']);
  const method = checkOneOf('pipeline.stain.method', o.method, STAIN_METHODS);
  const preset = o.preset === undefined ? 'canonical' : checkOneOf('pipeline.stain.preset', o.preset, STAIN_PRESETS);
  const target = isOff(o.target) ? null : checkStainTarget('pipeline.stain.target', o.target, method, preset);
  if (method === 'reinhard' && !target) {
    throw invalidRange('pipeline.stain.target', 'a fitted Reinhard target (fitStainTarget)', o.target);
  }
  return { method, preset, target };
}

function checkHed(value: unknown): AugmentPipeline['hed'] {
  if (isOff(value)) return null;
  if (typeof value === 'string') return { sigma: HED_PRESETS[checkOneOf('pipeline.hed', value, ['light', 'strong'] as const)], units: 'od' };
  const o = checkObject('pipeline.hed', value);
  checkKnownKeys('pipeline.hed', o, ['sigma', 'units']);
  const units = o.units === undefined ? 'od' : checkOneOf('pipeline.hed.units', o.units, HED_UNITS);
  return { sigma: checkNumber('pipeline.hed.sigma', o.sigma, 0, 1), units };
}

function checkHsv(value: unknown): AugmentPipeline['hsv'] {
  if (isOff(value)) return null;
  const o = checkObject('pipeline.hsv', value);
  checkKnownKeys('pipeline.hsv', o, ['brightness', 'contrast', 'saturation', 'hue']);
  const range = (key: string, max: number) => (o[key] === undefined ? 0 : checkNumber(`pipeline.hsv.${key}`, o[key], 0, max));
  return { brightness: range('brightness', 1), contrast: range('contrast', 1), saturation: range('saturation', 1), hue: range('hue', 0.5) };
}

function checkProbability(name: string, value: unknown, fallback: number): number {
  return value === undefined ? fallback : checkNumber(name, value, 0, 1);
}

function checkBlur(value: unknown): AugmentPipeline['blur'] {
  if (isOff(value)) return null;
  const o = checkObject('pipeline.blur', value);
  checkKnownKeys('pipeline.blur', o, ['sigma', 'p']);
  let sigma: [number, number];
  if (o.sigma === undefined) sigma = [...BLUR_DEFAULTS.sigma];
  else if (typeof o.sigma === 'number') {
    const s = checkNumber('pipeline.blur.sigma', o.sigma, 0, MAX_BLUR_SIGMA);
    sigma = [s, s];
  } else {
    const [lo, hi] = checkNumberArray('pipeline.blur.sigma', o.sigma, 2) as [number, number];
    checkNumber('pipeline.blur.sigma[0]', lo, 0, MAX_BLUR_SIGMA);
    checkNumber('pipeline.blur.sigma[1]', hi, lo, MAX_BLUR_SIGMA);
    sigma = [lo, hi];
  }
  return { sigma, p: checkProbability('pipeline.blur.p', o.p, BLUR_DEFAULTS.p) };
}

function checkNoise(value: unknown): AugmentPipeline['noise'] {
  if (isOff(value)) return null;
  const o = checkObject('pipeline.noise', value);
  checkKnownKeys('pipeline.noise', o, ['sigma', 'p']);
  return {
    sigma: o.sigma === undefined ? NOISE_DEFAULTS.sigma : checkNumber('pipeline.noise.sigma', o.sigma, 0, 1),
    p: checkProbability('pipeline.noise.p', o.p, NOISE_DEFAULTS.p),
  };
}

function checkElastic(value: unknown): AugmentPipeline['elastic'] {
  if (isOff(value)) return null;
  const o = checkObject('pipeline.elastic', value);
  checkKnownKeys('pipeline.elastic', o, ['alpha', 'sigma', 'p']);
  return {
    alpha: o.alpha === undefined ? ELASTIC_DEFAULTS.alpha : checkNumber('pipeline.elastic.alpha', o.alpha, 0, MAX_SIDE),
    sigma: o.sigma === undefined ? ELASTIC_DEFAULTS.sigma : checkNumber('pipeline.elastic.sigma', o.sigma, 1, MAX_SIDE),
    p: checkProbability('pipeline.elastic.p', o.p, ELASTIC_DEFAULTS.p),
  };
}

function checkNormalize(value: unknown): AugmentPipeline['normalize'] {
  if (isOff(value)) return null;
  if (typeof value === 'string') {
    checkOneOf('pipeline.normalize', value, ['imagenet'] as const);
    return { mean: [...IMAGENET_NORMALIZE.mean] as [number, number, number], std: [...IMAGENET_NORMALIZE.std] as [number, number, number] };
  }
  const o = checkObject('pipeline.normalize', value);
  checkKnownKeys('pipeline.normalize', o, ['mean', 'std']);
  const mean = checkNumberArray('pipeline.normalize.mean', o.mean, 3) as [number, number, number];
  const std = checkNumberArray('pipeline.normalize.std', o.std, 3) as [number, number, number];
  std.forEach((s, i) => {
    if (!(s > 0)) throw invalidRange(`pipeline.normalize.std[${i}]`, 'a number > 0', s);
  });
  return { mean, std };
}

/**
 * Validates a pipeline and returns it canonical: every op present (null when
 * off), presets resolved, sizes as [height, width]. Unknown ops and fields are
 * a RangeError naming them; wrong types a TypeError; NaN, negative σ,
 * probabilities outside [0, 1] a RangeError naming the field.
 */
export function checkPipeline(value: unknown = {}): AugmentPipeline {
  const o = checkObject('pipeline', value);
  checkKnownKeys('pipeline', o, PIPELINE_OPS);
  return {
    stain: checkStain(o.stain),
    d4: o.d4 === undefined || o.d4 === null ? false : checkBoolean('pipeline.d4', o.d4),
    crop: checkCrop(o.crop),
    resize: isOff(o.resize) ? null : checkSize('pipeline.resize', o.resize),
    elastic: checkElastic(o.elastic),
    hed: checkHed(o.hed),
    hsv: checkHsv(o.hsv),
    blur: checkBlur(o.blur),
    noise: checkNoise(o.noise),
    normalize: checkNormalize(o.normalize),
  };
}

/** The sizes one batch goes through: source → crop window → output. */
export interface AugmentShape {
  cropHeight: number;
  cropWidth: number;
  height: number;
  width: number;
}

/**
 * The crop window and output size of a canonical pipeline on height x width
 * images. A crop larger than the image is a RangeError naming pipeline.crop;
 * D4 (and test-time augmentation, `dihedral`) needs a square output, since a
 * quarter turn of a non-square image changes its shape.
 */
export function outputShape(pipeline: AugmentPipeline, height: number, width: number, dihedral = pipeline.d4): AugmentShape {
  checkInteger('height', height, 1);
  checkInteger('width', width, 1);
  let cropHeight = height;
  let cropWidth = width;
  if (pipeline.crop) {
    [cropHeight, cropWidth] = pipeline.crop.size;
    if (cropHeight > height || cropWidth > width) {
      throw invalidRange('pipeline.crop', `a crop of at most the image size ${height}x${width} (height x width)`, pipeline.crop.size);
    }
  }
  const [outH, outW] = pipeline.resize ?? [cropHeight, cropWidth];
  if (dihedral && outH !== outW) {
    throw new RangeError(
      `Expected a square output for pipeline.d4 (and test-time augmentation) but the output is ${outH}x${outW}; crop or resize to a square`,
    );
  }
  return { cropHeight, cropWidth, height: outH, width: outW };
}
