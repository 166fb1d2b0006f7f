/**
 * `histoflow evaluate --model M [--data D] [--split S] [--tta | --tta-crops] [--batch B] [--backend B]
 *  [--out DIR] [--bootstrap N] [--seed S] [--json]` (npm run evaluate -- …)
 * AUC with a bootstrap CI, accuracy, confusion matrix and ROC curve of a model
 * on labelled data (src/inference/evaluate.ts).
 */
import { checkOutputPath } from '../output.js';
import { EVALUATE_SPLITS, evaluateModel } from '../inference/evaluate.js';
import { COMBINE_RULES } from '../inference/score.js';
import { ONNX_PROVIDERS } from '../models/onnx.js';
import { RENAMED_TRAINING_BACKENDS, TRAINING_BACKENDS } from '../tfjs/backend.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';
import { modelFlagError } from './predict.js';
import { Progress, status } from './progress.js';

export const EVALUATE_FLAGS = defineFlags({
  model: { type: 'list', value: 'M', help: 'run folder, model folder, model.json, X.onnx or an ensemble\nfolder of train --members (required; repeat it for an ensemble)' },
  combine: { type: 'choice', value: 'C', choices: COMBINE_RULES, default: 'mean', help: 'an ensemble\'s rule: mean of probabilities, or of ranks\n(default {default})' },
  data: { type: 'string', value: 'D', help: 'labelled dataset' },
  split: {
    type: 'choice', value: 'S', choices: EVALUATE_SPLITS,
    help: '{choices} (default: val for a run without --data,\nelse test when D has labelled test images, else train)',
  },
  tta: { type: 'boolean', help: 'average the 8 flips/rotations of each image' },
  'tta-crops': { type: 'boolean', help: 'TTA also over the crop windows of a model trained on random\ncrops (train --crop): the 8 views at the centre and the four\ncorners, 40 views (other models: the 8)' },
  batch: { type: 'int', value: 'B', min: 1, max: 65536, default: 64, help: 'images per forward pass (default {default})' },
  backend: { type: 'choice', value: 'B', choices: ['auto', ...TRAINING_BACKENDS], renamed: RENAMED_TRAINING_BACKENDS, default: 'auto', help: 'TF.js models: {choices} (default {default})' },
  provider: { type: 'choice', value: 'P', choices: ONNX_PROVIDERS, help: 'ONNX models: onnxruntime\'s execution provider, {choices} (default cpu)' },
  out: { type: 'string', value: 'DIR', help: 'output folder (default: the run\'s or model\'s folder/evaluation)' },
  bootstrap: { type: 'int', value: 'N', min: 1, max: 1_000_000, default: 1000, help: 'bootstrap resamples for the AUC interval (default {default})' },
  seed: { type: 'int', value: 'S', min: 0, default: 0, help: 'bootstrap seed (default {default})' },
  json: { type: 'boolean', help: 'print evaluation.json\'s content as one line, no progress' },
});

export const EVALUATE_HELP = `Usage: histoflow evaluate --model M [--data D] [options]
       npm run evaluate -- --model runs/NAME --data D

Score a trained model on labelled data: ROC AUC with a bootstrap 95% confidence
interval, accuracy at 0.5, the confusion matrix, the ROC curve (roc.png,
roc.csv), every score (scores.csv) and evaluation.json, in --out.
M is a training run folder (its best/ checkpoint), a model folder or its
model.json, or an ONNX model (X.onnx with its card X.card.json, or a folder
with model.onnx), run by onnxruntime-node, or the folder of an ensemble that
train --members wrote (its members, as if each were given). D is a Kaggle
folder (test/ with test_labels.csv, or train/ with train_labels.csv), a packed
file with labels, or PatchCamelyon HDF5 (.h5 or .h5.gz).
--split val scores the validation ids of the run (runs/NAME/split.json) on
the data the run trained on (or D); it is the default when M is a run or
ensemble folder and no --data is given. Unreadable or unlabelled images are left out and listed.

${optionsHelp(EVALUATE_FLAGS)}`;

export async function evaluateCommand(argv: string[]): Promise<number> {
  const { values, positionals, help } = parseFlags('evaluate', EVALUATE_FLAGS, argv, { positionals: true });
  if (help) {
    process.stdout.write(EVALUATE_HELP);
    return 0;
  }
  if (positionals.length) throw new RangeError(`Expected no positional arguments (use --model, --data) but received '${positionals.join(' ')}'`);
  if (!values.model?.length) throw new TypeError('Expected a path for --model but received none');
  if (values.data === '') throw new TypeError('Expected a path for --data but received an empty string');
  if (values.out === '') throw new TypeError('Expected a folder for --out but received an empty string');
  if (values.out !== undefined) await checkOutputPath('--out', values.out, 'folder');
  const { split, backend, provider, batch: batchSize, bootstrap, seed } = values;
  const quiet = values.json;
  let progress: Progress | undefined;
  let shown = 0;
  const r = await evaluateModel({
    model: values.model, combine: values.combine, tta: values['tta-crops'] ? 'crops' : values.tta, batchSize, backend, bootstrap, seed,
    ...(provider === undefined ? {} : { provider }),
    ...(values.data === undefined ? {} : { data: values.data }),
    ...(split === undefined ? {} : { split }),
    ...(values.out === undefined ? {} : { out: values.out }),
    onProgress: (done, total) => {
      progress ??= new Progress(values['tta-crops'] ? 'evaluate (tta, crops)' : values.tta ? 'evaluate (tta)' : 'evaluate', total, { quiet });
      progress.tick(done - shown);
      shown = done;
    },
  }).catch((e: unknown) => {
    progress?.end();
    throw modelFlagError(e);
  });
  progress?.end();
  if (quiet) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const c = r.confusion;
  status(false, `${r.description}: ${r.n} images (${r.positives} positive, ${r.negatives} negative), ${r.model} on ${r.backend}${r.tta === 'crops' ? ' with TTA (8 views at each crop window)' : r.tta ? ' with TTA' : ''}`);
  status(false, `AUC ${r.auc.toFixed(4)} (95% CI ${r.auc_ci.lower.toFixed(4)}–${r.auc_ci.upper.toFixed(4)}, ${r.auc_ci.samples} bootstrap resamples)`);
  if (r.members.length > 1) {
    const best = Math.max(...r.members.map((m) => m.auc));
    status(false, `ensemble (${r.combine}) of ${r.members.length}: ${r.members.map((m) => `${m.model} AUC ${m.auc.toFixed(4)}`).join('; ')}; ` +
      `${r.auc >= best ? '+' : ''}${(r.auc - best).toFixed(4)} over its best member`);
  }
  status(false, `accuracy at ${r.threshold}: ${(100 * r.accuracy).toFixed(2)}%   confusion: tp ${c.tp}  fp ${c.fp}  tn ${c.tn}  fn ${c.fn}`);
  status(false, `${r.images_per_s.toFixed(1)} images/s; wrote ${r.files.evaluation}, ${r.files.roc_png}, ${r.files.roc_csv}, ${r.files.scores}`);
  if (r.skipped.length) {
    status(false, `${r.skipped.length} left out:`);
    for (const s of r.skipped.slice(0, 20)) status(false, `  ${s.id ?? s.path ?? ''}: ${s.reason}`);
    if (r.skipped.length > 20) status(false, `  … and ${r.skipped.length - 20} more (evaluation.json lists all)`);
  }
  return 0;
}
