/**
 * train(options): a binary patch classifier from a labelled dataset to a run
 * folder (run_folder.ts), on a TF.js backend of choice.
 *
 * Each epoch: the learning rate of the schedule (schedule.ts) is set on the
 * optimizer; a BatchLoader augments shuffled batches on native threads while
 * the model trains on the previous one (trainOnBatch); then the validation
 * records go through createPredictor (the model's deterministic
 * preprocessing, no TTA) for loss, accuracy at 0.5 and ROC AUC; the best AUC
 * is kept in best/, every epoch in last/ (with the optimizer's state).
 * Early stopping ends the run after `patience` epochs without a better AUC.
 *
 * Reproducible and resumable exactly: everything random is keyed by the seed —
 * initial weights (zoo.ts), the split (split.ts), each epoch's order and each
 * image's augmentation (seed, epoch, index: loader.ts), dropout masks (seed,
 * step: setDropoutSeeds). A resume loads last/ (weights, batch-norm statistics
 * and optimizer slots, float32, exact) and continues at the next epoch. One
 * detail keeps it bit-exact: TF.js's Adam restores its β-power accumulators as
 * pow(β, t+1) while a running Adam multiplies them step by step, and the two
 * differ in the last bits from a few steps on (β2 = 0.999: from step 2); the
 * weights' rounding absorbs most such differences, not all. So every epoch
 * after the first starts by passing the optimizer's state through
 * getWeights/setWeights, exactly what a resume does.
 */
import { readFile } from 'node:fs/promises';
import { makeDirectory, pathExists } from '../output.js';
import { join, resolve } from 'node:path';

import * as tf from '@tensorflow/tfjs';

import { BatchLoader, type BatchSource } from '../augment/loader.js';
import { checkPipeline, outputShape, type AugmentPipelineInput } from '../augment/pipeline.js';
import { Progress } from '../cli/progress.js';
import { readImage } from '../image.js';
import { accuracy, rocAuc } from '../metrics/index.js';
import { loadModel, type ModelCard } from '../models/io.js';
import { createPredictor, inferencePipeline } from '../models/predict.js';
import { buildModel, setDropoutSeeds } from '../models/zoo.js';
import { EMA_FILE, WeightAverage } from './ema.js';
import { trainEnsemble, wantsEnsemble } from './ensemble.js';
import { fitStainTarget } from '../stain/normalize.js';
import { recordedTrainingBackend, useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { openTrainingData, type TrainingData } from './data.js';
import { evaluateSegmentation, openSegmentationData } from './segment.js';
import { resolveRunArgs, resumeArgs, type RunArgs, type TrainOptions } from './options.js';
import {
  BEST_DIR, LAST_DIR, SKIPPED_JSON, SPLIT_JSON, STATE_JSON, defaultRunName, recoverCheckpoint, writeCheckpoint, writeJson, writeMetrics,
  type EpochMetrics,
} from './run_folder.js';
import { getLearningRate, learningRateAt, setLearningRate } from './schedule.js';

/** Everything --resume needs (state.json, and last/'s card as `train_state`). */
export interface TrainState {
  version: 1;
  /** Epochs finished. */
  epoch: number;
  /** The best epoch: its validation AUC (pixel AUC for segmentation: null when undefined) and, for segmentation, the Dice that chose it. */
  best: { epoch: number; val_auc: number; val_dice?: number } | null;
  /** Epochs finished since the best one. */
  sinceBest: number;
  /** Learning rate of the last finished epoch. */
  lr: number;
  seed: number;
  /** The backend the run trains on ('auto' resolved). */
  backend: TrainingBackend;
  stoppedEarly: boolean;
  args: RunArgs;
  /** The training pipeline, stain target fitted. */
  pipeline: AugmentPipelineInput;
  architecture: string;
  inputSize: number;
  imageSize: number;
  history: EpochMetrics[];
  /** Steps in the weight average (args.ema > 0; absent in runs recorded before it). */
  emaSteps?: number;
  /**
   * The epochs the schedule runs over: args.epochs, or fewer when the time
   * budget fits fewer (planned after the first epoch of a call; see planEpochs).
   */
  horizon?: number;
}

export interface TrainResult {
  /** The time budget ended the run before args.epochs (see planEpochs). */
  stopped_by_time_budget: boolean;
  /** The run folder. */
  run: string;
  /** best/ (what predict and evaluate load). */
  checkpoint: string;
  best_val_auc: number;
  /** Segmentation: the best epoch's validation Dice (what chose it). */
  best_val_dice?: number;
  best_epoch: number;
  /** Epochs finished in all. */
  epochs: number;
  backend: TrainingBackend;
  /** Training seconds in all (every epoch's wall time, resumed ones included). */
  seconds: number;
  /** Training images per second over all epochs. */
  images_per_s: number;
  stopped_early: boolean;
  /** Epochs already finished when this call started (0 for a new run). */
  resumed_from: number;
  train_images: number;
  val_images: number;
  skipped: number;
}

export interface TrainHooks {
  /** No progress bars or epoch lines (--json). */
  quiet?: boolean;
  /** Aborting stops after the current batch; the run resumes from its last finished epoch. */
  signal?: AbortSignal;
  /** Epoch lines (default: stderr). */
  log?: (line: string) => void;
  onEpoch?: (row: EpochMetrics, state: TrainState) => void;
  /** After each training step (epoch counted from 0), before the abort check. */
  onBatch?: (epoch: number, batch: number) => void;
}

/** Keras's clipping of probabilities for the cross-entropy. */
const EPSILON = 1e-7;

export function binaryCrossEntropy(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1 - EPSILON, Math.max(EPSILON, scores[i]!));
    sum -= labels[i]! ? Math.log(p) : Math.log(1 - p);
  }
  return sum / labels.length;
}

