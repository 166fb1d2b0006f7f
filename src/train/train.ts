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
import { mkdir, readFile, stat } from 'node:fs/promises';
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
import { fitStainTarget } from '../stain/normalize.js';
import { useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { openTrainingData, type TrainingData } from './data.js';
import { resolveRunArgs, resumeArgs, type RunArgs, type TrainOptions } from './options.js';
import {
  BEST_DIR, LAST_DIR, SKIPPED_JSON, SPLIT_JSON, STATE_JSON, recoverCheckpoint, writeCheckpoint, writeJson, writeMetrics,
  type EpochMetrics,
} from './run_folder.js';
import { getLearningRate, learningRateAt, setLearningRate } from './schedule.js';

/** Everything --resume needs (state.json, and last/'s card as `train_state`). */
export interface TrainState {
  version: 1;
  /** Epochs finished. */
  epoch: number;
  best: { epoch: number; val_auc: number } | null;
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
}

export interface TrainResult {
  /** The run folder. */
  run: string;
  /** best/ (what predict and evaluate load). */
  checkpoint: string;
  best_val_auc: number;
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

function defaultRunName(model: string): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const base = /^[a-z]+$/.test(model) ? model : 'custom';
  return join('runs', `${base}-${stamp}`);
}

async function readState(run: string): Promise<TrainState> {
  await recoverCheckpoint(run, LAST_DIR);
  await recoverCheckpoint(run, BEST_DIR);
  let fromFile: TrainState | undefined;
  try {
    fromFile = JSON.parse(await readFile(join(run, STATE_JSON), 'utf8')) as TrainState;
  } catch {
    fromFile = undefined;
  }
  // last/'s card is written before state.json: when a crash fell between them, it is the newer.
  let fromCard: TrainState | undefined;
  try {
    const json = JSON.parse(await readFile(join(run, LAST_DIR, 'model.json'), 'utf8')) as { userDefinedMetadata?: { histoflow?: { train_state?: TrainState } } };
    fromCard = json.userDefinedMetadata?.histoflow?.train_state;
  } catch {
    fromCard = undefined;
  }
  const state = fromCard && (!fromFile || fromCard.epoch >= fromFile.epoch) ? fromCard : fromFile;
  if (!state || !fromCard) {
    throw new Error(`Nothing to resume in ${run}: no finished epoch (${LAST_DIR}/ with its state); start the run again without --resume`);
  }
  return state;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

function resultOf(run: string, state: TrainState, resumedFrom: number, data: TrainingData): TrainResult {
  const seconds = state.history.reduce((s, r) => s + r.seconds, 0);
  const trainSeconds = state.history.reduce((s, r) => s + (r.images_per_s > 0 ? data.train.size / r.images_per_s : 0), 0);
  return {
    run, checkpoint: join(run, BEST_DIR),
    best_val_auc: state.best?.val_auc ?? Number.NaN, best_epoch: state.best?.epoch ?? 0,
    epochs: state.epoch, backend: state.backend, seconds,
    images_per_s: trainSeconds > 0 ? (data.train.size * state.history.length) / trainSeconds : 0,
    stopped_early: state.stoppedEarly, resumed_from: resumedFrom,
    train_images: data.train.size, val_images: data.validation.size, skipped: data.skipped.length,
  };
}

/** Trains (or resumes) a run; see the file comment and options.ts. */
export async function train(options: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.quiet ? () => undefined : (hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`)));
  const resuming = options?.resume === true;
  if (options?.out !== undefined && (typeof options.out !== 'string' || options.out === '')) {
    throw new TypeError(`Expected a folder path for out but received ${String(options.out)}`);
  }
  let state: TrainState | undefined;
  let args: RunArgs;
  let run: string;
  if (resuming) {
    if (options.out === undefined) throw new TypeError('Expected the run folder to resume for out but received undefined');
    run = resolve(options.out);
    state = await readState(run);
    args = resumeArgs(state.args, options, state.backend);
  } else {
    args = await resolveRunArgs(options);
    run = resolve(options.out ?? defaultRunName(args.model));
    if (await exists(join(run, STATE_JSON))) throw new Error(`${run} already holds a run: pass --resume to continue it, or choose another --out`);
  }

  const { backend } = await useTrainingBackend(state?.backend ?? args.backend);
  let reading: Progress | undefined;
  const data = await openTrainingData(args.data, {
    validation: args.validation, seed: args.seed, ...(args.groupBy ? { groupBy: args.groupBy } : {}),
    onProgress: (done, total) => {
      reading ??= new Progress('reading', total, { quiet: hooks.quiet ?? false });
      reading.tick();
      if (done === total) reading.end();
    },
  });
  let model: tf.LayersModel | undefined;
  try {
    // The split is a function of (data, seed): a resume must see the same one.
    const split = { train: data.trainIds, validation: data.validationIds };
    if (state) {
      const recorded = JSON.parse(await readFile(join(run, SPLIT_JSON), 'utf8')) as typeof split;
      if (recorded.train.length !== split.train.length || recorded.validation.some((id, i) => id !== split.validation[i])) {
        throw new Error(`${args.data} no longer gives the split recorded in ${join(run, SPLIT_JSON)}: the data changed since the run started`);
      }
    }

    let pipeline: AugmentPipelineInput;
    if (state) {
      pipeline = state.pipeline;
    } else {
      pipeline = { ...args.augment };
      if (args.crop !== null) pipeline.crop = { size: args.crop, mode: 'random' };
      if (args.normalize) {
        const target = args.target ? await fitStainTarget(await readImage(args.target), { method: args.normalize }) : null;
        pipeline.stain = { method: args.normalize, target };
      }
    }
    const shape = outputShape(checkPipeline(pipeline), data.height, data.width);
    let architecture: string;
    if (state) {
      model = (await loadModel(join(run, LAST_DIR))).model;
      architecture = state.architecture;
    } else {
      const built = await buildModel(args.model, { inputSize: shape.height, width: args.width, seed: args.seed, learningRate: args.learningRate });
      model = built.model;
      architecture = built.architecture;
    }
    const s: TrainState = state ?? {
      version: 1, epoch: 0, best: null, sinceBest: 0, lr: args.learningRate, seed: args.seed, backend,
      stoppedEarly: false, args, pipeline, architecture, inputSize: shape.height, imageSize: data.height, history: [],
    };
    s.args = args;
    const card: ModelCard = {
      inputSize: s.inputSize, imageSize: s.imageSize, architecture, preprocess: inferencePipeline(pipeline),
      model: args.model, width: args.width, seed: args.seed, data: args.data,
    };
    const resumedFrom = s.epoch;
    if (!state) {
      await mkdir(run, { recursive: true });
      await writeJson(join(run, SPLIT_JSON), { kind: data.kind, split: data.split, ...split });
      await writeJson(join(run, SKIPPED_JSON), { count: data.skipped.length, skipped: data.skipped });
      log(`training ${architecture} on ${backend}: ${data.train.size} train / ${data.validation.size} validation ${s.inputSize}px patches` +
        `${data.skipped.length ? `, ${data.skipped.length} skipped (first: ${data.skipped[0]!.reason}; all in ${SKIPPED_JSON})` : ''} → ${run}`);
    } else {
      log(`resuming ${run} after epoch ${s.epoch} on ${backend}`);
    }

    const loader = new BatchLoader(data.train, pipeline, { batchSize: args.batchSize, shuffle: true, seed: args.seed, prefetch: 2, reuse: true, tf });
    const stepsPerEpoch = loader.length;
    while (s.epoch < args.epochs && !s.stoppedEarly) {
      const e = s.epoch;
      const lr = learningRateAt(args.schedule, args.learningRate, e, args.epochs);
      if (e > 0) await reseatOptimizer(model.optimizer);
      setLearningRate(model.optimizer, lr);
      const started = performance.now();
      const progress = new Progress(`epoch ${e + 1}/${args.epochs}`, data.train.size, { quiet: hooks.quiet ?? false });
      let lossSum = 0, accSum = 0, seen = 0;
      for await (const b of loader.epoch(e)) {
        setDropoutSeeds(model, args.seed, e * stepsPerEpoch + b.batch);
        let out: number | number[];
        try {
          out = await model.trainOnBatch(b.images, b.labels!);
        } finally {
          b.release();
        }
        const [loss, acc] = Array.isArray(out) ? out : [out, Number.NaN];
        lossSum += loss! * b.n;
        accSum += acc! * b.n;
        seen += b.n;
        // The bar's own rate is images/s (one tick per image).
        progress.tick(b.n, `loss ${(lossSum / seen).toFixed(4)} acc ${(accSum / seen).toFixed(3)}`);
        hooks.onBatch?.(e, b.batch);
        hooks.signal?.throwIfAborted();
      }
      progress.end();
      const trainSeconds = (performance.now() - started) / 1000;
      const v = await evaluate(model, card, data.validation);
      const row: EpochMetrics = {
        epoch: e + 1, lr: getLearningRate(model.optimizer), train_loss: lossSum / seen, train_acc: accSum / seen,
        val_loss: v.loss, val_acc: v.acc, val_auc: v.auc,
        seconds: (performance.now() - started) / 1000, images_per_s: seen / trainSeconds,
      };
      const better = s.best === null || v.auc > s.best.val_auc;
      s.epoch = e + 1;
      s.lr = row.lr;
      s.history.push(row);
      if (better) {
        s.best = { epoch: e + 1, val_auc: v.auc };
        s.sinceBest = 0;
        await writeCheckpoint(run, BEST_DIR, model, { ...card, epoch: e + 1, val_auc: v.auc }, false);
      } else {
        s.sinceBest++;
      }
      if (args.patience > 0 && s.sinceBest >= args.patience && s.epoch < args.epochs) s.stoppedEarly = true;
      await writeCheckpoint(run, LAST_DIR, model, { ...card, epoch: e + 1, val_auc: v.auc, train_state: s }, true);
      await writeJson(join(run, STATE_JSON), s);
      await writeMetrics(run, s.history);
      log(`epoch ${e + 1}/${args.epochs}  lr ${row.lr.toPrecision(3)}  loss ${row.train_loss.toFixed(4)} acc ${row.train_acc.toFixed(3)}` +
        `  val loss ${row.val_loss.toFixed(4)} acc ${row.val_acc.toFixed(3)} AUC ${row.val_auc.toFixed(4)}` +
        `  ${row.images_per_s.toFixed(1)} img/s  ${row.seconds.toFixed(1)} s${better ? '  (best)' : ''}`);
      if (s.stoppedEarly) log(`early stop: no better validation AUC in ${args.patience} epochs (best ${s.best!.val_auc.toFixed(4)} at epoch ${s.best!.epoch})`);
      hooks.onEpoch?.(row, s);
    }
    return resultOf(run, s, resumedFrom, data);
  } finally {
    model?.dispose();
    data.close();
  }
}
