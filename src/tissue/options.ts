/**
 * Tissue detection options: validation and defaults (native/tissue/tissue_mask.h
 * has the exact chain). Areas are in mask pixels; their defaults are fractions
 * of the mask so that one setting works whatever the thumbnail's size.
 */
import type { NativeTissueParams, TissueChannel } from '../../bindings/contract.js';
import { checkBoolean, checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, invalidRange } from '../errors.js';

export const TISSUE_CHANNELS = ['saturation', 'od', 'grey'] as const satisfies readonly TissueChannel[];
export const TISSUE_BACKENDS = ['auto', 'cpu', 'js'] as const;
export type TissueBackend = (typeof TISSUE_BACKENDS)[number];

export interface TissueOptions {
  /** What is thresholded (higher = tissue). Default 'saturation' (HSV S): H&E and IHC both stain, glass is grey-white. */
  channel?: TissueChannel;
  /** k of the k×k median blur applied to the channel, odd; 1 = none. Default 5. */
  medianSize?: number;
  /** 'otsu' (default) or a fixed threshold 0..255 on the channel. */
  threshold?: 'otsu' | number;
  /**
   * Floor of the Otsu threshold, so that a thumbnail without tissue does not
   * split its noise into "tissue". Default 20 for saturation (S ≈ 0.08), 25 for
   * od (OD sum ≈ 0.3), 20 for grey.
   */
  minThreshold?: number;
  /** Drop red, green and blue pen ink (deephistopath's rules). Default false. */
  excludePen?: boolean;
  /** Radius of the closing disk (fills gaps between nuclei and stroma). Default 2. */
  closingRadius?: number;
  /** Radius of the opening disk (drops specks and thin debris). Default 1. */
  openingRadius?: number;
  /**
   * Radius of a final dilation: a margin around the tissue so that tiles at its
   * edge survive the thumbnail's coarse pixels. Default 5, histolab's TissueMask
   * margin (its expected masks are matched at IoU ≥ 0.85 with these defaults).
   */
  dilationRadius?: number;
  /** Tissue components smaller than this (mask pixels) are removed. Default max(16, 0.1% of the mask). */
  minObjectArea?: number;
  /** Holes up to this area (mask pixels) are filled. Default max(16, 0.1% of the mask). */
  maxHoleArea?: number;
  /** Less tissue than this (mask pixels) in all → no tissue. Default max(16, 0.05% of the mask). */
  minTissueArea?: number;
  /** 'auto' (default): the addon's CPU kernel, else the TypeScript reference ('js'). */
  backend?: TissueBackend;
}

export type { NativeTissueParams, TissueChannel } from '../../bindings/contract.js';

export const TISSUE_OPTION_KEYS = [
  'channel', 'medianSize', 'threshold', 'minThreshold', 'excludePen', 'closingRadius', 'openingRadius', 'dilationRadius',
  'minObjectArea', 'maxHoleArea', 'minTissueArea', 'backend',
] as const;

const DEFAULT_MIN_THRESHOLD: Record<TissueChannel, number> = { saturation: 20, od: 25, grey: 20 };

function areaDefault(pixels: number, fraction: number): number {
  return Math.max(16, Math.ceil(pixels * fraction));
}

/**
 * Validates `options` (named `name` in errors) and resolves the defaults for a
 * mask of `pixels` pixels. Extra keys listed in `extraKeys` are allowed (the
 * callers' own options, e.g. downsample).
 */
export function resolveTissueOptions(
  name: string,
  options: unknown,
  pixels: number,
  extraKeys: readonly string[] = [],
): { params: NativeTissueParams; backend: TissueBackend } {
  const o = options === undefined ? {} : checkObject(name, options);
  checkKnownKeys(name, o, [...TISSUE_OPTION_KEYS, ...extraKeys]);
  const channel = o.channel === undefined ? 'saturation' : checkOneOf(`${name}.channel`, o.channel, TISSUE_CHANNELS);
  const medianSize = o.medianSize === undefined ? 5 : checkInteger(`${name}.medianSize`, o.medianSize, 1, 255);
  if (medianSize % 2 === 0) throw invalidRange(`${name}.medianSize`, 'an odd integer between 1 and 255', medianSize);
  let threshold = -1;
  if (o.threshold !== undefined && o.threshold !== 'otsu') {
    if (typeof o.threshold === 'string') throw invalidRange(`${name}.threshold`, "'otsu' or an integer between 0 and 255", o.threshold);
    threshold = checkInteger(`${name}.threshold`, o.threshold, 0, 255);
  }
  const minThreshold = o.minThreshold === undefined ? DEFAULT_MIN_THRESHOLD[channel] : checkInteger(`${name}.minThreshold`, o.minThreshold, 0, 255);
  const excludePen = o.excludePen === undefined ? false : checkBoolean(`${name}.excludePen`, o.excludePen);
  const closingRadius = o.closingRadius === undefined ? 2 : checkInteger(`${name}.closingRadius`, o.closingRadius, 0, 64);
  const openingRadius = o.openingRadius === undefined ? 1 : checkInteger(`${name}.openingRadius`, o.openingRadius, 0, 64);
  const dilationRadius = o.dilationRadius === undefined
    ? 5
    : checkInteger(`${name}.dilationRadius`, o.dilationRadius, 0, 64);
  const area = (key: string, fraction: number): number =>
    o[key] === undefined ? areaDefault(pixels, fraction) : checkNumber(`${name}.${key}`, o[key], 0, Number.MAX_SAFE_INTEGER);
  const params: NativeTissueParams = {
    channel,
    medianSize,
    threshold,
    minThreshold,
    excludePen,
    closingRadius,
    openingRadius,
    dilationRadius,
    minObjectArea: Math.ceil(area('minObjectArea', 0.001)),
    maxHoleArea: Math.floor(area('maxHoleArea', 0.001)),
    minTissueArea: Math.ceil(area('minTissueArea', 0.0005)),
  };
  const backend = o.backend === undefined ? 'auto' : checkOneOf(`${name}.backend`, o.backend, TISSUE_BACKENDS);
  return { params, backend };
}
