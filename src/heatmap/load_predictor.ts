/**
 * `--model M` → a SlidePredictorSpec. The one place that knows what a model
 * argument may be: a trained model (a run folder `runs/NAME`, its `best/`, or
 * any TF.js layers model.json folder; src/models/io.ts), run with the model's
 * own preprocessing and TTA (src/models/predict.ts), or `builtin:redness`
 * (a test/debug stand-in: each tile's mean redness).
 */
import { basename, dirname } from 'node:path';

import { invalidType } from '../errors.js';
import { loadModel, ModelNotFoundError } from '../models/io.js';
import { createPredictor } from '../models/predict.js';
import { useTrainingBackend, type TrainingBackend } from '../tfjs/backend.js';
import { rednessPredictor, type SlidePredictorSpec } from './predictor.js';

export const BUILTIN_MODELS = ['builtin:redness'] as const;

export interface LoadSlidePredictorOptions {
  /** TF.js backend for a trained model (default 'auto'). */
  backend?: 'auto' | TrainingBackend;
  /** Tiles per forward pass (default 64). */
  batchSize?: number;
}

export async function loadSlidePredictor(modelArg: string, options: LoadSlidePredictorOptions = {}): Promise<SlidePredictorSpec> {
  if (typeof modelArg !== 'string' || modelArg.length === 0) throw invalidType('--model', 'a model folder or builtin:redness', modelArg);
  if (modelArg === 'builtin:redness') return rednessPredictor();
  if (modelArg.startsWith('builtin:')) {
    throw new RangeError(`Expected one of ${BUILTIN_MODELS.join(', ')} for --model but received '${modelArg}': no such built-in model`);
  }
  await useTrainingBackend(options.backend ?? 'auto');
  let loaded;
  try {
    loaded = await loadModel(modelArg);
  } catch (e) {
    if (e instanceof ModelNotFoundError) throw new Error(`model not found: ${modelArg} (expected a trained model folder, or ${BUILTIN_MODELS.join(', ')})`, { cause: e });
    throw e;
  }
  const predictor = createPredictor(loaded.model, loaded.card, { batchSize: options.batchSize ?? 64 });
  const folder = dirname(loaded.path);
  const name = basename(folder) === 'best' ? basename(dirname(folder)) : basename(folder);
  return {
    predict: (batch, { tta }) => predictor.predict(batch, { tta }),
    inputSize: predictor.imageSize,
    name: `${name} (${loaded.card.architecture})`,
    handlesTta: true,
  };
}
