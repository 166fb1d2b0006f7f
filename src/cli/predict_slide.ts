/**
 * `histoflow predict-slide SLIDE --model M [--level L | --mpp M] [--stride S]
 *  [--map-downsample D] [--tta] [--threshold T] [--batch B] [--truth A] --out DIR [--json]`
 * Runs a model over a slide's tissue and writes the heatmap outputs
 * (src/heatmap/predict_slide.ts). A progress bar on a TTY; with --json the
 * last line of stdout is the summary JSON.
 */
import { checkOutputPath } from '../output.js';
import { mapAgreement } from '../heatmap/agreement.js';
import { BUILTIN_MODELS, loadSlideEnsemble } from '../heatmap/load_predictor.js';
import { predictSlide, type PredictSlideOptions } from '../heatmap/predict_slide.js';
import { ONNX_PROVIDERS } from '../models/onnx.js';
import { SLIDE_READERS } from '../slide/slide.js';
import { loadAnnotations } from '../tiling/tile.js';
import { RENAMED_TRAINING_BACKENDS, TRAINING_BACKENDS } from '../tfjs/backend.js';
import { memoryLimit } from '../memory_budget.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const PREDICT_SLIDE_FLAGS = defineFlags({
  model: {
    type: 'list', value: 'M',
    help: `a trained model folder (a classifier, or a segmentation model such as a unet: a pixel map),\nan ensemble folder of train --members, an X.onnx (with X.card.json), or ${BUILTIN_MODELS.join(', ')} (test/debug: each tile's,\nor each pixel's, redness); repeat it for an ensemble (the mean of the models' probabilities, per pixel\nfor segmentation models)`,
  },
  out: { type: 'string', value: 'DIR', help: 'output folder (required)' },
  level: { type: 'int', value: 'L', min: 0, help: 'pyramid level to read (default 0), or' },
  mpp: { type: 'number', value: 'M', help: 'target µm/px: the coarsest level at least that fine, resampled' },
  size: { type: 'int', value: 'N', min: 0, help: 'tile size; must be the model\'s input size (default: it)' },
  stride: { type: 'int', value: 'S', min: 0, help: 'step between tiles = cell size of the map (default: the tile size);\nfor a segmentation model, between its overlapping windows (default: half the window)' },
  'map-downsample': {
    type: 'int', value: 'D', min: 1,
    help: 'segmentation models: level px per pixel of the map (1 = full resolution at the level;\ndefault: the smallest power of two giving ≤ 16 Mpx within --max-memory)',
  },
  tta: { type: 'boolean', help: 'average the 8 dihedral views of each tile' },
  threshold: { type: 'number', value: 'T', help: 'probability at which a cell is tumour, 0..1 (default 0.5)' },
  'min-tissue': { type: 'number', value: 'F', help: 'predict tiles with tissue fraction ≥ F, 0..1 (default 0.5);\nfor a segmentation model, map pixels with less tissue are no data' },
  batch: { type: 'int', value: 'B', min: 0, help: 'tiles per model call (default 64)' },
  thumbnail: { type: 'int', value: 'N', min: 16, max: 16384, help: 'longer side of the thumbnail (mask and overlay; default 1024)' },
  detections: { type: 'boolean', help: 'also write detections.geojson: one QuPath detection per tile, measurement probability' },
  'overlay-downsample': { type: 'int', value: 'D', min: 1, help: 'level-0 px per px of overlay.tif (default: the smallest power of two giving ≤ 32 Mpx; 1 = level 0)' },
  'report-size': { type: 'int', value: 'N', min: 64, max: 32768, help: 'longer side of the report viewer\'s slide image (default 8192)' },
  backend: {
    type: 'choice', value: 'B', choices: ['auto', ...TRAINING_BACKENDS], renamed: RENAMED_TRAINING_BACKENDS, default: 'auto',
    help: 'TF.js backend for a trained model: {choices} (default {default})',
  },
  provider: { type: 'choice', value: 'P', choices: ONNX_PROVIDERS, help: 'onnxruntime execution provider for an ONNX model: {choices} (default cpu)' },
  reader: { type: 'choice', value: 'R', choices: SLIDE_READERS, help: '{choices} (default auto)' },
  'max-memory': { type: 'string', value: 'SIZE', help: 'refuse a plan that needs more memory (e.g. 512M, 8G; default $HISTOFLOW_MAX_MEMORY, else 2G)' },
  truth: {
    type: 'string', value: 'A',
    help: 'annotations to score the map against (GeoJSON, ASAP XML or a synth slide\'s S.json; level-0 px):\nDice and IoU of the map at --threshold, cell by cell on its own grid (exclusion regions left out)',
  },
  json: { type: 'boolean', help: 'print the summary as JSON (last line), no progress' },
});

