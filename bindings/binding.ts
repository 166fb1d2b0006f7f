/**
 * The hand-written typed interface of histoflow.node (bindings/*.cc).
 * Parameter objects are the validated ones of src/kernels/types.ts; outputs
 * are written into the caller's typed arrays, which are viewed in place (no
 * copy) and pinned until the returned Promise settles.
 */
import type {
  LabStats,
  MacenkoParams,
  OdParams,
  RgbBatch,
  StainFit,
  StainTransformParams,
  VahadaneParams,
} from '../src/kernels/types.js';
import type { AugmentBatchParams, AugmentImageParams } from '../src/augment/params.js';
import type { NnAddon } from './nn_binding.js';

export type NativeDevice = 'cpu' | 'cuda';

export interface NativeBuildInfo {
  version?: string;
  cuda: boolean;
  cudaVersion: string;
  openmp: boolean;
  simd: string;
  compiler: string;
  openslide: boolean;
  onednn: boolean;
  napiVersion: number;
}

export interface NativeCudaDevice {
  index: number;
  name: string;
  totalMemory: number;
  computeCapability: string;
  multiprocessors: number;
}

export interface NativeAddon {
  buildInfo(): NativeBuildInfo;
  cudaDevices(): { devices: NativeCudaDevice[]; reason: string };
  getThreads(): number;
  setThreads(n: number): void;

  rgbToOd(device: NativeDevice, batch: RgbBatch, od: OdParams, out: Float32Array): Promise<void>;
  odToRgb(device: NativeDevice, od: Float32Array, pixels: number, p: OdParams, out: Uint8Array): Promise<void>;
  deconvolve(device: NativeDevice, batch: RgbBatch, stainFromRgb: ArrayLike<number>, out: Float32Array): Promise<void>;
  reconvolve(device: NativeDevice, stains: Float32Array, pixels: number, rgbFromStain: ArrayLike<number>, out: Uint8Array): Promise<void>;

  reinhardFit(device: NativeDevice, batch: RgbBatch): Promise<LabStats[]>;
  reinhardTransform(device: NativeDevice, batch: RgbBatch, target: LabStats, out: Uint8Array): Promise<void>;
  macenkoFit(device: NativeDevice, batch: RgbBatch, p: MacenkoParams): Promise<StainFit[]>;
  vahadaneFit(device: NativeDevice, batch: RgbBatch, p: VahadaneParams): Promise<StainFit[]>;
  stainFitFixed(device: NativeDevice, batch: RgbBatch, he: ArrayLike<number>, od: OdParams): Promise<StainFit[]>;
  stainTransform(
    device: NativeDevice,
    batch: RgbBatch,
    fits: StainFit[],
    p: StainTransformParams,
    out: Uint8Array,
    hOnly: Uint8Array | null,
    eOnly: Uint8Array | null,
  ): Promise<void>;
  stainConcentrations(device: NativeDevice, batch: RgbBatch, fits: StainFit[], od: OdParams, out: Float32Array): Promise<void>;

  /** native/augment/augment.h: one params object per image; out holds n·outH·outW·3 floats. */
  augment(device: NativeDevice, batch: RgbBatch, params: AugmentImageParams[], batchParams: AugmentBatchParams, out: Float32Array): Promise<void>;

  /** native/nn (bindings/nn.cc): the native TF.js backend's synchronous kernels. */
  nn: NnAddon;
}

export type { NnAddon, NnInfo } from './nn_binding.js';
