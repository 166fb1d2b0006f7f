/**
 * Stain normalization: Reinhard (LAB statistics), Macenko and Vahadane (stain
 * matrices fitted per image), Ruifrok (a fixed stain matrix). A target is fitted
 * once (from one or several images, or given as parameters) and every image of
 * a batch is mapped to it. A stain matrix fitted once on a slide can be passed
 * as `sourceFit` and is then reused for all its tiles.
 *
 * Images where no stains can be fitted (background, one colour, fewer than 2
 * tissue pixels) are returned unchanged and listed in `unchanged`; for
 * Reinhard, images of one colour (every L*a*b* channel's std below
 * REINHARD_MIN_STD), whose statistics would map them to a solid colour. A
 * target of one colour is refused, as a target without tissue is.
 *
 * `fitMask` (one byte per pixel, nonzero = fit it) keeps pixels out of the
 * fits, e.g. the transparent ones of an RGBA image: they are not tissue. The
 * transform still applies to every pixel, with the fit of the masked ones.
 */
import {
  checkInteger,
  checkKnownKeys,
  checkNumber,
  checkNumberArray,
  checkObject,
  checkOneOf,
  invalidRange,
  invalidType,
} from '../errors.js';
import { checkBatch, imageAt, pixelsWhere, poolPixels } from '../image.js';
import { KERNEL_BACKENDS, chooseKernelBackend } from '../kernels/registry.js';
import type { KernelBackend, LabStats, RgbBatch, StainFit } from '../kernels/types.js';
import {
  REFERENCE_HE,
  REFERENCE_MAX_C,
  RUIFROK_HE,
  STAIN_PRESETS,
  VAHADANE_DEFAULTS,
  macenkoParams,
  presetParams,
  unitRows,
  vahadaneLambda,
  vahadaneParams,
  type PresetParams,
  type StainPreset,
  type VahadaneOptions,
} from './presets.js';

export const STAIN_METHODS = ['reinhard', 'macenko', 'vahadane', 'ruifrok'] as const;
export type StainMethod = (typeof STAIN_METHODS)[number];

/** A fitted target, JSON-serializable (what `histoflow stain --json` prints). */
export type StainTarget =
  | { method: 'reinhard'; lab: LabStats }
  | { method: 'macenko' | 'vahadane' | 'ruifrok'; preset: StainPreset; he: number[]; maxC: number[] };

export interface StainOptions {
  method?: StainMethod;
  preset?: StainPreset;
  backend?: (typeof KERNEL_BACKENDS)[number];
  /** Vahadane only. */
  seed?: number;
  lambda?: number;
  iterations?: number;
  maxPixels?: number;
}

export interface NormalizeOptions extends StainOptions {
  /** A fitted target, or the image(s) to fit it on. Reinhard needs one; the others default to the canonical reference. */
  target?: StainTarget | RgbBatch | RgbBatch[];
  /** One fit (e.g. of a whole slide) reused for every image instead of per-image fits. */
  sourceFit?: StainFit;
  /** Also render the hematoxylin-only and eosin-only images (stain-matrix methods). */
  singleStains?: boolean;
  /** n·height·width bytes: only pixels whose byte is nonzero enter the fits (not with sourceFit). */
  fitMask?: Uint8Array;
  out?: Uint8Array;
}

export interface NormalizeResult {
  data: Uint8Array;
  hematoxylin?: Uint8Array;
  eosin?: Uint8Array;
  method: StainMethod;
  target: StainTarget;
  /** Per-image source fits (stain-matrix methods) or LAB statistics (Reinhard). */
  fits?: StainFit[];
  lab?: LabStats[];
  /** Images returned unchanged, and why. */
  unchanged: { index: number; reason: string }[];
  /** The kernel backend that ran, and why it was chosen. */
  backend: string;
}

const STAIN_OPTION_KEYS = ['method', 'preset', 'backend', 'seed', 'lambda', 'iterations', 'maxPixels'];

interface Resolved {
  method: StainMethod;
  preset: StainPreset;
  params: PresetParams;
  vahadane: VahadaneOptions;
}

