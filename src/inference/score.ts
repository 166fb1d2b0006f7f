/**
 * Scores every image of a ScoringData with a Predictor: chunks of images are
 * read (decoded, for image files) while the previous chunk is scored, and
 * an image that cannot be read is recorded as failed (its score NaN) rather
 * than stopping the run; the caller decides what a failure means.
 */
import { checkBoolean, checkInteger } from '../errors.js';
import type { DatasetSkip } from '../dataset/kaggle.js';
import { loadModel, resolveModelJson } from '../models/io.js';
import { createPredictor, type Predictor } from '../models/predict.js';
import { useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import type { ScoringChunk, ScoringData } from './data.js';

export interface ScoreOptions {
  /** Images read per chunk (default 256). */
  chunk?: number;
  tta?: boolean;
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
  const tta = options.tta === undefined ? false : checkBoolean('tta', options.tta);
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
  /** The model.json read. */
  path: string;
  /** The TF.js backend it runs on. */
  backend: TrainingBackend;
  dispose(): void;
}

/**
 * Makes `backend` TF.js's current backend, then loads the model (so its
 * weights live there) and wraps it in a Predictor.
 */
export async function openPredictor(model: string, options: { backend?: 'auto' | TrainingBackend; batchSize?: number; tta?: boolean } = {}): Promise<LoadedPredictor> {
  await resolveModelJson(model); // a missing model fails before any backend starts
  const { backend } = await useTrainingBackend(options.backend ?? 'auto');
  const loaded = await loadModel(model);
  const predictor = createPredictor(loaded.model, loaded.card, {
    ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
    ...(options.tta === undefined ? {} : { tta: options.tta }),
  });
  return { predictor, path: loaded.path, backend, dispose: () => loaded.model.dispose() };
}
