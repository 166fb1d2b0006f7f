/**
 * `histoflow train --data D [options]` (npm run train -- …): src/train/train.ts
 * from the command line. Ctrl-C stops after the current batch; the run then
 * resumes from its last finished epoch with --resume.
 */
import { parseArgs } from 'node:util';

import { checkInteger, checkNumber } from '../errors.js';
import { AUGMENT_PRESETS, DEFAULT_AUGMENT, type TrainOptions } from '../train/options.js';
import { train } from '../train/train.js';

export const TRAIN_HELP = `Usage: histoflow train --data D [options]      (npm run train -- --data D …)

Train a tumour / non-tumour patch classifier. Writes runs/NAME/: best/ (the
model of the best validation AUC), last/ (latest epoch, optimizer state),
state.json, metrics.json, metrics.csv, curves.png, split.json, skipped.json.

Options:
  --data D             Kaggle folder (train/ + train_labels.csv), tile folder,
                       packed file (histoflow pack / tile) or PatchCamelyon
                       HDF5 folder (train + valid splits)
  --model M            reference (default), resnet, vgg, or a TF.js model.json
                       (folder or file: input [null,S,S,3], one sigmoid output)
  --width W            filter multiplier of zoo models (default 1)
  --epochs E           epochs (default 10)
  --batch B            batch size (default 64)
  --lr LR              Adam's base learning rate (default 0.001)
  --schedule S         cosine (default) | step | constant
  --patience P         stop after P epochs without a better validation AUC
                       (default 5; 0 = never)
  --augment A          ${Object.keys(AUGMENT_PRESETS).join(' | ')} (default ${DEFAULT_AUGMENT}) or a pipeline .json
  --crop N             train on random NxN crops, predict on the centre crop
                       (faster; PCam's label is about the centre 32x32)
  --normalize M        stain-normalize first: macenko | vahadane | reinhard | ruifrok
  --target T           image whose stains are the target (with --normalize)
  --backend B          auto (default) | tensorflow | native | cpu
  --seed S             seed of split, weights, shuffles, augmentation (default 0)
  --val F              validation fraction without a valid split (default 0.2)
  --group-by K         keep groups (e.g. slide) on one side of the split
  --out DIR            run folder (default runs/<model>-<date>)
  --resume             continue the run in --out from its last finished epoch
                       (--epochs and --patience may change)
  --json               no progress; the last line is a JSON summary
  -h, --help           this help
`;

function intFlag(name: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new RangeError(`Expected an integer ≥ ${min} for ${name} but received '${value}'`);
  return checkInteger(name, Number(value), min, max);
}

function numberFlag(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || Number.isNaN(Number(value))) throw new RangeError(`Expected a number between ${min} and ${max} for ${name} but received '${value}'`);
  return checkNumber(name, Number(value), min, max);
}

function oneOfFlag<T extends string>(name: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new RangeError(`Expected one of ${allowed.join(', ')} for ${name} but received '${value}'`);
  return value as T;
}

/** The command line as TrainOptions (flag names in every error). */
export function parseTrainArgs(argv: string[]): { options: TrainOptions; json: boolean; help: boolean } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      data: { type: 'string' }, model: { type: 'string' }, width: { type: 'string' }, epochs: { type: 'string' },
      batch: { type: 'string' }, lr: { type: 'string' }, schedule: { type: 'string' }, patience: { type: 'string' },
      augment: { type: 'string' }, crop: { type: 'string' }, normalize: { type: 'string' }, target: { type: 'string' }, backend: { type: 'string' },
      seed: { type: 'string' }, val: { type: 'string' }, 'group-by': { type: 'string' }, out: { type: 'string' },
      resume: { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (positionals.length) throw new RangeError(`Expected only --flags for histoflow train but received '${positionals[0]}' (the dataset goes in --data)`);
  if (values.help) return { options: {}, json: values.json, help: true };
  if (!values.resume && values.data === undefined) throw new TypeError('Expected a dataset path for --data but received nothing');
  if (values.resume && values.out === undefined) throw new TypeError('Expected the run folder to resume for --out but received nothing');
  const val = numberFlag('--val', values.val, 0, 1);
  if (val !== undefined && (val <= 0 || val >= 1)) throw new RangeError(`Expected a fraction strictly between 0 and 1 for --val but received '${values.val}'`);
  const o: TrainOptions = {
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.model !== undefined ? { model: values.model } : {}),
    ...(values.augment !== undefined ? { augment: values.augment } : {}),
    ...(values.target !== undefined ? { target: values.target } : {}),
    ...(values['group-by'] !== undefined ? { groupBy: values['group-by'] } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
    ...(values.resume ? { resume: true } : {}),
  };
  const set = <K extends keyof TrainOptions>(key: K, v: TrainOptions[K] | undefined) => {
    if (v !== undefined) o[key] = v;
  };
  set('width', numberFlag('--width', values.width, 1 / 64, 16));
  set('epochs', intFlag('--epochs', values.epochs, 1, 100_000));
  set('crop', intFlag('--crop', values.crop, 8, 4096));
  set('batchSize', intFlag('--batch', values.batch, 1, 65536));
  set('learningRate', numberFlag('--lr', values.lr, 0, 10));
  set('schedule', oneOfFlag('--schedule', values.schedule, ['cosine', 'step', 'constant'] as const));
  set('patience', intFlag('--patience', values.patience, 0, 100_000));
  set('normalize', oneOfFlag('--normalize', values.normalize, ['macenko', 'vahadane', 'reinhard', 'ruifrok'] as const));
  set('backend', oneOfFlag('--backend', values.backend, ['auto', 'tensorflow', 'native', 'cpu'] as const));
  set('seed', intFlag('--seed', values.seed, 0, 2 ** 31 - 1));
  set('validation', val);
  if (o.target !== undefined && o.normalize === undefined) throw new RangeError(`Expected --target only together with --normalize but received '${o.target}'`);
  return { options: o, json: values.json, help: false };
}

export async function trainCommand(argv: string[]): Promise<number> {
  const { options, json, help } = parseTrainArgs(argv);
  if (help) {
    process.stdout.write(TRAIN_HELP);
    return 0;
  }
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
      process.stderr.write(`best validation AUC ${r.best_val_auc.toFixed(4)} at epoch ${r.best_epoch} of ${r.epochs}` +
        `${r.stopped_early ? ' (stopped early)' : ''}, ${r.seconds.toFixed(0)} s on ${r.backend}; model: ${r.checkpoint}\n`);
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