function resolve(options: StainOptions, extraKeys: string[]): Resolved {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, [...STAIN_OPTION_KEYS, ...extraKeys]);
  const method = o.method === undefined ? 'macenko' : checkOneOf('method', o.method, STAIN_METHODS);
  const preset = o.preset === undefined ? 'canonical' : checkOneOf('preset', o.preset, STAIN_PRESETS);
  const vahadane: VahadaneOptions = {
    lambda: o.lambda === undefined ? vahadaneLambda(preset) : checkNumber('lambda', o.lambda, 0, 10),
    iterations: o.iterations === undefined ? VAHADANE_DEFAULTS.iterations : checkInteger('iterations', o.iterations, 1, 10000),
    maxPixels: o.maxPixels === undefined ? VAHADANE_DEFAULTS.maxPixels : checkInteger('maxPixels', o.maxPixels, 2, 1e9),
    seed: o.seed === undefined ? VAHADANE_DEFAULTS.seed : checkInteger('seed', o.seed, 0, 2 ** 53 - 1),
  };
  return { method, preset, params: presetParams(preset), vahadane };
}

const FIT_FAILURES: Record<number, string> = {
  1: 'fewer than 2 tissue pixels',
  2: 'degenerate stains (one colour, or no stain signal)',
};

/**
 * Below this std (L in 0..100, a and b in 8-bit levels) in all three L*a*b*
 * channels an image is one colour: half a quantization level of L, well under
 * what any stained tissue shows. Reinhard would map it to the target's mean,
 * a solid colour.
 */
export const REINHARD_MIN_STD = 0.5;
const REINHARD_DEGENERATE = `degenerate colour statistics (one colour: every L*a*b* std < ${REINHARD_MIN_STD})`;

function isOneColour(lab: LabStats): boolean {
  return lab.std.every((s) => !(s >= REINHARD_MIN_STD));
}

/**
 * The target that Reinhard's transform, fitted on all of an image's pixels
 * (`all`), turns into the transform fitted on some of them (`some`):
 * (x − μa)·σt'/σa + μt' = (x − μs)·σt/σs + μt for every x when
 * σt' = σt·σa/σs and μt' = μt + (μa − μs)·σt/σs. A channel flat on `some` is
 * shifted only, as the kernels do for a flat channel.
 */
function retarget(target: LabStats, all: LabStats, some: LabStats): LabStats {
  const mean = [0, 0, 0];
  const std = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    const gain = some.std[c]! < 1e-6 ? 1 : target.std[c]! / some.std[c]!;
    std[c] = gain * all.std[c]!;
    mean[c] = target.mean[c]! + (all.mean[c]! - some.mean[c]!) * gain;
  }
  return { mean, std, pixels: target.pixels };
}

async function sourceFits(backend: KernelBackend, batch: RgbBatch, r: Resolved): Promise<StainFit[]> {
  switch (r.method) {
    case 'macenko':
      return backend.macenkoFit(batch, macenkoParams(r.params));
    case 'vahadane':
      return backend.vahadaneFit(batch, vahadaneParams(r.params, r.vahadane));
    case 'ruifrok':
      return backend.stainFitFixed(batch, unitRows(RUIFROK_HE), r.params.od);
    case 'reinhard':
      throw new Error('reinhard has no stain fit');
  }
}

/** Per-image stain fits (Macenko, Vahadane or Ruifrok) of a batch. */
export async function fitStains(batch: RgbBatch, options: StainOptions = {}): Promise<{ fits: StainFit[]; backend: string }> {
  const b = checkBatch('batch', batch);
  const r = resolve(options, []);
  if (r.method === 'reinhard') throw invalidRange('method', "'macenko', 'vahadane' or 'ruifrok' (reinhard fits no stains)", r.method);
  const { backend, reason } = await chooseKernelBackend(options.backend ?? 'auto');
  return { fits: await sourceFits(backend, b, r), backend: reason };
}

/** Fits a target on one or several images (their pixels pooled). */
export async function fitStainTarget(images: RgbBatch | RgbBatch[], options: StainOptions = {}): Promise<StainTarget> {
  const list = (Array.isArray(images) ? images : [images]).map((im, i) => checkBatch(`images[${i}]`, im));
  if (list.length === 0) throw invalidRange('images', 'at least one image', images);
  const r = resolve(options, []);
  const { backend } = await chooseKernelBackend(options.backend ?? 'auto');
  const pooled = list.length === 1 && list[0]!.n === 1 ? list[0]! : poolPixels(list);
  return fitTargetOn(backend, pooled, r);
}

