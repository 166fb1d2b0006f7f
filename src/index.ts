/**
 * histoflow's public API. Every function validates its options at the door
 * (TypeError / RangeError naming the parameter) and runs on the kernel
 * backend chosen by `backend: 'auto' | 'cuda' | 'cpu' | 'gpujs' | 'js'`.
 */
export {
  OPAQUE_ALPHA,
  checkBatch,
  imageAt,
  opaqueMask,
  pixelsWhere,
  poolPixels,
  readImage,
  readImageHeader,
  readImageWithAlpha,
  stackImages,
  writeImage,
  type ImageHeader,
  type ImageWithAlpha,
  type RgbBatch,
} from './image.js';
export { DEFAULT_MAX_MEMORY, MAX_MEMORY_ENV, MemoryLimitError, memoryLimit, type MemoryLimit } from './memory_budget.js';
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
  REINHARD_MIN_STD,
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
  kernelFamily,
  kernelBackendStatus,
  type KernelBackendChoice,
} from './kernels/registry.js';
export type { FitStatus, KernelBackend, KernelBackendName, LabStats, OdParams, StainFit } from './kernels/types.js';
export { info, formatInfo, type HistoflowInfo } from './info.js';
export { UnavailableError } from './errors.js';
export { backendStatus, chooseBackend, type BackendFamily, type BackendStatus, type Chosen } from './backend_choice.js';
export {
  augment,
  augmentFamily,
  chooseAugmentBackend,
  ttaViews,
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
  checkTta,
  ttaParams,
  ttaWindows,
  type AugmentBatchParams,
  type AugmentImageParams,
  type Tta,
} from './augment/params.js';
export { augmentJs, elasticField, noiseValue } from './augment/js_augment.js';
export { ELASTIC_DEFAULTS } from './augment/pipeline.js';
export { drawIndexedParams } from './augment/params.js';
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
  FLAG_COMPLETE,
  LABEL_DTYPES,
  PACKED_HEADER_BYTES,
  PACKED_MAGIC,
  PACKED_VERSION,
  PackedFormatError,
  UNLABELLED,
  decodeHeader as decodePackedHeader,
  type LabelDtype,
  type PackedHeader,
  type PackedRecordMeta,
} from './dataset/packed_format.js';
export {
  PackedDataset,
  type PackedBatch,
  type PackedBatchesOptions,
  type PackedMetadata,
  type PackedOpenOptions,
} from './dataset/packed.js';
export { PackedWriter, type PackedRecords, type PackedWriterOptions } from './dataset/packed_writer.js';
export { tileKey, type TileMeta, type TileSink, type TileSinkResult } from './dataset/tile_sink.js';
export {
  MANIFEST_COLUMNS,
  TILE_FORMATS,
  TileFolderWriter,
  manifestCsv,
  type ManifestRow,
  type TileFolderOptions,
  type TileFormat,
} from './dataset/tile_folder.js';
export {
  detectSlideTissue,
  detectTissue,
  tissueFamily,
  type ThumbnailSource,
  type TissueMask,
} from './tissue/detect.js';
export {
  TISSUE_BACKENDS,
  TISSUE_CHANNELS,
  type TissueBackend,
  type TissueChannel,
  type TissueOptions,
} from './tissue/options.js';
export {
  integralImage,
  planTiling,
  tileGrid,
  tissueFraction,
  type GridMask,
  type GridRequest,
  type GridTile,
  type LevelSize,
  type Rect,
  type TileGrid,
  type TilingPlan,
  type TilingRequest,
} from './tiling/grid.js';
export {
  AnnotationIndex,
  EXCLUSION_LABEL,
  UNNAMED_LABEL,
  clipRing,
  labelTile,
  parseAnnotations,
  polygonOf,
  polygonRectArea,
  ringArea,
  tileCoverage,
  type AnnotationPolygon,
  type Annotations,
  type TileLabel,
  type TileLabelOptions,
} from './tiling/annotations.js';
export { asapLabel, parseAsapXml } from './tiling/asap.js';
export {
  DEFAULT_CACHE_BYTES,
  MAX_REGION_PIXELS,
  SLIDE_READERS,
  openSlide,
  type OpenSlideOptions,
  type Slide,
  type SlideLevel,
  type SlideReaderChoice,
  type SlideReaderName,
  type TileCacheStats,
} from './slide/slide.js';
export {
  TRAINING_BACKENDS,
  selectTrainingBackend,
  trainingFamily,
  trainingBackendStatus,
  useTrainingBackend,
  type TrainingBackend,
  type TrainingBackendChoice,
  type TrainingBackendStatus,
} from './tfjs/backend.js';
export { NATIVE_BACKEND, nativeBackendStatus, nativeKernelNames, registerNativeBackend, setNnEngine, setNnWinograd } from './tfjs/native_backend.js';
export { baselineCnn, type BaselineCnnOptions } from './models/baseline_cnn.js';
export {
  TILE_OUTPUT_FORMATS,
  TILE_PNG_DEFAULTS,
  drawOverview,
  planSlideTiles,
  slideBatches,
  tileSlide,
  type PlannedTile,
  type SlideBatch,
  type SlideTilePlan,
  type TileOutputFormat,
  type TilePlanOptions,
  type TileReadOptions,
  type TileSlideOptions,
  type TileSlideResult,
} from './tiling/tile.js';
export { PNG_FILTERS, encodePng, writePngFiles, type PngFilter, type PngOptions } from './codec/png.js';
export {
  CENTRE_SIZE,
  HARD_NEGATIVE_SCENES,
  NEGATIVE_SCENES,
  POSITIVE_SCENES,
  inCentre,
  synthPatch,
  type Nucleus,
  type NucleusKind,
  type SynthPatch,
  type SynthPatchOptions,
  type SynthScene,
  type SynthTruth,
} from './synth/patches.js';
export { synthId, synthPatches, type SynthDatasetOptions, type SynthDatasetResult } from './synth/dataset.js';
export {
  MASK_DOWNSAMPLE,
  SYNTH_SLIDE_MPP,
  readSlideTruth,
  slideTruthPaths,
  synthSlide,
  type SlideTruth,
  type SynthSlideMeta,
  type SynthSlideOptions,
  type SynthSlideResult,
  type TruthMask,
} from './synth/slide.js';
export { readKaggleLayout, readLabelCsv, type DatasetEntry, type DatasetSkip, type KaggleLayout } from './dataset/kaggle.js';
export { MAX_GUNZIP_BYTES, PCAM_SPLITS, PcamReader, pcamFiles, type PcamSplit } from './dataset/pcam.js';
export { PACK_SOURCES, packDataset, type PackOptions, type PackResult, type PackSourceKind } from './dataset/pack.js';
export { stratifiedSplit, type Split, type SplitOptions } from './dataset/split.js';
export {
  accuracy,
  bootstrapCi,
  confusionMatrix,
  curveArea,
  quantile,
  rocAuc,
  rocCurve,
  type BootstrapOptions,
  type ConfidenceInterval,
  type ConfusionMatrix,
  type RocPoint,
} from './metrics/index.js';
export { dice, iou, resampleMask, type MaskGrid } from './metrics/index.js';
export { inspectDataset, patchFlags, type InspectOptions, type InspectResult, type PatchFlags } from './dataset/inspect.js';
export { predictSlide, type PredictSlideOptions, type PredictSlideResult } from './heatmap/predict_slide.js';
export {
  dihedralViews,
  rednessPredictor,
  withDihedralTta,
  type PredictOptions,
  type SlidePredictorSpec,
  type TilePredictor,
} from './heatmap/predictor.js';
export { ensembleSlidePredictor, loadSlideEnsemble, loadSlidePredictor } from './heatmap/load_predictor.js';
export { decodeProbabilityF32, probabilityMap, type ProbabilityMap } from './heatmap/probability_map.js';
export { tumourRegions, type RegionCollection, type RegionFeature } from './heatmap/regions.js';
export { planBatches } from './tiling/tile.js';
export { ImageFileSource, decodeImages, type ImageFile } from './dataset/image_files.js';
export { DATA_SPLITS, openScoringData, type DataSplit, type ScoringData } from './inference/data.js';
export { PredictionHolesError, predictSubmission, submissionCsv, type PredictSubmissionOptions, type PredictSubmissionResult } from './inference/submission.js';
export { EVALUATE_SPLITS, evaluateModel, type EvaluateOptions, type EvaluateSplit, type EvaluationReport } from './inference/evaluate.js';
export { BN_MOMENTUM, ZOO_MODELS, buildModel, compileForTraining, isZooModel, setDropoutSeeds, type BuildModelOptions, type BuiltModel, type ZooModel } from './models/zoo.js';
export { ModelNotFoundError, loadModel, saveModel, type LoadedModel, type ModelCard } from './models/io.js';
export { createPredictor, type Predictor } from './models/predict.js';
export {
  CHANNEL_ORDERS,
  ONNX_MODEL,
  ONNX_OUTPUTS,
  ONNX_PROVIDERS,
  createOnnxPredictor,
  loadOnnxModel,
  onnxCardPath,
  readOnnxCard,
  resolveOnnxModel,
  type ChannelOrder,
  type LoadedOnnxModel,
  type OnnxBackend,
  type OnnxCard,
  type OnnxOutput,
  type OnnxProvider,
} from './models/onnx.js';
export { openPredictor, type LoadedPredictor, type OpenPredictorOptions } from './inference/score.js';
export { train, binaryCrossEntropy, type TrainHooks, type TrainResult, type TrainState } from './train/train.js';
export { AUGMENT_PRESETS, DEFAULT_AUGMENT, type RunArgs, type TrainOptions } from './train/options.js';
export { LR_SCHEDULES, learningRateAt, getLearningRate, setLearningRate, type LrSchedule } from './train/schedule.js';
export { openTrainingData, SubsetSource, type TrainingData, type TrainingDataKind, type TrainingDataOptions } from './train/data.js';
export { BEST_DIR, LAST_DIR, METRICS_COLUMNS, type EpochMetrics } from './train/run_folder.js';

// Segmentation (issue 17): label masks from annotations, masks through augmentation, the UNet and its training.
export { MASK_BACKGROUND, MASK_IGNORE, MAX_MASK_LABELS, maskLabels, rasterizeLabels } from './tiling/masks.js';
export { readMaskedTiles, type MaskedTiles } from './dataset/masked_tiles.js';
export { MASK_TARGET_IGNORE, augmentMasks, geometryPipeline, maskTargets } from './augment/masks.js';
export { unet, type UnetOptions } from './models/unet.js';
export { modelTask, type ModelTask } from './models/zoo.js';
export { outputTask } from './models/io.js';
export { diceBceLoss, compileForSegmentation, segmentationScores } from './train/segment_loss.js';
export {
  TRAIN_TASKS, choosePositive, evaluateSegmentation, openSegmentationData, predictPixels, readMaskedTileSets,
  type SegmentationData, type SegmentationScores, type TrainTask,
} from './train/segment.js';
export { SEGMENT_METRICS_COLUMNS } from './train/run_folder.js';
