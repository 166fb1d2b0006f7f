/**
 * Tissue detection on a slide thumbnail: saturation (or OD / grey) → median
 * blur → Otsu → pen exclusion → closing, opening → small objects and holes →
 * minimum tissue area. The chain runs in one native call (native/tissue) off
 * the event loop; without the addon, plain TypeScript (js_tissue.ts) runs instead.
 */
import { loadAddon } from '../../bindings/loader.js';
import { chooseBackend, type BackendFamily } from '../backend_choice.js';
import { UnavailableError, checkNumber, checkObject, invalidType, withCallerStack } from '../errors.js';
import { checkBatch, type RgbBatch } from '../image.js';
import { resolveTissueOptions, type NativeTissueParams, type TissueBackend, type TissueOptions } from './options.js';
import { tissueMaskJs } from './js_tissue.js';

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
  /** What computed it: the addon's CPU kernel or plain TypeScript. */
  backend: 'cpu' | 'js';
}

/** Anything with a slide's thumbnail method (the Slide of src/slide has it). */
export interface ThumbnailSource {
  thumbnail(maxSize: number): Promise<{ image: RgbBatch; downsample: number }>;
}

type TissueRunner = (image: RgbBatch, params: NativeTissueParams) => Promise<{ mask: Uint8Array; threshold: number }>;

/** The tissue family of the backend chooser: the addon's CPU kernel, else plain TypeScript. */
export const tissueFamily: BackendFamily<'cpu' | 'js', TissueRunner> = {
  family: 'tissue',
  order: ['cpu', 'js'],
  async create(name) {
    if (name === 'js') return async (image, params) => tissueMaskJs(image.data, image.height, image.width, params);
    const s = loadAddon();
    if (!s.ok) throw new UnavailableError('cpu', s.reason, 'tissue');
    const addon = s.addon;
    return async (image, params) => {
      const mask = new Uint8Array(image.height * image.width);
      const r = await withCallerStack(() => addon.tissueMask(image, params, mask));
      return { mask, threshold: r.threshold };
    };
  },
};

async function runChain(image: RgbBatch, params: NativeTissueParams, choice: TissueBackend): Promise<{ mask: Uint8Array; threshold: number; backend: 'cpu' | 'js' }> {
  const { name, backend: run } = await chooseBackend(tissueFamily, choice);
  return { ...(await run(image, params)), backend: name };
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
