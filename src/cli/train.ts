/**
 * `histoflow train --data D [options]` (npm run train -- …): src/train/train.ts
 * from the command line. Ctrl-C stops after the current batch; the run then
 * resumes from its last finished epoch with --resume.
 */
import { checkOutputPath } from '../output.js';
import { RENAMED_TRAINING_BACKENDS, TRAINING_BACKENDS } from '../tfjs/backend.js';
import { AUGMENT_PRESETS, RECIPES, RECIPE_NAMES, type TrainOptions } from '../train/options.js';
import { TRAIN_TASKS } from '../train/segment.js';
import type { EnsembleResult } from '../train/ensemble.js';
import { train } from '../train/train.js';
import { defineFlags, optionsHelp, parseFlags } from './flags.js';

/** No defaults here: what is not given, src/train/options.ts defaults (and a resumed run keeps). */
export const TRAIN_FLAGS = defineFlags({
  task: { type: 'choice', value: 'T', choices: TRAIN_TASKS, help: 'classify (default): a label per patch; segment: label masks\n(tiles written with --masks), a per-pixel tumour map (unet)' },
  positive: { type: 'string', value: 'L', help: 'segment: the mask label to segment (default tumour, or the\nmasks\' only label)' },
  recipe: { type: 'choice', value: 'R', choices: RECIPE_NAMES, help: 'the defaults of the options below: quick (default) or\nbest (see Recipes above)' },
  data: {
    type: 'string', value: 'D',
    help: 'Kaggle folder (train/ + train_labels.csv), tile folder,\npacked file (histoflow pack / tile) or PatchCamelyon\nHDF5 folder (train + valid splits)',
  },
  model: { type: 'string', value: 'M', help: 'baseline (recipe), resnet, vgg, unet (--task segment), or a\nTF.js model.json (folder or file: input [null,S,S,3], one\nsigmoid output [null,1], or [null,S,S,1] to segment)' },
  width: { type: 'number', value: 'W', min: 1 / 64, max: 16, help: 'filter multiplier of zoo models (recipe: 0.5)' },
  depth: { type: 'int', value: 'D', min: 1, max: 6, help: 'poolings: baseline blocks (recipe: quick 3, best 4; each\nadds a block of twice the filters), unet levels (default 3)' },
  epochs: { type: 'int', value: 'E', min: 1, max: 100_000, help: 'epochs (recipe: quick 20, best 100, each within its budget)' },
  batch: { type: 'int', value: 'B', min: 1, max: 65536, help: 'batch size (default 64)' },
  lr: { type: 'number', value: 'LR', min: 0, max: 10, help: 'Adam\'s base learning rate (default 0.001)' },
  schedule: { type: 'choice', value: 'S', choices: ['cosine', 'step', 'constant'], help: 'cosine (default) | step | constant' },
  patience: { type: 'int', value: 'P', min: 0, max: 100_000, help: 'stop after P epochs without a better validation AUC\n(recipe: 0 = never)' },
  'time-budget': { type: 'duration', value: 'T', max: 366 * 86_400, help: 'fit the run in T of wall time (15m, 1.5h, 90s): the\nschedule ends with the epochs T holds (recipe: quick 15m,\nbest 90m, when --epochs is not given)' },
  augment: { type: 'string', value: 'A', help: `${Object.keys(AUGMENT_PRESETS).join(' | ')} (recipe: light) or a pipeline .json` },
  crop: { type: 'int', value: 'N', min: 0, max: 4096, help: 'train on random NxN crops, predict on the centre crop\n(default 0 = the whole patch)' },
  normalize: { type: 'choice', value: 'M', choices: ['macenko', 'vahadane', 'reinhard', 'ruifrok'], help: 'stain-normalize first: {choices}' },
  target: { type: 'string', value: 'T', help: 'image whose stains are the target (with --normalize)' },
  backend: { type: 'choice', value: 'B', choices: ['auto', ...TRAINING_BACKENDS], renamed: RENAMED_TRAINING_BACKENDS, help: `auto (default) | ${TRAINING_BACKENDS.join(' | ')}` },
  seed: { type: 'int', value: 'S', min: 0, max: 2 ** 31 - 1, help: 'seed of split, weights, shuffles, augmentation (default 0)' },
  val: { type: 'number', value: 'F', min: 0, max: 1, help: 'validation fraction without a valid split (default 0.2)' },
  'group-by': { type: 'string', value: 'K', help: 'keep groups (e.g. slide) on one side of the split' },
  dedupe: { type: 'boolean', help: 'train on one image of each group of identical images\n(identical images never straddle the split either way)' },
  members: { type: 'int', value: 'N', min: 1, max: 64, help: 'train N models side by side as an ensemble (seeds S, S+1, …;\none split), each on 1/N of the threads, into DIR/member-1 …;\npredict / evaluate take DIR as the ensemble (recipe: quick 1,\nbest 2)' },
  ema: { type: 'number', value: 'D', min: 0, max: 0.999999, help: 'validate and keep an average of the weights, decay D per\nstep (recipe: 0.999, about the last 1,000 steps; 0 = none)' },
  out: { type: 'string', value: 'DIR', help: 'run folder (default runs/<model>-<date>)' },
  resume: { type: 'boolean', help: 'continue the run in --out from its last finished epoch\n(--epochs, --patience and --time-budget may change)' },
  json: { type: 'boolean', help: 'no progress; the last line is a JSON summary' },
});

