/**
 * The values that cross into histoflow.node: the validated, fully-defaulted
 * parameter objects of every kernel family, field for field the C++ structs
 * of native/ (camelCase). The addon's typed interface (binding.ts) and src/
 * both use them; validation and defaults live in src/, never here.
 */

/** A batch of interleaved RGB uint8 images, NHWC, contiguous. */
export interface RgbBatch {
  data: Uint8Array;
  n: number;
  height: number;
  width: number;
}

/** od = max(-ln((I + offset) / io), minOd); I = clamp(round(io·exp(-od) − offset), 0, 255). */
export interface OdParams {
  io: number;
  offset: number;
  minOd: number;
}

/** 'od': every channel OD ≥ beta (Macenko). 'luminosity': tiatoolbox's contrast-stretched LAB L/255 < threshold. */
export type TissueRule = 'od' | 'luminosity';

export interface TissueParams {
  rule: TissueRule;
  beta: number;
  luminosityThreshold: number;
}

export const enum FitStatus {
  Ok = 0,
  TooFewTissuePixels = 1,
  Degenerate = 2,
}

/** One image's stains. he: rows H then E, columns RGB OD (row-major 2x3). */
export interface StainFit {
  he: number[];
  maxC: number[];
  tissuePixels: number;
  status: FitStatus;
}

export interface StainTransformParams {
  od: OdParams;
  targetHe: number[];
  targetMaxC: number[];
  /** Rendered values above 255 become this (HEnorm_python 254, tiatoolbox 255), then truncated to uint8. */
  overflowValue: number;
}

export interface MacenkoParams {
  od: OdParams;
  tissue: TissueParams;
  /** Angle percentile in percent. */
  alpha: number;
  /** Scale the stain vectors to unit length (tiatoolbox). */
  unitRows: boolean;
}

/** The exact procedure is specified in native/stain/vahadane.h. */
export interface VahadaneParams {
  od: OdParams;
  tissue: TissueParams;
  lambda: number;
  iterations: number;
  maxPixels: number;
  seed: number;
}

/** Per-image L*a*b* statistics (OpenCV 8-bit LAB quantization, population std). */
export interface LabStats {
  mean: number[];
  std: number[];
  pixels: number;
}

/** What was drawn for one image: native/augment/augment.h's AugmentImageParams, camelCase. */
export interface AugmentImageParams {
  /** 0..7: d4 & 3 quarter turns counter-clockwise, then a horizontal flip when d4 & 4. */
  d4: number;
  /** Top-left of the crop window in the source image. */
  cropY: number;
  cropX: number;
  hedEnabled: boolean;
  hedAlpha: [number, number, number];
  hedBeta: [number, number, number];
  brightness: number;
  contrast: number;
  saturation: number;
  /** Hue shift in turns. */
  hue: number;
  /** 0: no blur. */
  blurSigma: number;
  /** 0: no noise. */
  noiseSigma: number;
  /** Seed of the per-pixel noise, an integer below 2⁵³. */
  noiseSeed: number;
  /** Elastic deformation: largest displacement in output pixels per axis; 0: none. */
  elasticAlpha: number;
  /** Elastic deformation: control-grid spacing in output pixels (≥ 1). */
  elasticSigma: number;
  /** Seed of the elastic control grid, an integer below 2⁵³. */
  elasticSeed: number;
}

/** What is the same for the whole batch: AugmentBatchParams, camelCase. */
export interface AugmentBatchParams {
  cropH: number;
  cropW: number;
  outH: number;
  outW: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** The channel the tissue chain thresholds (higher = more tissue). */
export type TissueChannel = 'saturation' | 'od' | 'grey';

/** The resolved parameters of one mask, as native/tissue takes them (threshold −1 = Otsu). */
export interface NativeTissueParams {
  channel: TissueChannel;
  medianSize: number;
  threshold: number;
  minThreshold: number;
  excludePen: boolean;
  closingRadius: number;
  openingRadius: number;
  dilationRadius: number;
  minObjectArea: number;
  maxHoleArea: number;
  minTissueArea: number;
}