export const PREDICT_SLIDE_HELP = `Usage: histoflow predict-slide SLIDE --model M --out DIR [options]

Tile the slide's tissue, run the model on every tile and write into DIR:
probability.png (grey = 255·p, alpha 0 = no tissue; one pixel per stride;
for a segmentation model, a pixel map stitched from overlapping windows with
a smooth weight, one pixel per --map-downsample level px),
probability.f32 + probability.json (raw little-endian float32, NaN = no
tissue, and its header), overlay.png (thumbnail + viridis map + colour bar),
probability.npy (the same map for numpy.load), overlay.tif (the map in
viridis, tiled pyramidal RGBA TIFF over the slide, downsample in summary.json),
thumbnail.png, regions.geojson (regions ≥ threshold as QuPath annotations,
level-0 px), tiles.csv, report.html + report_files/ (zoomable viewer; opens
from disk), summary.json, and with --detections detections.geojson. Nothing is
left in DIR on error.

${optionsHelp(PREDICT_SLIDE_FLAGS)}`;

export async function predictSlideCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('predict-slide', PREDICT_SLIDE_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(PREDICT_SLIDE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError('Expected one slide (histoflow predict-slide SLIDE --model M --out DIR)');
  if (!values.model?.length) throw new RangeError(`Expected --model M (a trained model folder, or one of ${BUILTIN_MODELS.join(', ')})`);
  if (!values.out) throw new RangeError('Expected --out DIR');
  await checkOutputPath('--out', values.out, 'folder');
  // Read before the slide is: a bad --truth fails in a second, not after the prediction.
  const truthPolygons = values.truth === undefined ? undefined : await loadAnnotations(values.truth).catch((e: Error) => {
    throw Object.assign(new (e.constructor as ErrorConstructor)(`--truth: ${e.message}`), { cause: e });
  });
  const options: PredictSlideOptions = {
    out: values.out,
    level: values.level,
    mpp: values.mpp,
    size: values.size,
    stride: values.stride,
    mapDownsample: values['map-downsample'],
    tta: values.tta,
    threshold: values.threshold,
    minTissue: values['min-tissue'],
    batchSize: values.batch,
    reader: values.reader,
    maxMemory: values['max-memory'] === undefined ? undefined : memoryLimit(values['max-memory']),
    tissue: values.thumbnail === undefined ? undefined : { maxSize: values.thumbnail },
    detections: values.detections,
    overlayDownsample: values['overlay-downsample'],
    reportSize: values['report-size'],
  };
  for (const k of Object.keys(options) as (keyof PredictSlideOptions)[]) if (options[k] === undefined) delete options[k];

  const quiet = values.json;
  const predictor = await loadSlideEnsemble(values.model, {
    backend: values.backend, ...(options.batchSize ? { batchSize: options.batchSize } : {}), ...(values.provider ? { provider: values.provider } : {}),
  });
  let progress: Progress | undefined;
  let shown = 0;
  options.onProgress = (done, total) => {
    progress ??= new Progress('predict', total, { quiet });
    progress.tick(done - shown);
    shown = done;
  };
  let writing: Progress | undefined;
  options.onWrite = (done, total, next) => {
    if (!writing) {
      // Prediction is over: its bar keeps its line.
      progress?.end();
      progress = undefined;
      writing = new Progress('write', total, { quiet });
    }
    writing.tick(done === 0 ? 0 : 1, next);
    if (done === total) writing.end();
  };
  const result = await predictSlide(positionals[0]!, predictor, options);
  progress?.end();
  const truth = truthPolygons === undefined ? undefined : await mapAgreement(values.out, truthPolygons!);
  if (quiet) {
    process.stdout.write(`${JSON.stringify(truth ? { ...result, truth } : result)}\n`);
  } else {
    const map = result.mapKind === 'pixels'
      ? `${result.tiles} windows, pixel map ${result.mapWidth}x${result.mapHeight}${result.mapMpp ? ` at ${result.mapMpp.toFixed(2)} µm/px` : ''}`
      : `${result.tiles} tiles`;
    status(false, `${map}, ${result.regions} regions ≥ ${result.threshold}, tumour ${(100 * result.tumourFraction).toFixed(1)} % of the analysed tissue, ` +
      `max p ${result.maxProbability.toFixed(3)}, model ${result.model}${result.tta ? ' (TTA)' : ''}, ${result.seconds.toFixed(1)} s`);
    if (truth) {
      status(false, `against ${values.truth}: Dice ${truth.dice.toFixed(4)}, IoU ${truth.iou.toFixed(4)} at p ≥ ${truth.threshold} ` +
        `(${truth.cells} cells of ${truth.cellSizeLevel0} level-0 px; tumour: ${truth.truthCells} true, ${truth.predictedCells} predicted)`);
    }
    status(false, `open ${result.outputs.report}`);
  }
  return 0;
}
