/**
 * The hand-written typed interface of histoflow.node (bindings/*.cc).
 * Parameter objects are the validated ones of contract.ts; outputs
 * are written into the caller's typed arrays, which are viewed in place (no
 * copy) and pinned until the returned Promise settles.
 */
import type {
  AugmentBatchParams,
  AugmentImageParams,
  LabStats,
  MacenkoParams,
  NativeTissueParams,
  OdParams,
  RgbBatch,
  StainFit,
  StainTransformParams,
  VahadaneParams,
} from './contract.js';
import type { NnAddon } from './nn_binding.js';

export type NativeDevice = 'cpu' | 'cuda';

export interface NativeBuildInfo {
  version?: string;
  cuda: boolean;
  cudaVersion: string;
  openmp: boolean;
  simd: string;
  compiler: string;
  /** The CPU level this file was compiled for: 'v2' | 'v3' | 'v4' (x86-64), 'native' or 'base'. */
  cpuLevel?: string;
  openslide: boolean;
  onednn: boolean;
  png: boolean;
  napiVersion: number;
  /** Async kernels hold V8 backing stores (zero-copy) rather than staging copies (bindings/common.h, ArrayPin). */
  v8BackingStores?: boolean;
  /** With V8 backing stores: the Node ABI (process.versions.modules) it was built for; another Node must not load it. */
  nodeModuleVersion?: number;
}

export interface NativeCudaDevice {
  index: number;
  name: string;
  totalMemory: number;
  computeCapability: string;
  multiprocessors: number;
}

/** A level as native/slide/openslide_reader.h reports it (tile sizes 0 when unknown). */
export interface NativeSlideLevel {
  width: number;
  height: number;
  downsample: number;
  tileWidth: number;
  tileHeight: number;
}

/** An OpenSlide handle (an External); reads after openslideClose reject. */
export type NativeSlideHandle = object & { readonly __brand: 'NativeSlideHandle' };

export interface NativeOpenSlide {
  handle: NativeSlideHandle;
  levels: NativeSlideLevel[];
  properties: Record<string, string>;
  associated: string[];
}

export interface NativeAddon {
  buildInfo(): NativeBuildInfo;
  cudaDevices(): { devices: NativeCudaDevice[]; reason: string };
  /** The x86-64 levels this CPU runs, lowest first ('v1' … 'v4'); empty off x86-64. */
  cpuLevels?(): string[];
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

  /** native/codec/png.h: whether the build has libdeflate (else encodePng rejects with HISTOFLOW_UNAVAILABLE). */
  readonly pngAvailable: boolean;
  /** One PNG file (8-bit RGB, zlib `level` 0..9, row filter) per image of the batch, encoded on the core's threads. */
  encodePng(batch: RgbBatch, level: number, filter: 'adaptive' | 'sub' | 'none'): Promise<Buffer[]>;
  /** Encodes image i to paths[i] atomically (temporary + rename), in parallel; resolves to the file sizes. Directories must exist. */
  writePngFiles(batch: RgbBatch, level: number, filter: 'adaptive' | 'sub' | 'none', paths: string[]): Promise<number[]>;

  /**
   * bindings/dataset.cc: bytes [offset, offset + length) of the file (default
   * all of it) mapped privately (copy-on-write), as an ArrayBuffer with no
   * copy; at most 2^32 bytes per mapping.
   */
  mapFile(path: string, offset?: number, length?: number): { buffer: ArrayBuffer; handle: NativeMappingHandle };
  /** Detaches `buffer` (its views become empty) and unmaps the file now; the finalizers free the rest. */
  releaseMapping(handle: NativeMappingHandle, buffer: ArrayBuffer): void;

  /** native/tissue/tissue_mask.h: the detection chain on one image; out holds height·width bytes (0 | 255). */
  tissueMask(image: RgbBatch, params: NativeTissueParams, out: Uint8Array): Promise<{ threshold: number; tissuePixels: number }>;
  /** Otsu's threshold of a 256-bin histogram (synchronous). */
  otsuThreshold(histogram: Float64Array): number;
  /** One step of the chain on a single-channel image (median) or a mask (dilate, erode, components). */
  maskFilter(
    op: 'median' | 'dilate' | 'erode' | 'components',
    mask: Uint8Array,
    height: number,
    width: number,
    params: { size?: number; radius?: number; minObjectArea?: number; maxHoleArea?: number },
    out: Uint8Array,
  ): Promise<void>;
  /** native/slide/openslide_reader.h. Without OpenSlide: version '' and detect '' ; open rejects (HISTOFLOW_UNAVAILABLE). */
  openslideVersion(): string;
  openslideDetect(path: string): Promise<string>;
  openslideOpen(path: string): Promise<NativeOpenSlide>;
  /** x, y, width, height in the level's own pixels; out holds width·height·3 RGB bytes (over white). */
  openslideReadRegion(handle: NativeSlideHandle, level: number, x: number, y: number, width: number, height: number, out: Uint8Array): Promise<void>;
  openslideReadAssociated(handle: NativeSlideHandle, name: string): Promise<{ data: Uint8Array; width: number; height: number }>;
  openslideClose(handle: NativeSlideHandle): void;

  /** native/nn (bindings/nn.cc): the native TF.js backend's synchronous kernels. */
  nn: NnAddon;
}

/** Opaque: the addon's reference to a mapping. */
export type NativeMappingHandle = { readonly __brand: 'NativeMappingHandle' };

export type { NnAddon, NnInfo } from './nn_binding.js';