/** Scores every record of `source` with the model's predictor (no TTA). */
async function evaluate(model: tf.LayersModel, card: ModelCard, source: BatchSource): Promise<{ loss: number; acc: number; auc: number }> {
  const predictor = createPredictor(model, card, { batchSize: 128 });
  const labels = new Float32Array(source.size), scores = new Float32Array(source.size);
  for (let start = 0; start < source.size; start += 256) {
    const n = Math.min(256, source.size - start);
    const chunk = await source.read(Array.from({ length: n }, (_, k) => start + k));
    scores.set(await predictor.predict(chunk.batch), start);
    labels.set(chunk.labels!, start);
  }
  return { loss: binaryCrossEntropy(labels, scores), acc: accuracy(labels, scores), auc: rocAuc(labels, scores) };
}

/** Passes the optimizer's state through getWeights/setWeights, as loading a checkpoint does (see the file comment). */
async function reseatOptimizer(optimizer: tf.Optimizer): Promise<void> {
  const weights = await optimizer.getWeights();
  await optimizer.setWeights(weights);
  // setWeights copied every slot into new variables: the old ones and the iteration scalar go.
  for (const w of weights) w.tensor.dispose();
}

/** What a field of a run state must be, as [field, test, expected]. */
type StateField = [string, (v: unknown) => boolean, string];
const isInt = (min: number) => (v: unknown) => Number.isInteger(v) && (v as number) >= min;
const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isStr = (v: unknown) => typeof v === 'string';
const isObj = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
const orNull = (f: (v: unknown) => boolean) => (v: unknown) => v === null || f(v);
const optional = (f: (v: unknown) => boolean) => (v: unknown) => v === undefined || f(v);
const STATE_FIELDS: StateField[] = [
  ['version', (v) => v === 1, '1'], ['epoch', isInt(0), 'an integer ≥ 0'], ['sinceBest', isInt(0), 'an integer ≥ 0'],
  ['best', orNull((v) => isObj(v) && isInt(1)((v as Record<string, unknown>).epoch) && (typeof (v as Record<string, unknown>).val_auc === 'number' ||
    typeof (v as Record<string, unknown>).val_dice === 'number')), 'null or { epoch, val_auc } (segmentation: { epoch, val_auc, val_dice })'],
  ['lr', isNum, 'a finite number'], ['seed', isInt(0), 'an integer ≥ 0'], ['backend', isStr, 'a backend name'],
  ['stoppedEarly', (v) => typeof v === 'boolean', 'a boolean'], ['args', isObj, 'an object'], ['pipeline', isObj, 'an object'],
  ['architecture', isStr, 'a string'], ['inputSize', isInt(1), 'an integer ≥ 1'], ['imageSize', isInt(1), 'an integer ≥ 1'],
  ['history', (v) => Array.isArray(v) && v.every(isObj), 'an array of epoch rows'],
];
const ARGS_FIELDS: StateField[] = [
  ['data', isStr, 'a dataset path'], ['model', isStr, 'a model name'], ['width', (v) => isNum(v) && (v as number) > 0, 'a width multiplier > 0'],
  ['epochs', isInt(1), 'an integer ≥ 1'], ['batchSize', isInt(1), 'an integer ≥ 1'], ['learningRate', isNum, 'a finite number'],
  ['schedule', isStr, 'a schedule name'], ['patience', isInt(0), 'an integer ≥ 0'], ['augment', isObj, 'an object'],
  ['augmentSource', isStr, 'a string'], ['crop', orNull(isInt(1)), 'null or an integer ≥ 1'], ['normalize', orNull(isStr), 'null or a method'],
  ['target', orNull(isStr), 'null or a path'], ['backend', isStr, 'a backend name'], ['seed', isInt(0), 'an integer ≥ 0'],
  ['validation', isNum, 'a fraction'], ['groupBy', orNull(isStr), 'null or a field name'],
  ['splitSeed', optional(isInt(0)), 'an integer ≥ 0 or nothing'], ['depth', optional(orNull(isInt(1))), 'null, an integer ≥ 1 or nothing'],
];

