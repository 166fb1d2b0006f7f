/**
 * Per-pixel targets that follow their image through augmentation: a
 * segmentation mask must be cropped, flipped, rotated, resized and elastically
 * deformed exactly as its image was, and no colour op may touch it.
 *
 * Targets are floats per pixel: 0 or 1 (soft values in between allowed), or
 * MASK_TARGET_IGNORE (−1) for pixels no loss or score may count (annotated
 * exclusion regions). `augmentMasks` runs them through the same `augment` call
 * as images, with the pipeline's geometry only (geometryPipeline) and the same
 * (seed, epoch, index) draws: every parameter owns a fixed generator slot
 * (params.ts), so turning the colour ops off leaves d4, crop position and the
 * elastic field exactly as the image drew them. The mask travels as an RGB
 * image: R = target·255 on valid pixels (0 elsewhere), G = 255 on valid
 * pixels; after bilinear sampling G is the valid weight of each output pixel,
 * and R / G the mean target over the valid pixels it was sampled from. An
 * output pixel whose valid weight is below 1/2 is ignored.
 */
import { augment, type AugmentBackendName } from './augment.js';
import type { AugmentImageParams } from './params.js';
import type { AugmentPipeline } from './pipeline.js';
import { invalidRange, invalidType } from '../errors.js';
import type { RgbBatch } from '../image.js';

/** The target of a pixel that neither the loss nor the scores count. */
export const MASK_TARGET_IGNORE = -1;

/** The part of a pipeline that moves pixels: d4, crop, resize and elastic deformation. */
export function geometryPipeline(p: AugmentPipeline): AugmentPipeline {
  return { stain: null, d4: p.d4, crop: p.crop, resize: p.resize, elastic: p.elastic, hed: null, hsv: null, blur: null, noise: null, normalize: null };
}

/**
 * Class-index masks (one byte per pixel) as binary targets: 1 where the class
 * is `positive`, MASK_TARGET_IGNORE where it is `ignore`, else 0.
 */
export function maskTargets(masks: Uint8Array, positive: number, ignore: number): Float32Array {
  const t = new Float32Array(masks.length);
  for (let i = 0; i < masks.length; i++) {
    const m = masks[i]!;
    t[i] = m === ignore ? MASK_TARGET_IGNORE : m === positive ? 1 : 0;
  }
  return t;
}

/** Targets n × height × width as the RGB images augment moves (see the file comment). */
export function encodeTargets(targets: Float32Array, n: number, height: number, width: number): RgbBatch {
  const pixels = n * height * width;
  if (!(targets instanceof Float32Array)) throw invalidType('targets', 'a Float32Array', targets);
  if (targets.length !== pixels) throw invalidRange('targets', `a Float32Array of ${pixels} floats (n ${n} × ${height} × ${width})`, targets);
  const data = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const t = targets[i]!;
    if (t === MASK_TARGET_IGNORE) continue;
    if (!(t >= 0 && t <= 1)) throw invalidRange(`targets[${i}]`, `a value in [0, 1] or ${MASK_TARGET_IGNORE} (ignored)`, t);
    data[3 * i] = Math.round(t * 255);
    data[3 * i + 1] = 255;
  }
  return { data, n, height, width };
}

/** augment's output of encodeTargets' images (floats in [0, 1], 3 per pixel) back to targets. */
export function decodeTargets(augmented: Float32Array): Float32Array {
  const pixels = augmented.length / 3;
  const t = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const valid = augmented[3 * i + 1]!;
    t[i] = valid < 0.5 ? MASK_TARGET_IGNORE : Math.min(1, augmented[3 * i]! / valid);
  }
  return t;
}

const GEOMETRY_FIELDS = ['d4', 'cropY', 'cropX', 'elasticAlpha', 'elasticSigma', 'elasticSeed'] as const;

/**
 * The targets of a batch's images moved by the geometry the images got:
 * `imageParams` (what augment drew for the images) is checked against the
 * masks' own draw, so a change that broke the shared slots fails here, loudly.
 */
export async function augmentMasks(
  targets: Float32Array, n: number, height: number, width: number, pipeline: AugmentPipeline,
  draw: { seed: number; epoch: number; indices: readonly number[]; backend: AugmentBackendName; imageParams: readonly AugmentImageParams[] },
): Promise<Float32Array> {
  const r = await augment(encodeTargets(targets, n, height, width), geometryPipeline(pipeline), {
    seed: draw.seed, epoch: draw.epoch, indices: draw.indices, backend: draw.backend,
  });
  for (let i = 0; i < n; i++) {
    for (const f of GEOMETRY_FIELDS) {
      if (r.params[i]![f] !== draw.imageParams[i]![f]) {
        throw new Error(`augmentMasks: the mask of image ${draw.indices[i]} drew ${f} = ${r.params[i]![f]}, its image ${draw.imageParams[i]![f]}`);
      }
    }
  }
  return decodeTargets(r.data);
}
