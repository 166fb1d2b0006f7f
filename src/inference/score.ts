/**
 * Scores every image of a ScoringData with a Predictor: chunks of images are
 * read (decoded, for image files) while the previous chunk is scored, and
 * an image that cannot be read is recorded as failed (its score NaN) rather
 * than stopping the run; the caller decides what a failure means.
 */
import { checkTta, type Tta } from '../augment/params.js';
import { checkInteger, invalidRange } from '../errors.js';
import type { DatasetSkip } from '../dataset/kaggle.js';
import { loadModelForInference, resolveModelJson } from '../models/io.js';
import { ONNX_PROVIDERS, createOnnxPredictor, loadOnnxModel, resolveOnnxModel, type OnnxBackend, type OnnxProvider } from '../models/onnx.js';
import { createPredictor, type Predictor } from '../models/predict.js';
import { useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import type { ScoringChunk, ScoringData } from './data.js';

export interface ScoreOptions {
  /** Images read per chunk (default 256). */
  chunk?: number;
  tta?: Tta;
  onProgress?: (done: number, total: number) => void;
}

export interface Scores {
  /** One per id of the data; NaN where the image could not be read. */
  scores: Float32Array;
  /** Ids whose image could not be read (or that name none), and why. */
  failed: DatasetSkip[];
  /** Images scored. */
  scored: number;
}

export async function scoreData(predictor: Predictor, data: ScoringData, options: ScoreOptions = {}): Promise<Scores> {
  const chunk = options.chunk === undefined ? 256 : checkInteger('chunk', options.chunk, 1, 1 << 20);
  const tta = options.tta === undefined ? false : checkTta('tta', options.tta);
  const total = data.ids.length;
  const scores = new Float32Array(total).fill(Number.NaN);
  const failed: DatasetSkip[] = [];
  let scored = 0;
  const readAt = (from: number): Promise<ScoringChunk> | undefined =>
    from < total ? data.read(from, Math.min(total, from + chunk)) : undefined;
  let next = readAt(0);
  for (let from = 0; next; from += chunk) {
    const part = await next;
    next = readAt(from + chunk); // decode the next chunk while this one is scored
    for (const f of part.failed) failed.push({ id: data.ids[f.position]!, reason: f.reason });
    if (part.batch) {
      let p: Float32Array;
      try {
        p = await predictor.predict(part.batch, { tta });
      } catch (e) {
        await next?.catch(() => undefined);
        if (e instanceof RangeError) {
          throw new RangeError(`Expected images the model takes (${predictor.imageSize}x${predictor.imageSize}, input ${predictor.inputSize}x${predictor.inputSize}) ` +
            `for data but ${data.description} holds ${part.batch.width}x${part.batch.height} images`);
        }
        throw e;
      }
      part.positions.forEach((pos, k) => {
        scores[pos] = p[k]!;
      });
      scored += part.positions.length;
    }
    options.onProgress?.(Math.min(total, from + chunk), total);
  }
  return { scores, failed, scored };
}

export interface LoadedPredictor {
  predictor: Predictor;
  /** The model file read (model.json, or the .onnx file). */
  path: string;
  /** The TF.js backend it runs on, or onnxruntime and its execution provider for an ONNX model. */
  backend: TrainingBackend | OnnxBackend;
  dispose(): void;
}

export interface OpenPredictorOptions {
  /** TF.js backend of a TF.js model (default 'auto'); an ONNX model takes only 'auto'. */
  backend?: 'auto' | TrainingBackend;
  /** onnxruntime's execution provider of an ONNX model (default 'cpu'); not for TF.js models. */
  provider?: OnnxProvider;
  batchSize?: number;
  tta?: Tta;
}

/**
 * The Predictor of a --model argument. An ONNX model (X.onnx, or a folder
 * with model.onnx) runs on onnxruntime-node with its card; any other model
 * is TF.js's: `backend` becomes TF.js's current backend, then the model is
 * loaded (so its weights live there).
 */
export async function openPredictor(model: string, options: OpenPredictorOptions = {}): Promise<LoadedPredictor> {
  const settings = {
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.tta === undefined ? {} : { tta: options.tta }),
  };
  const onnx = await resolveOnnxModel(model);
  if (onnx !== undefined) {
    if (options.backend !== undefined && options.backend !== 'auto') {
      throw invalidRange('backend', `auto for the ONNX model ${onnx} (it runs on onnxruntime-node; choose its execution provider with provider: ${ONNX_PROVIDERS.join(' | ')})`, options.backend);
    }
    const loaded = await loadOnnxModel(onnx, options.provider === undefined ? {} : { provider: options.provider });
    return {
      predictor: createOnnxPredictor(loaded, settings), path: loaded.path, backend: loaded.backend,
      dispose: () => void loaded.dispose(),
    };
  }
  if (options.provider !== undefined) {
    throw invalidRange('provider', `no provider for the TF.js model ${model} (providers are onnxruntime's, for .onnx models; TF.js models take backend)`, options.provider);
  }
  await resolveModelJson(model); // a missing model fails before any backend starts
  const { backend } = await useTrainingBackend(options.backend ?? 'auto');
  const loaded = await loadModelForInference(model);
  const predictor = createPredictor(loaded.model, loaded.card, settings);
  return { predictor, path: loaded.path, backend, dispose: () => loaded.model.dispose() };
}

