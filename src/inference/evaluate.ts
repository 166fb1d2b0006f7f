/**
 * evaluateModel: a model's quality on labelled data.
 *
 *   AUC          rank ROC AUC with ties (src/metrics/roc.ts), equal to the
 *                pairwise count P(score₊ > score₋) + ½·P(tie)
 *   auc_ci       Efron percentile bootstrap of the AUC (default 1000 resamples,
 *                95%, seeded: src/metrics/bootstrap.ts)
 *   accuracy     at threshold 0.5 (score ≥ 0.5 predicts tumour), and the
 *                confusion matrix { tp, fp, tn, fn } at the same threshold
 *   ROC curve    roc.png (with the chance diagonal) and roc.csv (threshold,fpr,tpr)
 *   scores.csv   id,label,score for every scored image (float32 decimals that
 *                read back exactly: the metrics recompute from this file)
 *   evaluation.json  everything above, the counts, what was skipped and why
 *
 * Data: a Kaggle folder (split test with test_labels.csv, or train with
 * train_labels.csv), a packed file with labels, PatchCamelyon with its y file,
 * or — split 'val' — the validation ids of the training run the model comes
 * from (runs/NAME/split.json, on the data the run recorded unless `data` is
 * given). Unlabelled images, and images that cannot be read, are left out of
 * the metrics and reported in `skipped`; both classes must remain.
 * Every file is written atomically.
 */
import { stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import { checkTta, type Tta } from '../augment/params.js';
import { checkInteger, checkKnownKeys, checkObject, checkOneOf, invalidType } from '../errors.js';
import type { DatasetSkip } from '../dataset/kaggle.js';
import { writeFileAtomic } from '../image.js';
import { csvText } from '../csv.js';
import { bootstrapCi, confusionMatrix, rocAuc, rocCurve, type ConfusionMatrix } from '../metrics/index.js';
import { writeLineChart } from '../plot/chart.js';
import { expandEnsembles } from '../models/io.js';
import { ONNX_PROVIDERS, type OnnxBackend, type OnnxProvider } from '../models/onnx.js';
import { checkTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { DATA_SPLITS, openScoringData } from './data.js';
import { readRunValidation, runFolderOf } from './run.js';
import { COMBINE_RULES, scoreEnsemble, type CombineRule } from './score.js';
import { checkModels, float32String } from './submission.js';

export const EVALUATE_SPLITS = [...DATA_SPLITS, 'val'] as const;
export type EvaluateSplit = (typeof EVALUATE_SPLITS)[number];

export const EVALUATION_JSON = 'evaluation.json';
export const ROC_PNG = 'roc.png';
export const ROC_CSV = 'roc.csv';
export const SCORES_CSV = 'scores.csv';
export const THRESHOLD = 0.5;

export interface EvaluateOptions {
  /** A model folder, its model.json, a training run folder (its best/ checkpoint) or an ONNX model; several: an ensemble (split 'val' from the first). */
  model: string | string[];
  /** How an ensemble combines its members (default 'mean' of probabilities; 'rank': the mean of ranks). */
  combine?: CombineRule;
  /** Labelled data; optional with split 'val' when the run recorded its data. */
  data?: string;
  /**
   * Which images: 'test' | 'train' | 'valid' of `data`, or 'val' (the run's
   * validation ids). Default: 'val' when the model is a run folder and no data
   * is given; else 'test' when `data` has labelled test images; else 'train'.
   */
  split?: EvaluateSplit;
  /** Average the 8 dihedral views of each image (true), or those views at the centre and corner crop windows of a model trained on random crops ('crops': 40 views); default false. */
  tta?: Tta;
  batchSize?: number;
  backend?: 'auto' | TrainingBackend;
  /** onnxruntime's execution provider for an ONNX model (default 'cpu'; 'cuda' where onnxruntime-node's CUDA provider and a GPU are). */
  provider?: OnnxProvider;
  /** Output folder (default: the run folder's, or the folder given as `model`, + '/evaluation'). */
  out?: string;
  /** Bootstrap resamples (default 1000) and seed (default 0). */
  bootstrap?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface EvaluationReport {
  model: string;
  data: string;
  /** What was scored, in words. */
  description: string;
  split: EvaluateSplit;
  tta: Tta;
  /** The TF.js backend, or 'onnxruntime-cpu' / 'onnxruntime-cuda' for an ONNX model. */
  backend: TrainingBackend | OnnxBackend;
  /** Images in the metrics, and per class. */
  n: number;
  positives: number;
  negatives: number;
  auc: number;
  auc_ci: { lower: number; upper: number; confidence: number; samples: number; seed: number };
  threshold: number;
  accuracy: number;
  confusion: ConfusionMatrix;
  seconds: number;
  images_per_s: number;
  /** The files written. */
  files: { evaluation: string; roc_png: string; roc_csv: string; scores: string };
  /** Left out of the metrics, and why (unreadable, unlabelled, not in the data). */
  skipped: DatasetSkip[];
  /** An ensemble's members, each with its own AUC on the same images, and how they were combined. */
  members: Array<{ model: string; backend: TrainingBackend | OnnxBackend; auc: number }>;
  combine: CombineRule;
}

/** Resolves split and data as the option comments say. */
async function chooseData(model: string, data: string | undefined, split: EvaluateSplit | undefined) {
  const run = await runFolderOf(model);
  const wanted = split ?? (data === undefined && run ? 'val' : undefined);
  if (wanted === 'val') {
    if (!run) throw new RangeError(`Expected a training run folder (with split.json) for model with split val but received '${model}'`);
    const v = await readRunValidation(run);
    const path = data ?? v.data;
    if (path === undefined) throw new TypeError(`Expected a dataset path for data: ${run} does not record the data it trained on`);
    return { run, path, split: 'val' as const, open: () => openScoringData(path, { split: v.split, only: v.ids }) };
  }
  if (data === undefined) throw new TypeError('Expected a dataset path for data but received undefined');
  if (wanted !== undefined) return { run, path: data, split: wanted, open: () => openScoringData(data, { split: wanted }) };
  // No split asked for: labelled test images if there are, else the training images.
  const test = await openScoringData(data, { split: 'test' }).catch(() => undefined);
  if (test && test.hasLabels) return { run, path: data, split: 'test' as const, open: async () => test };
  test?.close();
  return { run, path: data, split: 'train' as const, open: () => openScoringData(data, { split: 'train' }) };
}

export async function evaluateModel(options: EvaluateOptions): Promise<EvaluationReport> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['model', 'data', 'split', 'tta', 'batchSize', 'backend', 'provider', 'out', 'bootstrap', 'seed', 'combine', 'onProgress']);
  const given = checkModels(o.model);
  const combine = o.combine === undefined ? 'mean' : checkOneOf('combine', o.combine, COMBINE_RULES);
  if (o.data !== undefined && (typeof o.data !== 'string' || o.data === '')) throw invalidType('data', 'a dataset path', o.data);
  const split = o.split === undefined ? undefined : checkOneOf('split', o.split, EVALUATE_SPLITS);
  const tta = o.tta === undefined ? false : checkTta('tta', o.tta);
  const batchSize = o.batchSize === undefined ? 64 : checkInteger('batchSize', o.batchSize, 1, 65536);
  const backend = o.backend === undefined ? 'auto' : checkTrainingBackend('backend', o.backend);
  const provider = o.provider === undefined ? undefined : checkOneOf('provider', o.provider, ONNX_PROVIDERS);
  if (o.out !== undefined && (typeof o.out !== 'string' || o.out === '')) throw invalidType('out', 'a folder path', o.out);
  const samples = o.bootstrap === undefined ? 1000 : checkInteger('bootstrap', o.bootstrap, 1, 1_000_000);
  const seed = o.seed === undefined ? 0 : checkInteger('seed', o.seed, 0, Number.MAX_SAFE_INTEGER);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('onProgress', 'a function', o.onProgress);

  const models = await expandEnsembles(given); // an ensemble folder (train --members) is its members
  const chosen = await chooseData(models[0]!, o.data as string | undefined, split);
  const data = await chosen.open();
  try {
    if (data.ids.length === 0) throw new Error(`data ${chosen.path}: no images to evaluate (${data.description})`);
    if (!data.hasLabels) throw new Error(`data ${chosen.path}: ${data.description} has no labels to evaluate against (Kaggle: train_labels.csv or test_labels.csv)`);
    const t0 = performance.now();
    const r = await scoreEnsemble(models, chosen.open, {
      tta, batchSize, backend, combine, ...(provider === undefined ? {} : { provider }),
      ...(o.onProgress ? { onProgress: o.onProgress as (d: number, t: number) => void } : {}),
    });
    const loaded = { path: r.members.map((m) => m.model).join(' + '), backend: r.members[0]!.backend };
    const seconds = (performance.now() - t0) / 1000;
    const skipped: DatasetSkip[] = [...r.failed, ...data.missing];
    const ids: string[] = [], labels: number[] = [], scores: number[] = [], kept: number[] = [];
    const truth = r.labels;
    data.ids.forEach((id, i) => {
      if (Number.isNaN(r.scores[i]!)) return; // in r.failed
      if (truth[i]! < 0) skipped.push({ id, reason: 'no 0/1 label' });
      else {
        ids.push(id);
        labels.push(truth[i]!);
        scores.push(r.scores[i]!);
        kept.push(i);
      }
    });
    const positives = labels.reduce((s, v) => s + v, 0);
    if (positives === 0 || positives === labels.length) {
      throw new Error(`data ${chosen.path}: the ${labels.length} scored images are all of class ${positives ? 1 : 0}; AUC needs both classes`);
    }
    const members = r.members.map((m) => ({ model: m.model, backend: m.backend, auc: rocAuc(labels, kept.map((i) => m.scores[i]!)) }));
    const first = resolve(given[0]!);
    // An ensemble folder given first keeps its evaluation; a model, its run's folder or its own.
    const base = models[0] !== given[0] ? first : chosen.run ?? ((await stat(first)).isDirectory() ? first : dirname(loaded.path));
    const out = (o.out as string | undefined) ?? join(base, 'evaluation');
    const files = { evaluation: join(out, EVALUATION_JSON), roc_png: join(out, ROC_PNG), roc_csv: join(out, ROC_CSV), scores: join(out, SCORES_CSV) };
    const auc = rocAuc(labels, scores);
    const ci = bootstrapCi(labels, scores, rocAuc, { samples, seed });
    const confusion = confusionMatrix(labels, scores, THRESHOLD);
    const roc = rocCurve(labels, scores);
    const report: EvaluationReport = {
      model: loaded.path, data: chosen.path, description: data.description, split: chosen.split, tta, backend: loaded.backend,
      n: labels.length, positives, negatives: labels.length - positives,
      auc, auc_ci: { lower: ci.lower, upper: ci.upper, confidence: ci.confidence, samples: ci.samples, seed },
      threshold: THRESHOLD, accuracy: (confusion.tp + confusion.tn) / labels.length, confusion,
      seconds, images_per_s: (r.scored * models.length) / Math.max(seconds, 1e-9), files, skipped, members, combine,
    };
    await writeFileAtomic(files.scores, csvText(['id', 'label', 'score'], ids.map((id, k) => [id, labels[k]!, float32String(scores[k]!)])));
    await writeFileAtomic(files.roc_csv, csvText(['threshold', 'fpr', 'tpr'], roc.map((p) => [p.threshold, p.fpr, p.tpr])));
    await writeLineChart(files.roc_png, {
      title: `ROC: AUC ${auc.toFixed(4)} (95% CI ${ci.lower.toFixed(3)}–${ci.upper.toFixed(3)}), n = ${labels.length}`,
      xLabel: 'false positive rate', yLabel: 'true positive rate',
      series: [{ name: `${models.length > 1 ? `ensemble of ${models.length} (${combine})` : 'model'}${tta === 'crops' ? ' (TTA, 5 crops)' : tta ? ' (TTA)' : ''}`, x: roc.map((p) => p.fpr), y: roc.map((p) => p.tpr) }],
      xRange: [0, 1], yRange: [0, 1], diagonal: true, width: 560, height: 520,
    });
    await writeFileAtomic(files.evaluation, `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    data.close();
  }
}