async function fitTargetOn(backend: KernelBackend, pooled: RgbBatch, r: Resolved): Promise<StainTarget> {
  if (r.method === 'reinhard') {
    const [lab] = await backend.reinhardFit(pooled);
    if (pooled.width * pooled.height === 0 || isOneColour(lab!)) {
      throw new RangeError(`Expected a target image with colour variation but its fit failed: ${REINHARD_DEGENERATE}`);
    }
    return { method: 'reinhard', lab: lab! };
  }
  const [fit] = await sourceFits(backend, pooled, r);
  if (!fit || fit.status !== 0) {
    throw new RangeError(`Expected a target image with stained tissue but its fit failed: ${FIT_FAILURES[fit?.status ?? 1]}`);
  }
  return { method: r.method, preset: r.preset, he: fit.he, maxC: fit.maxC };
}

function checkTarget(value: unknown, r: Resolved): StainTarget {
  return checkStainTarget('target', value, r.method, r.preset);
}

/** Validates a fitted target (e.g. from JSON) for `method`, naming fields under `name`. */
export function checkStainTarget(name: string, value: unknown, method: StainMethod, preset: StainPreset = 'canonical'): StainTarget {
  const t = checkObject(name, value);
  if (t.method !== method) throw invalidRange(`${name}.method`, `'${method}' (the method being applied)`, t.method);
  if (method === 'reinhard') {
    const lab = checkObject(`${name}.lab`, t.lab);
    const std = checkNumberArray(`${name}.lab.std`, lab.std, 3);
    std.forEach((s, i) => checkNumber(`${name}.lab.std[${i}]`, s, 0));
    if (isOneColour({ mean: [0, 0, 0], std, pixels: 0 })) {
      throw invalidRange(`${name}.lab.std`, `a target with colour variation (some std ≥ ${REINHARD_MIN_STD}; all lower maps every image to one colour)`, std);
    }
    return {
      method: 'reinhard',
      lab: { mean: checkNumberArray(`${name}.lab.mean`, lab.mean, 3), std, pixels: Number(lab.pixels ?? 0) },
    };
  }
  const he = checkNumberArray(`${name}.he`, t.he, 6);
  const maxC = checkNumberArray(`${name}.maxC`, t.maxC, 2);
  maxC.forEach((m, i) => checkNumber(`${name}.maxC[${i}]`, m, 1e-6));
  return { method: method as 'macenko', preset, he, maxC };
}

function isBatchLike(v: unknown): boolean {
  return typeof v === 'object' && v !== null && 'data' in v && (v as { data: unknown }).data instanceof Uint8Array;
}

