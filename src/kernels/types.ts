/**
 * The kernel contract shared by every backend (cuda, cpu, gpujs, js). These
 * are the validated, fully-defaulted parameter objects that cross into a
 * backend; they mirror the C++ structs in native/ field for field (camelCase).
 * Validation and defaults live in src/stain and src/color, never here.
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

export type KernelBackendName = 'cuda' | 'cpu' | 'gpujs' | 'js';

/** Outputs go into `out` when given (its length is checked), else a new array. */
export interface KernelBackend {
  readonly name: KernelBackendName;
  rgbToOd(batch: RgbBatch, p: OdParams, out?: Float32Array): Promise<Float32Array>;
  odToRgb(od: Float32Array, pixels: number, p: OdParams, out?: Uint8Array): Promise<Uint8Array>;
  /** skimage separate_stains with stain_from_rgb (row-major 3x3, pixel·M). */
  deconvolve(batch: RgbBatch, stainFromRgb: ArrayLike<number>, out?: Float32Array): Promise<Float32Array>;
  /** skimage combine_stains with rgb_from_stain, rounded to uint8. */
  reconvolve(stains: Float32Array, pixels: number, rgbFromStain: ArrayLike<number>, out?: Uint8Array): Promise<Uint8Array>;
  reinhardFit(batch: RgbBatch): Promise<LabStats[]>;
  reinhardTransform(batch: RgbBatch, target: LabStats, out?: Uint8Array): Promise<Uint8Array>;
  macenkoFit(batch: RgbBatch, p: MacenkoParams): Promise<StainFit[]>;
  vahadaneFit(batch: RgbBatch, p: VahadaneParams): Promise<StainFit[]>;
  stainFitFixed(batch: RgbBatch, he: ArrayLike<number>, od: OdParams): Promise<StainFit[]>;
  /** Normalizes each image with its own fit; images whose fit failed are copied unchanged. */
  stainTransform(
    batch: RgbBatch,
    fits: StainFit[],
    p: StainTransformParams,
    out?: Uint8Array,
    hOnly?: Uint8Array,
    eOnly?: Uint8Array,
  ): Promise<Uint8Array>;
  /** pixels·2 float32 (H, E) least-squares concentrations. */
  stainConcentrations(batch: RgbBatch, fits: StainFit[], od: OdParams, out?: Float32Array): Promise<Float32Array>;
}
