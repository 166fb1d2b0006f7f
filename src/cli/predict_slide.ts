/**
 * `histoflow predict-slide SLIDE --model M [--level L | --mpp M] [--stride S]
 *  [--tta] [--threshold T] [--batch B] --out DIR [--json]`
 * Runs a model over a slide's tissue and writes the heatmap outputs
 * (src/heatmap/predict_slide.ts). A progress bar on a TTY; with --json the
 * last line of stdout is the summary JSON.
 */
import { parseArgs } from 'node:util';

import { checkInteger, checkNumber, checkOneOf } from '../errors.js';
import { BUILTIN_MODELS, loadSlidePredictor } from '../heatmap/load_predictor.js';
import { predictSlide, type PredictSlideOptions } from '../heatmap/predict_slide.js';
import { SLIDE_READERS } from '../slide/slide.js';
import { TRAINING_BACKENDS } from '../tfjs/backend.js';
import { Progress, status } from './progress.js';

export const PREDICT_SLIDE_HELP = `Usage: histoflow predict-slide SLIDE --model M --out DIR [options]

Tile the slide's tissue, run the model on every tile and write into DIR:
probability.png (grey = 255·p, alpha 0 = no tissue; one pixel per stride),
probability.f32 + probability.json (raw little-endian float32, NaN = no
tissue, and its header), overlay.png (thumbnail + viridis map + colour bar),
thumbnail.png, regions.geojson (regions ≥ threshold, level-0 px), tiles.csv,
report.html (self-contained) and summary.json. Nothing is left in DIR on error.

Options:
  --model M         a trained model folder, or ${BUILTIN_MODELS.join(', ')} (test/debug: each tile's mean redness)
  --level L         pyramid level to read (default 0), or
  --mpp M           target µm/px: the coarsest level at least that fine, resampled
  --size N          tile size; must be the model's input size (default: it)
  --stride S        step between tiles = cell size of the map (default: the tile size)
  --tta             average the 8 dihedral views of each tile
  --threshold T     probability at which a cell is tumour, 0..1 (default 0.5)
  --min-tissue F    predict tiles with tissue fraction ≥ F, 0..1 (default 0.5)
  --batch B         tiles per model call (default 64)
  --thumbnail N     longer side of the thumbnail (mask and overlay; default 1024)
  --backend B       TF.js backend for a trained model: auto | tensorflow | native | cpu (default auto)
  --reader R        ${SLIDE_READERS.join(' | ')} (default auto)
  --json            print the summary as JSON (last line), no progress
  -h, --help        this help
`;

export async function predictSlideCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      model: { type: 'string' },
      out: { type: 'string' },
      level: { type: 'string' },
      mpp: { type: 'string' },
      size: { type: 'string' },
      stride: { type: 'string' },
      tta: { type: 'boolean', default: false },
      threshold: { type: 'string' },
      'min-tissue': { type: 'string' },
      batch: { type: 'string' },
      thumbnail: { type: 'string' },
      reader: { type: 'string' },
      backend: { type: 'string', default: 'auto' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(PREDICT_SLIDE_HELP);
    return 0;
  }
  if (positionals.length !== 1) throw new RangeError('Expected one slide (histoflow predict-slide SLIDE --model M --out DIR)');
  if (!values.model) throw new RangeError('Expected --model M (a trained model folder, or builtin:redness)');
  if (!values.out) throw new RangeError('Expected --out DIR');
  const num = (flag: string, v: string | undefined) => (v === undefined ? undefined : checkNumber(flag, Number(v)));
  const int = (flag: string, v: string | undefined) => (v === undefined ? undefined : checkInteger(flag, Number(v), 0));
  const options: PredictSlideOptions = {
    out: values.out,
    level: int('--level', values.level),
    mpp: num('--mpp', values.mpp),
    size: int('--size', values.size),
    stride: int('--stride', values.stride),
    tta: values.tta,
    threshold: num('--threshold', values.threshold),
    minTissue: num('--min-tissue', values['min-tissue']),
    batchSize: int('--batch', values.batch),
    reader: values.reader === undefined ? undefined : checkOneOf('--reader', values.reader, SLIDE_READERS),
    tissue: values.thumbnail === undefined ? undefined : { maxSize: checkInteger('--thumbnail', Number(values.thumbnail), 16, 16384) },
  };
  for (const k of Object.keys(options) as (keyof PredictSlideOptions)[]) if (options[k] === undefined) delete options[k];

  const quiet = values.json;
  const backend = checkOneOf('--backend', values.backend, ['auto', ...TRAINING_BACKENDS] as const);
  const predictor = await loadSlidePredictor(values.model, { backend, ...(options.batchSize ? { batchSize: options.batchSize } : {}) });
  let progress: Progress | undefined;
  let shown = 0;
  options.onProgress = (done, total) => {
    progress ??= new Progress('predict', total, { quiet });
    progress.tick(done - shown);
    shown = done;
  };
  const result = await predictSlide(positionals[0]!, predictor, options);
  progress?.end();
  if (quiet) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    status(false, `${result.tiles} tiles, ${result.regions} regions ≥ ${result.threshold}, tumour ${(100 * result.tumourFraction).toFixed(1)} % of the analysed tissue, ` +
      `max p ${result.maxProbability.toFixed(3)}, model ${result.model}${result.tta ? ' (TTA)' : ''}, ${result.seconds.toFixed(1)} s`);
    status(false, `open ${result.outputs.report}`);
  }
  return 0;
}