/** Normalizes every image of a batch to a target. */
export async function normalizeStain(batch: RgbBatch, options: NormalizeOptions = {}): Promise<NormalizeResult> {
  const b = checkBatch('batch', batch);
  const r = resolve(options, ['target', 'sourceFit', 'singleStains', 'fitMask', 'out']);
  const { backend, reason } = await chooseKernelBackend(options.backend ?? 'auto');

  let target: StainTarget;
  if (options.target === undefined) {
    if (r.method === 'reinhard') throw invalidRange('target', 'a target (fitted StainTarget or image) for reinhard', undefined);
    target = { method: r.method, preset: r.preset, he: REFERENCE_HE.slice(), maxC: REFERENCE_MAX_C.slice() };
    if (r.method === 'ruifrok' || r.params.unitRows) target.he = unitRows(target.he);
  } else if (Array.isArray(options.target) || isBatchLike(options.target)) {
    const list = (Array.isArray(options.target) ? options.target : [options.target]).map((im, i) =>
      checkBatch(`target[${i}]`, im),
    );
    target = await fitTargetOn(backend, list.length === 1 && list[0]!.n === 1 ? list[0]! : poolPixels(list), r);
  } else {
    target = checkTarget(options.target, r);
  }
  if (options.out !== undefined && !(options.out instanceof Uint8Array && options.out.length === b.data.length)) {
    throw invalidRange('out', `a Uint8Array of ${b.data.length} bytes`, options.out);
  }
  const pixels = b.n * b.height * b.width;
  const mask = options.fitMask;
  if (mask !== undefined) {
    if (!(mask instanceof Uint8Array)) throw invalidType('fitMask', `a Uint8Array of ${pixels} bytes (one per pixel)`, mask);
    if (mask.length !== pixels) throw invalidRange('fitMask', `a Uint8Array of ${pixels} bytes (one per pixel)`, mask);
    if (options.sourceFit !== undefined) throw new RangeError('Expected options.fitMask or options.sourceFit, not both');
  }

  if (target.method === 'reinhard') {
    const lab = await backend.reinhardFit(b);
    const fitted: LabStats[] = [];
    for (let i = 0; i < b.n; i++) {
      const some = mask ? pixelsWhere(b, mask, i) : undefined;
      if (!some) fitted.push(lab[i]!);
      else fitted.push(some.width === 0 ? { mean: [0, 0, 0], std: [0, 0, 0], pixels: 0 } : (await backend.reinhardFit(some))[0]!);
    }
    const unchanged = fitted.flatMap((s, index) =>
      s.pixels === 0 ? [{ index, reason: 'no pixel to fit (all masked out)' }] : isOneColour(s) ? [{ index, reason: REINHARD_DEGENERATE }] : []);
    let data: Uint8Array;
    if (!mask) {
      data = await backend.reinhardTransform(b, target.lab, options.out);
    } else {
      data = options.out ?? new Uint8Array(b.data.length);
      for (let i = 0; i < b.n; i++) {
        if (unchanged.some((u) => u.index === i)) continue;
        const image = imageAt(b, i);
        await backend.reinhardTransform(image, retarget(target.lab, lab[i]!, fitted[i]!), data.subarray(i * image.data.length, (i + 1) * image.data.length));
      }
    }
    // As the stain-matrix methods do for a failed fit: the image as it was, and why.
    for (const { index } of unchanged) {
      const image = imageAt(b, index).data;
      data.set(image, index * image.length);
    }
    return { data, method: r.method, target, lab: fitted, unchanged, backend: reason };
  }

  let fits: StainFit[];
  if (options.sourceFit !== undefined) {
    const f = checkObject('sourceFit', options.sourceFit);
    const one: StainFit = {
      he: checkNumberArray('sourceFit.he', f.he, 6),
      maxC: checkNumberArray('sourceFit.maxC', f.maxC, 2),
      tissuePixels: Number(f.tissuePixels ?? 0),
      status: checkInteger('sourceFit.status', f.status ?? 0, 0, 2),
    };
    fits = Array.from({ length: b.n }, () => one);
  } else if (mask) {
    fits = [];
    for (let i = 0; i < b.n; i++) {
      const some = pixelsWhere(b, mask, i);
      // Fewer than 2 pixels to fit is what the fit itself says for fewer than 2 tissue pixels.
      fits.push(some.width < 2 ? { he: [0, 0, 0, 0, 0, 0], maxC: [0, 0], tissuePixels: some.width, status: 1 } : (await sourceFits(backend, some, r))[0]!);
    }
  } else {
    fits = await sourceFits(backend, b, r);
  }
  const single = options.singleStains === true;
  const hematoxylin = single ? new Uint8Array(b.data.length) : undefined;
  const eosin = single ? new Uint8Array(b.data.length) : undefined;
  const data = await backend.stainTransform(
    b,
    fits,
    { od: r.params.od, targetHe: target.he, targetMaxC: target.maxC, overflowValue: r.params.overflowValue },
    options.out,
    hematoxylin,
    eosin,
  );
  const unchanged = fits
    .map((f, index) => ({ index, status: f.status }))
    .filter((f) => f.status !== 0)
    .map(({ index, status }) => ({ index, reason: FIT_FAILURES[status] ?? `fit status ${status}` }));
  return {
    data,
    ...(hematoxylin ? { hematoxylin } : {}),
    ...(eosin ? { eosin } : {}),
    method: r.method,
    target,
    fits,
    unchanged,
    backend: reason,
  };
}
