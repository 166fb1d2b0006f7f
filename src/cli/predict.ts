/**
 * `histoflow predict --model M --data D --out submission.csv [--split S] [--tta | --tta-crops] [--batch B]
 *  [--backend B] [--fill-unreadable P] [--json]` (npm run predict -- …)
 * The Kaggle submission of a model's probabilities (src/inference/submission.ts).
 */
import { DATA_SPLITS } from '../inference/data.js';
import { ModelNotFoundError } from '../models/io.js';
import { COMBINE_RULES } from '../inference/score.js';
import { ONNX_PROVIDERS } from '../models/onnx.js';
import { PredictionHolesError, checkOutFile, predictSubmission } from '../inference/submission.js';
import { RENAMED_TRAINING_BACKENDS, TRAINING_BACKENDS } from '../tfjs/backend.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { Progress, status } from './progress.js';

export const PREDICT_FLAGS = defineFlags({
  model: { type: 'list', value: 'M', help: 'run folder, model folder, model.json, X.onnx or an ensemble\nfolder of train --members (required; repeat it for an ensemble)' },
  combine: { type: 'choice', value: 'C', choices: COMBINE_RULES, default: 'mean', help: 'an ensemble\'s rule: mean of probabilities, or of ranks\n(default {default})' },
  data: { type: 'string', value: 'D', help: 'dataset (required)' },
  out: { type: 'string', value: 'FILE', help: 'the CSV to write (required)' },
  split: { type: 'choice', value: 'S', choices: DATA_SPLITS, default: 'test', help: '{choices} (default {default})' },
  tta: { type: 'boolean', help: 'average the 8 flips/rotations of each image' },
  'tta-crops': { type: 'boolean', help: 'TTA also over the crop windows of a model trained on random\ncrops (train --crop): the 8 views at the centre and the four\ncorners, 40 views (other models: the 8)' },
  batch: { type: 'int', value: 'B', min: 1, max: 65536, default: 64, help: 'images per forward pass (default {default})' },
  backend: { type: 'choice', value: 'B', choices: ['auto', ...TRAINING_BACKENDS], renamed: RENAMED_TRAINING_BACKENDS, default: 'auto', help: 'TF.js models: {choices} (default {default})' },
  provider: { type: 'choice', value: 'P', choices: ONNX_PROVIDERS, help: 'ONNX models: onnxruntime\'s execution provider, {choices} (default cpu)' },
  'fill-unreadable': { type: 'number', value: 'P', min: 0, max: 1, help: 'write P (0..1) for ids without a readable image' },
  json: { type: 'boolean', help: 'print one JSON summary line, no progress' },
});

export const PREDICT_HELP = `Usage: histoflow predict --model M --data D --out FILE.csv [options]
       npm run predict -- --model runs/NAME --data D --out submission.csv

Write the Kaggle submission (id,label with label = P(tumour), one row per image)
of a trained model. M is a training run folder (its best/ checkpoint), a model
folder or its model.json, or an ONNX model (X.onnx with its card X.card.json,
or a folder with model.onnx), run by onnxruntime-node, or the folder of an
ensemble that train --members wrote (its members, as if each were given).
D is a Kaggle folder (test/<id>.tif, rows in sample_submission.csv's order),
a packed file (ids = record ids) or PatchCamelyon HDF5 (an ..._x.h5 or
.h5.gz file, or a folder with --split; ids = indices).
If an image is missing or cannot be decoded, the ids are listed and nothing is
written, unless --fill-unreadable P writes probability P for them.
The CSV is written atomically.

${optionsHelp(PREDICT_FLAGS)}`;

/** A missing or unreadable model, said in the flag's terms. */
export function modelFlagError(e: unknown): unknown {
  return e instanceof ModelNotFoundError ? new Error(`--model: ${e.message}`) : e;
}

export async function predictCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('predict', PREDICT_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(PREDICT_HELP);
    return 0;
  }
  if (positionals.length) throw new RangeError(`Expected no positional arguments (use --model, --data, --out) but received '${positionals.join(' ')}'`);
  for (const flag of ['model', 'data', 'out'] as const) {
    if (!values[flag]?.length) throw new TypeError(`Expected a path for --${flag} but received none`);
  }
  await checkOutFile('--out', values.out);
  const { split, backend, provider, batch: batchSize, 'fill-unreadable': fill } = values;
  const quiet = values.json;
  let progress: Progress | undefined;
  let shown = 0;
  try {
    const r = await predictSubmission({
      model: values.model!, combine: values.combine, data: values.data!, out: values.out!, split, tta: values['tta-crops'] ? 'crops' : values.tta, batchSize, backend,
      ...(provider === undefined ? {} : { provider }),
      ...(fill === undefined ? {} : { fillUnreadable: fill }),
      onProgress: (done, total) => {
        progress ??= new Progress(values['tta-crops'] ? 'predict (tta, crops)' : values.tta ? 'predict (tta)' : 'predict', total, { quiet });
        progress.tick(done - shown);
        shown = done;
      },
    });
    progress?.end();
    if (quiet) {
      const { out, images, tta, seconds, images_per_s, backend: used, skipped, scored, filled, model } = r;
      process.stdout.write(`${JSON.stringify({ out, images, tta, seconds, images_per_s, backend: used, skipped, scored, filled, model })}\n`);
      return 0;
    }
    status(false, `${r.out}: ${r.images} rows (${r.scored} scored${r.filled ? `, ${r.filled} filled with ${fill}` : ''}) by ${r.model} on ${r.backend}` +
      `${r.tta === 'crops' ? ' with TTA (8 views at each crop window)' : r.tta ? ' with TTA' : ''}, ${r.images_per_s.toFixed(1)} images/s (${r.seconds.toFixed(1)} s)`);
    for (const s of r.skipped.slice(0, 20)) status(false, `  ${s.id ?? s.path ?? ''}: ${s.reason}`);
    if (r.skipped.length > 20) status(false, `  … and ${r.skipped.length - 20} more (--json lists all)`);
    return 0;
  } catch (e) {
    progress?.end();
    if (e instanceof PredictionHolesError) {
      if (quiet) process.stdout.write(`${JSON.stringify({ error: e.message, skipped: e.skipped })}\n`);
      else for (const s of e.skipped.slice(0, 20)) status(false, `  ${s.id}: ${s.reason}`);
    }
    throw modelFlagError(e);
  }
}
