/**
 * `--model M` → a SlidePredictorSpec. The one place that knows what a model
 * argument may be: `builtin:redness` (a test/debug stand-in) today; trained
 * TF.js model folders (`runs/NAME`) are wired in here.
 */
import { stat } from 'node:fs/promises';

import { invalidType } from '../errors.js';
import { rednessPredictor, type SlidePredictorSpec } from './predictor.js';

export const BUILTIN_MODELS = ['builtin:redness'] as const;

export async function loadSlidePredictor(modelArg: string): Promise<SlidePredictorSpec> {
  if (typeof modelArg !== 'string' || modelArg.length === 0) throw invalidType('--model', 'a model folder or builtin:redness', modelArg);
  if (modelArg === 'builtin:redness') return rednessPredictor();
  if (modelArg.startsWith('builtin:')) {
    throw new RangeError(`Expected one of ${BUILTIN_MODELS.join(', ')} for --model but received '${modelArg}': no such built-in model`);
  }
  const found = await stat(modelArg).catch(() => null);
  if (!found) throw new Error(`model not found: ${modelArg} (expected a trained model folder, or ${BUILTIN_MODELS.join(', ')})`);
  throw new Error(`cannot load the model ${modelArg}: trained TF.js model folders are not connected to predict-slide yet; use ${BUILTIN_MODELS.join(', ')}`);
}