export const TRAIN_HELP = `Usage: histoflow train --data D [options]      (npm run train -- --data D …)

Train a tumour / non-tumour patch classifier, or (--task segment) a UNet that
maps tumour pixel by pixel from tiles with label masks (histoflow tile
--annotations A --masks). Writes runs/NAME/: best/ (the model of the best
validation AUC; segment: Dice), last/ (latest epoch, optimizer state),
state.json, metrics.json, metrics.csv, curves.png, split.json, skipped.json.
With --members N: ensemble.json, member-1/ … (each such a run folder) and
evaluation/ (the ensemble on the validation split).

Recipes, the defaults of the options (measured on real PatchCamelyon; README,
"Training recipes"; --recipe quick is the default):
${Object.entries(RECIPES).map(([name, r]) => `  ${name.padEnd(6)} --model ${r.model} --width ${r.width} --depth ${r.depth} --augment ${r.augment} --ema ${r.ema}
         --epochs ${r.epochs} --time-budget ${r.timeBudget / 60}m --patience ${r.patience}${r.members > 1 ? ` --members ${r.members}` : ''}`).join('\n')}

${optionsHelp(TRAIN_FLAGS)}`;

/** The command line as TrainOptions (flag names in every error). */
export function parseTrainArgs(argv: string[]): { options: TrainOptions; json: boolean; help: boolean } {
  const { values, positionals, help } = parseFlags('train', TRAIN_FLAGS, argv, { positionals: true });
  if (positionals.length) throw new RangeError(`Expected only --flags for histoflow train but received '${positionals[0]}' (the dataset goes in --data)`);
  if (help) return { options: {}, json: values.json, help: true };
  if (!values.resume && values.data === undefined) throw new TypeError('Expected a dataset path for --data but received nothing');
  if (values.resume && values.out === undefined) throw new TypeError('Expected the run folder to resume for --out but received nothing');
  if (values.val !== undefined && (values.val <= 0 || values.val >= 1)) {
    throw new RangeError(`Expected a fraction strictly between 0 and 1 for --val but received '${values.val}'`);
  }
  if (values.target !== undefined && values.normalize === undefined) throw new RangeError(`Expected --target only together with --normalize but received '${values.target}'`);
  const given = {
    task: values.task, positive: values.positive, recipe: values.recipe, data: values.data, model: values.model, augment: values.augment, target: values.target, groupBy: values['group-by'], out: values.out,
    resume: values.resume || undefined, dedupe: values.dedupe || undefined,
    width: values.width, depth: values.depth, epochs: values.epochs, crop: values.crop, batchSize: values.batch, learningRate: values.lr, schedule: values.schedule,
    patience: values.patience, timeBudget: values['time-budget'], ema: values.ema, members: values.members, normalize: values.normalize, backend: values.backend, seed: values.seed, validation: values.val,
  } satisfies TrainOptions;
  const options: TrainOptions = {};
  for (const [key, v] of Object.entries(given)) if (v !== undefined) (options as Record<string, unknown>)[key] = v;
  return { options, json: values.json, help: false };
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { options, json, help } = parseTrainArgs(argv);
  if (help) {
    process.stdout.write(TRAIN_HELP);
    return 0;
  }
  if (options.out !== undefined) await checkOutputPath('--out', options.out, 'folder');
  const abort = new AbortController();
  const onSigint = () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('\nhistoflow train: stopping after this batch (Ctrl-C again to quit now); resume with --resume\n');
    abort.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  try {
    const r = await train(options, { quiet: json, signal: abort.signal });
    if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      const best = r.best_val_dice !== undefined ? `Dice ${r.best_val_dice.toFixed(4)}` : `AUC ${r.best_val_auc.toFixed(4)}`;
      if ('members' in r) {
        process.stderr.write(`ensemble of ${(r as EnsembleResult).members.length}: validation AUC ${r.best_val_auc.toFixed(4)}, ` +
          `${r.seconds.toFixed(0)} s on ${r.backend}; model (predict / evaluate --model): ${r.checkpoint}\n`);
      } else {
        process.stderr.write(`best validation ${best} at epoch ${r.best_epoch} of ${r.epochs}` +
          `${r.stopped_early ? ' (stopped early)' : ''}, ${r.seconds.toFixed(0)} s on ${r.backend}; model: ${r.checkpoint}\n`);
      }
    }
    return 0;
  } catch (e) {
    if (abort.signal.aborted) {
      process.stderr.write(`histoflow train: interrupted; the run continues from its last finished epoch with --out ${options.out ?? 'RUN'} --resume\n`);
      return 130;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
