/**
 * The kernel contract shared by every backend (cuda, cpu, gpujs, js): the
 * KernelBackend interface. Its parameter objects are the addon's contract
 * (bindings/contract.ts), re-exported here; validation and defaults live in
 * src/stain and src/color, never here.
 */
export type * from '../../bindings/contract.js';
export { FitStatus } from '../../bindings/contract.js';
import type {
  RgbBatch,
  OdParams,
  StainFit,
  StainTransformParams,
  MacenkoParams,
  VahadaneParams,
  LabStats,
} from '../../bindings/contract.js';

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
