/**
 * histoflow's public API. Every function validates its options at the door
 * (TypeError / RangeError naming the parameter) and runs on the kernel
 * backend chosen by `backend: 'auto' | 'cuda' | 'cpu' | 'gpujs' | 'js'`.
 */
export { checkBatch, imageAt, poolPixels, readImage, stackImages, writeImage, type RgbBatch } from './image.js';
export {
  RGB_FROM_HED,
  deconvolve,
  odToRgb,
  reconvolve,
  rgb2hed,
  rgbToOd,
  stainMatrix,
  type StainMatrix,
} from './color/deconvolution.js';
export {
  STAIN_METHODS,
  fitStainTarget,
  fitStains,
  normalizeStain,
  type NormalizeOptions,
  type NormalizeResult,
  type StainMethod,
  type StainOptions,
  type StainTarget,
} from './stain/normalize.js';
export { REFERENCE_HE, REFERENCE_MAX_C, RUIFROK_HE, STAIN_PRESETS, type StainPreset } from './stain/presets.js';
export {
  KERNEL_BACKENDS,
  availableKernelBackends,
  chooseKernelBackend,
  kernelBackend,
  kernelBackendStatus,
  type KernelBackendChoice,
} from './kernels/registry.js';
export type { FitStatus, KernelBackend, KernelBackendName, LabStats, OdParams, StainFit } from './kernels/types.js';
export { info, formatInfo, type HistoflowInfo } from './info.js';
export {
  augment,
  chooseAugmentBackend,
  type AugmentBackendName,
  type AugmentOptions,
  type AugmentResult,
} from './augment/augment.js';
export {
  CROP_MODES,
  HED_PRESETS,
  IMAGENET_NORMALIZE,
  PIPELINE_OPS,
  checkPipeline,
  outputShape,
  type AugmentPipeline,
  type AugmentPipelineInput,
  type AugmentShape,
  type CropMode,
  type HedPreset,
} from './augment/pipeline.js';
export {
  drawBatchParams,
  identityParams,
  ttaParams,
  type AugmentBatchParams,
  type AugmentImageParams,
} from './augment/params.js';
export { augmentReference, noiseValue } from './augment/reference.js';
export {
  BatchLoader,
  InMemorySource,
  MAX_PREFETCH,
  epochOrder,
  type ArrayBatch,
  type BatchLoaderOptions,
  type BatchLoaderStats,
  type BatchOf,
  type BatchSource,
  type EpochBatches,
  type LoadedBatch,
  type SourceChunk,
  type TensorBatch,
} from './augment/loader.js';
export {
  SHARED_STORAGE_BACKENDS,
  TFJS_PACKAGES,
  batchToTensor,
  importTfjs,
  labelsToTensor,
  sharesStorage,
  tensorCopy,
  type BatchShape,
  type LoadedTfjs,
  type TensorCopy,
  type TfLike,
} from './augment/tensor.js';
export {
  TRAINING_BACKENDS,
  selectTrainingBackend,
  trainingBackendStatus,
  useTrainingBackend,
  type TrainingBackend,
  type TrainingBackendChoice,
  type TrainingBackendStatus,
} from './tfjs/backend.js';
export { NATIVE_BACKEND, nativeBackendStatus, nativeKernelNames, registerNativeBackend, setNnEngine } from './tfjs/native_backend.js';
export { referenceCnn, type ReferenceCnnOptions } from './models/reference_cnn.js';