/** How an ensemble combines its members' scores: the mean of probabilities, or of ranks (scaled to (0, 1]). */
export const COMBINE_RULES = ['mean', 'rank'] as const;
export type CombineRule = (typeof COMBINE_RULES)[number];

/**
 * Each score's rank among the finite ones, ties sharing their mean rank,
 * divided by their count (so in (0, 1]); NaN stays NaN. Rank averaging
 * (the Kaggle leaders' way to ensemble models of different calibration).
 */
export function rankScores(scores: ArrayLike<number>): Float64Array {
  const out = new Float64Array(scores.length).fill(Number.NaN);
  const order = Array.from({ length: scores.length }, (_, i) => i).filter((i) => Number.isFinite(scores[i]!)).sort((a, b) => scores[a]! - scores[b]!);
  for (let k = 0; k < order.length;) {
    let end = k + 1;
    while (end < order.length && scores[order[end]!] === scores[order[k]!]) end++;
    const rank = (k + 1 + end) / 2; // mean of ranks k+1 … end
    for (let m = k; m < end; m++) out[order[m]!] = rank / order.length;
    k = end;
  }
  return out;
}

/** The members' scores combined per id by `rule`; NaN where any member has none. */
export function combineScores(members: readonly ArrayLike<number>[], rule: CombineRule): Float32Array {
  const n = members[0]?.length ?? 0;
  const inputs = rule === 'rank' ? members.map((m) => rankScores(m)) : members;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (const m of inputs) s += m[i]!;
    out[i] = s / inputs.length;
  }
  return out;
}

export interface EnsembleMember {
  model: string;
  backend: TrainingBackend | OnnxBackend;
  scores: Float32Array;
}

/**
 * Scores the data with each model in turn (each with its own card's
 * preprocessing and TTA, the data read once per model) and combines them.
 * One model is scored as itself (its scores unchanged by `rule`).
 */
export async function scoreEnsemble(
  models: readonly string[],
  openData: () => Promise<ScoringData>,
  options: ScoreOptions & OpenPredictorOptions & { combine?: CombineRule } = {},
): Promise<Scores & { members: EnsembleMember[]; labels: Int8Array }> {
  const rule = options.combine ?? 'mean';
  const { onProgress, chunk, tta, ...open } = options;
  const members: EnsembleMember[] = [];
  const failed = new Map<string, DatasetSkip>();
  let labels = new Int8Array(0);
  for (const [m, model] of models.entries()) {
    const loaded = await openPredictor(model, { ...(open.backend ? { backend: open.backend } : {}), ...(open.provider ? { provider: open.provider } : {}),
      ...(open.batchSize === undefined ? {} : { batchSize: open.batchSize }) });
    try {
      const data = await openData();
      try {
        const r = await scoreData(loaded.predictor, data, {
          ...(chunk === undefined ? {} : { chunk }), ...(tta === undefined ? {} : { tta }),
          ...(onProgress ? { onProgress: (done: number, all: number) => onProgress(m * all + done, models.length * all) } : {}),
        });
        for (const f of r.failed) failed.set(f.id ?? '', f);
        labels = data.labels.slice(); // PatchCamelyon's are filled as its chunks are read
        members.push({ model: loaded.path, backend: loaded.backend, scores: r.scores });
      } finally {
        data.close();
      }
    } finally {
      loaded.dispose();
    }
  }
  const scores = members.length === 1 ? members[0]!.scores : combineScores(members.map((m) => m.scores), rule);
  return { scores, failed: [...failed.values()], scored: scores.reduce((s, v) => s + (Number.isNaN(v) ? 0 : 1), 0), members, labels };
}
