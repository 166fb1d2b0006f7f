/**
 * Tissue detection on a slide thumbnail: saturation (or OD / grey) → median
 * blur → Otsu → pen exclusion → closing, opening → small objects and holes →
 * minimum tissue area. The chain runs in one native call (native/tissue) off
 * the event loop; without the addon, the TypeScript reference runs instead.
 */
import { loadAddon } from '../../bindings/loader.js';
import { checkNumber, checkObject, invalidType, withCallerStack } from '../errors.js';
import { checkBatch, type RgbBatch } from '../image.js';
import { resolveTissueOptions, type NativeTissueParams, type TissueOptions } from './options.js';
import { tissueMaskReference } from './reference.js';

export interface TissueMask {
  /** height·width bytes, 255 = tissue, 0 = background. */
  mask: Uint8Array;
  width: number;
  height: number;
  /** Level-0 pixels per mask pixel. */
  downsample: number;
  /** The threshold applied to the channel (Otsu's, or its floor, or the fixed one). */
  threshold: number;
  /** Tissue pixels / all pixels of the mask. */
  tissueFraction: number;
  /** What computed it: the addon's CPU kernel or the TypeScript reference. */
  backend: 'cpu' | 'js';
}

/** Anything with a slide's thumbnail method (the Slide of src/slide has it). */
export interface ThumbnailSource {
  thumbnail(maxSize: number): Promise<{ image: RgbBatch; downsample: number }>;
}

async function runChain(image: RgbBatch, params: NativeTissueParams, backend: 'auto' | 'cpu' | 'js'): Promise<{ mask: Uint8Array; threshold: number; backend: 'cpu' | 'js' }> {
  if (backend !== 'js') {
    const s = loadAddon();
    if (s.ok) {
      const mask = new Uint8Array(image.height * image.width);
      const r = await withCallerStack(() => s.addon.tissueMask(image, params, mask));
      return { mask, threshold: r.threshold, backend: 'cpu' };
    }
    if (backend === 'cpu') {
      const err = new Error(`tissue backend 'cpu' is unavailable: ${s.reason}`) as Error & { code?: string };
      err.code = 'HISTOFLOW_NO_ADDON';
      throw err;
    }
  }
  return { ...tissueMaskReference(image.data, image.height, image.width, params), backend: 'js' };
}

/**
 * The tissue mask of one RGB thumbnail (a batch with n = 1). `downsample` (default 1)
 * is the thumbnail's scale, level-0 px per thumbnail px, passed through to the result.
 */
export async function detectTissue(thumbnail: RgbBatch, options?: TissueOptions & { downsample?: number }): Promise<TissueMask> {
  const image = checkBatch('thumbnail', thumbnail);
  if (image.n !== 1) throw new RangeError(`Expected one image (n = 1) for thumbnail but received n = ${image.n}`);
  const pixels = image.height * image.width;
  const { params, backend } = resolveTissueOptions('options', options, pixels, ['downsample']);
  const raw = options?.downsample;
  const downsample = raw === undefined ? 1 : checkNumber('options.downsample', raw, Number.MIN_VALUE);
  const r = await runChain(image, params, backend);
  let tissue = 0;
  for (let i = 0; i < r.mask.length; i++) tissue += r.mask[i] ? 1 : 0;
  return {
    mask: r.mask,
    width: image.width,
    height: image.height,
    downsample,
    threshold: r.threshold,
    tissueFraction: tissue / pixels,
    backend: r.backend,
  };
}

/** The tissue mask of a slide, computed on its thumbnail of at most `maxSize` px (default 1024) on the long side. */
export async function detectSlideTissue(slide: ThumbnailSource, options?: TissueOptions & { maxSize?: number }): Promise<TissueMask> {
  const s = checkObject('slide', slide);
  if (typeof s.thumbnail !== 'function') throw invalidType('slide.thumbnail', 'a function (maxSize) => Promise<{ image, downsample }>', s.thumbnail);
  const o = options === undefined ? {} : checkObject('options', options);
  const maxSize = o.maxSize === undefined ? 1024 : checkNumber('options.maxSize', o.maxSize, 16, 16384);
  // Validate the rest before reading the slide (sizes only matter for area defaults).
  resolveTissueOptions('options', { ...o, maxSize: undefined }, 1);
  const { image, downsample } = await slide.thumbnail(Math.round(maxSize));
  const { maxSize: _drop, ...tissueOptions } = o as TissueOptions & { maxSize?: number };
  return detectTissue(image, { ...tissueOptions, downsample });
}
