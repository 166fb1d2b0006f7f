/**
 * predictSubmission: a model's probabilities for every image of a dataset, as
 * the Kaggle "Histopathologic Cancer Detection" submission,
 *
 *   id,label
 *   f38a6374c348f90b587e046aac6079959adf3835,0.0123
 *   …
 *
 * one row per id in the data's order (sample_submission.csv's for a Kaggle
 * folder), label = P(tumour in the centre 32x32) in [0, 1], written with
 * float32 precision (the shortest decimal that reads back to the same float).
 *
 * Holes: an id whose image is missing or cannot be decoded has no score.
 * By default that is an error (PredictionHolesError, listing every such id)
 * and nothing is written: a submission with rows missing is rejected by
 * Kaggle anyway, and a silent default would hide broken data. With
 * `fillUnreadable: p` those ids get the probability p (0.5 is the
 * uninformative choice) and are still listed in `skipped`. The CSV is written
 * atomically (temporary file + rename): an interrupted or failed run never
 * leaves a partial submission, and an existing file stays as it was.
 */
import { performance } from 'node:perf_hooks';

import { checkTta, type Tta } from '../augment/params.js';
import { checkInteger, checkKnownKeys, checkNumber, checkObject, checkOneOf, invalidType } from '../errors.js';
import type { DatasetSkip } from '../dataset/kaggle.js';
import { writeFileAtomic } from '../image.js';
import { csvText } from '../csv.js';
import { checkOutputPath } from '../output.js';
import { expandEnsembles } from '../models/io.js';
import { ONNX_PROVIDERS, type OnnxBackend, type OnnxProvider } from '../models/onnx.js';
import { checkTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { DATA_SPLITS, openScoringData, type DataSplit } from './data.js';
import { COMBINE_RULES, scoreEnsemble, type CombineRule } from './score.js';

export interface PredictSubmissionOptions {
  /** A model folder, its model.json, a training run folder (its best/ checkpoint) or an ONNX model; several: an ensemble. */
  model: string | string[];
  /** How an ensemble combines its members (default 'mean' of probabilities; 'rank': the mean of ranks). */
  combine?: CombineRule;
  /** A Kaggle folder (test/ + sample_submission.csv), a packed file or PatchCamelyon HDF5. */
  data: string;
  /** The CSV to write. */
  out: string;
  /** Which images of `data` (default 'test'). */
  split?: DataSplit;
  /** Average the 8 dihedral views of each image (true), or those views at the centre and corner crop windows of a model trained on random crops ('crops': 40 views); default false. */
  tta?: Tta;
  /** Images per forward pass (default 64; with TTA the 8 views of each count). */
  batchSize?: number;
  /** TF.js backend (default 'auto'). */
  backend?: 'auto' | TrainingBackend;
  /** onnxruntime's execution provider for an ONNX model (default 'cpu'; 'cuda' where onnxruntime-node's CUDA provider and a GPU are). */
  provider?: OnnxProvider;
  /** Probability written for ids without a readable image; without it such ids are an error. */
  fillUnreadable?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PredictSubmissionResult {
  out: string;
  /** Rows written. */
  images: number;
  /** Images the model scored (rows minus filled ones). */
  scored: number;
  tta: Tta;
  seconds: number;
  images_per_s: number;
  /** The TF.js backend, or 'onnxruntime-cpu' / 'onnxruntime-cuda' for an ONNX model. */
  backend: TrainingBackend | OnnxBackend;
  /** The model file read; for an ensemble, the members' joined by ' + '. */
  model: string;
  /** An ensemble's members and how they were combined (one member: itself, 'mean'). */
  members: Array<{ model: string; backend: TrainingBackend | OnnxBackend }>;
  combine: CombineRule;
  data: string;
  /** Ids without a readable image (filled with `fillUnreadable`), ids of the data left out, and why. */
  skipped: DatasetSkip[];
  /** Rows written with `fillUnreadable`. */
  filled: number;
}

/** The ids that have no score, when no fill value was given: nothing was written. */
export class PredictionHolesError extends Error {
  readonly skipped: DatasetSkip[];
  constructor(skipped: DatasetSkip[], total: number) {
    const shown = skipped.slice(0, 5).map((s) => `${s.id}: ${s.reason}`).join('; ');
    super(`${skipped.length} of ${total} images could not be read, so no submission was written (${shown}${skipped.length > 5 ? '; …' : ''}); ` +
      'fix the data, or pass --fill-unreadable P to write probability P for them');
    this.name = 'PredictionHolesError';
    this.skipped = skipped;
  }
}

/** The shortest decimal (at most 9 significant digits) that reads back to the same float32. */
export function float32String(v: number): string {
  const f = Math.fround(v);
  for (let p = 1; p < 9; p++) {
    const s = String(Number(f.toPrecision(p)));
    if (Math.fround(Number(s)) === f) return s;
  }
  return String(Number(f.toPrecision(9)));
}

/** `id,label` rows, scores as float32String. */
export function submissionCsv(ids: readonly string[], scores: ArrayLike<number>): string {
  return csvText(['id', 'label'], ids.map((id, i) => [id, float32String(scores[i]!)]));
}

/** A file path histoflow can write (see checkOutputPath); resolves to it as given. */
export async function checkOutFile(name: string, out: unknown): Promise<string> {
  await checkOutputPath(name, out, 'file');
  return out as string;
}

export async function predictSubmission(options: PredictSubmissionOptions): Promise<PredictSubmissionResult> {
  const o = checkObject('options', options);
  checkKnownKeys('options', o, ['model', 'data', 'out', 'split', 'tta', 'batchSize', 'backend', 'provider', 'fillUnreadable', 'combine', 'onProgress']);
  const given = checkModels(o.model);
  const combine = o.combine === undefined ? 'mean' : checkOneOf('combine', o.combine, COMBINE_RULES);
  if (typeof o.data !== 'string' || o.data === '') throw invalidType('data', 'a dataset path', o.data);
  const out = await checkOutFile('out', o.out);
  const split = o.split === undefined ? 'test' : checkOneOf('split', o.split, DATA_SPLITS);
  const tta = o.tta === undefined ? false : checkTta('tta', o.tta);
  const batchSize = o.batchSize === undefined ? 64 : checkInteger('batchSize', o.batchSize, 1, 65536);
  const backend = o.backend === undefined ? 'auto' : checkTrainingBackend('backend', o.backend);
  const provider = o.provider === undefined ? undefined : checkOneOf('provider', o.provider, ONNX_PROVIDERS);
  const fill = o.fillUnreadable === undefined ? undefined : checkNumber('fillUnreadable', o.fillUnreadable, 0, 1);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidType('onProgress', 'a function', o.onProgress);

  const models = await expandEnsembles(given); // an ensemble folder (train --members) is its members
  const data = await openScoringData(o.data, { split });
  const { ids, notes, description } = data;
  data.close();
  const total = ids.length;
  if (total === 0) throw new Error(`data ${o.data}: no images to predict (${description})`);
  const t0 = performance.now();
  const r = await scoreEnsemble(models, () => openScoringData(o.data as string, { split }), {
    tta, batchSize, backend, combine, ...(provider === undefined ? {} : { provider }),
    ...(o.onProgress ? { onProgress: o.onProgress as (d: number, t: number) => void } : {}),
  });
  const seconds = (performance.now() - t0) / 1000;
  if (r.failed.length > 0 && fill === undefined) throw new PredictionHolesError(r.failed, total);
  const scores = r.scores.map((s) => (Number.isNaN(s) ? fill! : s));
  await writeFileAtomic(out, submissionCsv(ids, scores));
  return {
    out, images: total, scored: r.scored, tta, seconds, images_per_s: (r.scored * models.length) / Math.max(seconds, 1e-9),
    backend: r.members[0]!.backend, model: r.members.map((m) => m.model).join(' + '),
    members: r.members.map(({ model, backend: b }) => ({ model, backend: b })), combine,
    data: o.data, skipped: [...r.failed, ...notes], filled: r.failed.length,
  };
}

/** One model path or several (an ensemble): each a non-empty string. */
export function checkModels(value: unknown): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.some((m) => typeof m !== 'string' || m === '')) {
    throw invalidType('model', 'a model folder, model.json, run folder or .onnx file, or a list of them (an ensemble)', value);
  }
  return list as string[];
}
