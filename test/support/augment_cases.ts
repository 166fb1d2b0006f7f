/**
 * The augmentation cases of the parity table (augment/parity.test.ts), also
 * used by augment/gpujs.test.ts's chunking test: image shapes that include a
 * 1x1 image, batch 1 and batch 257, and each op alone plus one pipeline with
 * all of them.
 */
import type { AugmentPipelineInput } from '../../src/augment/pipeline.js';
import type { RgbBatch } from '../../src/kernels/types.js';
import { syntheticHE } from './helpers.js';

export const SHAPES: [string, () => RgbBatch][] = [
  ['257 patches of 7x7', () => syntheticHE(257, 7, 7, 3)],
  ['1 image of 33x17', () => syntheticHE(1, 33, 17, 4)],
  ['a 1x1 image', () => syntheticHE(1, 1, 1, 5)],
  ['3 images of 13x11', () => syntheticHE(3, 13, 11, 6)],
];

export const half = (v: number) => Math.ceil(v / 2);

/** Each op alone (plus one pipeline with all of them), sized for h x w images; `exact` ops are permutations of the input. */
export const OPS: [string, boolean, (h: number, w: number) => AugmentPipelineInput][] = [
  ['d4', true, (h, w) => ({ d4: true, crop: Math.min(h, w) })],
  ['a random crop', true, (h, w) => ({ crop: [half(h), half(w)] })],
  ['a centre crop', true, (h, w) => ({ crop: { size: [half(h), half(w)], mode: 'center' } })],
  ['d4 after a random crop', true, (h, w) => ({ d4: true, crop: half(Math.min(h, w)) })],
  ['a bilinear resize of a crop', false, (h, w) => ({ crop: [half(h), w], resize: [h + 3, Math.max(1, w - 2)] })],
  ['d4 with a resize', false, (h, w) => ({ d4: true, crop: [h, w], resize: 6 })],
  ['HED jitter (light)', false, () => ({ hed: 'light' })],
  ['HED jitter (strong)', false, () => ({ hed: 'strong' })],
  ['brightness', false, () => ({ hsv: { brightness: 0.4 } })],
  ['contrast', false, () => ({ hsv: { contrast: 0.5 } })],
  ['saturation', false, () => ({ hsv: { saturation: 0.8 } })],
  ['hue', false, () => ({ hsv: { hue: 0.3 } })],
  ['gaussian blur', false, () => ({ blur: { sigma: [0.3, 2.5], p: 1 } })],
  ['elastic deformation', false, () => ({ elastic: { alpha: 3, sigma: 2, p: 1 } })],
  ['elastic deformation of a resized, rotated crop', false, (h, w) => ({ d4: true, crop: [h, w], resize: 6, elastic: { alpha: 4, sigma: 1.5, p: 1 } })],
  ['elastic deformation then HED jitter', false, () => ({ elastic: { alpha: 2.5, sigma: 3, p: 1 }, hed: 'strong' })],
  ['gaussian noise', false, () => ({ noise: { sigma: 0.1, p: 1 } })],
  ['identity', false, () => ({})],
  ['a large hue shift', false, () => ({ hsv: { hue: 0.5 } })],
  ['gaussian blur, some images only', false, () => ({ blur: { sigma: [0.5, 1.5], p: 0.5 } })],
  ['elastic deformation, some images only, then HED jitter', false, () => ({ elastic: { alpha: 4, sigma: 1.5, p: 0.5 }, hed: 'strong' })],
  ['imagenet normalization', false, () => ({ normalize: 'imagenet' })],
  [
    'every op at once',
    false,
    (h, w) => ({
      d4: true,
      crop: Math.min(h, w),
      hed: 'strong',
      hsv: { brightness: 0.2, contrast: 0.2, saturation: 0.3, hue: 0.1 },
      blur: { p: 0.7 },
      noise: { sigma: 0.05, p: 0.7 },
      elastic: { alpha: 3, sigma: 2.5, p: 0.7 },
      normalize: { mean: [0.7, 0.5, 0.7], std: [0.2, 0.25, 0.15] },
    }),
  ],
];