/**
 * A run state read from `source` (state.json or last/'s card), its shape
 * checked field by field: a damaged file is named with the field and the way
 * out, never met later as "Cannot read properties of undefined".
 */
export function checkTrainState(value: unknown, source: string): TrainState {
  const how = 'restore the run folder\'s last/ and state.json from a copy, or start the run again without --resume';
  const bad = (field: string, expected: string, v: unknown) =>
    new Error(`${source} is not a valid run state: ${field} is ${v === undefined ? 'missing' : JSON.stringify(v)?.slice(0, 60)} (expected ${expected}); ${how}`);
  if (!isObj(value)) throw bad('the whole file', 'a JSON object', value);
  const o = value as Record<string, unknown>;
  for (const [field, ok, expected] of STATE_FIELDS) if (!ok(o[field])) throw bad(field, expected, o[field]);
  const args = o.args as Record<string, unknown>;
  for (const [field, ok, expected] of ARGS_FIELDS) if (!ok(args[field])) throw bad(`args.${field}`, expected, args[field]);
  return value as TrainState;
}

/** A JSON file's value, undefined if the file is missing, an error naming it (and the way out) if it does not parse. */
async function readJsonIfAny(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); ` +
      'restore the run folder\'s last/ and state.json from a copy, or start the run again without --resume');
  }
}

async function readState(run: string): Promise<TrainState> {
  await recoverCheckpoint(run, LAST_DIR);
  await recoverCheckpoint(run, BEST_DIR);
  const file = await readJsonIfAny(join(run, STATE_JSON));
  const fromFile = file === undefined ? undefined : checkTrainState(file, join(run, STATE_JSON));
  // last/'s card is written before state.json: when a crash fell between them, it is the newer.
  const cardPath = join(run, LAST_DIR, 'model.json');
  const card = (await readJsonIfAny(cardPath)) as { userDefinedMetadata?: { histoflow?: { train_state?: unknown } } } | undefined;
  const cardState = isObj(card) ? card!.userDefinedMetadata?.histoflow?.train_state : undefined;
  const fromCard = cardState === undefined ? undefined : checkTrainState(cardState, `${cardPath} (train_state)`);
  const state = fromCard && (!fromFile || fromCard.epoch >= fromFile.epoch) ? fromCard : fromFile;
  if (!state || !fromCard) {
    throw new Error(`Nothing to resume in ${run}: no finished epoch (${LAST_DIR}/ with its state); start the run again without --resume`);
  }
  return { ...state, backend: recordedTrainingBackend(state.backend) };
}

function resultOf(run: string, state: TrainState, resumedFrom: number, data: TrainingData, outOfTime: boolean): TrainResult {
  const seconds = state.history.reduce((s, r) => s + r.seconds, 0);
  const trainSeconds = state.history.reduce((s, r) => s + (r.images_per_s > 0 ? data.train.size / r.images_per_s : 0), 0);
  return {
    run, checkpoint: join(run, BEST_DIR),
    best_val_auc: state.best?.val_auc ?? Number.NaN, best_epoch: state.best?.epoch ?? 0,
    ...(state.best?.val_dice !== undefined ? { best_val_dice: state.best.val_dice } : {}),
    epochs: state.epoch, backend: state.backend, seconds,
    images_per_s: trainSeconds > 0 ? (data.train.size * state.history.length) / trainSeconds : 0,
    stopped_early: state.stoppedEarly, stopped_by_time_budget: outOfTime, resumed_from: resumedFrom,
    train_images: data.train.size, val_images: data.validation.size, skipped: data.skipped.length,
  };
}

/**
 * Trains (or resumes) a run; see the file comment and options.ts. With
 * several members (options.members, or the recipe's) or on an ensemble
 * folder, an ensemble (ensemble.ts: EnsembleResult).
 */
export async function train(options: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  if (await wantsEnsemble(options)) return trainEnsemble(options, hooks);
  const startedAt = performance.now();
  const log = hooks.quiet ? () => undefined : (hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const { run, args, resumed } = await resolveRun(options);
  const { backend } = await useTrainingBackend(resumed?.backend ?? args.backend);
  const segment = args.task === 'segment';
  const data = segment ? await openSegmentation(args) : await openData(args, hooks.quiet ?? false);
  let model: tf.LayersModel | undefined;
  let ema: WeightAverage | undefined;
  try {
    if (resumed) await checkSplit(run, args, data);
    const pipeline = resumed ? resumed.pipeline : await trainingPipeline(args);
    const shape = outputShape(checkPipeline(pipeline), data.height, data.width);
    const opened = resumed ? await openLastModel(run, resumed) : await buildModel(args.model, {
      inputSize: shape.height, width: args.width, ...(args.depth == null ? {} : { depth: args.depth }), seed: args.seed, learningRate: args.learningRate,
    });
    model = opened.model;
    const state = resumed ?? newState(args, backend, pipeline, opened.architecture, shape.height, data.height);
    state.args = args;
    const card = modelCard(state, args);
    const resumedFrom = state.epoch;
    if (args.ema > 0) {
      ema = new WeightAverage(model, args.ema);
      if (resumed && state.epoch > 0) await ema.restore(join(run, LAST_DIR, EMA_FILE), state.emaSteps ?? 0);
    }
    if (resumed) log(`resuming ${run} after epoch ${state.epoch} on ${backend}`);
    else await startRunFolder(run, data, state, log);
    const outOfTime = await runEpochs({ run, args, data, model, card, hooks, log, startedAt, ...(ema ? { ema } : {}) }, state);
    return resultOf(run, state, resumedFrom, data, outOfTime);
  } finally {
    ema?.dispose();
    model?.dispose();
    data.close();
  }
}

/** What the epoch steps share, fixed for the whole call. */
interface EpochContext {
  run: string;
  args: RunArgs;
  data: TrainingData;
  model: tf.LayersModel;
  /** The card written with every checkpoint (epoch and val_auc added). */
  card: ModelCard;
  hooks: TrainHooks;
  log: (line: string) => void;
  /** performance.now() when train() was called (the time budget counts from it). */
  startedAt: number;
  /** The weight average (args.ema > 0): validated and kept in best/. */
  ema?: WeightAverage;
}

/** Runs `fn` with the weight average in the model when the run keeps one. */
function scoredWeights<T>(ctx: EpochContext, fn: () => Promise<T>): Promise<T> {
  return ctx.ema ? ctx.ema.withAverage(fn) : fn();
}

/** The run folder and its arguments: the recorded ones merged with `options` for a resume, else `options` resolved. */
async function resolveRun(options: TrainOptions): Promise<{ run: string; args: RunArgs; resumed?: TrainState }> {
  if (options?.out !== undefined && (typeof options.out !== 'string' || options.out === '')) {
    throw new TypeError(`Expected a folder path for out but received ${String(options.out)}`);
  }
  if (options?.resume === true) {
    if (options.out === undefined) throw new TypeError('Expected the run folder to resume for out but received undefined');
    const run = resolve(options.out);
    const resumed = await readState(run);
    return { run, args: resumeArgs(resumed.args, options, resumed.backend), resumed };
  }
  const args = await resolveRunArgs(options);
  const run = resolve(options.out ?? defaultRunName(args.model));
  if (await pathExists(join(run, STATE_JSON))) throw new Error(`${run} already holds a run: pass --resume to continue it, or choose another --out`);
  return { run, args };
}

/** Opens a masked tile set for task segment; records the positive label chosen. */
async function openSegmentation(args: RunArgs): Promise<TrainingData> {
  const data = await openSegmentationData(args.data, {
    validation: args.validation, seed: args.splitSeed ?? args.seed, ...(args.groupBy ? { groupBy: args.groupBy } : {}), positive: args.positive ?? null,
  });
  args.positive = data.positive;
  return data;
}

/** Opens the dataset and its split, with a 'reading' bar. */
function openData(args: RunArgs, quiet: boolean): Promise<TrainingData> {
  let reading: Progress | undefined;
  return openTrainingData(args.data, {
    validation: args.validation, seed: args.splitSeed ?? args.seed, ...(args.groupBy ? { groupBy: args.groupBy } : {}), dedupe: args.dedupe,
    onProgress: (done, total) => {
      reading ??= new Progress('reading', total, { quiet });
      reading.tick();
      if (done === total) reading.end();
    },
  });
}

/** The split is a function of (data, split seed): a resume must see the one recorded in split.json. */
async function checkSplit(run: string, args: RunArgs, data: TrainingData): Promise<void> {
  const recorded = JSON.parse(await readFile(join(run, SPLIT_JSON), 'utf8')) as { train: TrainingData['trainIds']; validation: TrainingData['validationIds'] };
  if (recorded.train.length !== data.trainIds.length || recorded.validation.some((id, i) => id !== data.validationIds[i])) {
    throw new Error(`${args.data} no longer gives the split recorded in ${join(run, SPLIT_JSON)}: the data changed since the run started`);
  }
}

/** A new run's training pipeline: the augmentation, then the random crop and the stain normalization (target fitted) if asked. */
async function trainingPipeline(args: RunArgs): Promise<AugmentPipelineInput> {
  const pipeline: AugmentPipelineInput = { ...args.augment };
  if (args.crop !== null) pipeline.crop = { size: args.crop, mode: 'random' };
  if (args.normalize) {
    const target = args.target ? await fitStainTarget(await readImage(args.target), { method: args.normalize }) : null;
    pipeline.stain = { method: args.normalize, target };
  }
  return pipeline;
}

/** A resumed run's model: last/ with its optimizer state. */
async function openLastModel(run: string, resumed: TrainState): Promise<{ model: tf.LayersModel; architecture: string }> {
  return { model: (await loadModel(join(run, LAST_DIR))).model, architecture: resumed.architecture };
}

/** The state of a run before its first epoch. */
function newState(args: RunArgs, backend: TrainingBackend, pipeline: AugmentPipelineInput, architecture: string, inputSize: number, imageSize: number): TrainState {
  return {
    version: 1, epoch: 0, best: null, sinceBest: 0, lr: args.learningRate, seed: args.seed, backend,
    stoppedEarly: false, args, pipeline, architecture, inputSize, imageSize, history: [],
  };
}

/** The card of the run's checkpoints: what predict needs to preprocess as training did (no augmentation). */
function modelCard(state: TrainState, args: RunArgs): ModelCard {
  return {
    inputSize: state.inputSize, imageSize: state.imageSize, architecture: state.architecture, preprocess: inferencePipeline(state.pipeline),
    model: args.model, width: args.width, ...(args.depth == null ? {} : { depth: args.depth }), seed: args.seed, data: args.data,
  };
}

/** Creates a new run's folder with split.json and skipped.json, and says what is trained where. */
async function startRunFolder(run: string, data: TrainingData, state: TrainState, log: (line: string) => void): Promise<void> {
  await makeDirectory(run, 'out');
  await writeJson(join(run, SPLIT_JSON), { kind: data.kind, split: data.split, train: data.trainIds, validation: data.validationIds });
  await writeJson(join(run, SKIPPED_JSON), { count: data.skipped.length, skipped: data.skipped });
  log(`training ${state.architecture} on ${state.backend}: ${data.train.size} train / ${data.validation.size} validation ${state.inputSize}px patches` +
    `${data.skipped.length ? `, ${data.skipped.length} skipped (first: ${data.skipped[0]!.reason}; all in ${SKIPPED_JSON})` : ''} → ${run}`);
}

/**
 * Epochs from state.epoch until args.epochs, an early stop or the time budget,
 * each trained, validated and recorded. True when the time budget stopped it.
 */
async function runEpochs(ctx: EpochContext, state: TrainState): Promise<boolean> {
  const { args, data, model } = ctx;
  const segment = args.task === 'segment';
  const loader = new BatchLoader(data.train, state.pipeline, { batchSize: args.batchSize, shuffle: true, seed: args.seed, prefetch: 2, reuse: true, tf, masks: segment });
  const stepsPerEpoch = loader.length;
  // A new run plans after its first epoch (nothing to judge the pace by before); a resume at once.
  const callStart = state.epoch;
  state.horizon = args.epochs;
  while (state.epoch < state.horizon && !state.stoppedEarly) {
    if (state.history.length > 0) {
      planEpochs(ctx, state, callStart);
      if (state.epoch >= state.horizon) return true;
    }
    const e = state.epoch;
    await setEpochLearningRate(model.optimizer, args, e, state.horizon ?? args.epochs);
    const started = performance.now();
    const fit = await trainEpoch(ctx, loader, e, stepsPerEpoch, state.horizon ?? args.epochs);
    const trainSeconds = (performance.now() - started) / 1000;
    const v: { loss: number; acc: number; auc: number; dice?: number; iou?: number } =
      await scoredWeights(ctx, () => (segment ? evaluateSegmentation(model, ctx.card.preprocess, data.validation) : evaluate(model, ctx.card, data.validation)));
    const row: EpochMetrics = {
      epoch: e + 1, lr: getLearningRate(model.optimizer), train_loss: fit.lossSum / fit.seen, train_acc: fit.accSum / fit.seen,
      val_loss: v.loss, val_acc: v.acc, val_auc: v.auc,
      ...(v.dice !== undefined ? { val_dice: v.dice, val_iou: v.iou! } : {}),
      seconds: (performance.now() - started) / 1000, images_per_s: fit.seen / trainSeconds,
    };
    const better = await recordEpoch(ctx, state, row);
    logEpoch(ctx, state, row, better);
    ctx.hooks.onEpoch?.(row, state);
  }
  return (state.horizon ?? args.epochs) < args.epochs && !state.stoppedEarly;
}

/**
 * With a time budget, the schedule's horizon: as many epochs as the budget's
 * rest holds at the pace of the slowest epoch so far, less a 10 % margin (at
 * most args.epochs, at least the epochs done), so that a cosine schedule
 * anneals fully before the budget ends instead of being cut off at a high
 * rate. Planned before every epoch but the first of a new run. The first epoch of a call carries the
 * one-off costs (kernel set-up, the array pool filling) and, judged by it
 * alone, any disturbance then shortened the whole run for good (a 90-minute
 * PCam run whose first epoch took 114 s beside a build, against 72–91 s
 * after, planned 47 epochs where 66 fit). So once a second epoch of this
 * call is timed the pace leaves the first out, and the horizon may grow to
 * what that pace holds, but only as far as keeps the rate from rising (the
 * rate of the next epoch at the new horizon ≤ the last epoch's).
 * A slower epoch brings the end closer. When no further epoch fits, the run
 * stops (no epoch starts that the pace says would end past the budget). A
 * resume with another budget plans the rest again.
 */
function planEpochs(ctx: EpochContext, state: TrainState, callStart: number): void {
  const { args } = ctx;
  if (args.timeBudget === null) return;
  const elapsed = (performance.now() - ctx.startedAt) / 1000;
  const previous = state.horizon ?? args.epochs;
  const { horizon, pace } = planHorizon(args, args.timeBudget - elapsed, state.history, callStart, state.epoch, previous);
  const used = `time budget: ${elapsed.toFixed(0)} s of ${args.timeBudget} s used, an epoch takes up to ${pace.toFixed(0)} s`;
  if (horizon === state.epoch) {
    ctx.log(`${used}: stopping after epoch ${state.epoch} (best ${describeBest(state.best!)} at epoch ${state.best!.epoch}; ` +
      '--resume with a larger --time-budget continues)');
  } else if (horizon !== previous) {
    ctx.log(`${used}: the ${args.schedule} schedule now ends at epoch ${horizon} of ${args.epochs}`);
  }
  state.horizon = horizon;
}

/** The schedule's horizon plans epochs this much slower than the slowest so far. */
const PLAN_MARGIN = 1.1;

/**
 * planEpochs' arithmetic: the horizon after `done` epochs with `left` seconds
 * of the budget left, given the epochs recorded (`history`, this call's
 * numbered above `callStart`) and the horizon the last epoch ran under; and
 * the pace (seconds an epoch) it assumed.
 */
export function planHorizon(
  args: Pick<RunArgs, 'epochs' | 'schedule' | 'learningRate'>, left: number, history: readonly Pick<EpochMetrics, 'epoch' | 'seconds'>[],
  callStart: number, done: number, previous: number,
): { horizon: number; pace: number } {
  const thisCall = history.filter((r) => r.epoch > callStart);
  const paced = thisCall.length >= 2 ? thisCall.slice(1) : thisCall.length === 1 ? thisCall : history;
  const pace = Math.max(paced.reduce((m, r) => Math.max(m, r.seconds), 0), 1e-6);
  // The next epoch runs when the pace says it ends in time; the schedule ends PLAN_MARGIN early, so that an epoch
  // somewhat slower than any before does not stop the run before its rate has annealed.
  const fits = left >= pace ? Math.max(1, Math.floor(left / (pace * PLAN_MARGIN))) : 0;
  const fitting = Math.max(done, Math.min(args.epochs, done + fits));
  return { horizon: fitting <= previous ? fitting : grownHorizon(args, done, previous, fitting), pace };
}

/**
 * The largest horizon up to `fitting` at which epoch `e`'s rate is no higher
 * than epoch e − 1's was at horizon `previous` (at least `previous`): the
 * rate only ever falls, whatever the pace does.
 */
function grownHorizon(args: Pick<RunArgs, 'schedule' | 'learningRate'>, e: number, previous: number, fitting: number): number {
  if (e === 0) return fitting;
  const last = learningRateAt(args.schedule, args.learningRate, e - 1, previous);
  for (let h = fitting; h > previous; h--) {
    if (learningRateAt(args.schedule, args.learningRate, e, h) <= last) return h;
  }
  return previous;
}

/** Sets epoch `e`'s learning rate of the schedule, after reseating the optimizer from the second epoch on (see the file comment). */
async function setEpochLearningRate(optimizer: tf.Optimizer, args: RunArgs, e: number, horizon: number): Promise<void> {
  const lr = learningRateAt(args.schedule, args.learningRate, e, horizon);
  if (e > 0) await reseatOptimizer(optimizer);
  setLearningRate(optimizer, lr);
}

/** One pass over the training set (epoch `e`, from 0): the summed loss and accuracy, weighted by batch size, and the images seen. */
async function trainEpoch(
  ctx: EpochContext, loader: BatchLoader<typeof tf>, e: number, stepsPerEpoch: number, of: number,
): Promise<{ lossSum: number; accSum: number; seen: number }> {
  const { args, model, hooks } = ctx;
  const progress = new Progress(`epoch ${e + 1}/${of}`, ctx.data.train.size, { quiet: hooks.quiet ?? false });
  let lossSum = 0, accSum = 0, seen = 0;
  for await (const b of loader.epoch(e)) {
    setDropoutSeeds(model, args.seed, e * stepsPerEpoch + b.batch);
    let out: number | number[];
    // Segmentation targets come as n × (H·W): the model's output is n × H × W × 1 (a view, no copy).
    const targets = ctx.args.task === 'segment' ? b.labels!.reshape([b.n, b.height, b.width, 1]) : b.labels!;
    try {
      out = await model.trainOnBatch(b.images, targets);
    } finally {
      if (targets !== b.labels) targets.dispose();
      b.release();
    }
    const [loss, acc] = Array.isArray(out) ? out : [out, Number.NaN];
    ctx.ema?.update();
    lossSum += loss! * b.n;
    accSum += acc! * b.n;
    seen += b.n;
    // The bar's own rate is images/s (one tick per image).
    progress.tick(b.n, `loss ${(lossSum / seen).toFixed(4)}${Number.isNaN(accSum) ? '' : ` acc ${(accSum / seen).toFixed(3)}`}`);
    hooks.onBatch?.(e, b.batch);
    hooks.signal?.throwIfAborted();
  }
  progress.end();
  return { lossSum, accSum, seen };
}

/** What picks the best epoch: validation Dice for segmentation, AUC for classification. */
function epochScore(row: EpochMetrics): number {
  return row.val_dice ?? row.val_auc;
}

function bestScore(best: NonNullable<TrainState['best']>): number {
  return best.val_dice ?? best.val_auc;
}

function describeBest(best: NonNullable<TrainState['best']>): string {
  return best.val_dice !== undefined ? `Dice ${best.val_dice.toFixed(4)}` : `AUC ${best.val_auc.toFixed(4)}`;
}

/**
 * Adds `row` to the state, saves best/ when its score (epochScore) is the best yet, decides
 * the early stop, then saves last/ (with the optimizer), state.json and the
 * metrics, in that order (readState relies on it). True when the epoch is the best.
 */
async function recordEpoch(ctx: EpochContext, state: TrainState, row: EpochMetrics): Promise<boolean> {
  const { run, args, model, card } = ctx;
  const better = state.best === null || epochScore(row) > bestScore(state.best);
  state.epoch = row.epoch;
  state.lr = row.lr;
  state.history.push(row);
  if (better) {
    state.best = { epoch: row.epoch, val_auc: row.val_auc, ...(row.val_dice !== undefined ? { val_dice: row.val_dice } : {}) };
    state.sinceBest = 0;
    await scoredWeights(ctx, () => writeCheckpoint(run, BEST_DIR, model, { ...card, epoch: row.epoch, val_auc: row.val_auc, ...(ctx.ema ? { ema: ctx.ema.decay } : {}) }, false));
  } else {
    state.sinceBest++;
  }
  if (args.patience > 0 && state.sinceBest >= args.patience && state.epoch < (state.horizon ?? args.epochs)) state.stoppedEarly = true;
  if (ctx.ema) state.emaSteps = ctx.ema.steps;
  const extra: Record<string, Uint8Array> = ctx.ema ? { [EMA_FILE]: await ctx.ema.bytes() } : {};
  await writeCheckpoint(run, LAST_DIR, model, { ...card, epoch: row.epoch, val_auc: row.val_auc, train_state: state }, true, extra);
  await writeJson(join(run, STATE_JSON), state);
  await writeMetrics(run, state.history);
  return better;
}

/** The epoch's line, and the early stop's when it came. */
function logEpoch(ctx: EpochContext, state: TrainState, row: EpochMetrics, better: boolean): void {
  const { args, log } = ctx;
  log(`epoch ${row.epoch}/${state.horizon ?? args.epochs}  lr ${row.lr.toPrecision(3)}  loss ${row.train_loss.toFixed(4)}${Number.isNaN(row.train_acc) ? '' : ` acc ${row.train_acc.toFixed(3)}`}` +
    `  val loss ${row.val_loss.toFixed(4)} acc ${row.val_acc.toFixed(3)} AUC ${row.val_auc.toFixed(4)}` +
    `${row.val_dice !== undefined ? ` Dice ${row.val_dice.toFixed(4)} IoU ${row.val_iou!.toFixed(4)}` : ''}` +
    `  ${row.images_per_s.toFixed(1)} img/s  ${row.seconds.toFixed(1)} s${better ? '  (best)' : ''}`);
  if (state.stoppedEarly) log(`early stop: no better validation ${state.best!.val_dice !== undefined ? 'Dice' : 'AUC'} in ${args.patience} epochs (best ${describeBest(state.best!)} at epoch ${state.best!.epoch})`);
}
